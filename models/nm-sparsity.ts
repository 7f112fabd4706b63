/**
 * N:M structured weight sparsity with bidirectional pruning (BDWP, seed paper): in every group of M
 * consecutive weights along the forward's reduction axis (a column of W [in, out]) only the N largest
 * by magnitude take part in the forward, y = x (W . Mf); the backward's input gradient uses the N:M
 * mask of the transposed weights (groups of M along the output axis), dx = dy (W . Mb)^T, so both
 * GEMMs are N:M-sparse; the weight gradient x^T dy is dense, which lets the masks move when they are
 * recomputed by magnitude (every `every` forward passes). The masks are computed on the host from the
 * weights' values (exactly N per group, ties to the lower index).
 */
import * as tf from '@tensorflow/tfjs-core';
import { ParamError, intParam, rejectUnknown } from '../core/params.js';

export interface NmConfig {
  n: number;
  m: number;
  /** Forward passes between mask recomputations. */
  every: number;
}

export const NM_DEFAULTS: NmConfig = { n: 2, m: 4, every: 50 };

export function parseNmConfig(where: string, given: Record<string, unknown>): NmConfig {
  rejectUnknown(where, given, Object.keys(NM_DEFAULTS));
  const g = { ...NM_DEFAULTS, ...given };
  const c = { n: intParam(where, 'n', g.n, 1, 64), m: intParam(where, 'm', g.m, 1, 64), every: intParam(where, 'every', g.every, 1, 1 << 30) };
  if (c.n > c.m) throw new ParamError(`${where}.n`, `must be <= m (${c.m}), got ${c.n}`);
  return c;
}

/**
 * The N:M mask of w [rows, cols] (row-major) with groups of M consecutive entries along `axis`
 * (0: down a column, the forward's reduction axis; 1: along a row). A trailing partial group keeps
 * its N largest too (min(N, size)).
 */
export function nmMask(w: ArrayLike<number>, rows: number, cols: number, n: number, m: number, axis: 0 | 1): Float32Array {
  const out = new Float32Array(rows * cols);
  const lines = axis === 0 ? cols : rows, len = axis === 0 ? rows : cols;
  const at = (line: number, i: number) => (axis === 0 ? i * cols + line : line * cols + i);
  for (let line = 0; line < lines; line++) {
    for (let g0 = 0; g0 < len; g0 += m) {
      const idx = Array.from({ length: Math.min(m, len - g0) }, (_, k) => g0 + k);
      idx.sort((a, b) => Math.abs(w[at(line, b)]!) - Math.abs(w[at(line, a)]!) || a - b);
      for (const i of idx.slice(0, n)) out[at(line, i)] = 1;
    }
  }
  return out;
}

/** y = x (W . Mf) with dx = dy (W . Mb)^T and a dense dW. */
const nmMatMulOp = tf.customGrad(((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
  const [x, w, mf, mb, save] = args as [tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor, tf.GradSaveFunc];
  const value = tf.matMul(x as tf.Tensor2D, tf.mul(w, mf) as tf.Tensor2D);
  save([x, w, mb]);
  return {
    value,
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [xs, ws, mbs] = saved as [tf.Tensor2D, tf.Tensor2D, tf.Tensor2D];
      return [tf.matMul(dy as tf.Tensor2D, tf.mul(ws, mbs) as tf.Tensor2D, false, true), tf.matMul(xs, dy as tf.Tensor2D, true, false), tf.zerosLike(mf), tf.zerosLike(mb)];
    },
  };
}) as never) as unknown as (x: tf.Tensor2D, w: tf.Tensor2D, mf: tf.Tensor2D, mb: tf.Tensor2D) => tf.Tensor2D;

/** The masks of a model's weights, recomputed every `every` forward passes. */
export class NmMasks {
  private masks = new Map<tf.Variable, [tf.Tensor2D, tf.Tensor2D]>();
  private passes = 0;

  constructor(readonly c: NmConfig) {}

  /** Call once per forward pass: drops stale masks on schedule. */
  tick(): void {
    if (this.passes++ % this.c.every === 0) this.clear();
  }

  masksOf(w: tf.Variable): [tf.Tensor2D, tf.Tensor2D] {
    let m = this.masks.get(w);
    if (!m) {
      const [rows, cols] = w.shape as [number, number];
      const v = w.dataSync();
      m = [tf.keep(tf.tensor2d(nmMask(v, rows, cols, this.c.n, this.c.m, 0), [rows, cols])), tf.keep(tf.tensor2d(nmMask(v, rows, cols, this.c.n, this.c.m, 1), [rows, cols]))];
      this.masks.set(w, m);
    }
    return m;
  }

  /** x [N, in] times w [in, out] under the masks. */
  matMul(x: tf.Tensor2D, w: tf.Variable): tf.Tensor2D {
    const [mf, mb] = this.masksOf(w);
    return nmMatMulOp(x, w as unknown as tf.Tensor2D, mf, mb);
  }

  clear(): void {
    for (const [a, b] of this.masks.values()) tf.dispose([a, b]);
    this.masks.clear();
  }
}
