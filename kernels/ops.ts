/**
 * Building blocks the models share. Each picks the best formulation for the active backend, so a
 * model stays backend-agnostic.
 */
import * as tf from '@tensorflow/tfjs-core';
import { hasKernel } from './backend.js';

/**
 * Rows of `table` [N, d] at integer `ids` (any shape) -> [...ids.shape, d]. tfjs' gather needs
 * UnsortedSegmentSum for its gradient, which wasm lacks; there a one-hot matmul does the same.
 */
export function gatherRows(table: tf.Tensor2D, ids: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const flat = tf.reshape(ids, [-1]) as tf.Tensor1D;
    const rows = hasKernel('UnsortedSegmentSum')
      ? tf.gather(table, flat)
      : tf.matMul(tf.cast(tf.oneHot(flat, table.shape[0]), 'float32'), table);
    return tf.reshape(rows, [...ids.shape, table.shape[1]]);
  });
}

export { layerNorm, gelu } from './fused.js';

/** Mean softmax cross-entropy of logits [N, V] against integer labels [N]. */
export function crossEntropy(logits: tf.Tensor2D, labels: tf.Tensor1D): tf.Scalar {
  return tf.tidy((): tf.Scalar => {
    const logp = tf.logSoftmax(logits);
    const onehot = tf.cast(tf.oneHot(labels, logits.shape[1]), 'float32');
    return tf.neg(tf.mean(tf.sum(tf.mul(logp, onehot), -1))) as tf.Scalar;
  });
}

const ropeCache = new Map<string, [tf.Tensor2D, tf.Tensor2D]>();

/**
 * Rotary position embedding (Su et al.) on [B, H, L, D] queries or keys, rotate-half convention:
 * relative positions let previous-token and induction heads form quickly, and work past the
 * training length (NIAH's extrapolation axis).
 */
export function rope(x: tf.Tensor4D, base = 10000, offset = 0): tf.Tensor4D {
  const [, , L, D] = x.shape;
  return tf.tidy(() => {
    // A decode step (offset > 0) builds its few rows afresh: the same formula, so the same float32 angles.
    const [cos, sin] = offset > 0 ? ropeRows(offset, L, D, base) : ropeTable(L, D, base);
    const half = D / 2;
    // swapped = [x2, x1]; sin already carries the sign of rotate_half = [-x2, x1].
    const swapped = tf.concat([tf.slice(x, [0, 0, 0, half], [-1, -1, -1, half]), tf.slice(x, [0, 0, 0, 0], [-1, -1, -1, half])], 3);
    return tf.add(tf.mul(x, cos), tf.mul(swapped, sin)) as tf.Tensor4D;
  });
}

/** cos and sin [n, D] for positions from, .., from + n - 1. */
function ropeRows(from: number, n: number, D: number, base: number): [tf.Tensor2D, tf.Tensor2D] {
  const half = D / 2;
  const cos = new Float32Array(n * D);
  const sin = new Float32Array(n * D);
  for (let r = 0; r < n; r++) {
    const t = from + r;
    for (let i = 0; i < half; i++) {
      const a = t / Math.pow(base, (2 * i) / D);
      cos[r * D + i] = cos[r * D + i + half] = Math.cos(a);
      sin[r * D + i] = -Math.sin(a);
      sin[r * D + i + half] = Math.sin(a);
    }
  }
  return [tf.tensor2d(cos, [n, D]), tf.tensor2d(sin, [n, D])];
}

/** The tables of positions 0..L-1, built once per backend and shape. */
function ropeTable(L: number, D: number, base: number): [tf.Tensor2D, tf.Tensor2D] {
  const key = `${tf.getBackend()}:${L}x${D}:${base}`;
  let cs = ropeCache.get(key);
  if (!cs || cs[0].isDisposed) {
    cs = ropeRows(0, L, D, base).map((t) => tf.keep(t)) as [tf.Tensor2D, tf.Tensor2D];
    ropeCache.set(key, cs);
  }
  return cs;
}

/**
 * Causal depthwise convolution over the sequence axis: y[t] = b + sum_j w[j] * x[t - j], x [B, L, d],
 * w [k, d]. Zoology's MQAR models run such a short convolution before the sequence mixer.
 */
export function causalDepthwiseConv(x: tf.Tensor3D, w: tf.Tensor2D, b: tf.Tensor1D): tf.Tensor3D {
  return tf.tidy(() => {
    const [B, L, d] = x.shape;
    const k = w.shape[0];
    const padded = tf.pad(x, [[0, 0], [k - 1, 0], [0, 0]]);
    let y: tf.Tensor = b;
    for (let j = 0; j < k; j++) {
      const shifted = tf.slice(padded, [0, k - 1 - j, 0], [B, L, d]);
      y = tf.add(y, tf.mul(shifted, tf.reshape(tf.slice(w, [j, 0], [1, d]), [d])));
    }
    return y as tf.Tensor3D;
  });
}

/**
 * A parameter x [...] repeated along new leading axes to [...lead, ...x.shape]. Same values as
 * tf.broadcastTo, but the gradient is one sum over the leading axes: tfjs differentiates broadcastTo
 * through Tile, whose gradient slices and adds once per repetition (tens of thousands of kernels for
 * a per-row CLS token, which made ICL pretraining launch-bound on the GPU).
 */
export function repeatParam(x: tf.Tensor, lead: number[]): tf.Tensor {
  const shape = [...lead, ...x.shape];
  const f = tf.customGrad((p: tf.Tensor | tf.GradSaveFunc) => ({
    value: tf.broadcastTo(p as tf.Tensor, shape),
    gradFunc: (dy: tf.Tensor) => tf.sum(tf.reshape(dy, [-1, ...x.shape]), 0),
  }));
  return f(x);
}

/**
 * x, with no gradient flowing back through it (tfjs has no stop_gradient): for targets computed from
 * the model's own activations, such as Sparsifiner's distillation target, the full attention map.
 */
const noGradient = tf.customGrad(((x: tf.Tensor) => ({ value: tf.clone(x), gradFunc: (dy: tf.Tensor) => tf.zerosLike(dy) })) as unknown as Parameters<typeof tf.customGrad>[0]);
export const stopGradient = <T extends tf.Tensor>(x: T): T => noGradient(x) as T;

/**
 * [L, L] additive causal mask: 0 where key <= query, `after` above the diagonal (default -1e9: finite,
 * so 0 * mask stays 0; -Infinity where a top-k must never pick a masked key).
 */
export function causalBias(L: number, after = -1e9): tf.Tensor2D {
  const m = new Float32Array(L * L);
  for (let i = 0; i < L; i++) m.fill(after, i * L + i + 1, (i + 1) * L);
  return tf.tensor2d(m, [L, L]);
}
