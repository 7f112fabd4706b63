/**
 * FlexPrefill: per head and input. The last query block's true attention, summed per key block, is
 * compared (Jensen-Shannon divergence) with the pooled-q/k estimate of the same row. Close (JSD < tau):
 * a query-aware head, whose key blocks are taken per query block from the pooled scores until their
 * cumulative share reaches gamma. Otherwise: a vertical-slash head, whose lines (from the last query
 * block's attention) are taken until their cumulative share reaches gamma. Budget = gamma: the
 * density follows from each input (reported as achieved).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Selector } from './types.js';
import { causalSelection, cumulativeSelect, type RowPick } from './select.js';
import { lastQueryProbs, lineScores, poolBlocks, pooledBlockProbs, take } from './primitives.js';
import { lineRow } from './minference.js';
import { selectBlocks, selectRow } from './select-blocks.js';
import { nBlocks } from '../layout.js';

export const FLEX_TAU = 0.1;

export function jensenShannon(p: ArrayLike<number>, q: ArrayLike<number>, off: number, n: number): number {
  let js = 0;
  for (let i = 0; i < n; i++) {
    const a = p[off + i]!, b = q[off + i]!, m = (a + b) / 2;
    if (a > 0) js += 0.5 * a * Math.log(a / m);
    if (b > 0) js += 0.5 * b * Math.log(b / m);
  }
  return js;
}

export const flexPrefill: Selector = {
  name: 'flexprefill',
  budgetMeaning: 'gamma: cumulative attention share each head keeps (density is adaptive)',
  select({ q, k }, budget, ctx) {
    const [H, L] = q.shape;
    const B = ctx.block, nQ = nBlocks(L, B);
    const m = Math.min(B, L - (nQ - 1) * B); // the last query block's rows
    const pt = lastQueryProbs(q, k, m, ctx.scale); // [H, m, L]
    const pooledT = tf.tidy(() => pooledBlockProbs(poolBlocks(q, B), poolBlocks(k, B), ctx.scale)); // [H, nQ, nQ]
    // The pattern decision reads two [H, nQ] rows: the true estimate (the last block's mean attention
    // per key block) and the pooled estimate of the same row.
    const est = take(tf.tidy(() => {
      const padded = nQ * B > L ? tf.pad(pt, [[0, 0], [0, 0], [0, nQ * B - L]]) : pt;
      return tf.mean(tf.sum(tf.reshape(padded, [H, m, nQ, B]), 3), 1);
    }));
    const last = take(tf.tidy(() => tf.slice(pooledT, [0, nQ - 1, 0], [H, 1, nQ])));
    const queryAware = Array.from({ length: H }, (_, h) => jensenShannon(est, last, h * nQ, nQ) < FLEX_TAU);
    if (queryAware.every(Boolean)) {
      // Every head query-aware: the cumulative selection runs where the pooled scores are.
      pt.dispose();
      const layout = selectBlocks(pooledT, L, B, { share: budget });
      pooledT.dispose();
      return { layout };
    }
    const p = take(pt);
    const pooled = take(pooledT);
    const lines = lineScores(p, H, m, L);
    const rows: ((i: number) => RowPick)[] = [];
    for (let h = 0; h < H; h++) {
      if (queryAware[h]) {
        rows.push((i) => ({ cols: selectRow(pooled, (h * nQ + i) * nQ, i, { share: budget }) }));
      } else {
        const v = cumulativeSelect(lines.vertical, h * L, L, budget);
        const s = cumulativeSelect(lines.slash, h * L, L, budget);
        if (!s.includes(0)) s.push(0);
        rows.push((i) => lineRow(i, B, L, v, s));
      }
    }
    return { layout: causalSelection(L, B, H, (h, i) => rows[h]!(i)) };
  },
};
