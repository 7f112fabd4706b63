/**
 * Causal block selection from a score tensor [H, nQ, nQ] (row i of head h scores key blocks 0..i):
 *  - { perRow: n }: the diagonal block, then the top blocks by score, n per row (fewer where i + 1 < n);
 *  - { share: gamma }: the fewest top blocks whose non-negative scores reach gamma of the row's total
 *    (at least one), then the diagonal when it was not among them.
 * Ties go to the lower block; each row ascends. On native and cuda the TrSelectBlocks kernel writes the
 * layout where the scores are (on cuda the layout never visits the host); elsewhere the scores are read
 * back and hostSelectBlocks, the reference, builds it.
 */
import * as tf from '@tensorflow/tfjs-core';
import { hasKernel } from '../backend.js';
import { nBlocks, type BlockLayout } from '../layout.js';
import type { AnyLayout, DeviceLayout } from '../device-layout.js';
import { causalSelection, cumulativeSelect, topK } from './select.js';
import { ParamError } from '../../core/params.js';

export type BlockRule = { perRow: number } | { share: number };

export const SELECT_KERNEL = 'TrSelectBlocks';

function checkRule(rule: BlockRule): void {
  if ('perRow' in rule && !(Number.isInteger(rule.perRow) && rule.perRow >= 1)) throw new ParamError('selectBlocks.perRow', `must be an integer >= 1, got ${rule.perRow}`);
  if ('share' in rule && !(rule.share > 0 && rule.share <= 1)) throw new ParamError('selectBlocks.share', `must be in (0, 1], got ${rule.share}`);
}

/** Row i's picks from its scores s[off .. off + i] (the reference both kernels are tested against). */
export function selectRow(s: ArrayLike<number>, off: number, i: number, rule: BlockRule): number[] {
  if ('perRow' in rule) {
    const row = Float64Array.from({ length: i + 1 }, (_, j) => (j === i ? Infinity : s[off + j]!));
    return topK(row, 0, i + 1, rule.perRow);
  }
  const cols = cumulativeSelect(s, off, i + 1, rule.share);
  return cols.includes(i) ? cols : [...cols, i].sort((a, b) => a - b);
}

/** The reference: a host layout from host scores [H, nQ, nQ]. */
export function hostSelectBlocks(scores: ArrayLike<number>, H: number, L: number, B: number, rule: BlockRule): BlockLayout {
  checkRule(rule);
  const nQ = nBlocks(L, B);
  return causalSelection(L, B, H, (h, i) => ({ cols: selectRow(scores, (h * nQ + i) * nQ, i, rule) }));
}

/** Blocks listed at most: exact for perRow, every causal block for share. */
function capacity(H: number, nQ: number, rule: BlockRule): number {
  if ('share' in rule) return (H * nQ * (nQ + 1)) / 2;
  let n = 0;
  for (let i = 0; i < nQ; i++) n += Math.min(i + 1, rule.perRow);
  return H * n;
}

/** The layout of `rule` over `scores` (not disposed), on the device when the backend has the kernel. */
export function selectBlocks(scores: tf.Tensor3D, L: number, B: number, rule: BlockRule): AnyLayout {
  checkRule(rule);
  const [H, nQ] = scores.shape;
  if (nQ !== nBlocks(L, B) || scores.shape[2] !== nQ) throw new ParamError('selectBlocks.scores', `must be [H, nQ, nQ] with nQ = ceil(${L}/${B}) = ${nBlocks(L, B)}, got [${scores.shape}]`);
  if (!hasKernel(SELECT_KERNEL)) return hostSelectBlocks(scores.dataSync(), H, L, B, rule);
  const attrs = { length: L, block: B, capacity: capacity(H, nQ, rule), ...('perRow' in rule ? { mode: 'top', perRow: rule.perRow } : { mode: 'share', share: rule.share }) };
  const [rowPtr, colIdx, full] = tf.engine().runKernel(SELECT_KERNEL, { scores }, attrs as unknown as tf.NamedAttrMap) as tf.Tensor1D[];
  const layout: DeviceLayout = { Lq: L, Lk: L, Bq: B, Bk: B, H, causal: true, window: Infinity, device: { rowPtr: rowPtr!, colIdx: colIdx!, full: full! } };
  return layout;
}
