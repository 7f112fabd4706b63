/**
 * AnchorAttention: the anchor is a near-maximum score per query, computed exactly on the pattern every
 * input shares (the first block and the query's own block). For each query block, keys before its own
 * block are estimated with the block's mean query; keys whose estimate comes within theta of the
 * block's mean anchor are selected as stripes (single key columns, loaded as discrete positions: token
 * bits here), at most budget * (keys before the block) of them, highest first. The first and own
 * blocks are always computed.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Selector } from './types.js';
import { causalSelection, stripeBits } from './select.js';
import { poolBlocks, take } from './primitives.js';
import { nBlocks } from '../layout.js';

/** Log-score margin below the anchor within which a key is kept (e^-3: 5% of the anchor's weight). */
export const ANCHOR_THETA = 3;
const NEG = -1e30;

export const anchor: Selector = {
  name: 'anchor',
  budgetMeaning: 'most stripes per query block, as a fraction of the keys before it (theta decides below that)',
  select({ q, k }, budget, ctx) {
    const [H, L, D] = q.shape;
    const B = ctx.block, nQ = nBlocks(L, B), pad = nQ * B - L;
    const [anchors, est] = tf.tidy(() => {
      const qp = pad ? tf.pad(q, [[0, 0], [0, pad], [0, 0]]) : q;
      const kp = pad ? tf.pad(k, [[0, 0], [0, pad], [0, 0]]) : k;
      const qb = tf.reshape(qp, [H, nQ, B, D]);
      const own = tf.matMul(qb, tf.reshape(kp, [H, nQ, B, D]), false, true); // [H, nQ, B, B]
      const tri = new Float32Array(B * B);
      for (let r = 0; r < B; r++) for (let c = r + 1; c < B; c++) tri[r * B + c] = NEG;
      const ownMax = tf.max(tf.add(own, tf.tensor2d(tri, [B, B])), 3); // [H, nQ, B]
      const first = tf.max(tf.matMul(qb, tf.reshape(tf.slice(kp, [0, 0, 0], [H, B, D]), [H, 1, B, D]), false, true), 3);
      const rowAnchor = tf.mul(tf.maximum(ownMax, first), ctx.scale);
      // The block's mean anchor (a padded last block's zero queries pull its mean toward 0: more stripes kept there).
      const a = tf.mean(rowAnchor, 2); // [H, nQ]
      const e = tf.mul(tf.matMul(poolBlocks(q, B), k, false, true), ctx.scale); // [H, nQ, L]
      return [a, e];
    });
    const a = take(anchors), e = take(est);
    const picks: number[][][] = [];
    for (let h = 0; h < H; h++) {
      const perRow: number[][] = [];
      for (let i = 0; i < nQ; i++) {
        const before = i * B; // keys before the own block
        const off = (h * nQ + i) * L;
        const thr = a[h * nQ + i]! - ANCHOR_THETA;
        const cand: number[] = [];
        for (let j = B; j < before; j++) if (e[off + j]! >= thr) cand.push(j); // block 0 is always in
        cand.sort((x, y) => e[off + y]! - e[off + x]! || x - y);
        perRow.push(cand.slice(0, Math.floor(budget * before)));
      }
      picks.push(perRow);
    }
    return {
      layout: causalSelection(L, B, H, (h, i) => {
        const bits = stripeBits(picks[h]![i]!, B);
        const cols = [0, ...(i > 0 ? [i] : []), ...[...bits.keys()].filter((j) => j !== 0 && j !== i)];
        return { cols, bits: cols.map((j) => (j === 0 || j === i ? undefined : bits.get(j))) };
      }),
    };
  },
};
