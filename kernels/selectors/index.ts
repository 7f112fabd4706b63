/** The layout selectors by name (kernels/selectors/<method>.ts, one file per method). */
import { ParamError } from '../../core/params.js';
import { SELECTOR_NAMES, type Selector, type SelectorName } from './types.js';
import { oracle } from './oracle.js';
import { aShape, windowSelector } from './static.js';
import { minference } from './minference.js';
import { flexPrefill } from './flexprefill.js';
import { anchor } from './anchor.js';
import { pbs } from './pbs.js';
import { seer } from './seer.js';
import { doubleSparsity } from './double-sparsity.js';
import { moa } from './moa.js';

const SELECTORS: Record<SelectorName, Selector> = {
  oracle, 'a-shape': aShape, window: windowSelector, minference, flexprefill: flexPrefill, anchor, pbs, seer, 'double-sparsity': doubleSparsity, moa,
};

export function getSelector(name: string, where = 'method'): Selector {
  const s = SELECTORS[name as SelectorName];
  if (!s) throw new ParamError(where, `unknown method ${JSON.stringify(name)}; allowed: ${SELECTOR_NAMES.join(', ')}`);
  return s;
}

export { SELECTOR_NAMES };
export type { Selector, SelectorName };
