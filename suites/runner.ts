/**
 * One training run: build the task and the model, train, evaluate on held-out data, measure latency,
 * and return its record. A loss that becomes non-finite ends the run as a failed record (no accuracy).
 * `trainJobs` turns a training suite's runs into the orchestrator's jobs.
 */
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type { RunConfig } from './types.js';
import { runId, runLabel } from './grid.js';
import { denoise } from './denoise.js';
import { GridTask } from '../datasets/grid.js';
import { batchLoss, measureTrainStep, train, type TrainProgress, type TrainResult } from './train.js';
import type { Job } from './orchestrator.js';
import { evaluate } from './evaluate.js';
import { measureLatency } from './latency.js';
import { buildTask } from '../datasets/registry.js';
import { MqarTask } from '../datasets/mqar.js';
import { NiahTask } from '../datasets/niah.js';
import { scoreByDecoding } from './generate.js';
import { buildModel } from '../models/registry.js';
import type { SequenceModel } from '../models/types.js';
import type { TokenBatch } from '../datasets/types.js';
import { parameterCount } from '../models/transformer.js';
import { SCHEMA_VERSION, type Fingerprint, type Metrics, type RunFailure, type RunRecord } from '../reports/schema.js';
import { fallbackCounts, resetFallbackCounts } from '../kernels/backend.js';
import { loadModel, readModelMeta, saveModel, savedTensors, type SavedModelMeta } from '../models/saved.js';
import { canonical } from '../core/canonical.js';
import { ParamError } from '../core/params.js';
import { readEvalFile } from '../datasets/eval-file.js';

export interface RunOptions {
  /** Save each trained model under DIR/<run id>/ (models/saved.ts). */
  saveModels?: string;
  /** Also score each trained model on this Zoology-format file (datasets/eval-file.ts). */
  evalFile?: string;
}

export async function runOne(c: RunConfig, fp: Fingerprint, onProgress: (p: TrainProgress) => void, o: RunOptions = {}): Promise<RunRecord> {
  const startedAt = new Date();
  const t0 = performance.now();
  resetFallbackCounts();
  const task = buildTask(c.task.name, c.task.params, c.seed);
  const maxLen = task instanceof NiahTask ? Math.max(task.seqLen, ...task.p.evalLengths) : task.seqLen;
  const model = buildModel(c.model.name, c.model.params, { vocabSize: task.vocabSize, maxLen, seed: c.seed });
  try {
    if (c.init) initFrom(model, c.init, c, task.vocabSize);
    const tr = train(model, task, c.train, c.optimizer, onProgress);
    if (tr.stoppedBy === 'nonFinite') return failedRecord(c, fp, model, tr, startedAt, t0);
    const peakMemoryBytes = await peakBytesOfStep(model, task, c.train.batchSize);
    const evalBatch = 64;
    model.resetDiagnostics?.(); // diagnostics (e.g. SeqBoat's activation rates) describe the test data
    let m: Pick<Metrics, 'accuracy' | 'accuracyDenominator' | 'exactMatch' | 'examples' | 'niahGrid' | 'extrapolationScore' | 'perExample' | 'generatedExactMatch'>;
    let denoiseMetrics: Metrics['denoise'];
    if (task instanceof MqarTask) {
      const ev = evaluate(model, task.testSet(), evalBatch);
      m = { accuracy: ev.accuracy, accuracyDenominator: ev.total, exactMatch: ev.exactMatch, examples: ev.examples, perExample: { correct: b64(ev.perExampleCorrect), total: b64(ev.perExampleTotal) } };
    } else if (task instanceof GridTask) {
      const test = task.testSet();
      const oneShot = evaluate(model, test, evalBatch);
      const dn = denoise(model, test, task.p.denoiseSteps, evalBatch);
      m = { accuracy: dn.accuracy, accuracyDenominator: dn.masked, exactMatch: dn.exactMatch, examples: dn.examples, perExample: { correct: b64(dn.perExampleCorrect), total: b64(dn.perExampleTotal) } };
      denoiseMetrics = { steps: task.p.denoiseSteps, oneShotAccuracy: oneShot.accuracy, stepMs: dn.stepMs };
    } else {
      const inRangeHits: number[] = [];
      // Answers generated token by token too: through the KV cache (transformers on native / cuda), else by recomputing the prefix.
      const cells = task.grid().map((cell) => {
        const ev = evaluate(model, cell.batch, evalBatch);
        if (cell.length <= task.seqLen) inRangeHits.push(...ev.perExample);
        const generated = scoreByDecoding(model, cell.batch, { batch: evalBatch }).generatedExactMatch;
        return { length: cell.length, depth: cell.depth, score: ev.exactMatch, examples: ev.examples, generated };
      });
      const inRange = cells.filter((x) => x.length <= task.seqLen);
      const beyond = cells.filter((x) => x.length > task.seqLen);
      const mean = (xs: typeof cells) => xs.reduce((s, x) => s + x.score * x.examples, 0) / xs.reduce((s, x) => s + x.examples, 0);
      const examples = inRange.reduce((s, x) => s + x.examples, 0);
      // NIAH's score is exact match per example: paired data are 0/1 per in-range example.
      const perExample = { correct: b64(Uint16Array.from(inRangeHits)), total: b64(new Uint16Array(inRangeHits.length).fill(1)) };
      const generatedExactMatch = inRange.reduce((s, x) => s + x.generated * x.examples, 0) / examples;
      m = { accuracy: mean(inRange), accuracyDenominator: examples, exactMatch: mean(inRange), examples, niahGrid: cells, extrapolationScore: beyond.length ? mean(beyond) : null, perExample, generatedExactMatch };
    }
    const evalFile = o.evalFile ? scoreEvalFile(model, o.evalFile, task.vocabSize, maxLen, evalBatch) : undefined;
    const diagnostics = model.diagnostics?.() ?? {}; // before latency, which feeds random tokens
    const latency = await measureLatency(model, task.vocabSize, c.latency, c.seed);
    if (o.saveModels) {
      saveModel(join(o.saveModels, runId(c)), model, {
        model: c.model, task: c.task, vocabSize: task.vocabSize, maxLen, seed: c.seed,
        provenance: {
          runId: runId(c), label: runLabel(c), gitSha: fp.gitSha, backend: c.backend, device: fp.gpu ?? fp.cpu,
          trainSteps: tr.steps, trainSeconds: tr.trainSeconds, testAccuracy: m.accuracy, createdAt: new Date().toISOString(),
          ...(c.init ? { initFrom: initProvenance(c.init) } : {}),
        },
      });
    }
    const trainStep = measureTrainStep(model, task, c.train.batchSize, c.optimizer); // trains further: last
    return record(c, fp, model, tr, startedAt, t0, { ...m, peakMemoryBytes, latency, trainStep, ...(denoiseMetrics ? { denoise: denoiseMetrics } : {}), ...(evalFile ? { evalFile } : {}) }, diagnostics);
  } finally {
    model.dispose();
  }
}

/** A model's score on an external Zoology-format set. */
export function scoreEvalFile(model: SequenceModel, path: string, vocabSize: number, maxLen: number, batch = 64): NonNullable<Metrics['evalFile']> {
  const f = readEvalFile(path, { vocabSize, maxLen });
  const ev = evaluate(model, f.batch, batch);
  return { path: f.path, sha256: f.sha256, accuracy: ev.accuracy, labelled: ev.total, exactMatch: ev.exactMatch, examples: ev.examples, seqLen: f.batch.seqLen };
}

function initProvenance(path: string): NonNullable<SavedModelMeta['provenance']['initFrom']> {
  const { meta } = readModelMeta(path);
  return { path, sha256: meta.weights.sha256, provenance: meta.provenance };
}

/** Copy a saved model's weights into a fresh model of the same name, parameters and vocabulary (fine-tuning, e.g. to longer lengths). */
function initFrom(model: SequenceModel, path: string, c: RunConfig, vocabSize: number): void {
  const { model: src, meta } = loadModel(path);
  try {
    if (meta.model.name !== c.model.name || canonical(meta.model.params) !== canonical(c.model.params) || meta.vocabSize !== vocabSize) {
      throw new ParamError('suite.entries.init', `${path} is ${meta.model.name} ${canonical(meta.model.params)} with vocabulary ${meta.vocabSize}; the run builds ${c.model.name} ${canonical(c.model.params)} with ${vocabSize}`);
    }
    const from = savedTensors(src);
    savedTensors(model).forEach((v, i) => v.assign(from[i]!));
  } finally {
    src.dispose();
  }
}

const b64 = (a: Uint16Array): string => Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('base64');

/** Peak tensor memory of one training step (forward + backward), measured by tfjs' profiler. */
async function peakBytesOfStep(model: SequenceModel, task: { trainBatch(s: number, b: number): TokenBatch }, batch: number): Promise<number> {
  const b = task.trainBatch(0, batch);
  const info = await tf.profile(() => {
    const { value, grads } = tf.variableGrads(() => batchLoss(model, b), model.variables());
    value.dispose();
    tf.dispose(Object.values(grads));
  });
  return info.peakBytes;
}

type EvalMetrics = Omit<Metrics, 'finalTrainLoss' | 'bestValidAccuracy' | 'trainSteps' | 'stoppedBy' | 'trainSeconds' | 'trainTokensPerSec' | 'lossCurve' | 'validCurve'>;

/** A run's record: its configuration, the training result and what evaluation measured. */
function record(c: RunConfig, fp: Fingerprint, model: SequenceModel, tr: TrainResult, startedAt: Date, t0: number, m: EvalMetrics, diagnostics: Record<string, number[]>, failure?: RunFailure): RunRecord {
  const fallbacks = fallbackCounts();
  return {
    schemaVersion: SCHEMA_VERSION, runId: runId(c), suite: c.suite, label: runLabel(c), task: c.task,
    model: { ...c.model, parameterCount: parameterCount(model) }, train: { ...c.train }, optimizer: { ...c.optimizer }, latencyConfig: { ...c.latency },
    seed: c.seed, backend: c.backend, fingerprint: fp, gitSha: fp.gitSha,
    metrics: {
      ...m, finalTrainLoss: tr.finalLoss, bestValidAccuracy: tr.bestValidAccuracy, trainSteps: tr.steps, stoppedBy: tr.stoppedBy,
      trainSeconds: tr.trainSeconds, trainTokensPerSec: tr.trainTokensPerSec, lossCurve: tr.lossCurve, validCurve: tr.validCurve,
    },
    diagnostics,
    fallbackKernels: { total: Object.values(fallbacks).reduce((a, b) => a + b, 0), byKernel: fallbacks },
    wallTimeSeconds: (performance.now() - t0) / 1000,
    ...(failure ? { failure } : {}),
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
  };
}

/** The record of a run whose loss became non-finite: what it was and when, and no result numbers. */
function failedRecord(c: RunConfig, fp: Fingerprint, model: SequenceModel, tr: TrainResult, startedAt: Date, t0: number): RunRecord {
  const message = `training loss became ${tr.finalLoss} at step ${tr.steps} (lr ${c.optimizer.lr}); lower the learning rate`;
  const none: EvalMetrics = { accuracy: null, accuracyDenominator: 0, exactMatch: NaN, examples: 0, peakMemoryBytes: NaN, latency: [] };
  return record(c, fp, model, tr, startedAt, t0, none, {}, { reason: 'nonFinite', step: tr.steps, message });
}

/** A training suite's runs as orchestrator jobs (cost: the step budget times the tokens per step). */
export function trainJobs(runs: RunConfig[], fp: Fingerprint, o: RunOptions = {}): Job[] {
  return runs.map((c) => ({
    id: runId(c),
    label: runLabel(c),
    cost: c.train.maxSteps * c.train.batchSize * Number(c.task.params.inputSeqLen ?? c.task.params.seqLen ?? 1),
    run: (progress) => runOne(c, fp, (p: TrainProgress) => progress({ step: p.step, maxSteps: p.maxSteps, loss: p.loss, validAccuracy: p.validAccuracy }), o),
  }));
}
