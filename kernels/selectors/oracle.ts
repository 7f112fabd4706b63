/**
 * The oracle: for every query block, the key blocks holding the most true attention mass (softmax
 * over causal keys, summed over the block), the same count per row as the block selectors spend
 * (blocksPerRow). No layout with that many blocks per row keeps more mass, so it bounds what block
 * selection can do at that density. (Chosen per row, not over the whole head: a head-wide top-N keeps
 * slightly more total mass but leaves rows with no key at all, which no selector does.) O(L^2): a
 * reference, not a method.
 */
import type { Selector } from './types.js';
import { blocksPerRow, causalSelection, topK } from './select.js';
import { trueBlockMass } from './primitives.js';
import { nBlocks } from '../layout.js';

export const oracle: Selector = {
  name: 'oracle',
  budgetMeaning: 'fraction of causal blocks, the same count per row: the top blocks of each row by true attention mass',
  select({ q, k }, budget, ctx) {
    const [H, L] = q.shape;
    const B = ctx.block, nQ = nBlocks(L, B);
    const mass = trueBlockMass(q, k, B, ctx.scale);
    const n = blocksPerRow(nQ, budget);
    return { layout: causalSelection(L, B, H, (h, i) => ({ cols: topK(mass, (h * nQ + i) * nQ, i + 1, n) })) };
  },
};
