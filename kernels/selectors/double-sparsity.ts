/**
 * Double Sparsity (prefill): offline calibration finds, per layer and head, the r key channels that
 * carry most of the q.k products' magnitude (mean |q_c k_c| over calibration tokens: the outlier
 * "label" channels). Online, scores on those r channels alone, softmaxed per query and summed over
 * each query block, rank the keys; the top budget * (causal keys) of each query block are kept as
 * token stripes, with the diagonal block always in; exact attention then runs on them (the operator).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { HeadInputs, Selector } from './types.js';
import { causalSelection, stripeBits } from './select.js';
import { take } from './primitives.js';
import { nBlocks } from '../layout.js';

/** Label channels per head as a fraction of the head dim (the paper: 16 of 128). */
export const DS_CHANNEL_FRACTION = 1 / 8;
const NEG = -1e30;

/** Per head, the r channels with the largest mean |q_c * k_c| over the calibration inputs of one layer. */
export function outlierChannels(layer: HeadInputs[], r: number): number[][] {
  const [H, , D] = layer[0]!.q.shape;
  const acc = new Float64Array(H * D);
  for (const x of layer) {
    const m = take(tf.tidy(() => tf.mean(tf.mul(tf.abs(x.q), tf.abs(x.k)), 1))); // [H, D]
    for (let t = 0; t < H * D; t++) acc[t] += m[t]!;
  }
  return Array.from({ length: H }, (_, h) => {
    const idx = Array.from({ length: D }, (_, c) => c).sort((a, b) => acc[h * D + b]! - acc[h * D + a]! || a - b);
    return idx.slice(0, r).sort((a, b) => a - b);
  });
}

export const doubleSparsity: Selector = {
  name: 'double-sparsity',
  budgetMeaning: 'fraction of each query block\'s causal keys kept as token stripes (ranked on r label channels)',
  calibrate(samples) {
    const D = samples[0]![0]!.q.shape[2];
    const r = Math.max(2, Math.round(D * DS_CHANNEL_FRACTION));
    return { channels: samples.map((layer) => outlierChannels(layer, r)), r };
  },
  select(x, budget, ctx, state) {
    if (!state?.channels) throw new Error('double-sparsity: needs its calibrated channels (calibrate first)');
    const [H, L, D] = x.q.shape;
    const B = ctx.block, nQ = nBlocks(L, B);
    const ch = (state.channels as number[][][])[x.layer]!;
    const r = ch[0]!.length;
    // Per head, a 0/1 selector [H, D, r] picks the label channels (one batched matmul).
    const sel = new Float32Array(H * D * r);
    ch.forEach((cs, h) => cs.forEach((c, t) => (sel[(h * D + c) * r + t] = 1)));
    // Key importance per query block [H, nQ, L], in chunks of query blocks (the scores are L^2).
    const imp = new Float32Array(H * nQ * L);
    const S = tf.tensor3d(sel, [H, D, r]);
    const [qa, ka] = tf.tidy(() => [tf.matMul(x.q, S), tf.matMul(x.k, S)]); // [H, L, r]
    const chunk = Math.max(1, Math.floor((32 << 20) / (H * B * L)));
    for (let i0 = 0; i0 < nQ; i0 += chunk) {
      const c = Math.min(chunk, nQ - i0), r0 = i0 * B, rows = Math.min(c * B, L - r0);
      const part = take(tf.tidy(() => {
        const bias = new Float32Array(rows * L).fill(NEG);
        for (let t = 0; t < rows; t++) bias.fill(0, t * L, t * L + r0 + t + 1);
        // Scores on r of D channels, rescaled by D / r so their softmax has the full scores' temperature.
        let p = tf.softmax(tf.add(tf.mul(tf.matMul(tf.slice(qa!, [0, r0, 0], [H, rows, r]), ka!, false, true), ctx.scale * (D / r)), tf.tensor2d(bias, [rows, L])));
        if (rows < c * B) p = tf.pad(p, [[0, 0], [0, c * B - rows], [0, 0]]);
        return tf.sum(tf.reshape(p, [H, c, B, L]), 2); // [H, c, L]
      }));
      for (let h = 0; h < H; h++) imp.set(part.subarray(h * c * L, (h + 1) * c * L), (h * nQ + i0) * L);
    }
    tf.dispose([S, qa!, ka!]);
    return {
      layout: causalSelection(L, B, H, (h, i) => {
        const off = (h * nQ + i) * L;
        const before = i * B;
        const cand = Array.from({ length: before }, (_, j) => j).sort((a, b) => imp[off + b]! - imp[off + a]! || a - b);
        const keep = cand.slice(0, Math.floor(budget * Math.min(L, before + B)));
        const bits = stripeBits(keep, B);
        const cols = [i, ...[...bits.keys()].filter((j) => j !== i)];
        return { cols, bits: cols.map((j) => (j === i ? undefined : bits.get(j))) };
      }),
    };
  },
};
