/**
 * The attention operator every model calls. This is the dense path (all pairs, optionally causal);
 * the shared block-sparse operator replaces its body without changing the call sites.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { AttentionOptions } from './types.js';

const causalBiasCache = new Map<string, tf.Tensor2D>();

/** [Lq, Lk] additive mask: 0 where key j <= query i (aligned at the end), -1e9 elsewhere. */
function causalBias(Lq: number, Lk: number): tf.Tensor2D {
  const key = `${tf.getBackend()}:${Lq}x${Lk}`;
  let t = causalBiasCache.get(key);
  if (!t || t.isDisposed) {
    const m = new Float32Array(Lq * Lk);
    const off = Lk - Lq;
    for (let i = 0; i < Lq; i++) for (let j = 0; j < Lk; j++) m[i * Lk + j] = j <= i + off ? 0 : -1e9;
    t = tf.keep(tf.tensor2d(m, [Lq, Lk]));
    causalBiasCache.set(key, t);
  }
  return t;
}

/** Drop cached constants (e.g. after a backend switch). */
export function clearAttentionCache(): void {
  for (const t of causalBiasCache.values()) t.dispose();
  causalBiasCache.clear();
}

/** q [B,H,Lq,D], k [B,H,Lk,D], v [B,H,Lk,Dv] -> [B,H,Lq,Dv]. */
export function attention(q: tf.Tensor4D, k: tf.Tensor4D, v: tf.Tensor4D, opts: AttentionOptions): tf.Tensor4D {
  return tf.tidy(() => {
    const [, , Lq, D] = q.shape;
    const Lk = k.shape[2];
    const scale = opts.scale ?? 1 / Math.sqrt(D);
    let scores = tf.mul(tf.matMul(q, k, false, true), scale) as tf.Tensor4D;
    if (opts.causal) scores = tf.add(scores, causalBias(Lq, Lk));
    return tf.matMul(tf.softmax(scores), v) as tf.Tensor4D;
  });
}
