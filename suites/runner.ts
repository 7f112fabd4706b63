/**
 * Runs a suite: for each run, build the task and the model, train, evaluate on held-out data,
 * measure latency, and write the record. Records are written one file per run (atomically), so an
 * interrupted suite resumes where it stopped; the report is rebuilt after every run.
 */
import * as tf from '@tensorflow/tfjs-core';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RunConfig } from './types.js';
import { runId, runLabel } from './grid.js';
import { batchLoss, train, type TrainProgress } from './train.js';
import { evaluate } from './evaluate.js';
import { measureLatency } from './latency.js';
import { buildTask } from '../datasets/registry.js';
import { MqarTask } from '../datasets/mqar.js';
import { NiahTask } from '../datasets/niah.js';
import { buildModel } from '../models/registry.js';
import type { SequenceModel } from '../models/types.js';
import type { TokenBatch } from '../datasets/types.js';
import { parameterCount } from '../models/transformer.js';
import { SCHEMA_VERSION, type Fingerprint, type Metrics, type Report, type RunRecord } from '../reports/schema.js';
import { writeAtomic, writeReport } from '../reports/write.js';
import { checkRecord } from '../reports/read.js';
import { fallbackCounts, resetFallbackCounts } from '../kernels/backend.js';

export interface RunnerEvents {
  runStart(i: number, n: number, label: string): void;
  progress(i: number, n: number, label: string, p: TrainProgress, etaSeconds: number): void;
  runEnd(i: number, n: number, r: RunRecord, skipped: boolean): void;
}

export async function runOne(c: RunConfig, fp: Fingerprint, onProgress: (p: TrainProgress) => void): Promise<RunRecord> {
  const startedAt = new Date();
  const t0 = performance.now();
  resetFallbackCounts();
  const task = buildTask(c.task.name, c.task.params, c.seed);
  const maxLen = task instanceof NiahTask ? Math.max(task.seqLen, ...task.p.evalLengths) : task.seqLen;
  const model = buildModel(c.model.name, c.model.params, { vocabSize: task.vocabSize, maxLen, seed: c.seed });
  try {
    const tr = train(model, task, c.train, c.optimizer, onProgress);
    const peakMemoryBytes = await peakBytesOfStep(model, task, c.train.batchSize);
    const evalBatch = 64;
    model.resetDiagnostics?.(); // diagnostics (e.g. SeqBoat's activation rates) describe the test data
    let m: Pick<Metrics, 'accuracy' | 'accuracyDenominator' | 'exactMatch' | 'examples' | 'niahGrid' | 'extrapolationScore'>;
    if (task instanceof MqarTask) {
      const ev = evaluate(model, task.testSet(), evalBatch);
      m = { accuracy: ev.accuracy, accuracyDenominator: ev.total, exactMatch: ev.exactMatch, examples: ev.examples };
    } else {
      const cells = task.grid().map((cell) => {
        const ev = evaluate(model, cell.batch, evalBatch);
        return { length: cell.length, depth: cell.depth, score: ev.exactMatch, examples: ev.examples };
      });
      const inRange = cells.filter((x) => x.length <= task.seqLen);
      const beyond = cells.filter((x) => x.length > task.seqLen);
      const mean = (xs: typeof cells) => xs.reduce((s, x) => s + x.score * x.examples, 0) / xs.reduce((s, x) => s + x.examples, 0);
      const examples = inRange.reduce((s, x) => s + x.examples, 0);
      m = { accuracy: mean(inRange), accuracyDenominator: examples, exactMatch: mean(inRange), examples, niahGrid: cells, extrapolationScore: beyond.length ? mean(beyond) : null };
    }
    const diagnostics = model.diagnostics?.() ?? {}; // before latency, which feeds random tokens
    const latency = await measureLatency(model, task.vocabSize, c.latency, c.seed);
    const fallbacks = fallbackCounts();
    return {
      schemaVersion: SCHEMA_VERSION,
      runId: runId(c),
      suite: c.suite,
      label: runLabel(c),
      task: c.task,
      model: { ...c.model, parameterCount: parameterCount(model) },
      train: { ...c.train },
      optimizer: { ...c.optimizer },
      latencyConfig: { ...c.latency },
      seed: c.seed,
      backend: c.backend,
      fingerprint: fp,
      gitSha: fp.gitSha,
      metrics: {
        ...m,
        finalTrainLoss: tr.finalLoss,
        bestValidAccuracy: tr.bestValidAccuracy,
        trainSteps: tr.steps,
        stoppedBy: tr.stoppedBy,
        trainSeconds: tr.trainSeconds,
        trainTokensPerSec: tr.trainTokensPerSec,
        peakMemoryBytes,
        latency,
        lossCurve: tr.lossCurve,
        validCurve: tr.validCurve,
      },
      diagnostics,
      fallbackKernels: { total: Object.values(fallbacks).reduce((a, b) => a + b, 0), byKernel: fallbacks },
      wallTimeSeconds: (performance.now() - t0) / 1000,
      startedAt: startedAt.toISOString(),
      finishedAt: new Date().toISOString(),
    };
  } finally {
    model.dispose();
  }
}

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

export function recordPath(outDir: string, id: string): string {
  return join(outDir, 'runs', `${id}.json`);
}

export function loadRecord(path: string): RunRecord | undefined {
  try {
    return checkRecord(JSON.parse(readFileSync(path, 'utf8')), path);
  } catch {
    return undefined; // a damaged record is simply re-run
  }
}

export async function runSuite(
  suite: string,
  runs: RunConfig[],
  opts: { outDir: string; resume: boolean; fingerprint: Fingerprint },
  ev: RunnerEvents,
): Promise<{ report: Report; paths: { json: string; arrow: string } }> {
  const records: RunRecord[] = [];
  const reportPath = join(opts.outDir, 'report.json');
  const emit = () => writeReport(reportPath, { schemaVersion: SCHEMA_VERSION, suite, createdAt: new Date().toISOString(), fingerprint: opts.fingerprint, records });
  let paths = { json: reportPath, arrow: reportPath.replace(/\.json$/, '.arrow') };
  for (let i = 0; i < runs.length; i++) {
    const c = runs[i]!;
    const id = runId(c);
    const label = runLabel(c);
    const path = recordPath(opts.outDir, id);
    if (opts.resume && existsSync(path)) {
      const r = loadRecord(path);
      if (r) {
        records.push(r);
        ev.runEnd(i, runs.length, r, true);
        continue;
      }
    }
    ev.runStart(i, runs.length, label);
    const t0 = performance.now();
    const r = await runOne(c, opts.fingerprint, (p) => {
      const elapsed = (performance.now() - t0) / 1000;
      ev.progress(i, runs.length, label, p, (elapsed / p.step) * (p.maxSteps - p.step));
    });
    writeAtomic(path, JSON.stringify(r, null, 1));
    records.push(r);
    paths = emit();
    ev.runEnd(i, runs.length, r, false);
  }
  if (records.length && runs.length) paths = emit();
  return { report: { schemaVersion: SCHEMA_VERSION, suite, createdAt: new Date().toISOString(), fingerprint: opts.fingerprint, records }, paths };
}

/** One report for a finished list of records (after every run, so an interruption loses nothing). */
export function emitReport(outDir: string, suite: string, fp: Fingerprint, records: RunRecord[]): { json: string; arrow: string } {
  return writeReport(join(outDir, 'report.json'), { schemaVersion: SCHEMA_VERSION, suite, createdAt: new Date().toISOString(), fingerprint: fp, records });
}
