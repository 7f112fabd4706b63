/**
 * The one place where the block-sparse operator's arithmetic is decided, forward and backward. The
 * C libraries do exactly what this says or fail; which kernel runs for a precision is theirs to pick
 * (kernels/cuda/src/heuristics.cuh).
 */
import { ParamError } from '../core/params.js';

export type Precision = 'fp32' | 'tf32' | 'bf16';
export const PRECISIONS: readonly Precision[] = ['fp32', 'tf32', 'bf16'];

/** What the backend's fused kernels can do for one shape (undefined: no tensor-core kernels at all). */
export interface TensorCoreCaps {
  /** tf32 and bf16 kernels take this shape (head dims 64, 64x64 blocks). */
  shape: boolean;
  /** cuBLAS's switch (TABRECALL_TF32): tf32 is the default where it is on. */
  tf32ByDefault: boolean;
  /** The bf16 backward (wgmma) runs here: an sm_90 GPU and a build with sm_90a. */
  bf16Backward: boolean;
}

export interface PrecisionPlan {
  forward: Precision;
  /** The gradient's arithmetic: bf16 where wgmma runs, else tf32 after a bf16 forward. */
  backward: Precision;
}

export interface PrecisionRequest {
  requested: Precision | undefined;
  caps: TensorCoreCaps | undefined;
  /** Where the request came from, for the error (e.g. 'blockSparseAttention.precision'). */
  where: string;
  /** What the shape is, for the error. */
  shape: string;
  backend: string;
}

/**
 * undefined picks the default (tf32 where it runs and TABRECALL_TF32 is not 0, else fp32). An
 * explicit tf32 or bf16 that cannot run here is an error: a setting is never quietly ignored.
 */
export function planPrecision(r: PrecisionRequest): PrecisionPlan {
  const { requested, caps } = r;
  if (requested !== undefined && !PRECISIONS.includes(requested)) {
    throw new ParamError(r.where, `must be one of ${PRECISIONS.map((p) => `"${p}"`).join(', ')}, got ${JSON.stringify(requested)}`);
  }
  const tensorCores = !!caps?.shape;
  if (requested === undefined) {
    const p: Precision = tensorCores && caps!.tf32ByDefault ? 'tf32' : 'fp32';
    return { forward: p, backward: p };
  }
  if (requested === 'fp32') return { forward: 'fp32', backward: 'fp32' };
  if (!caps) throw new ParamError(r.where, `"${requested}" needs the cuda backend's fused kernel; the ${r.backend} backend computes in fp32 only`);
  if (!tensorCores) throw new ParamError(r.where, `"${requested}" needs head dim 64 and 64x64 blocks (the tensor-core kernels); got ${r.shape}`);
  if (requested === 'tf32') return { forward: 'tf32', backward: 'tf32' };
  return { forward: 'bf16', backward: caps.bf16Backward ? 'bf16' : 'tf32' };
}

/** The C backward's mode argument for a precision. */
export function backwardMode(p: Precision): 0 | 1 | 2 {
  return p === 'bf16' ? 2 : p === 'tf32' ? 1 : 0;
}
