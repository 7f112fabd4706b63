/**
 * MInference 1.0: three head patterns, each head's chosen offline, the indices built online per input.
 *  - A-shape: sink block + recent blocks (static.ts).
 *  - Vertical-slash: the last 64 queries' attention estimates which key columns (vertical lines) and
 *    which diagonals (slash lines, offset query - key) matter; the top lines, taken by score until their
 *    pairs reach the budget, become per-block token bits (stripes and diagonals inside blocks).
 *  - Block-sparse: q and k mean-pooled per block, pooled scores, the top key blocks per query block.
 * Offline choice (calibrate): on calibration inputs, per layer and head, the pattern whose layout at
 * the budget keeps the most true attention mass. Deviation: MInference forces the first vertical lines
 * and the local slashes into every vertical-slash head; here column 0 and offset 0 lead the ranking.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { CalibrationState, HeadInputs, Selector, SelectorContext } from './types.js';
import { aShape } from './static.js';
import { blocksPerRow, causalSelection, type RowPick } from './select.js';
import { selectBlocks, selectRow } from './select-blocks.js';
import { keptMass, lastQueryProbs, lineScores, poolBlocks, pooledBlockProbs, take } from './primitives.js';
import { nBlocks } from '../layout.js';
import { readLayout } from '../device-layout.js';

export const MINFERENCE_PATTERNS = ['a-shape', 'vertical-slash', 'block-sparse'] as const;
export type MInferencePattern = (typeof MINFERENCE_PATTERNS)[number];
const LAST_Q = 64;

/** Lines (verticals c, slashes o) ranked by score and taken until the pairs they cover reach `pairs`. */
export function pickLines(vertical: Float32Array, slash: Float32Array, off: number, L: number, pairs: number): { v: number[]; s: number[] } {
  const lines: [number, number, number][] = []; // [score, kind 0=v 1=s, index]
  for (let j = 0; j < L; j++) {
    lines.push([vertical[off + j]! + (j === 0 ? 2 : 0), 0, j]);
    lines.push([slash[off + j]! + (j === 0 ? 2 : 0), 1, j]);
  }
  lines.sort((a, b) => b[0] - a[0] || a[1] - b[1] || a[2] - b[2]);
  const v: number[] = [], s: number[] = [];
  let covered = 0;
  for (const [, kind, idx] of lines) {
    if (covered >= pairs && v.length + s.length > 0) break;
    (kind === 0 ? v : s).push(idx);
    covered += L - idx; // column c is seen by L - c queries, diagonal o by L - o
  }
  return { v, s };
}

/** Per-block bits of vertical columns and slash offsets for query block i. */
export function lineRow(i: number, B: number, L: number, v: number[], s: number[]): RowPick {
  const bits = new Map<number, Uint8Array>();
  const set = (j: number, r: number, c: number) => {
    let b = bits.get(j);
    if (!b) bits.set(j, (b = new Uint8Array(B * B)));
    b[r * B + c] = 1;
  };
  const rows = Math.min(B, L - i * B);
  for (const c of v) {
    if (c > i * B + rows - 1) continue;
    for (let r = 0; r < rows; r++) if (c <= i * B + r) set(Math.floor(c / B), r, c % B);
  }
  for (const o of s) {
    for (let r = 0; r < rows; r++) {
      const kj = i * B + r - o;
      if (kj >= 0) set(Math.floor(kj / B), r, kj % B);
    }
  }
  const cols = [...bits.keys()];
  return { cols, bits: cols.map((j) => bits.get(j)) };
}

function verticalSlashRows(q: tf.Tensor3D, k: tf.Tensor3D, budget: number, ctx: SelectorContext): (h: number, i: number) => RowPick {
  const [H, L] = q.shape;
  const m = Math.min(LAST_Q, L);
  const { vertical, slash } = lineScores(take(lastQueryProbs(q, k, m, ctx.scale)), H, m, L);
  const pairs = budget * ((L * (L + 1)) / 2);
  const lines = Array.from({ length: H }, (_, h) => pickLines(vertical, slash, h * L, L, pairs));
  return (h, i) => lineRow(i, ctx.block, L, lines[h]!.v, lines[h]!.s);
}

function blockSparseRows(q: tf.Tensor3D, k: tf.Tensor3D, budget: number, ctx: SelectorContext): (h: number, i: number) => RowPick {
  const L = q.shape[1], B = ctx.block, nQ = nBlocks(L, B);
  const probs = take(tf.tidy(() => pooledBlockProbs(poolBlocks(q, B), poolBlocks(k, B), ctx.scale)));
  const n = blocksPerRow(nQ, budget);
  return (h, i) => ({ cols: selectRow(probs, (h * nQ + i) * nQ, i, { perRow: n }) }); // the diagonal block always (local context)
}

function patternRows(p: MInferencePattern, x: HeadInputs, budget: number, ctx: SelectorContext): (h: number, i: number) => RowPick {
  if (p === 'vertical-slash') return verticalSlashRows(x.q, x.k, budget, ctx);
  if (p === 'block-sparse') return blockSparseRows(x.q, x.k, budget, ctx);
  const l = readLayout(aShape.select(x, budget, ctx).layout); // static: a host layout already
  const nQ = nBlocks(l.Lq, l.Bq);
  return (_h, i) => ({ cols: Array.from(l.colIdx.subarray(l.rowPtr[i]!, l.rowPtr[i + 1]!)) });
}

export const minference: Selector = {
  name: 'minference',
  budgetMeaning: 'fraction of causal blocks (block-sparse, A-shape) or of causal pairs (vertical-slash lines)',
  calibrate(samples, budget, ctx) {
    // samples[layer][n]: kept mass of each pattern, summed over calibration inputs, per head.
    const patterns = samples.map((layer) => {
      const H = layer[0]!.q.shape[0];
      const score = MINFERENCE_PATTERNS.map(() => new Array<number>(H).fill(0));
      for (const x of layer) {
        MINFERENCE_PATTERNS.forEach((p, pi) => {
          const rows = patternRows(p, x, budget, ctx);
          const l = causalSelection(x.q.shape[1], ctx.block, H, rows);
          keptMass(x.q, x.k, l, ctx.scale).forEach((m, h) => (score[pi]![h] += m));
        });
      }
      return Array.from({ length: H }, (_, h) => MINFERENCE_PATTERNS[score.map((s) => s[h]!).reduce((b, s, i, a) => (s > a[b]! ? i : b), 0)]!);
    });
    return { patterns } as CalibrationState;
  },
  select(x, budget, ctx, state) {
    const [H, L] = x.q.shape;
    const pats = (state?.patterns as MInferencePattern[][] | undefined)?.[x.layer] ?? new Array<MInferencePattern>(H).fill('block-sparse');
    if (pats.every((p) => p === 'block-sparse')) {
      // Every head block-sparse: pooled scores to layout on the device (no host round trip on cuda).
      const probs = tf.tidy(() => pooledBlockProbs(poolBlocks(x.q, ctx.block), poolBlocks(x.k, ctx.block), ctx.scale));
      const layout = selectBlocks(probs, L, ctx.block, { perRow: blocksPerRow(nBlocks(L, ctx.block), budget) });
      probs.dispose();
      return { layout };
    }
    const byPattern = new Map<MInferencePattern, (h: number, i: number) => RowPick>();
    for (const p of new Set(pats)) byPattern.set(p, patternRows(p, x, budget, ctx));
    return { layout: causalSelection(L, ctx.block, H, (h, i) => byPattern.get(pats[h]!)!(h, i)) };
  },
};
