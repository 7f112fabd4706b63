/**
 * The oracle: for every query block, its own (diagonal) block plus the other key blocks holding the
 * most true attention mass (softmax over causal keys, summed over the block), as many per row as the
 * block selectors spend (blocksPerRow). Every selector here keeps the diagonal block; among layouts
 * that do, with that many blocks per row, none keeps more mass, so it bounds what block selection can
 * do at that density. (Per row and with the diagonal: a head-wide top-N, or one without the local
 * block, keeps a little more mass but leaves rows without their local context or without any key,
 * and the model fails.) O(L^2): a reference, not a method.
 */
import type { Selector } from './types.js';
import { blocksPerRow, causalSelection, topK } from './select.js';
import { trueBlockMass } from './primitives.js';
import { nBlocks } from '../layout.js';

export const oracle: Selector = {
  name: 'oracle',
  budgetMeaning: 'fraction of causal blocks, the same count per row: the diagonal block, then each row\'s top blocks by true attention mass',
  select({ q, k }, budget, ctx) {
    const [H, L] = q.shape;
    const B = ctx.block, nQ = nBlocks(L, B);
    const mass = trueBlockMass(q, k, B, ctx.scale);
    const n = blocksPerRow(nQ, budget);
    return {
      layout: causalSelection(L, B, H, (h, i) => {
        const row = Float64Array.from(mass.subarray((h * nQ + i) * nQ, (h * nQ + i) * nQ + i + 1));
        row[i] = Infinity; // the diagonal first
        return { cols: topK(row, 0, i + 1, n) };
      }),
    };
  },
};
