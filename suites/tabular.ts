/**
 * The tabular suites: ICL models and classical baselines on the shipped tables (stratified folds x
 * seeds, the same train/test rows for every model), the ICL-safety probe, and the width-scaling
 * benchmark of the row-interaction stage (block-sparse multi-scale vs dense, 8 .. 2048 features).
 */
import * as tf from '@tensorflow/tfjs-core';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { basename, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ParamError, checkFields, enumParam, intParam, rejectUnknown } from '../core/params.js';
import { loadShipped, loadTableFile, shippedTables } from '../datasets/tabular/load.js';
import { fitPreprocessor, transformRows } from '../datasets/tabular/preprocess.js';
import { stratifiedFolds, stratifiedSubsample } from '../datasets/tabular/splits.js';
import type { IclTask, RawTable } from '../datasets/tabular/types.js';
import { Rng } from '../core/rng.js';
import { checkpointFiles, loadCheckpoint } from '../models/tabular/checkpoint.js';
import { ENSEMBLE_TRANSFORMS, type EnsembleTransform } from '../models/tabular/icl-model.js';
import { IclNetwork } from '../models/tabular/icl-network.js';
import { iclConfig, iclModelFromCheckpoint } from '../models/tabular/registry.js';
import { KNearest, LogisticRegression, RandomForest } from '../models/tabular/baselines.js';
import { XGBoost } from '../models/tabular/xgboost.js';
import { OnnxIclModel } from '../models/tabular/onnx.js';
import type { TabularModel } from '../models/tabular/types.js';
import { density } from '../kernels/layout.js';
import { quantile } from './latency.js';
import { canonical } from '../core/canonical.js';
import { SCHEMA_VERSION, type Fingerprint, type RunRecord, type Metrics } from '../reports/schema.js';
import type { Job } from './orchestrator.js';

const ROOT = resolve(fileURLToPath(import.meta.url), '..', '..');

export const TABULAR_MODELS = ['orion-msp', 'dense-icl', 'logreg', 'knn', 'random-forest', 'xgboost', 'xgboost-tuned', 'onnx'] as const;
export const XGBOOST_MODELS: readonly string[] = ['xgboost', 'xgboost-tuned'];

export interface TabularModelSpec {
  name: (typeof TABULAR_MODELS)[number];
  /** ICL models: checkpoint folder (relative to the repository root); onnx: the .onnx file. */
  checkpoint?: string;
  path?: string;
  members?: number;
  /** ICL models: members of tables wider than this read random subsets of this many features (0: all). */
  maxFeatures?: number;
  /** ICL models: 'mixed' gives odd ensemble members quantile-normal features (see EnsembleOptions.transform). */
  transform?: EnsembleTransform;
  k?: number;
  trees?: number;
  /** xgboost: boosting rounds (default 100). */
  rounds?: number;
  /** xgboost-tuned: random-search configurations (default 30), at most maxRounds rounds each with early stopping after `patience`. */
  configs?: number;
  maxRounds?: number;
  patience?: number;
}

/** A table of the user's own in a suite's `tables` (beside shipped names): CSV or Arrow, its target column named. */
export interface UserTableSpec { path: string; target: string; name?: string }

export interface TabularConfig {
  /** Table names: shipped ones, and user tables' names (keys of userTables). */
  tables: string[];
  /** User tables by name: absolute path, target, and the file's content digest (part of each case id). */
  userTables?: Record<string, { path: string; target: string; digest: string }>;
  folds: number;
  /** Folds evaluated per seed (the first ones); the rest only shape the splits. */
  evalFolds: number;
  maxTrainRows: number;
  maxTestRows: number;
  maxClasses: number;
  models: TabularModelSpec[];
  /** Probe ICL-safety on this many test rows per (table, fold) for ICL models (0 = off)... */
  safetyProbes: number;
  /** ...on these tables only (the probe re-runs the model once per probed row). Default: all. */
  safetyTables?: string[];
  widthScaling?: { features: number[]; rows: number; timeMs: number; minSamples: number; checkpoint?: string };
}

export function validateTabular(raw: Record<string, unknown>): TabularConfig {
  const w = 'suite.tabular';
  rejectUnknown(w, raw, ['tables', 'folds', 'evalFolds', 'maxTrainRows', 'maxTestRows', 'maxClasses', 'models', 'safetyProbes', 'safetyTables', 'widthScaling']);
  const shipped = shippedTables().map((t) => t.name);
  const listed = raw.tables === 'all' ? shipped : (raw.tables as unknown[]);
  if (!Array.isArray(listed) || listed.length === 0) throw new ParamError(`${w}.tables`, `must be "all" or a non-empty list of shipped names (${shipped.join(', ')}) and {"path": "...", "target": "..."} objects`);
  const maxClasses = intParam(w, 'maxClasses', raw.maxClasses ?? 10, 2, 100);
  const tables: string[] = [];
  const userTables: NonNullable<TabularConfig['userTables']> = {};
  listed.forEach((t, i) => {
    if (typeof t === 'string') {
      if (!shipped.includes(t)) throw new ParamError(`${w}.tables[${i}]`, `unknown table ${JSON.stringify(t)}; shipped: ${shipped.join(', ')}; a file of your own: {"path": "x.csv", "target": "column"}`);
      tables.push(t);
      return;
    }
    const u = userTable(`${w}.tables[${i}]`, t, maxClasses);
    if (shipped.includes(u.name) || tables.includes(u.name)) throw new ParamError(`${w}.tables[${i}].name`, `${JSON.stringify(u.name)} is already a table of this suite${shipped.includes(u.name) ? ' (a shipped one)' : ''}; give this one another "name"`);
    tables.push(u.name);
    userTables[u.name] = { path: u.path, target: u.target, digest: u.digest };
  });
  const names = tables;
  const models = raw.models as TabularModelSpec[];
  if (!Array.isArray(models) || models.length === 0) throw new ParamError(`${w}.models`, `must be a non-empty list of {name: ${TABULAR_MODELS.join('|')}}`);
  models.forEach((m, i) => {
    rejectUnknown(`${w}.models[${i}]`, m as unknown as Record<string, unknown>, ['name', 'checkpoint', 'path', 'members', 'maxFeatures', 'transform', 'k', 'trees', 'rounds', 'configs', 'maxRounds', 'patience']);
    enumParam(`${w}.models[${i}]`, 'name', m.name, TABULAR_MODELS);
    if ((m.name === 'orion-msp' || m.name === 'dense-icl') && typeof m.checkpoint !== 'string') throw new ParamError(`${w}.models[${i}].checkpoint`, 'ICL models need a checkpoint folder');
    if (m.members !== undefined) intParam(`${w}.models[${i}]`, 'members', m.members, 1, 256);
    if (m.rounds !== undefined) intParam(`${w}.models[${i}]`, 'rounds', m.rounds, 1, 100_000);
    if (m.configs !== undefined) intParam(`${w}.models[${i}]`, 'configs', m.configs, 1, 1000);
    if (m.maxRounds !== undefined) intParam(`${w}.models[${i}]`, 'maxRounds', m.maxRounds, 1, 100_000);
    if (m.patience !== undefined) intParam(`${w}.models[${i}]`, 'patience', m.patience, 1, 100_000);
    for (const f of ['rounds', 'configs', 'maxRounds', 'patience'] as const) {
      const owner = f === 'rounds' ? 'xgboost' : 'xgboost-tuned';
      if (m[f] !== undefined && m.name !== owner) throw new ParamError(`${w}.models[${i}].${f}`, `applies to ${owner} only, not ${m.name}`);
    }
    if (m.maxFeatures !== undefined) intParam(`${w}.models[${i}]`, 'maxFeatures', m.maxFeatures, 0, 1 << 16);
    if (m.transform !== undefined) enumParam(`${w}.models[${i}]`, 'transform', m.transform, ENSEMBLE_TRANSFORMS);
    if (m.name === 'onnx' && typeof m.path !== 'string') throw new ParamError(`${w}.models[${i}].path`, 'the onnx model needs a path to a .onnx file');
    // Missing files are input errors (one line, exit 2), found before anything runs.
    if (m.checkpoint !== undefined) {
      let missing: string[];
      try {
        missing = checkpointFiles(repoPath(m.checkpoint)).filter((f) => !existsSync(f)).map((f) => `${f} missing`);
      } catch (e) {
        if (!(e instanceof ParamError)) throw e;
        missing = [e.detail];
      }
      if (missing.length) throw new ParamError(`${w}.models[${i}].checkpoint`, `no usable checkpoint at ${m.checkpoint}: ${missing.join('; ')}`);
    }
    if (m.path !== undefined && !existsSync(repoPath(m.path))) throw new ParamError(`${w}.models[${i}].path`, `no such file: ${m.path}`);
  });
  if (raw.widthScaling !== undefined) {
    checkFields(`${w}.widthScaling`, raw.widthScaling, { features: { ints: [1, 1 << 20] }, rows: { int: [1, 1 << 20] }, timeMs: { num: [1, 3.6e6] }, minSamples: { int: [1, 1e6] }, checkpoint: { str: true } });
    const ws = raw.widthScaling as { features?: unknown; rows?: unknown; timeMs?: unknown; minSamples?: unknown; checkpoint?: string };
    for (const k of ['features', 'rows', 'timeMs', 'minSamples'] as const) if (ws[k] === undefined) throw new ParamError(`${w}.widthScaling.${k}`, 'is required');
    if (ws.checkpoint !== undefined && !existsSync(join(repoPath(ws.checkpoint), 'model.json'))) throw new ParamError(`${w}.widthScaling.checkpoint`, `no checkpoint at ${ws.checkpoint} (model.json missing)`);
  }
  const folds = intParam(w, 'folds', raw.folds ?? 5, 2, 100);
  return {
    tables, ...(Object.keys(userTables).length ? { userTables } : {}), folds, evalFolds: intParam(w, 'evalFolds', raw.evalFolds ?? folds, 1, folds),
    maxTrainRows: intParam(w, 'maxTrainRows', raw.maxTrainRows ?? 512, 2), maxTestRows: intParam(w, 'maxTestRows', raw.maxTestRows ?? 512, 1),
    maxClasses, models, safetyProbes: intParam(w, 'safetyProbes', raw.safetyProbes ?? 0, 0, 1000),
    ...(raw.safetyTables !== undefined ? { safetyTables: validTables(`${w}.safetyTables`, raw.safetyTables, names) } : {}),
    widthScaling: raw.widthScaling as TabularConfig['widthScaling'],
  };
}

function validTables(field: string, v: unknown, names: string[]): string[] {
  if (!Array.isArray(v)) throw new ParamError(field, `must be a list of table names: ${names.join(', ')}`);
  for (const t of v) if (!names.includes(t as string)) throw new ParamError(field, `unknown table ${JSON.stringify(t)}; this suite's tables: ${names.join(', ')}`);
  return v as string[];
}

/** A user table entry: the file must load (same reader and errors as loadTableFile), its bytes are hashed. */
function userTable(field: string, t: unknown, maxClasses: number): { name: string; path: string; target: string; digest: string } {
  if (typeof t !== 'object' || t === null || Array.isArray(t)) throw new ParamError(field, `must be a shipped table name or {"path": "...", "target": "..."}, got ${JSON.stringify(t)}`);
  rejectUnknown(field, t as Record<string, unknown>, ['path', 'target', 'name']);
  const u = t as Partial<UserTableSpec>;
  if (typeof u.path !== 'string' || !u.path) throw new ParamError(`${field}.path`, 'must be the path of a .csv or .arrow file');
  if (typeof u.target !== 'string' || !u.target) throw new ParamError(`${field}.target`, 'must name the target column');
  if (u.name !== undefined && (typeof u.name !== 'string' || !/^[A-Za-z0-9_.-]+$/.test(u.name))) throw new ParamError(`${field}.name`, `must be letters, digits, '_', '.' or '-', got ${JSON.stringify(u.name)}`);
  const path = resolve(u.path);
  try {
    loadTableFile(path, u.target, { maxClasses, classPolicy: 'top' });
  } catch (e) {
    if (e instanceof ParamError) throw new ParamError(`${field} (${u.path})`, `${e.field}: ${e.detail}`);
    throw e;
  }
  const name = u.name ?? basename(path).replace(/\.[^.]+$/, '');
  return { name, path, target: u.target, digest: createHash('sha256').update(readFileSync(path)).digest('hex').slice(0, 16) };
}

/** A suite's table by name: a user file or a shipped table, with the suite's class limit. */
export function loadSuiteTable(c: Pick<TabularConfig, 'userTables' | 'maxClasses'>, name: string): RawTable {
  const u = c.userTables?.[name];
  return u ? loadTableFile(u.path, u.target, { maxClasses: c.maxClasses, classPolicy: 'top' }) : loadShipped(name, { maxClasses: c.maxClasses, classPolicy: 'top' });
}

const repoPath = (p: string): string => (isAbsolute(p) ? p : join(ROOT, p));

const digests = new Map<string, string>();
/**
 * The bytes a model reads (checkpoint model.json + the weights it names, or the .onnx file), hashed: recorded
 * with each run so `--resume` never reuses a result computed from a file since replaced at the same
 * path (a new shipped checkpoint after `git pull`). Undefined for models without a file.
 */
export function modelFileDigest(m: TabularModelSpec): string | undefined {
  // Once per model path and process: every case of a suite asks (resumed ones too).
  const key = m.checkpoint ?? m.path;
  if (key === undefined) return undefined;
  if (!digests.has(key)) {
    const files = m.checkpoint !== undefined ? checkpointFiles(repoPath(m.checkpoint)) : [repoPath(m.path!)];
    const h = createHash('sha256');
    for (const f of files) h.update(readFileSync(f));
    digests.set(key, h.digest('hex').slice(0, 16));
  }
  return digests.get(key);
}

export function modelLabel(m: TabularModelSpec): string {
  return m.name === 'knn' ? `knn k=${m.k ?? 15}` : m.name === 'random-forest' ? `random-forest ${m.trees ?? 100} trees` : m.name === 'xgboost-tuned' ? `xgboost-tuned ${m.configs ?? XGB_TUNED.configs} configs${m.maxRounds !== undefined && m.maxRounds !== XGB_TUNED.maxRounds ? ` <= ${m.maxRounds} rounds` : ''}` : m.name;
}

/** xgboost-tuned's search defaults: 30 configurations (the issue's 20-50), early stopping as TabArena (patience 50). */
export const XGB_TUNED = { configs: 30, maxRounds: 1000, patience: 50 };

export function buildTabularModel(m: TabularModelSpec, seed: number): TabularModel {
  switch (m.name) {
    case 'orion-msp':
    case 'dense-icl': {
      return iclModelFromCheckpoint(m.name, repoPath(m.checkpoint!), { members: m.members, maxFeatures: m.maxFeatures, transform: m.transform });
    }
    case 'logreg':
      return new LogisticRegression('logreg', { C: 1, maxIter: 500, tol: 1e-5 });
    case 'knn':
      return new KNearest(modelLabel(m), m.k ?? 15);
    case 'random-forest':
      return new RandomForest(modelLabel(m), { trees: m.trees ?? 100, seed });
    case 'xgboost':
      return new XGBoost('xgboost', { seed, tuned: false, rounds: m.rounds ?? 100 });
    case 'xgboost-tuned':
      return new XGBoost(modelLabel(m), { seed, tuned: true, configs: m.configs ?? XGB_TUNED.configs, maxRounds: m.maxRounds ?? XGB_TUNED.maxRounds, patience: m.patience ?? XGB_TUNED.patience });
    case 'onnx':
      return new OnnxIclModel(repoPath(m.path!));
  }
}

/** The rows of (table, fold, seed): the fold's rows are the test rows, the others train; both subsampled (stratified, seeded). */
export function splitRows(t: RawTable, c: Pick<TabularConfig, 'folds' | 'maxTrainRows' | 'maxTestRows'>, fold: number, seed: number): { train: number[]; test: number[] } {
  const y = t.target.codes;
  const folds = stratifiedFolds(y, c.folds, seed);
  const testAll = folds[fold]!;
  const inTest = new Set(testAll);
  const trainAll = [...y.keys()].filter((i) => !inTest.has(i));
  return { train: stratifiedSubsample(trainAll, y, c.maxTrainRows, seed, `tabular/train/${fold}`), test: stratifiedSubsample(testAll, y, c.maxTestRows, seed, `tabular/test/${fold}`) };
}

/** The ICL task of (table, fold, seed): preprocessing fitted on the (subsampled) train rows. */
export function makeTask(t: RawTable, c: Pick<TabularConfig, 'folds' | 'maxTrainRows' | 'maxTestRows'>, fold: number, seed: number): IclTask & { yTest: Int32Array } {
  const y = t.target.codes;
  const { train, test } = splitRows(t, c, fold, seed);
  const pre = fitPreprocessor(t, train);
  return {
    nFeatures: t.features.length, nClasses: t.target.classes.length, nTrain: train.length, nTest: test.length,
    xTrain: transformRows(t, pre, train), yTrain: Int32Array.from(train, (i) => y[i]!),
    xTest: transformRows(t, pre, test), yTest: Int32Array.from(test, (i) => y[i]!),
  };
}

export function accuracy(p: Float32Array, y: Int32Array, C: number): number {
  let right = 0;
  y.forEach((c, i) => {
    let best = 0;
    for (let k = 1; k < C; k++) if (p[i * C + k]! > p[i * C + best]!) best = k;
    if (best === c) right++;
  });
  return right / y.length;
}

/** Mean log-loss with probabilities clipped to [1e-15, 1] (scikit-learn's convention). */
export function logLoss(p: Float32Array, y: Int32Array, C: number): number {
  let s = 0;
  y.forEach((c, i) => (s -= Math.log(Math.max(1e-15, p[i * C + c]!))));
  return s / y.length;
}

/** Binary ROC-AUC by the rank statistic (ties get half credit). */
export function binaryAuc(score: ArrayLike<number>, pos: ArrayLike<boolean>): number {
  const idx = Array.from({ length: score.length }, (_, i) => i).sort((a, b) => score[a]! - score[b]!);
  let rankSum = 0;
  let nPos = 0;
  for (let i = 0; i < idx.length; ) {
    let j = i;
    while (j + 1 < idx.length && score[idx[j + 1]!] === score[idx[i]!]) j++;
    const avgRank = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) if (pos[idx[k]!]) {
      rankSum += avgRank;
      nPos++;
    }
    i = j + 1;
  }
  const nNeg = score.length - nPos;
  return (rankSum - (nPos * (nPos + 1)) / 2) / (nPos * nNeg);
}

/** ROC-AUC: binary for 2 classes, else one-vs-rest macro average over classes present with both outcomes. */
export function rocAuc(p: Float32Array, y: Int32Array, C: number): number {
  const one = (k: number): number => binaryAuc(Array.from(y, (_, i) => p[i * C + k]!), Array.from(y, (c) => c === k));
  if (C === 2) return one(1);
  const ks = Array.from({ length: C }, (_, k) => k).filter((k) => y.some((c) => c === k) && y.some((c) => c !== k));
  return ks.reduce((s, k) => s + one(k), 0) / ks.length;
}

/** Largest change of the other test rows' probabilities when test row `r` is replaced by noise. */
export async function iclSafetyDelta(model: TabularModel, task: IclTask, rows: number, seed: number): Promise<number> {
  const base = await model.predictProba(task);
  const rng = new Rng(Rng.derive(seed, 'tabular/safety'));
  const F = task.nFeatures;
  const C = task.nClasses;
  let worst = 0;
  for (let k = 0; k < Math.min(rows, task.nTest); k++) {
    const r = rng.int(0, task.nTest);
    const xTest = Float32Array.from(task.xTest);
    for (let j = 0; j < F; j++) xTest[r * F + j] = rng.normal() * 3;
    const p = await model.predictProba({ ...task, xTest });
    for (let i = 0; i < task.nTest; i++) if (i !== r) for (let c = 0; c < C; c++) worst = Math.max(worst, Math.abs(p[i * C + c]! - base[i * C + c]!));
  }
  return worst;
}

export interface TabularCase {
  table: string;
  fold: number;
  seed: number;
  model: TabularModelSpec;
}

export function tabularCases(c: TabularConfig, seeds: number[]): TabularCase[] {
  const out: TabularCase[] = [];
  for (const table of c.tables) for (const seed of seeds) for (let fold = 0; fold < c.evalFolds; fold++) for (const model of c.models) out.push({ table, fold, seed, model });
  return out;
}

export const tabularLabel = (k: TabularCase): string => `tabular ${k.table} fold ${k.fold} | ${modelLabel(k.model)} | seed ${k.seed}`;

export function tabularCaseId(suite: string, c: TabularConfig, k: TabularCase, backend: string): string {
  const { models: _m, widthScaling: _w, tables: _t, userTables: u, ...split } = c;
  // A user table's bytes are part of its cases' ids: an edited file is a new case, never a stale resume.
  const file = u?.[k.table];
  return createHash('sha256').update(canonical({ suite, split, k, backend, ...(file ? { tableDigest: file.digest } : {}) })).digest('hex').slice(0, 16);
}

function emptyMetrics(): Metrics {
  return {
    accuracy: null, accuracyDenominator: 0, exactMatch: 0, examples: 0, finalTrainLoss: NaN, bestValidAccuracy: NaN, trainSteps: 0,
    stoppedBy: 'n/a', trainSeconds: 0, trainTokensPerSec: 0, peakMemoryBytes: 0, lossCurve: [], validCurve: [], latency: [],
  };
}

const tableCache = new Map<string, RawTable>();
let lastTask: { key: string; task: ReturnType<typeof makeTask> } | undefined;

/** Cases run model after model on one (table, fold, seed): split and preprocess once for all of them. */
function cachedTask(c: TabularConfig, k: TabularCase): ReturnType<typeof makeTask> {
  const key = canonical({ table: k.table, fold: k.fold, seed: k.seed, folds: c.folds, maxTrainRows: c.maxTrainRows, maxTestRows: c.maxTestRows, maxClasses: c.maxClasses });
  if (lastTask?.key !== key) {
    let table = tableCache.get(k.table);
    if (!table) tableCache.set(k.table, (table = loadSuiteTable(c, k.table)));
    lastTask = { key, task: makeTask(table, c, k.fold, k.seed) };
  }
  return lastTask.task;
}

export async function runTabularCase(suite: string, c: TabularConfig, k: TabularCase, backend: string, fp: Fingerprint): Promise<RunRecord> {
  const t0 = performance.now();
  const startedAt = new Date().toISOString();
  const task = cachedTask(c, k);
  const digest = modelFileDigest(k.model);
  const model = buildTabularModel(k.model, k.seed);
  const p0 = performance.now();
  const p = await model.predictProba(task);
  const seconds = (performance.now() - p0) / 1000;
  const icl = k.model.name === 'orion-msp' || k.model.name === 'dense-icl';
  const probed = icl && c.safetyProbes > 0 && (!c.safetyTables || c.safetyTables.includes(k.table));
  const safety = probed ? await iclSafetyDelta(model, task, c.safetyProbes, k.seed) : null;
  const parameterCount = model.parameterCount;
  const tuned = model instanceof XGBoost ? model.lastChoice : undefined;
  model.dispose?.();
  const C = task.nClasses;
  const acc = accuracy(p, task.yTest, C);
  return {
    schemaVersion: SCHEMA_VERSION, runId: tabularCaseId(suite, c, k, backend), suite, label: tabularLabel(k),
    task: { name: 'tabular', params: { table: k.table, ...(c.userTables?.[k.table] ? { path: c.userTables[k.table]!.path, tableDigest: c.userTables[k.table]!.digest } : {}), fold: k.fold, folds: c.folds, maxTrainRows: c.maxTrainRows, maxTestRows: c.maxTestRows, maxClasses: c.maxClasses } },
    model: { name: k.model.name, size: modelLabel(k.model), params: { ...k.model, ...(digest ? { fileDigest: digest } : {}) }, parameterCount },
    train: {}, optimizer: {}, latencyConfig: {}, seed: k.seed, backend, fingerprint: fp, gitSha: fp.gitSha,
    metrics: {
      ...emptyMetrics(), accuracy: acc, accuracyDenominator: task.nTest, exactMatch: acc, examples: task.nTest,
      tabular: { table: k.table, fold: k.fold, folds: c.folds, rocAuc: rocAuc(p, task.yTest, C), logLoss: logLoss(p, task.yTest, C), nTrain: task.nTrain, nTest: task.nTest, nFeatures: task.nFeatures, nClasses: C, seconds, iclSafetyMaxDelta: safety, ...(tuned ? { tuned: { ...tuned.params, rounds: tuned.rounds, validLoss: tuned.validLoss } } : {}) },
    },
    diagnostics: {}, fallbackKernels: { total: 0, byKernel: {} },
    wallTimeSeconds: (performance.now() - t0) / 1000, startedAt, finishedAt: new Date().toISOString(),
  };
}

export const widthLabel = (features: number, rowAttention: string): string => `width ${features} features | row interaction ${rowAttention}`;

export function widthCaseId(suite: string, c: NonNullable<TabularConfig['widthScaling']>, features: number, rowAttention: string, backend: string): string {
  return createHash('sha256').update(canonical({ suite, c, features, rowAttention, backend })).digest('hex').slice(0, 16);
}

/** Width scaling: one forward of the row-interaction stage for `rows` rows at each feature count. */
export async function runWidthCase(suite: string, c: NonNullable<TabularConfig['widthScaling']>, features: number, rowAttention: 'sparse' | 'dense', backend: string, fp: Fingerprint): Promise<RunRecord> {
  const t0 = performance.now();
  const startedAt = new Date().toISOString();
  const net = c.checkpoint ? loadCheckpoint(repoPath(c.checkpoint), { rowAttention }).net : new IclNetwork(iclConfig(rowAttention === 'sparse' ? 'orion-msp' : 'dense-icl'), 0);
  const rng = new Rng(Rng.derive(0, `width/${features}`));
  const cells = tf.tensor3d(Float32Array.from({ length: c.rows * features * net.c.dCol }, () => rng.normal()), [c.rows, features, net.c.dCol]);
  const call = (): tf.Tensor => net.interactRows(cells);
  tf.tidy(() => call()).dispose(); // warm-up: layouts built, buffers pooled
  const prof = await tf.profile(() => tf.tidy(call));
  (prof.result as tf.Tensor).dispose();
  const samples: number[] = [];
  const deadline = performance.now() + c.timeMs;
  while (samples.length < c.minSamples || performance.now() < deadline) {
    const s = performance.now();
    const out = tf.tidy(call);
    await out.data();
    out.dispose();
    samples.push(performance.now() - s);
    if (samples.length >= 200) break;
  }
  samples.sort((a, b) => a - b);
  const L = net.c.cls + features;
  const dens = density(net.rowLayout(L));
  for (const v of net.vars) v.dispose();
  cells.dispose();
  const median = quantile(samples, 0.5);
  return {
    schemaVersion: SCHEMA_VERSION, runId: widthCaseId(suite, c, features, rowAttention, backend), suite, label: widthLabel(features, rowAttention),
    task: { name: 'width-scaling', params: { features, rows: c.rows } },
    model: { name: rowAttention === 'sparse' ? 'orion-msp' : 'dense-icl', size: 'row-interaction', params: { rowAttention }, parameterCount: net.parameterCount },
    train: {}, optimizer: {}, latencyConfig: { timeMs: c.timeMs, minSamples: c.minSamples }, seed: 0, backend, fingerprint: fp, gitSha: fp.gitSha,
    metrics: {
      ...emptyMetrics(), peakMemoryBytes: prof.peakBytes,
      latency: [{ batch: c.rows, length: features, medianMs: median, p10Ms: quantile(samples, 0.1), p90Ms: quantile(samples, 0.9), samples: samples.length, tokensPerSec: (c.rows * features) / (median / 1000) }],
      width: { features, rows: c.rows, rowAttention, peakBytes: prof.peakBytes, density: dens },
    },
    diagnostics: {}, fallbackKernels: { total: 0, byKernel: {} },
    wallTimeSeconds: (performance.now() - t0) / 1000, startedAt, finishedAt: new Date().toISOString(),
  };
}


/** Width-scaling cases of a config: every feature count, sparse and dense row attention. */
export function widthCases(c: TabularConfig): { features: number; rowAttention: 'sparse' | 'dense'; label: string }[] {
  return (c.widthScaling?.features ?? []).flatMap((f) => (['sparse', 'dense'] as const).map((a) => ({ features: f, rowAttention: a, label: widthLabel(f, a) })));
}

/** A tabular suite as orchestrator jobs: table cases, then width cases. A saved result whose model file changed is stale. */
export function tabularJobs(suite: string, c: TabularConfig, cases: TabularCase[], widths: ReturnType<typeof widthCases>, backend: string, fp: Fingerprint): Job[] {
  return [
    ...cases.map((k): Job => ({
      id: tabularCaseId(suite, c, k, backend),
      label: tabularLabel(k),
      staleReason: (saved) => (saved.model.params.fileDigest !== modelFileDigest(k.model) ? 'model file changed since the saved result' : undefined),
      run: () => runTabularCase(suite, c, k, backend, fp),
    })),
    ...widths.map((w): Job => ({
      id: widthCaseId(suite, c.widthScaling!, w.features, w.rowAttention, backend),
      label: w.label,
      run: () => runWidthCase(suite, c.widthScaling!, w.features, w.rowAttention, backend, fp),
    })),
  ];
}
