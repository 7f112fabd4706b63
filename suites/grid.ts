/** Load a suite file and expand its grid into runs. */
import { validateGridSuite } from './patterns.js';
import { validateSparsify } from './sparsify.js';
import { validateDecode } from './decode.js';
import { validateTabular } from './tabular.js';
import { readFileSync, readdirSync } from 'node:fs';
import { hashId } from '../core/canonical.js';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { RunConfig, SuiteEntry, SuiteFile } from './types.js';
import { OPTIMIZER_DEFAULTS } from './optimizer.js';
import type { TrainBudget } from './train.js';
import type { LatencyConfig } from './latency.js';
import { ParamError, checkFields, type FieldSpec } from '../core/params.js';
import { checkTask, taskNames } from '../datasets/registry.js';
import { checkModel } from '../models/registry.js';
import { validateKernels } from './kernels.js';

const SUITE_DIR = dirname(fileURLToPath(import.meta.url));

export const TRAIN_DEFAULTS: TrainBudget = { maxSteps: 2000, batchSize: 32, evalEvery: 100, patience: 5, minDelta: 0.002, validExamples: 256 };
export const LATENCY_DEFAULTS: LatencyConfig = { batches: [1, 8], lengths: [64], timeMs: 300, minSamples: 10, warmupIterations: 3 };

/** The settings a suite may give, with their ranges: one table for every suite kind's common parts. */
export const SUITE_FIELDS: Record<string, FieldSpec> = { name: { str: true }, description: { str: true }, kind: { oneOf: ['train', 'kernels', 'tabular', 'sparsify', 'decode', 'grid'] }, seeds: { ints: [0] }, entries: { list: true }, kernels: { object: true }, tabular: { object: true }, sparsify: { object: true }, decode: { object: true }, grid: { object: true } };
export const ENTRY_FIELDS: Record<string, FieldSpec> = { init: { str: true }, task: { str: true }, taskParams: { object: true }, models: { list: true }, train: { object: true }, optimizer: { object: true }, latency: { object: true }, sweep: { object: true } };
export const MODEL_ENTRY_FIELDS: Record<string, FieldSpec> = { name: { str: true }, size: { str: true }, params: { object: true } };
export const TRAIN_FIELDS: Record<keyof TrainBudget, FieldSpec> = {
  maxSteps: { int: [1, 1e9] }, batchSize: { int: [1, 1 << 16] }, evalEvery: { int: [1, 1e9] }, patience: { int: [1, 1e6] }, minDelta: { num: [0, 1] }, validExamples: { int: [1, 1e7] },
};
export const OPTIMIZER_FIELDS: Record<keyof typeof OPTIMIZER_DEFAULTS, FieldSpec> = {
  lr: { num: [0, 1e6], above: 0 }, beta1: { num: [0, 0.999999] }, beta2: { num: [0, 0.999999] }, eps: { num: [0, 1], above: 0 }, weightDecay: { num: [0, 10] },
  warmupSteps: { int: [0, 1e9] }, minLrRatio: { num: [0, 1] }, clipNorm: { num: [0, 1e6] },
};
export const LATENCY_FIELDS: Record<keyof LatencyConfig, FieldSpec> = {
  batches: { ints: [1, 1 << 16] }, lengths: { ints: [1, 1 << 24] }, timeMs: { num: [1, 3.6e6] }, minSamples: { int: [1, 1e6] }, warmupIterations: { int: [0, 1e6] },
};

export function suiteNames(): string[] {
  return readdirSync(SUITE_DIR).filter((f) => f.endsWith('.json')).map((f) => f.replace(/\.json$/, '')).sort();
}

export function loadSuite(name: string): SuiteFile {
  const names = suiteNames();
  const path = name.endsWith('.json') ? name : join(SUITE_DIR, `${name}.json`);
  if (!name.endsWith('.json') && !names.includes(name)) {
    throw new ParamError('--suite', `unknown suite ${JSON.stringify(name)}; allowed: ${names.join(', ')} (or a path to a .json suite file)`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new ParamError('--suite', `cannot read suite file ${path}: ${(e as Error).message}`);
  }
  return { ...validateSuite(raw, path), source: name };
}

export function validateSuite(raw: unknown, where: string): SuiteFile {
  const s = raw as Partial<SuiteFile>;
  if (!s || typeof s !== 'object' || Array.isArray(s)) throw new ParamError('suite', `${where}: must be a JSON object`);
  if (typeof s.name !== 'string') throw new ParamError('suite.name', 'must be a string');
  if (!Array.isArray(s.seeds) || !s.seeds.every((x) => Number.isInteger(x))) throw new ParamError('suite.seeds', 'must be an array of integers');
  checkFields('suite', s, SUITE_FIELDS);
  if (s.kind === 'tabular') {
    if (!s.tabular || typeof s.tabular !== 'object') throw new ParamError('suite.tabular', 'a tabular suite needs a "tabular" object');
    return { description: '', entries: [], ...s, tabular: validateTabular(s.tabular as unknown as Record<string, unknown>) } as SuiteFile;
  }
  if (s.kind === 'decode') {
    if (!s.decode || typeof s.decode !== 'object') throw new ParamError('suite.decode', 'a decode suite needs a "decode" object');
    return { description: '', entries: [], ...s, decode: validateDecode(s.decode as unknown as Record<string, unknown>) } as SuiteFile;
  }
  if (s.kind === 'grid') {
    if (!s.grid || typeof s.grid !== 'object') throw new ParamError('suite.grid', 'a grid suite needs a "grid" object');
    return { description: '', entries: [], ...s, grid: validateGridSuite(s.grid as unknown as Record<string, unknown>) } as SuiteFile;
  }
  if (s.kind === 'sparsify') {
    if (!s.sparsify || typeof s.sparsify !== 'object') throw new ParamError('suite.sparsify', 'a sparsify suite needs a "sparsify" object');
    return { description: '', entries: [], ...s, sparsify: validateSparsify(s.sparsify as unknown as Record<string, unknown>) } as SuiteFile;
  }
  if (s.kind === 'kernels') {
    if (!s.kernels || typeof s.kernels !== 'object') throw new ParamError('suite.kernels', 'a kernels suite needs a "kernels" object');
    return { description: '', entries: [], ...s, kernels: validateKernels(s.kernels as unknown as Record<string, unknown>) } as SuiteFile;
  }
  if (!Array.isArray(s.entries) || s.entries.length === 0) throw new ParamError('suite.entries', 'must be a non-empty array');
  s.entries.forEach((e, i) => {
    checkFields(`suite.entries[${i}]`, e, ENTRY_FIELDS);
    if (!taskNames().includes(e.task)) throw new ParamError(`suite.entries[${i}].task`, `unknown task ${JSON.stringify(e.task)}; allowed: ${taskNames().join(', ')}`);
    if (!Array.isArray(e.models) || e.models.length === 0) throw new ParamError(`suite.entries[${i}].models`, 'must be a non-empty array');
    e.models.forEach((m, j) => checkFields(`suite.entries[${i}].models[${j}]`, m, MODEL_ENTRY_FIELDS));
    for (const [key, values] of Object.entries(e.sweep ?? {})) {
      if (!/^(task|model|optimizer|train)\./.test(key)) throw new ParamError(`suite.entries[${i}].sweep.${key}`, 'keys must start with task., model., optimizer. or train.');
      if (!Array.isArray(values) || values.length === 0) throw new ParamError(`suite.entries[${i}].sweep.${key}`, 'must be a non-empty list of values');
    }
  });
  return { description: '', ...s } as SuiteFile;
}

function product(axes: [string, unknown[]][]): Record<string, unknown>[] {
  let out: Record<string, unknown>[] = [{}];
  for (const [k, values] of axes) out = out.flatMap((o) => values.map((v) => ({ ...o, [k]: v })));
  return out;
}

function applySweep(e: SuiteEntry, point: Record<string, unknown>, model: SuiteEntry['models'][number]) {
  const task = { ...e.taskParams };
  const mparams = { ...model.params };
  const optimizer = { ...OPTIMIZER_DEFAULTS, ...e.optimizer };
  const train = { ...TRAIN_DEFAULTS, ...e.train };
  for (const [k, v] of Object.entries(point)) {
    const [scope, field] = [k.slice(0, k.indexOf('.')), k.slice(k.indexOf('.') + 1)];
    if (scope === 'task') task[field] = v;
    else if (scope === 'model') mparams[field] = v;
    else if (scope === 'optimizer') (optimizer as Record<string, unknown>)[field] = v;
    else (train as Record<string, unknown>)[field] = v;
  }
  return { task, mparams, optimizer, train };
}

/** All runs of a suite for the given seeds and backend, in a stable order. */
export function expandSuite(s: SuiteFile, seeds: number[], backend: string): RunConfig[] {
  const runs: RunConfig[] = [];
  s.entries.forEach((e, i) => {
    const points = product(Object.entries(e.sweep ?? {}));
    for (const point of points) {
      for (const m of e.models) {
        const { task, mparams, optimizer, train } = applySweep(e, point, m);
        const { maxLen } = checkTask(e.task, task);
        checkModel(m.name, mparams);
        // After the sweep, so a swept value is checked like a written one.
        checkFields(`suite.entries[${i}].train`, train, TRAIN_FIELDS);
        checkFields(`suite.entries[${i}].optimizer`, optimizer, OPTIMIZER_FIELDS);
        // "task" in latency.lengths: the task's own longest length (for entries that sweep it).
        const given = { ...LATENCY_DEFAULTS, ...e.latency };
        if (Array.isArray(given.lengths)) given.lengths = [...new Set((given.lengths as unknown[]).map((L) => (L === 'task' ? maxLen : L)))] as number[];
        const latency = checkFields(`suite.entries[${i}].latency`, given, LATENCY_FIELDS) as unknown as LatencyConfig;
        const tooLong = latency.lengths.filter((L) => L > maxLen);
        if (tooLong.length) throw new ParamError(`suite.entries[${i}].latency.lengths`, `${tooLong.join(', ')} exceed the longest sequence the model is built for (${maxLen}, from the task's lengths); allowed: 1..${maxLen}`);
        for (const seed of seeds) {
          runs.push({
            suite: s.name,
            task: { name: e.task, params: task },
            model: { name: m.name, size: m.size !== undefined ? m.size.replace('{dModel}', String(mparams.dModel)) : sizeLabel(mparams), params: mparams },
            train,
            optimizer,
            latency,
            seed,
            backend,
            // Only when set, so runs without it keep their ids.
            ...(e.init !== undefined ? { init: e.init } : {}),
          });
        }
      }
    }
  });
  return runs;
}

function sizeLabel(p: Record<string, unknown>): string {
  return p.dModel !== undefined ? `d${p.dModel}` : 'default';
}

export function runId(c: RunConfig): string {
  return hashId(c);
}

export function runLabel(c: RunConfig): string {
  const t = c.task.params;
  const task = c.task.name === 'mqar'
    ? `mqar L${t.inputSeqLen} kv${t.numKvPairs} V${t.vocabSize}`
    : c.task.name === 'grid'
      ? `grid ${t.frames}x${t.height}x${t.width}${t.textPairs ? ` text${t.textPairs}` : ''} motion ${t.shift}${t.jitter ? `±${t.jitter}` : ''}`
      : `niah ${t.family} L${t.seqLen}`;
  return `${task} | ${c.model.name} ${c.model.size} | lr ${c.optimizer.lr} | seed ${c.seed}`;
}
