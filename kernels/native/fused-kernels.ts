/** Native implementations of tabrecall's fused ops (declared in kernels/fused.ts). */
import type { TensorInfo } from '@tensorflow/tfjs-core';
import type { NativeBackend } from './backend.js';
import type { NativeKernelFn } from './kernels.js';
import { size } from './kernel-util.js';
import { nBlocks, transposeLayout, type BlockLayout } from '../layout.js';
import { isDeviceLayout, type AnyLayout } from '../device-layout.js';
import type { CudaLib } from './lib.js';
import { ParamError } from '../../core/params.js';
import { backwardMode, type Precision } from '../precision.js';

/** Arguments shared by the fused block-sparse forward and backward calls, in the C functions' order. */
function bsaArgs(b: NativeBackend, q: TensorInfo, k: TensorInfo, v: TensorInfo, kb: TensorInfo | undefined, a: Record<string, unknown>) {
  const al = a.layout as AnyLayout;
  // bf16Inputs: q/k/v are packBf16 outputs, two bf16 values per float32 slot of the last dim
  const per = a.bf16Inputs ? 2 : 1;
  const [B, H, Lq] = q.shape as [number, number, number, number];
  const D = q.shape[3]! * per;
  const Lk = k.shape[2]!;
  const Dv = v.shape[3]! * per;
  const kbB = kb ? kb.shape[0]! : 1;
  const kbH = kb ? kb.shape[1]! : 1;
  const strides = [kbB === 1 ? 0 : kbH * Lk, kbH === 1 ? 0 : Lk] as const;
  const shape = [B, H, Lq, Lk, D, Dv, al.Bq, al.Bk, al.H] as const;
  // A device layout's arrays are already where the kernel reads them; its listed count is a bound.
  const arrays = isDeviceLayout(al)
    ? [b.buf(al.device.rowPtr), b.buf(al.device.colIdx), b.buf(al.device.full), null] as const
    : [b.constant(al.rowPtr), b.constant(al.colIdx), b.constant(al.full), al.mask ? b.constant(al.mask) : null] as const;
  const layout = [...arrays, al.causal ? 1 : 0, Number.isFinite(al.window) ? al.window : -1, Number(a.scale)] as const;
  const listed = isDeviceLayout(al) ? al.device.colIdx.shape[0] : al.colIdx.length;
  return { B, H, Lq, Lk, D, Dv, shape, layout, strides, listed, host: isDeviceLayout(al) ? undefined : al };
}

/** The host layout of a backward call: device layouts are forward-only (selection is an inference step). */
function hostLayout(x: ReturnType<typeof bsaArgs>): BlockLayout {
  if (!x.host) throw new ParamError('blockSparseAttention.layout', 'a device layout (written by a selector kernel) is forward-only: no gradient');
  return x.host;
}

/** The precision kernels/precision.ts planned (the op passes it as an attribute); fp32 off cuda. */
function planned(b: NativeBackend, p: unknown, where: string): Precision {
  if (p !== 'fp32' && p !== 'tf32' && p !== 'bf16') throw new Error(`${where}: no precision planned (got ${JSON.stringify(p)}); call through kernels/block-sparse.ts`);
  if (p !== 'fp32' && b.lib.kind !== 'cuda') throw new Error(`${where}: ${p} planned on the ${b.lib.kind} backend, which computes in fp32 only`);
  return p;
}

/**
 * The tensor-core forwards (cuda, head dim 64, 64x64 blocks). tf32: fp32 in and out. bf16: q/k/v are
 * converted to bf16 on the device on entry (tfjs has no bf16 dtype), or taken as they are when they
 * are packBf16 outputs already (bf16Inputs); output and log-sum-exp stay fp32.
 */
function tensorCoreForward(b: NativeBackend, precision: 'tf32' | 'bf16', bf16Inputs: boolean, q: TensorInfo, k: TensorInfo, v: TensorInfo,
  kb: TensorInfo | undefined, x: ReturnType<typeof bsaArgs>, out: TensorInfo, lse: TensorInfo): void {
  const lib = b.lib as CudaLib;
  const kbp = kb ? b.buf(kb) : null;
  if (precision === 'tf32') {
    lib.tr_bsa_fwd_tf32(b.buf(q), b.buf(k), b.buf(v), kbp, b.buf(out), b.buf(lse), ...x.shape, ...x.layout, ...x.strides);
    return;
  }
  if (bf16Inputs) {
    lib.tr_bsa_fwd_bf16(b.buf(q), b.buf(k), b.buf(v), kbp, b.buf(out), b.buf(lse), ...x.shape, ...x.layout, ...x.strides, x.listed);
    return;
  }
  const half = [q, k, v].map((t) => {
    const n = size(t.shape);
    const h = b.makeOutput([Math.ceil(n / 2)], 'float32');  // n bf16 values in n/2 float32 slots
    lib.tr_to_bf16(b.buf(t), b.buf(h), n);
    return h;
  });
  lib.tr_bsa_fwd_bf16(b.buf(half[0]!), b.buf(half[1]!), b.buf(half[2]!), kbp, b.buf(out), b.buf(lse), ...x.shape, ...x.layout, ...x.strides, x.listed);
  for (const h of half) b.disposeData(h.dataId);
}

export const FUSED_KERNELS: Record<string, NativeKernelFn> = {
  // [..., D] fp32 -> [..., D/2] float32 slots holding D bf16 values (round to nearest even)
  TrPackBf16: ([x], _a, b): TensorInfo => {
    const lib = b.lib as CudaLib;
    if (lib.kind !== 'cuda') throw new ParamError('packBf16', `needs the cuda backend (bf16 inputs feed its tensor-core kernels); this is ${lib.kind}`);
    const n = size(x!.shape);
    const y = b.makeOutput([...x!.shape.slice(0, -1), x!.shape[x!.shape.length - 1]! / 2], 'float32');
    lib.tr_to_bf16(b.buf(x!), b.buf(y), n);
    return y;
  },
  TrLayerNorm: ([x, g, bt], a, b) => {
    const cols = x!.shape[x!.shape.length - 1]!;
    const rows = size(x!.shape) / cols;
    const y = b.makeOutput(x!.shape, 'float32');
    const mean = b.makeOutput([rows], 'float32');
    const rstd = b.makeOutput([rows], 'float32');
    b.lib.tr_layernorm_fwd(b.buf(x!), b.buf(g!), b.buf(bt!), b.buf(y), b.buf(mean), b.buf(rstd), rows, cols, Number(a.eps));
    return [y, mean, rstd];
  },
  TrLayerNormGrad: ([dy, x, g, mean, rstd], _a, b) => {
    const cols = x!.shape[x!.shape.length - 1]!;
    const rows = size(x!.shape) / cols;
    const dx = b.makeOutput(x!.shape, 'float32');
    const dg = b.makeOutput([cols], 'float32');
    const db = b.makeOutput([cols], 'float32');
    b.lib.tr_layernorm_bwd(b.buf(dy!), b.buf(x!), b.buf(g!), b.buf(mean!), b.buf(rstd!), b.buf(dx), b.buf(dg), b.buf(db), rows, cols);
    return [dx, dg, db];
  },
  BlockSparseAttention: ([q, k, v, kb], a, b) => {
    const x = bsaArgs(b, q!, k!, v!, kb, a);
    const out = b.makeOutput([x.B, x.H, x.Lq, x.Dv], 'float32');
    const lse = b.makeOutput([x.B, x.H, x.Lq], 'float32');
    const p = planned(b, a.precision, 'BlockSparseAttention');
    if (p !== 'fp32') {
      tensorCoreForward(b, p, a.bf16Inputs === true, q!, k!, v!, kb, x, out, lse);
      return [out, lse];
    }
    if (a.bf16Inputs) throw new ParamError('blockSparseAttention.bf16Inputs', 'bf16 inputs need the cuda backend, head dim 64 and 64x64 blocks');
    b.lib.tr_bsa_fwd(b.buf(q!), b.buf(k!), b.buf(v!), kb ? b.buf(kb) : null, b.buf(out), b.buf(lse), ...x.shape, ...x.layout, ...x.strides);
    return [out, lse];
  },
  BlockSparseAttentionGrad: (inputs, a, b) => {
    // Inputs arrive in declaration order: dOut, q, k, v, out, lse, (keyBias).
    const [dOut, q, k, v, out, lse, kb] = inputs;
    if (a.bf16Inputs) throw new ParamError('blockSparseAttention.bf16Inputs', 'bf16 inputs are forward-only: no gradient');
    const x = bsaArgs(b, q!, k!, v!, kb, a);
    hostLayout(x);
    const dq = b.makeOutput(q!.shape, 'float32');
    const dk = b.makeOutput(k!.shape, 'float32');
    const dv = b.makeOutput(v!.shape, 'float32');
    const dkb = b.makeOutput([x.B, x.H, x.Lk], 'float32');
    const args = [b.buf(q!), b.buf(k!), b.buf(v!), kb ? b.buf(kb) : null, b.buf(out!), b.buf(lse!), b.buf(dOut!),
      b.buf(dq), b.buf(dk), b.buf(dv), b.buf(dkb), ...x.shape, ...x.layout, ...x.strides] as const;
    const p = planned(b, a.backwardPrecision, 'BlockSparseAttentionGrad');
    if (b.lib.kind === 'cuda') {
      // The GPU backward runs over key blocks too, so it also takes the layout's CSC form.
      const lib = b.lib as CudaLib;
      const t = transposeLayout(hostLayout(x));
      lib.tr_bsa_bwd_t(...args, b.constant(t.colPtr), b.constant(t.rowIdx), b.constant(t.srcIdx), backwardMode(p));
    } else {
      b.lib.tr_bsa_bwd(...args);
    }
    return [dq, dk, dv, dkb];
  },
  // Causal block selection from scores [H, nQ, nQ] (kernels/selectors/select-blocks.ts): writes the
  // layout's rowPtr, colIdx (capacity from the caller) and full flags where the scores are.
  TrSelectBlocks: ([scores], a, b) => {
    const [H, nQ] = scores!.shape as [number, number, number];
    const L = Number(a.length), B = Number(a.block), capacity = Number(a.capacity);
    if (nBlocks(L, B) !== nQ || scores!.shape[2] !== nQ) throw new ParamError('selectBlocks.scores', `must be [H, nQ, nQ] with nQ = ceil(${L}/${B}) = ${nBlocks(L, B)}, got [${scores!.shape}]`);
    const rowPtr = b.makeOutput([H * (nQ + 1)], 'int32');
    const colIdx = b.makeOutput([capacity], 'int32');
    const full = b.makeOutput([capacity], 'bool');
    const flags = b.makeOutput([H * nQ * nQ], 'bool');
    const counts = b.makeOutput([H * nQ], 'int32');
    b.lib.tr_select_blocks(b.buf(scores!), H, nQ, L, B, a.mode === 'share' ? 1 : 0, Number(a.perRow ?? 0), Number(a.share ?? 0),
      b.buf(rowPtr), b.buf(colIdx), b.buf(full), b.buf(flags), b.buf(counts));
    b.disposeData(flags.dataId);
    b.disposeData(counts.dataId);
    return [rowPtr, colIdx, full];
  },
  TrGelu: ([x], _a, b) => {
    const y = b.makeOutput(x!.shape, 'float32');
    b.lib.tr_gelu_fwd(b.buf(x!), b.buf(y), size(x!.shape));
    return y;
  },
  TrGeluGrad: ([dy, x], _a, b): TensorInfo => {
    const dx = b.makeOutput(x!.shape, 'float32');
    b.lib.tr_gelu_bwd(b.buf(dy!), b.buf(x!), b.buf(dx), size(x!.shape));
    return dx;
  },
};
