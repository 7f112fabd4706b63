/**
 * The shared block-sparse attention operator. Every model attends through `blockSparseAttention`:
 * dense attention is the all-blocks layout, and sliding window, BigBird, Combiner and SeqBoat are
 * layouts, so latency differences between models come from their layouts, not their code.
 *
 *   q [B,H,Lq,D], k [B,H,Lk,D], v [B,H,Lk,Dv], keyBias [B|1, H|1, Lk] (optional)
 *   -> out [B,H,Lq,Dv], lse [B,H,Lq] (row log-sum-exp; -Infinity and zero output for empty rows)
 *
 * Implementations: `fused` (a backend kernel, `BlockSparseAttention`, with its gradient kernel),
 * `generic` (gather the listed blocks, batched matmuls; any backend; tfjs autodiff), `reference`
 * (dense scores masked by the expanded token mask; for tests). `lse` carries no gradient.
 */
import * as tf from '@tensorflow/tfjs-core';
import { hasKernel } from './backend.js';
import { type BlockLayout, nBlocks, pairAllowed, tokenMask } from './layout.js';
import { ParamError } from '../core/params.js';
import { planPrecision, type Precision, type PrecisionPlan, type TensorCoreCaps } from './precision.js';
import { type AnyLayout, readLayout } from './device-layout.js';

export type AttentionImpl = 'auto' | 'fused' | 'generic' | 'reference';

export interface BlockSparseOptions {
  /** Multiplies the scores before the softmax; a finite number > 0 (default 1/sqrt(D)). */
  scale?: number;
  keyBias?: tf.Tensor3D;
  impl?: AttentionImpl;
  /**
   * The fused kernel's arithmetic (decided in kernels/precision.ts): 'fp32' exact fp32 (CUDA cores);
   * 'tf32' fp32 in and out, tf32 tensor-core products; 'bf16' q/k/v converted to bf16 on the device on
   * entry, fp32 accumulation, softmax statistics and output. tf32 and bf16 run on cuda with head dim
   * 64 and 64x64 blocks; asked for anywhere else they are an error. Default: 'tf32' where it runs
   * unless TABRECALL_TF32=0 (the switch cuBLAS matmuls follow), else fp32. The gradient: bf16 on wgmma
   * after a 'bf16' forward on H100/H200 (tf32 elsewhere), tf32 after 'tf32', exact fp32 after 'fp32'.
   */
  precision?: Precision;
  /**
   * q, k, v are packBf16 outputs (bf16 end to end: no conversion per call). Forward only, cuda only,
   * precision 'bf16'; head dims are twice the tensors' last dims.
   */
  bf16Inputs?: boolean;
}

export interface BlockSparseResult {
  out: tf.Tensor4D;
  lse: tf.Tensor3D;
}

export const FUSED_KERNEL = 'BlockSparseAttention';
export const FUSED_GRAD_KERNEL = 'BlockSparseAttentionGrad';

function check(q: tf.Tensor4D, k: tf.Tensor4D, v: tf.Tensor4D, l: Pick<BlockLayout, 'Lq' | 'Lk' | 'H'>, kb?: tf.Tensor3D): void {
  const [B, H, Lq] = q.shape;
  if (k.shape[0] !== B || v.shape[0] !== B || k.shape[1] !== H || v.shape[1] !== H) throw new ParamError('blockSparseAttention.k', `q, k, v must share B and H; got ${q.shape}, ${k.shape}, ${v.shape}`);
  if (k.shape[3] !== q.shape[3]) throw new ParamError('blockSparseAttention.k', `head dim of k (${k.shape[3]}) must equal q's (${q.shape[3]})`);
  if (k.shape[2] !== v.shape[2]) throw new ParamError('blockSparseAttention.v', `v length (${v.shape[2]}) must equal k length (${k.shape[2]})`);
  if (l.Lq !== Lq || l.Lk !== k.shape[2]) throw new ParamError('blockSparseAttention.layout', `layout is for Lq=${l.Lq}, Lk=${l.Lk} but q has ${Lq} and k has ${k.shape[2]}`);
  if (l.H !== 1 && l.H !== H) throw new ParamError('blockSparseAttention.layout.H', `must be 1 or the number of heads (${H}), got ${l.H}`);
  if (kb && (kb.rank !== 3 || kb.shape[2] !== l.Lk || (kb.shape[0] !== 1 && kb.shape[0] !== B) || (kb.shape[1] !== 1 && kb.shape[1] !== H))) {
    throw new ParamError('blockSparseAttention.keyBias', `must have shape [B|1, H|1, Lk] = [${B}|1, ${H}|1, ${l.Lk}], got [${kb.shape}]`);
  }
}

tf.registerGradient({
  kernelName: FUSED_KERNEL,
  // keyBias is optional, and tfjs clones every name in inputsToSave: save the inputs actually given.
  saveAllInputs: true,
  outputsToSave: [true, true],
  gradFunc: (dys, saved, attrs) => {
    const dOut = (Array.isArray(dys) ? dys[0] : dys) as tf.Tensor;
    const [q, k, v, kbOrOut, ...rest] = saved as tf.Tensor[];
    // keyBias is optional: saved is [q, k, v, (keyBias), out, lse].
    const hasKb = rest.length === 2;
    const kb = hasKb ? kbOrOut : undefined;
    const [out, lse] = hasKb ? rest : [kbOrOut!, rest[0]!];
    const inputs: Record<string, tf.Tensor> = { dOut, q: q!, k: k!, v: v!, out: out!, lse: lse! };
    if (kb) inputs.keyBias = kb;
    const [dq, dk, dv, dkb] = tf.engine().runKernel(FUSED_GRAD_KERNEL, inputs, attrs as unknown as tf.NamedAttrMap) as tf.Tensor[];
    // Inputs are passed as an array [q, k, v, (keyBias)], so gradients are keyed by position.
    const grads: Record<string, () => tf.Tensor> = { 0: () => dq!, 1: () => dk!, 2: () => dv! };
    if (kb) {
      grads[3] = () => {
        const axes = [0, 1].filter((a) => kb.shape[a] === 1 && dkb!.shape[a] !== 1);
        return axes.length ? tf.sum(dkb!, axes, true) : dkb!;
      };
    }
    return grads;
  },
});

/**
 * The fused operator's backward alone, from a forward's out and lse and the output gradient dOut: what
 * autodiff runs for blockSparseAttention's gradient, callable on its own (the kernels suite times the
 * backward pass by itself, FlashAttention's convention). Fused backends only; bf16 inputs have no
 * backward. dKeyBias is [B, H, Lk] (sum it over broadcast axes of a smaller keyBias).
 */
export function blockSparseAttentionBackward(q: tf.Tensor4D, k: tf.Tensor4D, v: tf.Tensor4D, fwd: BlockSparseResult, dOut: tf.Tensor4D, layout: BlockLayout,
  o: Pick<BlockSparseOptions, 'scale' | 'keyBias' | 'precision'> = {}): { dq: tf.Tensor4D; dk: tf.Tensor4D; dv: tf.Tensor4D; dKeyBias: tf.Tensor3D } {
  check(q, k, v, layout, o.keyBias);
  checkScale(o.scale, 'blockSparseAttentionBackward');
  if (!hasKernel(FUSED_GRAD_KERNEL)) throw new ParamError('blockSparseAttentionBackward', `needs a backend with a ${FUSED_GRAD_KERNEL} kernel (native, cuda); this is ${tf.getBackend()}`);
  if (dOut.shape.join() !== fwd.out.shape.join()) throw new ParamError('blockSparseAttentionBackward.dOut', `must have the output's shape [${fwd.out.shape}], got [${dOut.shape}]`);
  const inputs: Record<string, tf.Tensor> = { dOut, q, k, v, out: fwd.out, lse: fwd.lse };
  if (o.keyBias) inputs.keyBias = o.keyBias;
  const plan = planFor(q.shape[3], v.shape[3], layout, o.precision, 'blockSparseAttentionBackward.precision', 'fused');
  const attrs = { layout, scale: o.scale ?? 1 / Math.sqrt(q.shape[3]), precision: plan.forward, backwardPrecision: plan.backward };
  const [dq, dk, dv, dKeyBias] = tf.engine().runKernel(FUSED_GRAD_KERNEL, inputs, attrs as unknown as tf.NamedAttrMap) as tf.Tensor[];
  return { dq: dq as tf.Tensor4D, dk: dk as tf.Tensor4D, dv: dv as tf.Tensor4D, dKeyBias: dKeyBias as tf.Tensor3D };
}

/**
 * q, k or v as bf16 for blockSparseAttention's bf16Inputs: [..., D] -> [..., D/2] float32 slots, each
 * holding two bf16 values (tfjs has no bf16 dtype). Convert once, attend many times. cuda only.
 */
export function packBf16(x: tf.Tensor4D): tf.Tensor4D {
  if (x.shape[3] % 2 !== 0) throw new ParamError('packBf16.x', `last dim must be even, got ${x.shape[3]}`);
  if (!hasKernel('TrPackBf16')) throw new ParamError('packBf16', `needs the cuda backend; this is ${tf.getBackend()}`);
  return tf.engine().runKernel('TrPackBf16', { x } as unknown as tf.NamedTensorMap) as tf.Tensor4D;
}

/** The arithmetic of one call (kernels/precision.ts), from what the current backend can do for its shape. */
function planFor(D: number, Dv: number, layout: Pick<BlockLayout, 'Bq' | 'Bk'>, requested: Precision | undefined, where: string, path: string): PrecisionPlan {
  const caps = path === 'fused'
    ? (tf.backend() as unknown as { tensorCoreCaps?: (D: number, Dv: number, Bq: number, Bk: number) => TensorCoreCaps | undefined }).tensorCoreCaps?.(D, Dv, layout.Bq, layout.Bk)
    : undefined;
  return planPrecision({ requested, caps, where, shape: `head dims ${D}/${Dv} with ${layout.Bq}x${layout.Bk} blocks`, backend: `${tf.getBackend()} (${path} path)` });
}

/** The fused kernels take a row's maximum of the raw scores and scale it after: the scale must be positive. */
function checkScale(scale: number | undefined, where: string): void {
  if (scale !== undefined && !(Number.isFinite(scale) && scale > 0)) throw new ParamError(`${where}.scale`, `must be a finite number > 0, got ${scale}`);
}

/**
 * The layout may be a device layout (kernels/device-layout.ts, written by a selector kernel): the fused
 * forward reads it where it lies; the generic and reference paths read it back first.
 */
export function blockSparseAttention(q: tf.Tensor4D, k: tf.Tensor4D, v: tf.Tensor4D, anyLayout: AnyLayout, o: BlockSparseOptions = {}): BlockSparseResult {
  check(q, k, v, anyLayout, o.keyBias);
  checkScale(o.scale, 'blockSparseAttention');
  if (o.bf16Inputs) return bf16Attention(q, k, v, anyLayout, o);
  const layout = anyLayout;
  const scale = o.scale ?? 1 / Math.sqrt(q.shape[3]);
  const impl = o.impl ?? 'auto';
  // auto: the fused kernel where the backend has one that takes these tile sizes, else generic.
  const fits = (tf.backend() as unknown as { fusedAttentionFits?: (D: number, Dv: number, Bq: number, Bk: number) => boolean })
    .fusedAttentionFits?.(q.shape[3], v.shape[3], layout.Bq, layout.Bk) ?? true;
  if (impl === 'fused' && !fits) throw new ParamError('blockSparseAttention.impl', `the ${tf.getBackend()} fused kernel does not take head dims ${q.shape[3]}/${v.shape[3]} with ${layout.Bq}x${layout.Bk} blocks (shared memory); use "generic" or smaller blocks`);
  if (impl === 'fused' || (impl === 'auto' && fits && hasKernel(FUSED_KERNEL))) {
    if (!hasKernel(FUSED_KERNEL)) throw new ParamError('blockSparseAttention.impl', `"fused" needs a backend with a ${FUSED_KERNEL} kernel (native, cuda); this is ${tf.getBackend()}`);
    const plan = planFor(q.shape[3], v.shape[3], layout, o.precision, 'blockSparseAttention.precision', 'fused');
    const inputs = o.keyBias ? [q, k, v, o.keyBias] : [q, k, v];
    const attrs = { layout, scale, precision: plan.forward, backwardPrecision: plan.backward };
    const [out, lse] = tf.engine().runKernel(FUSED_KERNEL, inputs as unknown as tf.NamedTensorMap, attrs as unknown as tf.NamedAttrMap) as tf.Tensor[];
    return { out: out as tf.Tensor4D, lse: lse as tf.Tensor3D };
  }
  planFor(q.shape[3], v.shape[3], layout, o.precision, 'blockSparseAttention.precision', impl);
  const host = readLayout(layout);
  return impl === 'reference' ? referenceAttention(q, k, v, host, scale, o.keyBias) : genericAttention(q, k, v, host, scale, o.keyBias);
}

function bf16Attention(q: tf.Tensor4D, k: tf.Tensor4D, v: tf.Tensor4D, layout: AnyLayout, o: BlockSparseOptions): BlockSparseResult {
  if (o.precision !== 'bf16') throw new ParamError('blockSparseAttention.precision', `must be "bf16" with bf16Inputs, got ${JSON.stringify(o.precision)}`);
  if (!hasKernel(FUSED_KERNEL) || tf.getBackend() !== 'cuda') throw new ParamError('blockSparseAttention.bf16Inputs', `needs the cuda backend; this is ${tf.getBackend()}`);
  planFor(q.shape[3] * 2, v.shape[3] * 2, layout, 'bf16', 'blockSparseAttention.precision', 'fused');
  if (o.impl !== undefined && o.impl !== 'auto' && o.impl !== 'fused') throw new ParamError('blockSparseAttention.impl', `must be "auto" or "fused" with bf16Inputs, got ${JSON.stringify(o.impl)}`);
  const scale = o.scale ?? 1 / Math.sqrt(q.shape[3] * 2);
  const inputs = o.keyBias ? [q, k, v, o.keyBias] : [q, k, v];
  const [out, lse] = tf.engine().runKernel(FUSED_KERNEL, inputs as unknown as tf.NamedTensorMap, { layout, scale, precision: 'bf16', backwardPrecision: 'bf16', bf16Inputs: true } as unknown as tf.NamedAttrMap) as tf.Tensor[];
  return { out: out as tf.Tensor4D, lse: lse as tf.Tensor3D };
}

const NEG = -1e30;

/** Dense scores, layout expanded to a token mask. O(Lq*Lk) memory: tests only. */
export function referenceAttention(q: tf.Tensor4D, k: tf.Tensor4D, v: tf.Tensor4D, l: BlockLayout, scale: number, kb?: tf.Tensor3D): BlockSparseResult {
  return tf.tidy(() => {
    const masks = Array.from({ length: l.H }, (_, h) => tokenMask(l, h));
    const flat = new Float32Array(l.H * l.Lq * l.Lk);
    masks.forEach((m, h) => flat.set(m, h * l.Lq * l.Lk));
    const allowed = tf.tensor3d(flat, [l.H, l.Lq, l.Lk]);
    let s = tf.mul(tf.matMul(q, k, false, true), scale);
    if (kb) s = tf.add(s, tf.expandDims(kb, 2));
    s = tf.where(tf.cast(allowed, 'bool'), s, tf.fill(s.shape, NEG));
    const rowAny = tf.greater(tf.sum(allowed, -1), 0); // [H, Lq]
    const p = tf.mul(tf.softmax(s), tf.expandDims(tf.cast(rowAny, 'float32'), -1));
    const lse = tf.where(tf.broadcastTo(rowAny, [q.shape[0], q.shape[1], l.Lq]), tf.logSumExp(s, -1), tf.fill([q.shape[0], q.shape[1], l.Lq], -Infinity));
    return { out: tf.matMul(p, v) as tf.Tensor4D, lse: lse as tf.Tensor3D };
  });
}

interface GenericPlan {
  maxNnz: number;
  /** [LH * nQ * maxNnz] block ids into the (nK+1)-block axis; nK is an all-zero padding block. */
  idx: Int32Array;
  /** [LH, nQ, Bq, maxNnz*Bk]: 0 allowed, NEG masked. */
  bias: Float32Array;
  /** [LH, nQ*Bq]: 1 when the row has any allowed key. */
  rowAny: Float32Array;
}

const plans = new WeakMap<BlockLayout, GenericPlan>();

function genericPlan(l: BlockLayout): GenericPlan {
  const cached = plans.get(l);
  if (cached) return cached;
  const nQ = nBlocks(l.Lq, l.Bq), nK = nBlocks(l.Lk, l.Bk);
  let maxNnz = 1;
  for (let h = 0; h < l.H; h++) for (let i = 0; i < nQ; i++) maxNnz = Math.max(maxNnz, l.rowPtr[h * (nQ + 1) + i + 1]! - l.rowPtr[h * (nQ + 1) + i]!);
  const M = maxNnz * l.Bk;
  const idx = new Int32Array(l.H * nQ * maxNnz).fill(nK);
  const bias = new Float32Array(l.H * nQ * l.Bq * M).fill(NEG);
  const rowAny = new Float32Array(l.H * nQ * l.Bq);
  for (let h = 0; h < l.H; h++) {
    for (let i = 0; i < nQ; i++) {
      const p0 = l.rowPtr[h * (nQ + 1) + i]!;
      Array.from(l.colIdx.subarray(p0, l.rowPtr[h * (nQ + 1) + i + 1]!)).forEach((j, s) => {
        idx[(h * nQ + i) * maxNnz + s] = j;
        for (let r = 0; r < l.Bq; r++) {
          for (let c = 0; c < l.Bk; c++) {
            if (pairAllowed(l, p0 + s, i * l.Bq + r, j * l.Bk + c)) {
              bias[((h * nQ + i) * l.Bq + r) * M + s * l.Bk + c] = 0;
              rowAny[h * nQ * l.Bq + i * l.Bq + r] = 1;
            }
          }
        }
      });
    }
  }
  const plan = { maxNnz, idx, bias, rowAny };
  plans.set(l, plan);
  return plan;
}

/** Rows `idx` of the block axis of x [B, H, nK+1, W] -> [B, H, n, W] (per-head ids when idxHeads == H). */
function gatherBlocks(x: tf.Tensor4D, idx: Int32Array, idxHeads: number): tf.Tensor4D {
  const [B, H, nB, W] = x.shape;
  const per = idx.length / idxHeads;
  if (hasKernel('UnsortedSegmentSum')) {
    const ids = new Int32Array(H * per);
    for (let h = 0; h < H; h++) for (let t = 0; t < per; t++) ids[h * per + t] = h * nB + idx[(idxHeads === 1 ? 0 : h) * per + t]!;
    const flat = tf.reshape(x, [B, H * nB, W]);
    return tf.reshape(tf.gather(flat, tf.tensor1d(ids, 'int32'), 1), [B, H, per, W]);
  }
  // Backends without gather's gradient kernel (wasm): a one-hot selection matmul.
  const sel = tf.oneHot(tf.tensor1d(idx, 'int32'), nB);
  return tf.matMul(tf.reshape(tf.cast(sel, 'float32'), [1, idxHeads, per, nB]), x) as tf.Tensor4D;
}

/** Gather listed key/value blocks, batched matmuls, masked softmax. Memory grows with listed blocks. */
export function genericAttention(q: tf.Tensor4D, k: tf.Tensor4D, v: tf.Tensor4D, l: BlockLayout, scale: number, kb?: tf.Tensor3D): BlockSparseResult {
  return tf.tidy(() => {
    const [B, H, Lq, D] = q.shape;
    const Dv = v.shape[3];
    const nQ = nBlocks(l.Lq, l.Bq), nK = nBlocks(l.Lk, l.Bk);
    const plan = genericPlan(l);
    const M = plan.maxNnz * l.Bk;
    const padK = (x: tf.Tensor4D, W: number) => tf.reshape(tf.pad(x, [[0, 0], [0, 0], [0, (nK + 1) * l.Bk - l.Lk], [0, 0]]), [B, H, nK + 1, l.Bk * W]);
    const kg = tf.reshape(gatherBlocks(padK(k, D) as tf.Tensor4D, plan.idx, l.H), [B, H, nQ, M, D]);
    const vg = tf.reshape(gatherBlocks(padK(v, Dv) as tf.Tensor4D, plan.idx, l.H), [B, H, nQ, M, Dv]);
    const qb = tf.reshape(tf.pad(q, [[0, 0], [0, 0], [0, nQ * l.Bq - Lq], [0, 0]]), [B, H, nQ, l.Bq, D]);
    let s = tf.add(tf.mul(tf.matMul(qb, kg, false, true), scale), tf.tensor4d(plan.bias, [l.H, nQ, l.Bq, M]));
    if (kb) {
      const kbB = kb.shape[0], kbH = kb.shape[1];
      const kbp = tf.reshape(tf.pad(kb, [[0, 0], [0, 0], [0, (nK + 1) * l.Bk - l.Lk]]), [kbB, kbH, nK + 1, l.Bk]);
      const full = tf.broadcastTo(kbp, [B, H, nK + 1, l.Bk]) as tf.Tensor4D;
      s = tf.add(s, tf.reshape(gatherBlocks(full, plan.idx, l.H), [B, H, nQ, 1, M]));
    }
    const rowAny = tf.reshape(tf.tensor2d(plan.rowAny, [l.H, nQ * l.Bq]), [l.H, nQ, l.Bq, 1]);
    const p = tf.mul(tf.softmax(s), rowAny);
    const out = tf.slice(tf.reshape(tf.matMul(p, vg), [B, H, nQ * l.Bq, Dv]), [0, 0, 0, 0], [B, H, Lq, Dv]);
    const lseAll = tf.reshape(tf.logSumExp(s, -1), [B, H, nQ * l.Bq]);
    const any = tf.broadcastTo(tf.cast(tf.reshape(rowAny, [l.H, nQ * l.Bq]), 'bool'), [B, H, nQ * l.Bq]);
    const lse = tf.slice(tf.where(any, lseAll, tf.fill(lseAll.shape, -Infinity)), [0, 0, 0], [B, H, Lq]);
    return { out: out as tf.Tensor4D, lse: lse as tf.Tensor3D };
  });
}
