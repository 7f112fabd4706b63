/**
 * The oracle: per head, the blocks holding the most true attention mass (softmax over causal keys,
 * summed over the block), as many as the budget allows (round(budget * causal blocks) per head, chosen
 * over the whole head, not per row). No block selector with that many blocks per head keeps more
 * mass, so it bounds what block selection can do at that density. O(L^2): a reference, not a method.
 */
import type { Selector } from './types.js';
import { causalBlocks, causalSelection, topK } from './select.js';
import { trueBlockMass } from './primitives.js';
import { nBlocks } from '../layout.js';

export const oracle: Selector = {
  name: 'oracle',
  budgetMeaning: 'fraction of causal blocks per head, the top blocks by true attention mass',
  select({ q, k }, budget, ctx) {
    const [H, L] = q.shape;
    const B = ctx.block, nQ = nBlocks(L, B);
    const mass = trueBlockMass(q, k, B, ctx.scale);
    const N = Math.max(1, Math.round(budget * causalBlocks(L, B)));
    // Only causal blocks compete (the rest hold no mass); flat index i * nQ + j.
    const rows: number[][][] = [];
    for (let h = 0; h < H; h++) {
      const cand: number[] = [];
      for (let i = 0; i < nQ; i++) for (let j = 0; j <= i; j++) cand.push(i * nQ + j);
      const vals = cand.map((c) => mass[h * nQ * nQ + c]!);
      const keep = topK(vals, 0, vals.length, N).map((t) => cand[t]!);
      const perRow: number[][] = Array.from({ length: nQ }, () => []);
      for (const c of keep) perRow[Math.floor(c / nQ)]!.push(c % nQ);
      rows.push(perRow);
    }
    return { layout: causalSelection(L, B, H, (h, i) => ({ cols: rows[h]![i]! })) };
  },
};
