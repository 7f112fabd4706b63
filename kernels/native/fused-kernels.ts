/** Native implementations of tabrecall's fused ops (declared in kernels/fused.ts). */
import type { TensorInfo } from '@tensorflow/tfjs-core';
import type { NativeBackend } from './backend.js';
import type { NativeKernelFn } from './kernels.js';
import { size } from './kernel-util.js';

export const FUSED_KERNELS: Record<string, NativeKernelFn> = {
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
