/**
 * The seed papers' bidirectional head-pattern methods (issue 22) as plans for the shared operator:
 * per input, layer and denoising step, a non-causal block layout per head and, for the permuting
 * methods, a per-head token order (applied to q, k, v before the operator and undone on its output).
 *
 * - SparseD: full attention for the first `denseSteps` steps; at the last of them the per-head
 *   pattern (top blocks per row by attention mass) is computed from that full attention and reused.
 * - AdaSpa: at the first step an exact search over the full attention's block mass (the blocks of
 *   largest mass per head, hierarchical: rows keep different counts, each its own block), reused.
 * - Sparse-vDiT: offline, per head the cheapest of diagonal, multi-diagonal, vertical-stripe (and
 *   skipped) patterns that keeps `minMass` of the calibration attention, cheapness by a cost model
 *   fitted to the operator's measured time (a line in listed blocks); heads sharing a pattern run in
 *   one call (one layout lists all).
 * - Efficient-vDiT: the frame tile: every frame attends to itself and the main frames (frame 0).
 * - PAROAttention: offline, per head the grid axis order under which its attention is most
 *   block-concentrated; then the static top blocks in that order.
 * - MMInference: per head, the grid pattern (frames innermost, so a cell's copies across frames are
 *   contiguous, and a band there) or the local pattern (natural order), offline; text stays dense
 *   (the modality boundary is kept by the permutation).
 */
import * as tf from '@tensorflow/tfjs-core';
import { blockSparseAttention } from './block-sparse.js';
import { nBlocks, type BlockLayout } from './layout.js';
import { LAYOUT_DEFAULTS, layoutFor } from './attention.js';
import { trueBlockMass } from './selectors/primitives.js';
import { gatherPerHead, gatherStaticOrder, perInput } from './instance-layout.js';
import {
  AXIS_ORDERS, axisOrder, diagonalPattern, gridTokens, multiDiagonalPattern, patternLayout, seqLength, stripePattern, tilePattern,
  type AxisOrder, type GridGeom, type HeadPattern,
} from './grid-patterns.js';
import { ParamError } from '../core/params.js';

export const GRID_METHODS = ['sparsed', 'adaspa', 'sparse-vdit', 'efficient-vdit', 'paro', 'mminference'] as const;
export type GridMethodName = (typeof GRID_METHODS)[number];

export interface GridContext {
  geom: GridGeom;
  block: number;
  scale: number;
  /** Target fraction of blocks per row (SparseD, PARO, MMInference bands), of blocks per head (AdaSpa), of pattern width (Sparse-vDiT), in (0, 1]. */
  budget: number;
}

/** One input's q and k of one layer [H, L, D]. */
export interface GridInputs {
  q: tf.Tensor3D;
  k: tf.Tensor3D;
  layer: number;
}

export interface GridPlan {
  layout: BlockLayout;
  /** Per head, the original index at each position [H * L]; absent = natural order. */
  order?: Int32Array;
  /** Heads whose output is zero (Sparse-vDiT's skipped heads). */
  skip?: boolean[];
}

/** JSON state of an offline search, per layer. */
export type GridState = { heads: unknown[][] };

export interface GridMethod {
  readonly name: GridMethodName;
  calibrate?(samples: GridInputs[][], ctx: GridContext): GridState;
  /** The plan at denoising step `step`, or null for full attention; memo: what this input and layer saved at an earlier step. */
  plan(x: GridInputs, step: number, ctx: GridContext, state: GridState | undefined, memo: Map<number, GridPlan>): GridPlan | null;
}

const nOf = (ctx: GridContext): number => nBlocks(seqLength(ctx.geom), Math.min(ctx.block, seqLength(ctx.geom)));
const perRow = (ctx: GridContext, n: number): number => Math.max(1, Math.ceil(ctx.budget * n));
/** Half-width (blocks) of a band listing about budget * n blocks per row; the whole row at budget 1. */
const bandFor = (ctx: GridContext, n: number): number => (ctx.budget >= 1 ? n : Math.max(0, Math.round((ctx.budget * n - 1) / 2)));

/** Per head, the top `k` blocks per row by mass (each row keeps its own block). */
function topPerRow(mass: Float32Array, H: number, n: number, k: number): HeadPattern[] {
  return Array.from({ length: H }, (_, h) => Array.from({ length: n }, (_, i) => {
    const row = Array.from({ length: n }, (_, j) => j).sort((a, b) => mass[(h * n + i) * n + b]! - mass[(h * n + i) * n + a]! || a - b);
    const s = new Set(row.slice(0, k));
    s.add(i);
    return s;
  }));
}

const sparsed = (denseSteps = 1): GridMethod => ({
  name: 'sparsed',
  plan(x, step, ctx, _s, memo) {
    if (step < denseSteps - 1) return null;
    if (step === denseSteps - 1) {
      const L = x.q.shape[1], n = nOf(ctx), H = x.q.shape[0];
      const mass = trueBlockMass(x.q, x.k, Math.min(ctx.block, L), ctx.scale, false);
      memo.set(x.layer, { layout: patternLayout(L, ctx.block, topPerRow(mass, H, n, perRow(ctx, n))) });
      return null;
    }
    return memo.get(x.layer) ?? null;
  },
});

const adaspa: GridMethod = {
  name: 'adaspa',
  plan(x, step, ctx, _s, memo) {
    if (step > 0) return memo.get(x.layer) ?? null;
    const [H, L] = x.q.shape;
    const n = nOf(ctx);
    const mass = trueBlockMass(x.q, x.k, Math.min(ctx.block, L), ctx.scale, false);
    const keep = Math.max(n, Math.round(ctx.budget * n * n));
    const heads = Array.from({ length: H }, (_, h) => {
      const ids = Array.from({ length: n * n }, (_, t) => t).sort((a, b) => mass[h * n * n + b]! - mass[h * n * n + a]! || a - b);
      const p: HeadPattern = Array.from({ length: n }, (_, i) => new Set([i]));
      let listed = n;
      for (const t of ids) {
        if (listed >= keep) break;
        const i = Math.floor(t / n), j = t % n;
        if (!p[i]!.has(j)) {
          p[i]!.add(j);
          listed++;
        }
      }
      return p;
    });
    const plan = { layout: patternLayout(L, ctx.block, heads) };
    memo.set(x.layer, plan);
    return plan;
  },
};

/** Kept share of a head's mass under a pattern (mass [n*n] of one head, rows summing to their row's total). */
function keptMass(mass: ArrayLike<number>, off: number, n: number, p: HeadPattern): number {
  let kept = 0, total = 0;
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) {
    const m = mass[off + i * n + j]!;
    total += m;
    if (p[i]!.has(j)) kept += m;
  }
  return total > 0 ? kept / total : 1;
}

/** Mean block mass [H, n, n] over calibration inputs of one layer. */
function meanMass(inputs: GridInputs[], ctx: GridContext, order?: (h: number) => Int32Array): Float32Array {
  const [H, L] = inputs[0]!.q.shape;
  const n = nOf(ctx);
  const acc = new Float32Array(H * n * n);
  for (const x of inputs) {
    const [q, k] = order ? tf.tidy(() => {
      const ord = Int32Array.from({ length: H * L }, (_, t) => order(Math.floor(t / L))[t % L]!);
      const g = (y: tf.Tensor3D) => tf.reshape(gatherPerHead(tf.expandDims(y, 0) as tf.Tensor4D, ord), [H, L, y.shape[2]]) as tf.Tensor3D;
      return [g(x.q), g(x.k)];
    }) : [x.q, x.k];
    const m = trueBlockMass(q, k, Math.min(ctx.block, L), ctx.scale, false);
    for (let i = 0; i < acc.length; i++) acc[i]! += m[i]! / inputs.length;
    if (order) tf.dispose([q, k]);
  }
  return acc;
}

/** Median time (ms) of the operator on one head under a layout: what Sparse-vDiT's cost model is fitted to. */
function measuredCost(layout: BlockLayout, D: number): number {
  const L = layout.Lq;
  const [q, k, v] = [0, 1, 2].map(() => tf.randomNormal([1, 1, L, D], 0, 1, 'float32', 7)) as tf.Tensor4D[];
  const times: number[] = [];
  for (let r = 0; r < 5; r++) {
    const t0 = performance.now();
    const o = blockSparseAttention(q!, k!, v!, layout).out;
    o.dataSync();
    o.dispose();
    if (r > 0) times.push(performance.now() - t0);
  }
  tf.dispose([q!, k!, v!]);
  return times.sort((a, b) => a - b)[Math.floor(times.length / 2)]!;
}

export type VditPattern = { kind: 'diagonal' | 'multi-diagonal'; band: number } | { kind: 'stripe'; cols: number[] } | { kind: 'skip' } | { kind: 'dense' };

function vditPattern(p: VditPattern, ctx: GridContext): HeadPattern {
  const L = seqLength(ctx.geom), B = Math.min(ctx.block, L), n = nOf(ctx);
  switch (p.kind) {
    case 'diagonal': return diagonalPattern(L, B, p.band);
    case 'multi-diagonal': return multiDiagonalPattern(L, B, ctx.geom.height * ctx.geom.width, p.band);
    case 'stripe': return stripePattern(L, B, p.cols);
    case 'skip': return Array.from({ length: n }, (_, i) => new Set([i])); // listed for a valid layout; the head's output is zeroed
    default: return Array.from({ length: n }, () => new Set(Array.from({ length: n }, (_, j) => j)));
  }
}

/**
 * Plans that do not depend on the input (the offline searches' and the tile) are built once per
 * owner (a calibration state, or the method), layer and shape, not at every step of every input.
 */
const staticPlans = new WeakMap<object, Map<string, GridPlan>>();
function staticPlan(owner: object, layer: number, x: GridInputs, ctx: GridContext, build: () => GridPlan): GridPlan {
  let m = staticPlans.get(owner);
  if (!m) staticPlans.set(owner, (m = new Map()));
  const [H, L] = x.q.shape;
  const key = `${layer}:${H}x${L}:${ctx.block}:${ctx.geom.frames}x${ctx.geom.height}x${ctx.geom.width}+${ctx.geom.textLen}`;
  let p = m.get(key);
  if (!p) m.set(key, (p = build()));
  return p;
}

const sparseVdit = (minMass = 0.9): GridMethod => ({
  name: 'sparse-vdit',
  calibrate(samples, ctx) {
    const n = nOf(ctx), L = seqLength(ctx.geom), D = samples[0]![0]!.q.shape[2];
    const band = bandFor(ctx, n);
    // The cost model: the operator's time measured on a sparse and a dense layout, as a line in listed
    // blocks. Ranking by the fitted line rather than by one timing per candidate keeps timing noise
    // from deciding between candidates that list about as many blocks.
    const blocksOf = (p: VditPattern) => vditPattern(p, ctx).reduce((acc, r) => acc + r.size, 0);
    const lo = { kind: 'diagonal', band: 0 } as VditPattern, hi = { kind: 'dense' } as VditPattern;
    const [tLo, tHi] = [lo, hi].map((p) => measuredCost(patternLayout(L, ctx.block, [vditPattern(p, ctx)]), D));
    const msPerBlock = Math.max(0, (tHi! - tLo!) / Math.max(1, blocksOf(hi) - blocksOf(lo)));
    const costOf = (p: VditPattern) => tLo! + msPerBlock * (blocksOf(p) - blocksOf(lo)) + 1e-12 * blocksOf(p);
    return {
      heads: samples.map((inputs) => {
        const H = inputs[0]!.q.shape[0];
        const mass = meanMass(inputs, ctx);
        // A head whose attention is spread evenly over every block carries a near-constant output: skipped.
        return Array.from({ length: H }, (_, h) => {
          const off = h * n * n;
          let maxShare = 0;
          for (let t = 0; t < n * n; t++) maxShare = Math.max(maxShare, mass[off + t]! / (L / n));
          if (maxShare < 1.05 / n) return { kind: 'skip' } as VditPattern;
          const colMass = Array.from({ length: n }, (_, j) => Array.from({ length: n }, (_, i) => mass[off + i * n + j]!).reduce((s, x) => s + x, 0));
          const cols = Array.from({ length: n }, (_, j) => j).sort((a, b) => colMass[b]! - colMass[a]! || a - b).slice(0, Math.max(1, Math.round(ctx.budget * n)));
          const candidates: VditPattern[] = [{ kind: 'diagonal', band }, { kind: 'multi-diagonal', band }, { kind: 'stripe', cols: cols.sort((a, b) => a - b) }];
          const ok = candidates.filter((p) => keptMass(mass, off, n, vditPattern(p, ctx)) >= minMass);
          return ok.length ? ok.sort((a, b) => costOf(a) - costOf(b))[0]! : ({ kind: 'dense' } as VditPattern);
        });
      }),
    };
  },
  plan(x, _step, ctx, state) {
    if (!state) throw new ParamError('grid.method', 'sparse-vdit needs its offline calibration');
    const heads = state.heads[x.layer] as VditPattern[];
    return staticPlan(state, x.layer, x, ctx, () => ({ layout: patternLayout(x.q.shape[1], ctx.block, heads.map((p) => vditPattern(p, ctx))), skip: heads.map((p) => p.kind === 'skip') }));
  },
});

const efficientVdit = (mainFrames = [0]): GridMethod => {
  const owner = {};
  return {
    name: 'efficient-vdit',
    plan(x, _step, ctx) {
      const [H, L] = x.q.shape;
      return staticPlan(owner, 0, x, ctx, () => ({ layout: patternLayout(L, ctx.block, Array.from({ length: H }, () => tilePattern(ctx.geom, Math.min(ctx.block, L), mainFrames))) }));
    },
  };
};

/** Per head a token order and a static block pattern in that order: PAROAttention and MMInference. */
function reordering(name: 'paro' | 'mminference', candidates: (ctx: GridContext) => AxisOrder[], patternFor: (mass: Float32Array, off: number, order: AxisOrder, ctx: GridContext) => HeadPattern): GridMethod {
  return {
    name,
    calibrate(samples, ctx) {
      const n = nOf(ctx);
      return {
        heads: samples.map((inputs) => {
          const H = inputs[0]!.q.shape[0];
          const best = Array.from({ length: H }, () => ({ order: 'fhw' as AxisOrder, kept: -1, cols: [] as number[][] }));
          for (const order of candidates(ctx)) {
            const ord = axisOrder(ctx.geom, order);
            const mass = meanMass(inputs, ctx, () => ord);
            for (let h = 0; h < H; h++) {
              const p = patternFor(mass, h * n * n, order, ctx);
              const kept = keptMass(mass, h * n * n, n, p);
              if (kept > best[h]!.kept + 1e-9) best[h] = { order, kept, cols: p.map((s) => [...s].sort((a, b) => a - b)) };
            }
          }
          return best;
        }),
      };
    },
    plan(x, _step, ctx, state) {
      if (!state) throw new ParamError('grid.method', `${name} needs its offline calibration`);
      const heads = state.heads[x.layer] as { order: AxisOrder; cols: number[][] }[];
      const L = x.q.shape[1];
      return staticPlan(state, x.layer, x, ctx, () => {
        const order = new Int32Array(heads.length * L);
        heads.forEach((h, i) => order.set(axisOrder(ctx.geom, h.order), i * L));
        return { layout: patternLayout(L, ctx.block, heads.map((h) => h.cols.map((c) => new Set(c)))), order };
      });
    },
  };
}

const paro = reordering('paro', () => [...AXIS_ORDERS], (mass, off, _o, ctx) => {
  const n = nOf(ctx);
  return topPerRow(mass.subarray(off, off + n * n) as Float32Array, 1, n, perRow(ctx, n))[0]!;
});

const mminference = reordering('mminference', () => ['fhw', 'hwf'], (_mass, _off, order, ctx) => {
  // A band in the head's order (local in 'fhw', temporal-spatial grid in 'hwf') plus the text blocks both ways.
  const L = seqLength(ctx.geom), B = Math.min(ctx.block, L), n = nOf(ctx);
  const textFrom = Math.floor(gridTokens(ctx.geom) / B);
  const band = diagonalPattern(L, B, bandFor(ctx, n));
  void order;
  return band.map((s, i) => (i >= textFrom ? new Set(Array.from({ length: n }, (_, j) => j)) : new Set([...s, ...Array.from({ length: n - textFrom }, (_, t) => textFrom + t)])));
});

export function gridMethod(name: string): GridMethod {
  switch (name) {
    case 'sparsed': return sparsed();
    case 'adaspa': return adaspa;
    case 'sparse-vdit': return sparseVdit();
    case 'efficient-vdit': return efficientVdit();
    case 'paro': return paro;
    case 'mminference': return mminference;
    default: throw new ParamError('grid.method', `unknown method ${JSON.stringify(name)}; allowed: ${GRID_METHODS.join(', ')}`);
  }
}

/** One input's attention [1, H, L, D] under a plan: q, k, v permuted per head, the operator, the output put back; skipped heads zero. */
export function attendPlan(q: tf.Tensor4D, k: tf.Tensor4D, v: tf.Tensor4D, plan: GridPlan | null, scale: number): tf.Tensor4D {
  return tf.tidy(() => {
    const L = q.shape[2];
    if (!plan) return blockSparseAttention(q, k, v, layoutFor(LAYOUT_DEFAULTS, L, false), { scale }).out; // cached per length
    let out: tf.Tensor4D;
    if (plan.order) {
      // A plan's order is static (reused at every step and input): its index tensors are built once.
      const o = blockSparseAttention(gatherStaticOrder(q, plan.order), gatherStaticOrder(k, plan.order), gatherStaticOrder(v, plan.order), plan.layout, { scale }).out;
      out = gatherStaticOrder(o, plan.order, true);
    } else out = blockSparseAttention(q, k, v, plan.layout, { scale }).out;
    if (plan.skip?.some(Boolean)) out = tf.mul(out, tf.tensor4d(Float32Array.from(plan.skip, (s) => (s ? 0 : 1)), [1, plan.skip.length, 1, 1])) as tf.Tensor4D;
    return out;
  });
}

/**
 * A bidirectional transformer's mixer (Transformer.setMixer) attending through `method`: per input of
 * the batch and layer one plan at the current step (`stepOf()`), memos per input index and layer.
 */
export function gridMixer(method: GridMethod, ctx: GridContext, state: GridState | undefined, stepOf: () => number, memos: Map<number, Map<number, GridPlan>>, densities?: number[]) {
  return (q: tf.Tensor4D, k: tf.Tensor4D, v: tf.Tensor4D, layer: number): tf.Tensor4D => perInput(q, k, v, (b, x) => {
    if (!memos.has(b)) memos.set(b, new Map());
    const plan = method.plan({ q: x.q3, k: x.k3, layer }, stepOf(), ctx, state, memos.get(b)!);
    if (densities) densities.push(plan ? plan.layout.colIdx.length / (plan.layout.H * nBlocks(q.shape[2], plan.layout.Bq) ** 2) : 1);
    return attendPlan(x.q, x.k, x.v, plan, ctx.scale);
  });
}
