/**
 * Attention through a selector: for each input of the batch, the selector picks the layout of each
 * head from that input's q and k, and the shared operator computes exactly those blocks (keys and
 * values first gathered in the selector's order when it permutes). Densities are recorded per layer
 * and head, so a run can report what it actually computed, not what it asked for.
 */
import * as tf from '@tensorflow/tfjs-core';
import { blockSparseAttention } from '../block-sparse.js';
import { permuteKeys } from './pbs.js';
import { perInput } from '../instance-layout.js';
import { causalDensities } from './select.js';
import { disposeLayout, readLayout } from '../device-layout.js';
import type { CalibrationState, Selection, Selector, SelectorContext } from './types.js';

export interface DensityStats {
  /** [layer][head]: sums over inputs of listed blocks / causal blocks and allowed pairs / causal pairs. */
  blocks: number[][];
  pairs: number[][];
  inputs: number[];
}

export function newDensityStats(): DensityStats {
  return { blocks: [], pairs: [], inputs: [] };
}

function addDensities(s: DensityStats, layer: number, sel: Selection): void {
  const d = causalDensities(readLayout(sel.layout)); // a device layout comes back for counting: outside the timed path
  s.blocks[layer] ??= new Array<number>(d.blocks.length).fill(0);
  s.pairs[layer] ??= new Array<number>(d.pairs.length).fill(0);
  s.inputs[layer] = (s.inputs[layer] ?? 0) + 1;
  d.blocks.forEach((x, h) => (s.blocks[layer]![h] += x));
  d.pairs.forEach((x, h) => (s.pairs[layer]![h] += x));
}

/** Mean densities [layer][head] of the recorded inputs. */
export function meanDensities(s: DensityStats): { blocks: number[][]; pairs: number[][] } {
  const avg = (a: number[][]) => a.map((row, l) => row.map((x) => x / s.inputs[l]!));
  return { blocks: avg(s.blocks), pairs: avg(s.pairs) };
}

/** One input's attention [1, H, L, D] under a selection (keys/values permuted first when it says so). */
export function attendSelected(q: tf.Tensor4D, k: tf.Tensor4D, v: tf.Tensor4D, sel: Selection, ctx: Pick<SelectorContext, 'scale' | 'precision'>): tf.Tensor4D {
  const o = { scale: ctx.scale, ...(ctx.precision ? { precision: ctx.precision } : {}) };
  return tf.tidy(() => {
    if (!sel.keyOrder) return blockSparseAttention(q, k, v, sel.layout, o).out;
    const kp = tf.expandDims(permuteKeys(tf.squeeze(k, [0]) as tf.Tensor3D, sel.keyOrder), 0) as tf.Tensor4D;
    const vp = tf.expandDims(permuteKeys(tf.squeeze(v, [0]) as tf.Tensor3D, sel.keyOrder), 0) as tf.Tensor4D;
    return blockSparseAttention(q, kp, vp, sel.layout, o).out;
  });
}

/**
 * A transformer mixer (models/transformer.ts setMixer) attending through `selector` at `budget`:
 * per input and layer one selection; densities go to `stats` when given.
 */
export function selectorMixer(selector: Selector, budget: number, ctx: SelectorContext, state: CalibrationState | undefined, stats?: DensityStats) {
  return (q: tf.Tensor4D, k: tf.Tensor4D, v: tf.Tensor4D, layer: number): tf.Tensor4D => perInput(q, k, v, (_b, x) => {
    const sel = selector.select({ q: x.q3, k: x.k3, layer }, budget, ctx, state);
    if (stats) addDensities(stats, layer, sel);
    const out = attendSelected(x.q, x.k, x.v, sel, ctx);
    disposeLayout(sel.layout);
    return out;
  });
}
