/**
 * Sparsify suites: what post-training layout selectors keep of a trained model. For each (saved
 * checkpoint, method, budget): the model's test accuracy with every layer attending through the
 * method's layouts, the densities it actually computed (per layer and head), and its cost at the
 * checkpoint's length on one input: selector time, attention time and whole-prefill time (median,
 * p10, p90). A dense case per checkpoint is the reference for accuracy ratios and speedups.
 *
 * Calibration (MInference's pattern choice, Double Sparsity's channels, SeerAttention's gates) uses the
 * task's validation split, never the test examples, and is cached per process by (checkpoint, method,
 * budget-if-it-matters).
 */
import { createHash } from 'node:crypto';
import * as tf from '@tensorflow/tfjs-core';
import { ParamError, checkFields } from '../core/params.js';
import { canonical } from '../core/canonical.js';
import { Rng } from '../core/rng.js';
import { loadModel, type SavedModelMeta } from '../models/saved.js';
import { captureQK as captureHeads, checkCheckpointEntries, checkpointName, checkpointTestBatch, checkpointValidBatch, timing, type CheckpointEntry } from './checkpoint-data.js';
import { Transformer } from '../models/transformer.js';
import { evaluate } from './evaluate.js';
import { getSelector, SELECTOR_NAMES, type SelectorName } from '../kernels/selectors/index.js';
import { meanDensities, newDensityStats, selectorMixer, attendSelected } from '../kernels/selectors/attend.js';
import { disposeLayout, layoutReady } from '../kernels/device-layout.js';
import type { CalibrationState, HeadInputs, Selector, SelectorContext } from '../kernels/selectors/types.js';
import { checkBudget } from '../kernels/selectors/select.js';
import { blockSparseAttention } from '../kernels/block-sparse.js';
import { LAYOUT_DEFAULTS, layoutFor } from '../kernels/attention.js';
import { PRECISIONS, type Precision } from '../kernels/precision.js';
import type { Job } from './orchestrator.js';
import { SCHEMA_VERSION, type Fingerprint, type RunRecord, type SparsifyMetrics } from '../reports/schema.js';

export type SparsifyCheckpoint = CheckpointEntry;

export interface SparsifyConfig {
  checkpoints: SparsifyCheckpoint[];
  methods: SelectorName[];
  budgets: number[];
  block: number;
  /** Test examples scored per case (MQAR: the first n of the test set; NIAH: spread over the depths at the longest trained length). */
  examples: number;
  batch: number;
  calibrationExamples: number;
  /** Timed repetitions of each cost (after one warm-up). */
  reps: number;
  /** The operator's arithmetic for every case, dense included (cuda: 'bf16' is the prefill the issue compares against). */
  precision?: Precision;
  /**
   * Lengths the costs are timed at (default: the test length). Other lengths use seeded random tokens
   * (cost does not depend on the tokens, accuracy is only scored at the test length); a rotary-position
   * checkpoint runs at any length.
   */
  timingLengths?: number[];
  /** Methods timed only up to this length (layouts of token stripes grow as L^2 / B^2 masked blocks). */
  stripeMaxLength?: number;
}

export const SPARSIFY_DEFAULTS: Omit<SparsifyConfig, 'checkpoints'> = {
  methods: [...SELECTOR_NAMES], budgets: [0.1, 0.25, 0.5], block: 64, examples: 64, batch: 8, calibrationExamples: 4, reps: 5,
};

export function validateSparsify(raw: Record<string, unknown>): SparsifyConfig {
  const w = 'suite.sparsify';
  checkFields(w, raw, {
    checkpoints: { list: true }, methods: { each: SELECTOR_NAMES }, budgets: { list: true }, block: { int: [8, 1024] }, examples: { int: [1, 1 << 20] },
    batch: { int: [1, 4096] }, calibrationExamples: { int: [1, 1024] }, reps: { int: [1, 1000] }, precision: { oneOf: PRECISIONS },
    timingLengths: { ints: [16, 1 << 20] }, stripeMaxLength: { int: [16, 1 << 20] },
  });
  const c = { ...SPARSIFY_DEFAULTS, ...raw } as SparsifyConfig;
  if (!Array.isArray(c.checkpoints) || c.checkpoints.length === 0) throw new ParamError(`${w}.checkpoints`, 'must be a non-empty list of { "path": ..., "task": ... }');
  c.checkpoints.forEach((k, i) => checkFields(`${w}.checkpoints[${i}]`, k, { path: { str: true }, task: { oneOf: ['mqar', 'niah'] }, name: { str: true } }));
  c.budgets.forEach((b, i) => checkBudget(`${w}.budgets[${i}]`, b));
  return c;
}

/** Read every checkpoint's model.json and check it against its entry before anything runs. */
export function checkCheckpoints(c: SparsifyConfig): SavedModelMeta[] {
  return checkCheckpointEntries('suite.sparsify.checkpoints', c.checkpoints, "selectors replace a dense transformer's attention");
}

export interface SparsifyCase {
  checkpoint: SparsifyCheckpoint;
  meta: SavedModelMeta;
  /** 'dense': the reference case. */
  method: SelectorName | 'dense';
  budget: number;
}

export function sparsifyCases(c: SparsifyConfig, metas: SavedModelMeta[]): SparsifyCase[] {
  const out: SparsifyCase[] = [];
  c.checkpoints.forEach((checkpoint, i) => {
    out.push({ checkpoint, meta: metas[i]!, method: 'dense', budget: 1 });
    for (const method of c.methods) for (const budget of c.budgets) out.push({ checkpoint, meta: metas[i]!, method, budget });
  });
  return out;
}

const ckName = checkpointName;

export function sparsifyLabel(k: SparsifyCase): string {
  return `${ckName(k.checkpoint)} | ${k.method}${k.method === 'dense' ? '' : ` budget ${k.budget}`}`;
}

export function sparsifyCaseId(suite: string, c: SparsifyConfig, k: SparsifyCase, backend: string): string {
  const cfg = { suite, weights: k.meta.weights.sha256, method: k.method, budget: k.budget, block: c.block, examples: c.examples, calibrationExamples: c.calibrationExamples, precision: c.precision ?? null, timingLengths: c.timingLengths ?? null, backend };
  return createHash('sha256').update(canonical(cfg)).digest('hex').slice(0, 16);
}

const testBatch = checkpointTestBatch;
const calibrationBatch = checkpointValidBatch;

/** q and k of every layer for one input [1, L] (dense attention while capturing). */
function captureQK(model: Transformer, ids: Int32Array, L: number, precision?: Precision): HeadInputs[] {
  return captureHeads(model, ids, L, (q, k, v) => denseAttention(q, k, v, precision));
}

/** The model's own dense causal attention (the cached layout models use), at the suite's precision. */
function denseAttention(q: tf.Tensor4D, k: tf.Tensor4D, v: tf.Tensor4D, precision?: Precision): tf.Tensor4D {
  return blockSparseAttention(q, k, v, layoutFor(LAYOUT_DEFAULTS, q.shape[2]), precision ? { precision } : {}).out;
}

const calibrations = new Map<string, { state: CalibrationState | undefined; seconds: number }>();

function calibrate(s: Selector, model: Transformer, meta: SavedModelMeta, c: SparsifyConfig, budget: number, ctx: SelectorContext): { state: CalibrationState | undefined; seconds: number } {
  if (!s.calibrate) return { state: undefined, seconds: 0 };
  // MInference's pattern choice and MoA's spans depend on the budget; the channels and gates do not.
  const key = `${meta.weights.sha256}/${s.name}/${s.name === 'minference' || s.name === 'moa' ? budget : ''}/${c.calibrationExamples}/${c.block}`;
  const hit = calibrations.get(key);
  if (hit) return hit;
  const t0 = performance.now();
  const cal = calibrationBatch(meta, c.calibrationExamples);
  const perInput = Array.from({ length: cal.n }, (_, i) => captureQK(model, cal.inputs.slice(i * cal.seqLen, (i + 1) * cal.seqLen), cal.seqLen, c.precision));
  const byLayer = perInput[0]!.map((_, l) => perInput.map((x) => x[l]!));
  const state = s.calibrate(byLayer, budget, ctx);
  for (const x of perInput.flat()) tf.dispose([x.q, x.k]);
  const out = { state, seconds: (performance.now() - t0) / 1000 };
  calibrations.set(key, out);
  return out;
}

/**
 * Wall time of fn in ms, until one value of its result is on the host: queued device work is
 * included, but not copying the whole result back (8 MB at L = 16384, more than the attention itself).
 */
function timed(fn: () => tf.Tensor): number {
  const t0 = performance.now();
  const r = fn();
  const one = tf.slice(tf.reshape(r, [-1]), [0], [1]);
  one.dataSync();
  const ms = performance.now() - t0;
  tf.dispose([r, one]);
  return ms;
}

export async function measureSparsifyCase(suite: string, c: SparsifyConfig, k: SparsifyCase, backend: string, fp: Fingerprint): Promise<RunRecord> {
  const t0 = performance.now();
  const startedAt = new Date().toISOString();
  const { model, meta } = loadModel(k.checkpoint.path, { maxLen: Math.max(...(c.timingLengths ?? [0])) });
  try {
    if (!(model instanceof Transformer)) throw new ParamError('suite.sparsify.checkpoints.path', `${k.checkpoint.path}: not a transformer`);
    const H = Number(meta.model.params.nHeads ?? 2), D = Number(meta.model.params.dModel) / H;
    const ctx: SelectorContext = { block: c.block, scale: 1 / Math.sqrt(D), ...(c.precision ? { precision: c.precision } : {}) };
    const selector = k.method === 'dense' ? undefined : getSelector(k.method);
    const cal = selector ? calibrate(selector, model, meta, c, k.budget, ctx) : { state: undefined, seconds: 0 };
    const stats = newDensityStats();
    const mixer = selector
      ? selectorMixer(selector, k.budget, ctx, cal.state, stats)
      : (q: tf.Tensor4D, kk: tf.Tensor4D, v: tf.Tensor4D) => denseAttention(q, kk, v, c.precision);
    model.setMixer(mixer);
    const test = testBatch(meta, c.examples);
    const ev = evaluate(model, test, c.batch);
    const accuracy = meta.task.name === 'niah' ? ev.exactMatch : ev.accuracy;
    // Costs on one input (batch 1) per timing length: selection, attention and the whole prefill.
    const L = test.seqLen;
    const costs: SparsifyMetrics['costs'] = [];
    for (const len of c.timingLengths ?? [L]) {
      if (selector && STRIPE_METHODS.includes(k.method) && len > (c.stripeMaxLength ?? Infinity)) continue;
      const ids = len === L ? test.inputs.slice(0, L) : randomTokens(meta.vocabSize, len, len);
      costs.push(measureCosts(model, selector, k.budget, ctx, cal.state, ids, len, c.reps, c.precision));
    }
    model.setMixer();
    const ones = () => Array.from({ length: Number(meta.model.params.nLayers ?? 2) }, () => new Array<number>(H).fill(1));
    const dens = selector ? meanDensities(stats) : { blocks: ones(), pairs: ones() };
    const mean = (a: number[][]) => a.flat().reduce((s, x) => s + x, 0) / a.flat().length;
    const at = costs.find((x) => x.length === L) ?? costs[0]!;
    const prefill = at.prefill;
    const sparsify: SparsifyMetrics = {
      checkpoint: ckName(k.checkpoint), checkpointSha256: meta.weights.sha256, method: k.method, budget: k.budget,
      budgetMeaning: selector?.budgetMeaning ?? 'all causal blocks', block: c.block, length: L, ...(c.precision ? { precision: c.precision } : {}),
      blockDensity: mean(dens.blocks), pairDensity: mean(dens.pairs), perHead: dens,
      selector: at.selector, attention: at.attention, prefill, costs,
      calibrationSeconds: cal.seconds, denseAccuracy: null, accuracyRatio: null, prefillSpeedup: null, attentionSpeedup: null, selectorShare: null,
    };
    const finishedAt = new Date().toISOString();
    return {
      schemaVersion: SCHEMA_VERSION, runId: sparsifyCaseId(suite, c, k, backend), suite, label: sparsifyLabel(k),
      task: meta.task, model: { ...meta.model, parameterCount: model.variables().reduce((s, x) => s + x.size, 0) },
      train: {}, optimizer: {}, latencyConfig: { reps: c.reps }, seed: meta.seed, backend, fingerprint: fp, gitSha: fp.gitSha,
      metrics: {
        accuracy, accuracyDenominator: meta.task.name === 'niah' ? ev.examples : ev.total, exactMatch: ev.exactMatch, examples: ev.examples,
        finalTrainLoss: NaN, bestValidAccuracy: NaN, trainSteps: meta.provenance.trainSteps, stoppedBy: 'n/a', trainSeconds: meta.provenance.trainSeconds, trainTokensPerSec: 0,
        peakMemoryBytes: 0, lossCurve: [], validCurve: [],
        latency: [{ batch: 1, length: L, medianMs: prefill.medianMs, p10Ms: prefill.p10Ms, p90Ms: prefill.p90Ms, samples: prefill.samples, tokensPerSec: L / (prefill.medianMs / 1000) }],
        sparsify,
      },
      diagnostics: {}, fallbackKernels: { total: 0, byKernel: {} },
      wallTimeSeconds: (performance.now() - t0) / 1000, startedAt, finishedAt,
    };
  } finally {
    if (model instanceof Transformer) model.setMixer();
    model.dispose();
  }
}

/** Methods whose layouts hold token stripes inside blocks (their masked blocks grow as L^2 / B^2). */
const STRIPE_METHODS: string[] = ['anchor', 'double-sparsity', 'minference', 'flexprefill'];

function randomTokens(vocab: number, n: number, seed: number): Int32Array {
  const r = new Rng(seed);
  return Int32Array.from({ length: n }, () => r.int(1, vocab));
}

/** Selector, attention (all layers, q/k/v captured from a dense forward) and prefill times on one input. */
function measureCosts(model: Transformer, selector: Selector | undefined, budget: number, ctx: SelectorContext, state: CalibrationState | undefined, ids: Int32Array, L: number, reps: number, precision?: Precision): SparsifyMetrics['costs'][number] {
  const qk = captureQK(model, ids, L, precision);
  const v = qk.map((x) => tf.randomNormal(x.q.shape, 0, 1, 'float32', 1) as tf.Tensor3D);
  const selMs: number[] = [], attMs: number[] = [], preMs: number[] = [];
  model.setMixer(selector ? selectorMixer(selector, budget, ctx, state) : (q, k, vv) => denseAttention(q, k, vv, precision));
  try {
    for (let rep = 0; rep <= reps; rep++) {
      let sel = 0, att = 0;
      for (const [l, x] of qk.entries()) {
        const q4 = tf.expandDims(x.q, 0) as tf.Tensor4D, k4 = tf.expandDims(x.k, 0) as tf.Tensor4D, v4 = tf.expandDims(v[l]!, 0) as tf.Tensor4D;
        if (selector) {
          const s0 = performance.now();
          const selection = selector.select(x, budget, ctx, state);
          layoutReady(selection.layout); // a device layout: until the selector kernels have written it
          sel += performance.now() - s0;
          att += timed(() => attendSelected(q4, k4, v4, selection, ctx));
          disposeLayout(selection.layout);
        } else {
          att += timed(() => denseAttention(q4, k4, v4, precision));
        }
        tf.dispose([q4, k4, v4]);
      }
      const pre = timed(() => model.hidden(tf.tensor2d(ids, [1, L], 'int32')));
      if (rep > 0) { // rep 0 warms up (kernel loading, layout uploads)
        selMs.push(sel);
        attMs.push(att);
        preMs.push(pre);
      }
    }
  } finally {
    model.setMixer();
    tf.dispose([...qk.flatMap((x) => [x.q, x.k]), ...v]);
  }
  return { length: L, selector: selector ? timing(selMs) : null, attention: timing(attMs), prefill: timing(preMs) };
}

/** Ratios to each checkpoint's dense case (accuracy, prefill and attention speedups, the selector's share of dense attention). */
export function addSparsifyRatios(records: RunRecord[]): void {
  for (const r of records) {
    const s = r.metrics.sparsify;
    if (!s || s.method === 'dense') continue;
    const d = records.find((x) => x.metrics.sparsify?.method === 'dense' && x.metrics.sparsify.checkpointSha256 === s.checkpointSha256 && x.backend === r.backend);
    const ds = d?.metrics.sparsify;
    if (!d || !ds) continue;
    s.denseAccuracy = d.metrics.accuracy;
    s.accuracyRatio = d.metrics.accuracy ? (r.metrics.accuracy ?? 0) / d.metrics.accuracy : null;
    s.prefillSpeedup = ds.prefill.medianMs / s.prefill.medianMs;
    s.attentionSpeedup = ds.attention.medianMs / s.attention.medianMs;
    s.selectorShare = s.selector ? s.selector.medianMs / ds.attention.medianMs : null;
  }
}

export function sparsifyJobs(suite: string, c: SparsifyConfig, cases: SparsifyCase[], backend: string, fp: Fingerprint): Job[] {
  return cases.map((k) => ({ id: sparsifyCaseId(suite, c, k, backend), label: sparsifyLabel(k), run: () => measureSparsifyCase(suite, c, k, backend, fp) }));
}

