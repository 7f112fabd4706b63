/**
 * Static references at a given density: A-shape (MInference's name for StreamingLLM's pattern: the
 * first block as attention sink plus the most recent blocks) and a plain local window of blocks.
 * Every row keeps the same number of blocks (see blocksPerRow), so the density is the budget's.
 */
import type { Selector } from './types.js';
import { blocksPerRow, causalSelection } from './select.js';
import { nBlocks } from '../layout.js';

function recent(i: number, n: number, sink: boolean): number[] {
  const cols = sink && n > 1 && i > 0 ? [0] : [];
  for (let j = i; j >= 0 && cols.length < n; j--) if (!cols.includes(j)) cols.push(j);
  return cols;
}

export const aShape: Selector = {
  name: 'a-shape',
  budgetMeaning: 'fraction of causal blocks: sink block + most recent blocks, the same count per row',
  select({ q }, budget, ctx) {
    const [H, L] = q.shape;
    const n = blocksPerRow(nBlocks(L, ctx.block), budget);
    return { layout: causalSelection(L, ctx.block, H, (_h, i) => ({ cols: recent(i, n, true) })) };
  },
};

export const windowSelector: Selector = {
  name: 'window',
  budgetMeaning: 'fraction of causal blocks: the most recent blocks, the same count per row',
  select({ q }, budget, ctx) {
    const [H, L] = q.shape;
    const n = blocksPerRow(nBlocks(L, ctx.block), budget);
    return { layout: causalSelection(L, ctx.block, H, (_h, i) => ({ cols: recent(i, n, false) })) };
  },
};
