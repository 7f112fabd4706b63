/**
 * Synthetic prior for pretraining (TabPFN/TabICL-style): each table comes from a random structural
 * causal model (a random MLP whose hidden nodes become features and target), a random tree ensemble
 * over random inputs, or a noisy linear model; row, feature and class counts and the train/test split
 * are random per table. The continuous target is cut into classes at random quantiles, and the
 * features go through the same preprocessing as real tables (fitted on the table's train rows).
 */
import { Rng } from '../../core/rng.js';
import type { IclTask } from './types.js';
import { CLIP_Z } from './preprocess.js';
import { ParamError, intParam, numParam, rejectUnknown } from '../../core/params.js';

export interface PriorConfig {
  minRows: number;
  maxRows: number;
  minFeatures: number;
  maxFeatures: number;
  maxClasses: number;
  /** Smallest share of rows in any class (quantile cuts are redrawn until it holds). */
  minClassShare: number;
  /** Share of tables per generator kind. */
  mix: { mlp: number; tree: number; linear: number };
  /**
   * Share of tables that are categorical-heavy: the table draws its share of categorical columns
   * (U(0, 1), all columns in 30% of such tables) and its most levels per column (2..8; 2 makes a
   * table of binary indicators); in tree and linear tables the target reads each category's own
   * random effect, so categories matter as nominal values. Codes are ranked by train frequency as
   * the real-table preprocessing ranks them. The other tables discretise a column with
   * probability 0.15 after the target is drawn (the first prior's only categorical columns).
   */
  catTables: number;
  /** Linear tables: share of features with a non-zero weight, drawn per table from U(minRelevant, maxRelevant). */
  minRelevant: number;
  maxRelevant: number;
}

export const PRIOR_DEFAULTS: PriorConfig = {
  minRows: 48, maxRows: 192, minFeatures: 2, maxFeatures: 24, maxClasses: 10, minClassShare: 0.02,
  mix: { mlp: 0.5, tree: 0.3, linear: 0.2 }, catTables: 0, minRelevant: 0.7, maxRelevant: 0.7,
};

export type PriorKind = keyof PriorConfig['mix'];

/** Defaults overridden by `given` (e.g. `npm run pretrain -- --prior '{"maxFeatures":100}'`), validated. */
export function parsePriorConfig(where: string, given: Record<string, unknown>): PriorConfig {
  rejectUnknown(where, given, Object.keys(PRIOR_DEFAULTS));
  const g = { ...PRIOR_DEFAULTS, ...given } as Record<string, unknown>;
  const int = (k: string, lo: number, hi: number): number => intParam(where, k, g[k], lo, hi);
  const mixIn = (g.mix ?? {}) as Record<string, unknown>;
  if (typeof mixIn !== 'object' || Array.isArray(mixIn)) throw new ParamError(`${where}.mix`, 'must be an object {mlp, tree, linear} of shares');
  rejectUnknown(`${where}.mix`, mixIn, Object.keys(PRIOR_DEFAULTS.mix));
  const m = { ...PRIOR_DEFAULTS.mix, ...mixIn } as Record<string, unknown>;
  const mix = { mlp: numParam(`${where}.mix`, 'mlp', m.mlp, 0, 1e6), tree: numParam(`${where}.mix`, 'tree', m.tree, 0, 1e6), linear: numParam(`${where}.mix`, 'linear', m.linear, 0, 1e6) };
  if (!(mix.mlp + mix.tree + mix.linear > 0)) throw new ParamError(`${where}.mix`, 'shares must not all be 0');
  const c: PriorConfig = {
    minRows: int('minRows', 8, 1 << 20), maxRows: int('maxRows', 8, 1 << 20), minFeatures: int('minFeatures', 1, 1 << 16), maxFeatures: int('maxFeatures', 1, 1 << 16),
    maxClasses: int('maxClasses', 2, 100), minClassShare: numParam(where, 'minClassShare', g.minClassShare, 0, 0.5), mix,
    catTables: numParam(where, 'catTables', g.catTables, 0, 1), minRelevant: numParam(where, 'minRelevant', g.minRelevant, 0, 1), maxRelevant: numParam(where, 'maxRelevant', g.maxRelevant, 0, 1),
  };
  if (c.maxRelevant < c.minRelevant) throw new ParamError(`${where}.maxRelevant`, `must be >= minRelevant (${c.minRelevant}), got ${c.maxRelevant}`);
  if (c.maxRows < c.minRows) throw new ParamError(`${where}.maxRows`, `must be >= minRows (${c.minRows}), got ${c.maxRows}`);
  if (c.maxFeatures < c.minFeatures) throw new ParamError(`${where}.maxFeatures`, `must be >= minFeatures (${c.minFeatures}), got ${c.maxFeatures}`);
  if (c.minClassShare * c.maxClasses > 1) throw new ParamError(`${where}.minClassShare`, `times maxClasses must be <= 1, got ${c.minClassShare} x ${c.maxClasses}`);
  return c;
}

export interface PriorTable extends IclTask {
  kind: PriorKind;
  /** Labels of the test rows (the pretraining loss). */
  yTest: Int32Array;
}

/** A batch shares rows, features, classes and split (so tables stack into one tensor). */
export interface PriorBatch {
  tables: PriorTable[];
  nRows: number;
  nFeatures: number;
  nClasses: number;
  nTrain: number;
}

function logUniformInt(rng: Rng, lo: number, hi: number): number {
  return Math.min(hi, Math.floor(Math.exp(Math.log(lo) + rng.float() * (Math.log(hi + 1) - Math.log(lo)))));
}

const ACTS: ((x: number) => number)[] = [Math.tanh, (x) => Math.max(0, x), (x) => Math.sin(2 * x), Math.abs, (x) => x, (x) => (x > 0 ? 1 : 0)];

/** Levels 0..L-1 of a column cut at random quantiles (so level frequencies vary, as real categories' do). */
function discretize(rng: Rng, X: Float64Array, n: number, F: number, f: number, L: number): Int32Array {
  const sorted = Float64Array.from({ length: n }, (_, r) => X[r * F + f]!).sort();
  const cuts = Array.from({ length: L - 1 }, () => rng.float()).sort((a, b) => a - b).map((q) => sorted[Math.min(n - 1, Math.floor(q * n))]!);
  return Int32Array.from({ length: n }, (_, r) => cuts.filter((c) => X[r * F + f]! > c).length);
}

/**
 * Categorical-heavy tables: columns with levels[f] > 0 leave generate() holding level indices. In
 * tree and linear tables the target reads a random effect per level (nominal categories); in MLP
 * tables the column is cut after the target is drawn (an observed, coarsened node).
 */
interface GenOptions { relevant: number; levels: Int32Array | null }

/**
 * Cut the categorical columns into levels. `effects`: each column then holds a random effect per
 * level (what a tree or linear target reads) and its levels are returned, to be observed once the
 * target is drawn; otherwise the column holds its level indices at once.
 */
function cutColumns(rng: Rng, X: Float64Array, n: number, F: number, levels: Int32Array | null, effects: boolean): { f: number; lv: Int32Array }[] {
  const kept: { f: number; lv: Int32Array }[] = [];
  if (!levels) return kept;
  for (let f = 0; f < F; f++) {
    const L = levels[f]!;
    if (L === 0) continue;
    const lv = discretize(rng, X, n, F, f, L);
    const value = effects ? Float64Array.from({ length: L }, () => rng.normal()) : null;
    for (let r = 0; r < n; r++) X[r * F + f] = value ? value[lv[r]!]! : lv[r]!;
    kept.push({ f, lv });
  }
  return kept;
}

function observeLevels(X: Float64Array, n: number, F: number, kept: { f: number; lv: Int32Array }[]): void {
  for (const { f, lv } of kept) for (let r = 0; r < n; r++) X[r * F + f] = lv[r]!;
}

/** Features [n, F] (level indices in categorical columns) and a continuous target from one generator. */
function generate(rng: Rng, kind: PriorKind, n: number, F: number, o: GenOptions): { X: Float64Array; t: Float64Array } {
  const X = new Float64Array(n * F);
  const t = new Float64Array(n);
  if (kind === 'mlp') {
    // Random MLP SCM: causes flow through 2-4 layers; features and target are nodes picked anywhere.
    const layers = rng.int(2, 5);
    // Features and target are F + 1 distinct nodes of the layers after the first, so those layers need
    // F + 1 nodes in all (not each): wide tables stay cheap to generate.
    const width = Math.max(Math.ceil((F + 1) / (layers - 1)), rng.int(8, 33));
    const noise = 0.01 + 0.3 * rng.float();
    const act = ACTS[rng.int(0, ACTS.length)]!;
    const W: Float64Array[] = [];
    for (let l = 0; l < layers; l++) {
      const w = new Float64Array(width * width);
      // Sparse-ish weights: each node reads a few parents.
      for (let i = 0; i < w.length; i++) w[i] = rng.float() < 0.5 ? (rng.normal() * 1.5) / Math.sqrt(width * 0.5) : 0;
      W.push(w);
    }
    const nodes = layers * width;
    const pick = rng.sampleDistinct(width, nodes, Math.min(F + 1, nodes - width)); // skip raw noise inputs
    const h = new Float64Array(width);
    const all = new Float64Array(nodes);
    for (let r = 0; r < n; r++) {
      for (let i = 0; i < width; i++) h[i] = rng.normal();
      for (let l = 0; l < layers; l++) {
        const w = W[l]!;
        const next = new Float64Array(width);
        for (let i = 0; i < width; i++) {
          let s = 0;
          for (let j = 0; j < width; j++) s += w[i * width + j]! * h[j]!;
          next[i] = act(s) + noise * rng.normal();
        }
        h.set(next);
        all.set(next, l * width);
      }
      for (let f = 0; f < F; f++) X[r * F + f] = all[pick[f % pick.length]! - width]! ?? 0;
      t[r] = all[pick[pick.length - 1]! - width]!;
    }
    cutColumns(rng, X, n, F, o.levels, false);
    return { X, t };
  }
  for (let i = 0; i < X.length; i++) X[i] = rng.float() < 0.5 ? rng.normal() : rng.float() * 2 - 1;
  const kept = cutColumns(rng, X, n, F, o.levels, true);
  if (kind === 'tree') {
    // Sum of random axis-aligned trees: piecewise-constant targets with interactions.
    const trees = rng.int(1, 6);
    const depth = rng.int(2, 6);
    for (let k = 0; k < trees; k++) {
      const nodes = (1 << depth) - 1;
      const feat = Int32Array.from({ length: nodes }, () => rng.int(0, F));
      const thr = Float64Array.from({ length: nodes }, () => rng.normal() * 0.7);
      const leaf = Float64Array.from({ length: 1 << depth }, () => rng.normal());
      for (let r = 0; r < n; r++) {
        let node = 0;
        for (let d = 0; d < depth; d++) node = 2 * node + (X[r * F + feat[node]!]! > thr[node]! ? 2 : 1);
        t[r] += leaf[node - nodes]!;
      }
    }
    for (let r = 0; r < n; r++) t[r] += 0.1 * rng.normal();
    observeLevels(X, n, F, kept);
    return { X, t };
  }
  const w = Float64Array.from({ length: F }, () => (rng.float() < o.relevant ? rng.normal() : 0));
  const noise = 0.05 + 0.5 * rng.float();
  for (let r = 0; r < n; r++) {
    let s = 0;
    for (let f = 0; f < F; f++) s += w[f]! * X[r * F + f]!;
    t[r] = s + noise * rng.normal();
  }
  observeLevels(X, n, F, kept);
  return { X, t };
}

/** Cut t into C classes at random quantiles, each class holding at least minShare of rows; labels permuted. */
function toClasses(rng: Rng, t: Float64Array, C: number, minShare: number): Int32Array | null {
  const sorted = Float64Array.from(t).sort();
  for (let attempt = 0; attempt < 20; attempt++) {
    const qs = Array.from({ length: C - 1 }, () => rng.float()).sort((a, b) => a - b);
    const cuts = qs.map((q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!);
    const y = Int32Array.from(t, (v) => cuts.filter((c) => v > c).length);
    const counts = new Array<number>(C).fill(0);
    for (const c of y) counts[c]!++;
    if (Math.min(...counts) >= Math.max(1, minShare * t.length)) {
      const perm = Array.from({ length: C }, (_, i) => i);
      rng.shuffle(perm);
      return Int32Array.from(y, (c) => perm[c]!);
    }
  }
  return null;
}

/** Robust standardisation on train rows + clip, as for real tables; a few columns discretised (categorical-like). */
function finishFeatures(rng: Rng, X: Float64Array, n: number, F: number, nTrain: number, levels: Int32Array | null = null): Float32Array {
  const out = new Float32Array(n * F);
  for (let f = 0; f < F; f++) {
    const col = Float64Array.from({ length: n }, (_, r) => X[r * F + f]!);
    if (levels) {
      // Already levels (or numeric): categorical codes ranked by train frequency, as preprocess.ts ranks real categories.
      const L = levels[f]!;
      if (L > 0) {
        const counts = new Array<number>(L).fill(0);
        for (let r = 0; r < nTrain; r++) counts[col[r]!]!++;
        const rank = new Int32Array(L);
        Array.from({ length: L }, (_, l) => l).sort((a, b) => counts[b]! - counts[a]! || a - b).forEach((l, i) => (rank[l] = i));
        for (let r = 0; r < n; r++) col[r] = rank[col[r]!]!;
      }
    } else if (rng.float() < 0.15) {
      // Ordinal categorical: a few levels, ranked in a random order (as ordinal codes of a nominal column are).
      const levels = rng.int(2, 8);
      const perm = Array.from({ length: levels }, (_, i) => i);
      rng.shuffle(perm);
      const s = Float64Array.from(col).sort();
      const cuts = Array.from({ length: levels - 1 }, (_, i) => s[Math.floor(((i + 1) * n) / levels)]!);
      for (let r = 0; r < n; r++) col[r] = perm[cuts.filter((c) => col[r]! > c).length]!;
    }
    const tr = Array.from(col.subarray(0, nTrain)).sort((a, b) => a - b);
    const q = (p: number): number => tr[Math.min(tr.length - 1, Math.floor(p * (tr.length - 1)))]!;
    let scale = (q(0.75) - q(0.25)) / 1.349;
    if (!(scale > 1e-9)) {
      const m = tr.reduce((a, b) => a + b, 0) / tr.length;
      scale = Math.sqrt(tr.reduce((a, b) => a + (b - m) ** 2, 0) / tr.length) || 1;
    }
    const center = q(0.5);
    for (let r = 0; r < n; r++) out[r * F + f] = Math.max(-CLIP_Z, Math.min(CLIP_Z, (col[r]! - center) / scale));
  }
  return out;
}

/** A categorical-heavy table's levels per column (0: numeric). */
function categoricalPlan(rng: Rng, F: number): Int32Array {
  const share = rng.float() < 0.3 ? 1 : rng.float();
  const maxLevels = rng.int(2, 9);
  return Int32Array.from({ length: F }, () => (rng.float() < share ? rng.int(2, maxLevels + 1) : 0));
}

/** One batch of `size` tables sharing shape; deterministic in (seed, step). */
export function sampleBatch(seed: number, step: number, size: number, c: PriorConfig = PRIOR_DEFAULTS): PriorBatch {
  const rng = new Rng(Rng.derive(seed, `prior/${step}`));
  const nRows = rng.int(c.minRows, c.maxRows + 1);
  const nFeatures = logUniformInt(rng, c.minFeatures, c.maxFeatures);
  const nClasses = rng.int(2, c.maxClasses + 1);
  const nTrain = Math.floor(nRows * (0.5 + 0.3 * rng.float()));
  const total = c.mix.mlp + c.mix.tree + c.mix.linear;
  const tables: PriorTable[] = [];
  while (tables.length < size) {
    const u = rng.float() * total;
    const kind: PriorKind = u < c.mix.mlp ? 'mlp' : u < c.mix.mlp + c.mix.tree ? 'tree' : 'linear';
    // Shuffle rows so the split is random with respect to the generator.
    const o: GenOptions = {
      relevant: c.maxRelevant > c.minRelevant ? c.minRelevant + (c.maxRelevant - c.minRelevant) * rng.float() : c.minRelevant,
      levels: c.catTables > 0 && rng.float() < c.catTables ? categoricalPlan(rng, nFeatures) : null,
    };
    const { X, t } = generate(rng, kind, nRows, nFeatures, o);
    const y = toClasses(rng, t, nClasses, c.minClassShare);
    if (!y) continue;
    const x = finishFeatures(rng, X, nRows, nFeatures, nTrain, o.levels);
    tables.push({
      kind, nFeatures, nClasses, nTrain, nTest: nRows - nTrain,
      xTrain: x.slice(0, nTrain * nFeatures), yTrain: y.slice(0, nTrain),
      xTest: x.slice(nTrain * nFeatures), yTest: y.slice(nTrain),
    });
  }
  return { tables, nRows, nFeatures, nClasses, nTrain };
}

/** Streaming generator: batch after batch, forever (or `steps` of them), from `start`. */
export function* priorStream(seed: number, batchSize: number, c: PriorConfig = PRIOR_DEFAULTS, start = 0, steps = Infinity): Generator<PriorBatch> {
  for (let s = start; s < start + steps; s++) yield sampleBatch(seed, s, batchSize, c);
}
