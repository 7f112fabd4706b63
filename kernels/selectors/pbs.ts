/**
 * PBS-Attn (permuted block-sparse attention): within each segment of S tokens, keys are reordered by
 * an importance estimate (the attention the last 64 queries give them), so the keys that matter to
 * many queries share blocks; then blocks are selected from pooled scores as block-sparse attention
 * does. Segments stay in place, so every key of an earlier segment precedes the query: those blocks
 * are full; in the query's own segment token bits allow exactly the keys whose original position is
 * at or before the query (causality kept). Deviation: only keys are permuted; queries keep their order,
 * so the operator's output is already in the original order (the paper also permutes queries).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Selector } from './types.js';
import { blocksPerRow, causalSelection, topK } from './select.js';
import { lastQueryProbs, lineScores, poolBlocks, pooledBlockProbs, take } from './primitives.js';
import { nBlocks } from '../layout.js';

/** Segment length in blocks. */
export const PBS_SEGMENT_BLOCKS = 4;

/** Per head, original key index at each permuted position [H * L]: importance-descending within segments. */
export function segmentPermutation(importance: Float32Array, H: number, L: number, S: number): Int32Array {
  const order = new Int32Array(H * L);
  for (let h = 0; h < H; h++) {
    for (let s0 = 0; s0 < L; s0 += S) {
      const idx = Array.from({ length: Math.min(S, L - s0) }, (_, t) => s0 + t);
      idx.sort((a, b) => importance[h * L + b]! - importance[h * L + a]! || a - b);
      order.set(idx, h * L + s0);
    }
  }
  return order;
}

/** k [H, L, D] with each head's keys in `order`. */
export function permuteKeys(x: tf.Tensor3D, order: Int32Array): tf.Tensor3D {
  return tf.tidy(() => {
    const [H, L, D] = x.shape;
    const flat = Int32Array.from(order, (o, t) => Math.floor(t / L) * L + o);
    return tf.reshape(tf.gather(tf.reshape(x, [H * L, D]), tf.tensor1d(flat, 'int32')), [H, L, D]) as tf.Tensor3D;
  });
}

export const pbs: Selector = {
  name: 'pbs',
  budgetMeaning: 'fraction of causal blocks, the same count per row, over segment-permuted keys',
  select({ q, k }, budget, ctx) {
    const [H, L] = q.shape;
    const B = ctx.block, nQ = nBlocks(L, B), segB = PBS_SEGMENT_BLOCKS, S = segB * B;
    const m = Math.min(64, L);
    const { vertical } = lineScores(take(lastQueryProbs(q, k, m, ctx.scale)), H, m, L);
    const keyOrder = segmentPermutation(vertical, H, L, S);
    const probs = take(tf.tidy(() => pooledBlockProbs(poolBlocks(q, B), poolBlocks(permuteKeys(k, keyOrder), B), ctx.scale)));
    const n = blocksPerRow(nQ, budget);
    const layout = causalSelection(L, B, H, (h, i) => {
      const seg0 = Math.floor(i / segB) * segB; // first block of the query's segment
      const own = Array.from({ length: Math.min(segB, nQ - seg0) }, (_, t) => seg0 + t);
      const bits = own.map((j) => {
        const b = new Uint8Array(B * B);
        for (let r = 0; r < B && i * B + r < L; r++) {
          for (let c = 0; c < B && j * B + c < L; c++) if (keyOrder[h * L + j * B + c]! <= i * B + r) b[r * B + c] = 1;
        }
        return b;
      });
      const ownUsed = Math.min(i - seg0 + 1, own.length);
      const earlier = seg0 > 0 ? topK(probs, (h * nQ + i) * nQ, seg0, Math.max(0, n - ownUsed)) : [];
      return { cols: [...earlier, ...own], bits: [...earlier.map(() => undefined), ...bits] };
    }, false);
    return { layout, keyOrder };
  },
};
