/**
 * Grid suites (kind "grid", issue 22): what the bidirectional head-pattern methods keep of a trained
 * bidirectional model on the grid / masked-denoising task. For each (saved checkpoint, method,
 * budget): accuracy by iterative unmasking over the task's K steps with every layer attending through
 * the method's plans (SparseD and AdaSpa search at their step and reuse), the density the plans
 * listed, and the time of each denoising step and of a whole generation on one input at the
 * checkpoint's grid and at larger timing grids (random tokens; RoPE runs at any length). A dense case
 * per checkpoint is the reference for accuracy ratios and speed-ups. Offline searches (Sparse-vDiT,
 * PAROAttention, MMInference) calibrate on the task's validation split, never on test examples.
 */
import { createHash } from 'node:crypto';
import * as tf from '@tensorflow/tfjs-core';
import { ParamError, checkFields } from '../core/params.js';
import { canonical } from '../core/canonical.js';
import { Rng } from '../core/rng.js';
import { loadModel, type SavedModelMeta } from '../models/saved.js';
import { Transformer } from '../models/transformer.js';
import { captureQK, checkCheckpointEntries, checkpointName, checkpointTestBatch, checkpointValidBatch, timing, type CheckpointEntry } from './checkpoint-data.js';
import { denoise } from './denoise.js';
import { attendPlan, GRID_METHODS, gridMethod, gridMixer, type GridContext, type GridInputs, type GridMethodName, type GridPlan, type GridState } from '../kernels/grid-methods.js';
import { nBlocks } from '../kernels/layout.js';
import { gridShape, parseGridParams, type GridParams } from '../datasets/grid.js';
import type { GridGeom } from '../kernels/grid-patterns.js';
import type { Job } from './orchestrator.js';
import { SCHEMA_VERSION, type Fingerprint, type GridMetrics, type RunRecord } from '../reports/schema.js';

export interface GridSuiteConfig {
  checkpoints: CheckpointEntry[];
  methods: GridMethodName[];
  budgets: number[];
  block: number;
  examples: number;
  batch: number;
  calibrationExamples: number;
  reps: number;
  /** [frames, height, width] grids the costs are also timed at (random tokens). */
  timingGrids?: [number, number, number][];
  /** Block size at the timing grids (default: block); large grids want tiles the kernels run fast. */
  timingBlock?: number;
}

export const GRID_SUITE_DEFAULTS: Omit<GridSuiteConfig, 'checkpoints'> = {
  methods: [...GRID_METHODS], budgets: [0.25, 0.5], block: 8, examples: 200, batch: 50, calibrationExamples: 8, reps: 3,
};

export function validateGridSuite(raw: Record<string, unknown>): GridSuiteConfig {
  const w = 'suite.grid';
  checkFields(w, raw, {
    checkpoints: { list: true }, methods: { each: GRID_METHODS }, budgets: { list: true }, block: { int: [1, 1024] }, examples: { int: [1, 1 << 20] },
    batch: { int: [1, 4096] }, calibrationExamples: { int: [1, 1024] }, reps: { int: [1, 1000] }, timingGrids: { list: true }, timingBlock: { int: [1, 1024] },
  });
  const c = { ...GRID_SUITE_DEFAULTS, ...raw } as GridSuiteConfig;
  if (!Array.isArray(c.checkpoints) || c.checkpoints.length === 0) throw new ParamError(`${w}.checkpoints`, 'must be a non-empty list of { "path": ..., "task": "grid" }');
  c.checkpoints.forEach((k, i) => checkFields(`${w}.checkpoints[${i}]`, k, { path: { str: true }, task: { oneOf: ['grid'] }, name: { str: true } }));
  c.budgets.forEach((b, i) => {
    if (!(typeof b === 'number' && b > 0 && b <= 1)) throw new ParamError(`${w}.budgets[${i}]`, `must be a number in (0, 1], got ${JSON.stringify(b)}`);
  });
  (c.timingGrids ?? []).forEach((g, i) => {
    if (!Array.isArray(g) || g.length !== 3 || !g.every((x) => Number.isInteger(x) && x >= 1)) throw new ParamError(`${w}.timingGrids[${i}]`, `must be [frames, height, width] of positive integers, got ${JSON.stringify(g)}`);
  });
  return c;
}

export function checkGridCheckpoints(c: GridSuiteConfig): SavedModelMeta[] {
  const metas = checkCheckpointEntries('suite.grid.checkpoints', c.checkpoints, 'the grid methods replace a dense transformer\'s attention');
  metas.forEach((m, i) => {
    if (m.model.params.causal !== false) throw new ParamError(`suite.grid.checkpoints[${i}].path`, `${c.checkpoints[i]!.path} is a causal model; the grid methods are bidirectional (train with "causal": false)`);
  });
  return metas;
}

export interface GridCase {
  checkpoint: CheckpointEntry;
  meta: SavedModelMeta;
  method: GridMethodName | 'dense';
  budget: number | null;
}

/** Efficient-vDiT's tile has no budget: one case. */
const hasBudget = (m: string) => m !== 'dense' && m !== 'efficient-vdit';

export function gridCases(c: GridSuiteConfig, metas: SavedModelMeta[]): GridCase[] {
  return c.checkpoints.flatMap((k, i): GridCase[] => [
    { checkpoint: k, meta: metas[i]!, method: 'dense', budget: null },
    ...c.methods.flatMap((m): GridCase[] => (hasBudget(m) ? c.budgets.map((b) => ({ checkpoint: k, meta: metas[i]!, method: m, budget: b })) : [{ checkpoint: k, meta: metas[i]!, method: m, budget: null }])),
  ]);
}

export const gridLabel = (k: GridCase): string => `grid ${checkpointName(k.checkpoint)} | ${k.method}${k.budget === null ? '' : ` @ ${k.budget}`}`;

export function gridCaseId(suite: string, c: GridSuiteConfig, k: GridCase, backend: string): string {
  const cfg = { suite, weights: k.meta.weights.sha256, method: k.method, budget: k.budget, block: c.block, examples: c.examples, calibrationExamples: c.calibrationExamples, timingGrids: c.timingGrids ?? null, timingBlock: c.timingBlock ?? null, backend };
  return createHash('sha256').update(canonical(cfg)).digest('hex').slice(0, 16);
}

const geomOf = (p: GridParams): GridGeom => ({ frames: p.frames, height: p.height, width: p.width, textLen: gridShape(p).seqLen - gridShape(p).gridLen });

/** q and k of every layer for one input, attending densely while capturing. */
const capture = (model: Transformer, ids: Int32Array, L: number, scale: number): GridInputs[] =>
  captureQK(model, ids, L, (q, k, v) => attendPlan(q, k, v, null, scale));

/** Time of each of the K steps and of the whole generation on one input of `geom` (plans built per step, as in scoring). */
function timeGeneration(model: Transformer, method: GridMethodName | 'dense', ctx: GridContext, state: GridState | undefined, K: number, ids: Int32Array, reps: number) {
  const L = ids.length;
  const per: number[][] = Array.from({ length: K }, () => []);
  const gen: number[] = [];
  const m = method === 'dense' ? undefined : gridMethod(method);
  for (let r = 0; r <= reps; r++) {
    let step = 0;
    const memos = new Map<number, Map<number, GridPlan>>();
    model.setMixer(m ? gridMixer(m, ctx, state, () => step, memos) : (q, k, v) => attendPlan(q, k, v, null, ctx.scale));
    const t0 = performance.now();
    try {
      for (step = 0; step < K; step++) {
        const s0 = performance.now();
        const h = model.hidden(tf.tensor2d(ids, [1, L], 'int32'));
        h.dataSync();
        h.dispose();
        if (r > 0) per[step]!.push(performance.now() - s0); // the first repetition warms up
      }
    } finally {
      model.setMixer();
    }
    if (r > 0) gen.push(performance.now() - t0);
  }
  return { stepMs: per.map(timing), generation: timing(gen) };
}

const calibrations = new Map<string, GridState | undefined>();

export async function measureGridCase(suite: string, c: GridSuiteConfig, k: GridCase, backend: string, fp: Fingerprint): Promise<RunRecord> {
  const t0 = performance.now();
  const startedAt = new Date().toISOString();
  const p = parseGridParams(k.meta.task.params);
  const grids = (c.timingGrids ?? []).map(([frames, height, width]) => ({ frames, height, width, textLen: 0 }));
  const maxLen = Math.max(gridShape(p).seqLen, ...grids.map((g) => g.frames * g.height * g.width));
  const { model } = loadModel(k.checkpoint.path, { maxLen });
  try {
    if (!(model instanceof Transformer)) throw new ParamError('suite.grid.checkpoints', `${k.checkpoint.path} is not a transformer`);
    const H = model.c.nHeads, D = model.c.dModel / H;
    const scale = 1 / Math.sqrt(D);
    const geom = geomOf(p);
    const ctx: GridContext = { geom, block: c.block, scale, budget: k.budget ?? 1 };
    const method = k.method === 'dense' ? undefined : gridMethod(k.method);
    let state: GridState | undefined;
    const calT0 = performance.now();
    if (method?.calibrate) {
      const key = `${k.meta.weights.sha256}/${k.method}/${k.budget}/${c.block}/${c.calibrationExamples}`;
      if (!calibrations.has(key)) {
        const cal = checkpointValidBatch(k.meta, c.calibrationExamples);
        const perInput = Array.from({ length: cal.n }, (_, i) => capture(model, cal.inputs.slice(i * cal.seqLen, (i + 1) * cal.seqLen), cal.seqLen, scale));
        calibrations.set(key, method.calibrate(perInput[0]!.map((_, l) => perInput.map((x) => x[l]!)), ctx));
        for (const x of perInput.flat()) tf.dispose([x.q, x.k]);
      }
      state = calibrations.get(key);
    }
    const calibrationSeconds = (performance.now() - calT0) / 1000;
    // Accuracy by iterative unmasking through the method's plans.
    const test = checkpointTestBatch(k.meta, c.examples);
    const densities: number[] = [];
    let step = 0;
    const memos = new Map<number, Map<number, GridPlan>>();
    if (method) model.setMixer(gridMixer(method, ctx, state, () => step, memos, densities));
    else model.setMixer((q, kk, v) => attendPlan(q, kk, v, null, scale));
    let dn;
    try {
      dn = denoise(model, test, p.denoiseSteps, c.batch, (s) => {
        step = s;
        if (s === 0) memos.clear();
      });
    } finally {
      model.setMixer();
    }
    // One head's layout per layer of the first test input at the last step, for the leaderboard's picture.
    const picture = method ? layoutPicture(model, method, ctx, state, test.inputs.slice(0, test.seqLen), p.denoiseSteps) : null;
    const rng = new Rng(Rng.derive(0, 'grid/timing'));
    const idsOf = (L: number) => Int32Array.from({ length: L }, () => rng.int(2, 2 + p.gridVocab));
    const timings = [{ geom, ids: test.inputs.slice(0, test.seqLen) }, ...grids.map((g) => ({ geom: g, ids: idsOf(g.frames * g.height * g.width) }))].map(({ geom: g, ids }) => {
      const gctx = g === geom ? ctx : { ...ctx, geom: g, block: c.timingBlock ?? c.block };
      // Offline states are per length: at a timing grid the searches run on that grid's own random input.
      let st = state;
      if (method?.calibrate && g !== geom) {
        const x = capture(model, ids, ids.length, scale);
        st = method.calibrate(x.map((e) => [e]), gctx);
        tf.dispose(x.flatMap((e) => [e.q, e.k]));
      }
      const t = timeGeneration(model, k.method, gctx, st, p.denoiseSteps, ids, c.reps);
      return { frames: g.frames, height: g.height, width: g.width, tokens: ids.length, stepMs: t.stepMs, generation: t.generation };
    });
    const metrics: GridMetrics = {
      checkpoint: checkpointName(k.checkpoint), checkpointSha256: k.meta.weights.sha256, method: k.method, budget: k.budget, block: c.block,
      steps: p.denoiseSteps, density: densities.length ? densities.reduce((s, x) => s + x, 0) / densities.length : 1, calibrationSeconds,
      timings, denseAccuracy: null, accuracyRatio: null, picture,
    };
    return record(suite, c, k, backend, fp, t0, startedAt, { accuracy: dn.accuracy, masked: dn.masked, examples: dn.examples, exactMatch: dn.exactMatch, grid: metrics, parameterCount: model.variables().reduce((s, v) => s + v.size, 0) });
  } finally {
    model.dispose();
  }
}

/** Listed blocks of head 0 of every layer for one input at the last denoising step. */
function layoutPicture(model: Transformer, method: ReturnType<typeof gridMethod>, ctx: GridContext, state: GridState | undefined, ids: Int32Array, K: number): GridMetrics['picture'] {
  const L = ids.length;
  const heads: number[][][] = [];
  const memos = new Map<number, Map<number, GridPlan>>();
  let step = 0;
  const inner = gridMixer(method, ctx, state, () => step, memos);
  model.setMixer((q, k, v, layer) => {
    const out = inner(q, k, v, layer);
    if (step === K - 1) {
      const plan = memos.get(0)?.get(layer) ?? method.plan({ q: tf.reshape(q, [q.shape[1], L, q.shape[3]]) as tf.Tensor3D, k: tf.reshape(k, [k.shape[1], L, k.shape[3]]) as tf.Tensor3D, layer }, step, ctx, state, new Map());
      const l = plan?.layout;
      const n = nBlocks(L, Math.min(ctx.block, L));
      heads[layer] = Array.from({ length: q.shape[1] }, (_, h) => {
        if (!l) return Array.from({ length: n * n }, (_, t) => t);
        const cells: number[] = [];
        for (let i = 0; i < n; i++) for (let p = l.rowPtr[h * (n + 1) + i]!; p < l.rowPtr[h * (n + 1) + i + 1]!; p++) cells.push(i * n + l.colIdx[p]!);
        return cells;
      });
    }
    return out;
  });
  try {
    for (step = 0; step < K; step++) tf.dispose(model.hidden(tf.tensor2d(ids, [1, L], 'int32')));
  } finally {
    model.setMixer();
  }
  return { blocks: nBlocks(L, Math.min(ctx.block, L)), layers: heads };
}

function record(suite: string, c: GridSuiteConfig, k: GridCase, backend: string, fp: Fingerprint, t0: number, startedAt: string,
  x: { accuracy: number; masked: number; examples: number; exactMatch: number; grid: GridMetrics; parameterCount: number }): RunRecord {
  const at = x.grid.timings[0]!;
  return {
    schemaVersion: SCHEMA_VERSION, runId: gridCaseId(suite, c, k, backend), suite, label: gridLabel(k),
    task: k.meta.task, model: { ...k.meta.model, parameterCount: x.parameterCount },
    train: {}, optimizer: {}, latencyConfig: {}, seed: k.meta.seed, backend, fingerprint: fp, gitSha: fp.gitSha,
    metrics: {
      accuracy: x.accuracy, accuracyDenominator: x.masked, exactMatch: x.exactMatch, examples: x.examples,
      finalTrainLoss: NaN, bestValidAccuracy: NaN, trainSteps: k.meta.provenance.trainSteps, stoppedBy: 'n/a', trainSeconds: k.meta.provenance.trainSeconds, trainTokensPerSec: 0,
      peakMemoryBytes: 0, lossCurve: [], validCurve: [],
      latency: [{ batch: 1, length: at.tokens, medianMs: at.generation.medianMs, p10Ms: at.generation.p10Ms, p90Ms: at.generation.p90Ms, samples: at.generation.samples, tokensPerSec: at.tokens / (at.generation.medianMs / 1000) }],
      grid: x.grid,
    },
    diagnostics: {}, fallbackKernels: { total: 0, byKernel: {} },
    wallTimeSeconds: (performance.now() - t0) / 1000, startedAt, finishedAt: new Date().toISOString(),
  } as RunRecord;
}

/** Accuracy ratios and generation speed-ups against each checkpoint's dense case, per timing grid. */
export function addGridRatios(records: RunRecord[]): void {
  for (const r of records) {
    const g = r.metrics.grid;
    if (!g || g.method === 'dense') continue;
    const d = records.find((x) => x.metrics.grid?.method === 'dense' && x.metrics.grid.checkpointSha256 === g.checkpointSha256 && x.backend === r.backend);
    if (!d) continue;
    g.denseAccuracy = d.metrics.accuracy;
    g.accuracyRatio = d.metrics.accuracy ? (r.metrics.accuracy ?? 0) / d.metrics.accuracy : null;
    for (const t of g.timings) {
      const dt = d.metrics.grid!.timings.find((x) => x.tokens === t.tokens);
      if (dt) t.speedup = dt.generation.medianMs / t.generation.medianMs;
    }
  }
}

export function gridJobs(suite: string, c: GridSuiteConfig, cases: GridCase[], backend: string, fp: Fingerprint): Job[] {
  return cases.map((k) => ({ id: gridCaseId(suite, c, k, backend), label: gridLabel(k), run: () => measureGridCase(suite, c, k, backend, fp) }));
}
