/**
 * Static references at a given density: A-shape (MInference's name for StreamingLLM's pattern: the
 * first block as attention sink plus the most recent blocks) and a plain local window of blocks.
 * Every row keeps the same number of blocks (see blocksPerRow), so the density is the budget's.
 */
import type { Selector } from './types.js';
import { blocksPerRow, causalSelection } from './select.js';
import { nBlocks, type BlockLayout } from '../layout.js';

/**
 * Static layouts depend only on shape and budget: built once and kept (the same object each call, so
 * the backend uploads it once too); a static selector's time is then a lookup, as in the papers.
 */
const cache = new Map<string, BlockLayout>();
function staticLayout(L: number, B: number, H: number, budget: number, sink: boolean): BlockLayout {
  const key = `${L}:${B}:${H}:${budget}:${sink}`;
  let l = cache.get(key);
  if (!l) {
    const n = blocksPerRow(nBlocks(L, B), budget);
    cache.set(key, (l = causalSelection(L, B, H, (_h, i) => ({ cols: recent(i, n, sink) }))));
  }
  return l;
}

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
    return { layout: staticLayout(L, ctx.block, H, budget, true) };
  },
};

export const windowSelector: Selector = {
  name: 'window',
  budgetMeaning: 'fraction of causal blocks: the most recent blocks, the same count per row',
  select({ q }, budget, ctx) {
    const [H, L] = q.shape;
    return { layout: staticLayout(L, ctx.block, H, budget, false) };
  },
};
