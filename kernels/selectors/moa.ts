/**
 * MoA (Mixture of Sparse Attention, seed paper): every head gets its own elastic window, a span of
 * alpha + beta * L tokens (here alpha = one block, beta = the head's chosen fraction), so heads differ
 * and spans grow with the length. A profile of each head's attention on calibration inputs decides
 * the spans: for every candidate beta, the share of the head's attention mass the window keeps
 * (MoA weighs the dropped attention by its gradient on the loss; the kept mass is that influence
 * without the gradient weights); a greedy search then upgrades the head with the best gain in kept
 * mass per unit of density until the mean density reaches the budget. The layout is a per-head block
 * window; at another length the same betas give longer or shorter windows.
 */

import type { CalibrationState, Selector } from './types.js';
import { causalSelection } from './select.js';
import { trueBlockMass } from './primitives.js';
import { nBlocks, type BlockLayout } from '../layout.js';

/** The betas a head may take (fraction of the length its window spans beyond its own block). */
export const MOA_BETAS = [0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1] as const;

/** Key blocks a query block i sees under span beta at nQ blocks: its own + ceil(beta * nQ) before it. */
export function moaBlocks(beta: number, nQ: number): number {
  return 1 + Math.ceil(beta * nQ - 1e-9);
}

/** Density (listed / causal blocks) of a window of n blocks per row at nQ blocks. */
function windowDensity(n: number, nQ: number): number {
  let s = 0;
  for (let i = 0; i < nQ; i++) s += Math.min(i + 1, n);
  return s / ((nQ * (nQ + 1)) / 2);
}

/**
 * The spans under the budget: start every head at the smallest span and repeatedly move the head
 * (to any longer span, not only the next: a head whose mass sits far back gains nothing until its
 * window reaches it) with the most kept mass gained per unit of density, while the mean density stays
 * within the budget and the gain is positive. kept[h][c]: mean kept mass of head h at candidate c.
 */
export function chooseSpans(kept: number[][], density: number[], budget: number): number[] {
  const H = kept.length;
  const pick = new Array<number>(H).fill(0);
  let total = 0;
  for (let h = 0; h < H; h++) total += density[0]!;
  for (;;) {
    let best = -1, to = -1, bestGain = 0;
    for (let h = 0; h < H; h++) {
      const c = pick[h]!;
      for (let c2 = c + 1; c2 < density.length; c2++) {
        const dd = density[c2]! - density[c]!;
        if ((total + dd) / H > budget + 1e-9) break;
        const gain = (kept[h]![c2]! - kept[h]![c]!) / Math.max(dd, 1e-12);
        if (gain > bestGain + 1e-12) (bestGain = gain), (best = h), (to = c2);
      }
    }
    if (best < 0) return pick;
    total += density[to]! - density[pick[best]!]!;
    pick[best] = to;
  }
}

const layouts = new Map<string, BlockLayout>();

export const moa: Selector = {
  name: 'moa',
  budgetMeaning: 'mean fraction of causal blocks over heads: per-head windows of alpha + beta * L chosen by profiling',
  calibrate(samples, budget, ctx) {
    const betas: number[][] = [];
    for (const perLayer of samples) {
      const [H, L] = perLayer[0]!.q.shape;
      const nQ = nBlocks(L, ctx.block);
      const kept = Array.from({ length: H }, () => new Array<number>(MOA_BETAS.length).fill(0));
      for (const x of perLayer) {
        const m = trueBlockMass(x.q, x.k, ctx.block, ctx.scale); // [H, nQ, nQ], each query row holds its rows' mass
        for (let h = 0; h < H; h++) {
          MOA_BETAS.forEach((beta, c) => {
            const n = moaBlocks(beta, nQ);
            let s = 0;
            for (let i = 0; i < nQ; i++) for (let j = Math.max(0, i - n + 1); j <= i; j++) s += m[(h * nQ + i) * nQ + j]!;
            kept[h]![c]! += s / L / perLayer.length;
          });
        }
      }
      const dens = MOA_BETAS.map((b) => windowDensity(moaBlocks(b, nQ), nQ));
      betas.push(chooseSpans(kept, dens, budget).map((c) => MOA_BETAS[c]!));
    }
    return { betas } as CalibrationState;
  },
  select({ q, layer }, _budget, ctx, state) {
    const [H, L] = q.shape;
    const betas = (state as { betas?: number[][] } | undefined)?.betas?.[layer];
    if (!betas) throw new Error('moa: no calibrated spans (run calibrate first)');
    const key = `${L}:${ctx.block}:${betas.join(',')}`;
    let l = layouts.get(key);
    if (!l) {
      const nQ = nBlocks(L, ctx.block);
      const n = betas.map((b) => moaBlocks(b, nQ));
      layouts.set(key, (l = causalSelection(L, ctx.block, H, (h, i) => ({ cols: Array.from({ length: Math.min(i + 1, n[h]!) }, (_, t) => i - t) }))));
    }
    return { layout: l };
  },
};

