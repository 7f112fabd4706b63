/** Load a suite file and expand its grid into runs. */
import { validateTabular } from './tabular.js';
import { readFileSync, readdirSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { RunConfig, SuiteEntry, SuiteFile } from './types.js';
import { OPTIMIZER_DEFAULTS } from './optimizer.js';
import type { TrainBudget } from './train.js';
import type { LatencyConfig } from './latency.js';
import { ParamError } from '../datasets/params.js';
import { checkTask, taskNames } from '../datasets/registry.js';
import { checkModel } from '../models/registry.js';

const SUITE_DIR = dirname(fileURLToPath(import.meta.url));

export const TRAIN_DEFAULTS: TrainBudget = { maxSteps: 2000, batchSize: 32, evalEvery: 100, patience: 5, minDelta: 0.002, validExamples: 256 };
export const LATENCY_DEFAULTS: LatencyConfig = { batches: [1, 8], lengths: [64], timeMs: 300, minSamples: 10, warmupIterations: 3 };

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
  return validateSuite(raw, path);
}

export function validateSuite(raw: unknown, where: string): SuiteFile {
  const s = raw as Partial<SuiteFile>;
  if (!s || typeof s !== 'object') throw new ParamError('suite', `${where}: must be a JSON object`);
  if (typeof s.name !== 'string') throw new ParamError('suite.name', 'must be a string');
  if (!Array.isArray(s.seeds) || !s.seeds.every((x) => Number.isInteger(x))) throw new ParamError('suite.seeds', 'must be an array of integers');
  if (s.kind !== undefined && s.kind !== 'train' && s.kind !== 'kernels' && s.kind !== 'tabular') throw new ParamError('suite.kind', `must be one of train, kernels, tabular; got ${JSON.stringify(s.kind)}`);
  if (s.kind === 'tabular') {
    if (!s.tabular || typeof s.tabular !== 'object') throw new ParamError('suite.tabular', 'a tabular suite needs a "tabular" object');
    return { description: '', entries: [], ...s, tabular: validateTabular(s.tabular as unknown as Record<string, unknown>) } as SuiteFile;
  }
  if (s.kind === 'kernels') {
    if (!s.kernels || typeof s.kernels !== 'object') throw new ParamError('suite.kernels', 'a kernels suite needs a "kernels" object');
    return { description: '', entries: [], ...s } as SuiteFile;
  }
  if (!Array.isArray(s.entries) || s.entries.length === 0) throw new ParamError('suite.entries', 'must be a non-empty array');
  s.entries.forEach((e, i) => {
    if (!taskNames().includes(e.task)) throw new ParamError(`suite.entries[${i}].task`, `unknown task ${JSON.stringify(e.task)}; allowed: ${taskNames().join(', ')}`);
    if (!Array.isArray(e.models) || e.models.length === 0) throw new ParamError(`suite.entries[${i}].models`, 'must be a non-empty array');
    for (const key of Object.keys(e.sweep ?? {})) {
      if (!/^(task|model|optimizer|train)\./.test(key)) throw new ParamError(`suite.entries[${i}].sweep.${key}`, 'keys must start with task., model., optimizer. or train.');
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
        checkTask(e.task, task);
        checkModel(m.name, mparams);
        if (!(typeof optimizer.lr === 'number' && optimizer.lr > 0)) throw new ParamError(`suite.entries[${i}].optimizer.lr`, 'must be a positive number');
        for (const seed of seeds) {
          runs.push({
            suite: s.name,
            task: { name: e.task, params: task },
            model: { name: m.name, size: m.size ?? sizeLabel(mparams), params: mparams },
            train,
            optimizer,
            latency: { ...LATENCY_DEFAULTS, ...e.latency },
            seed,
            backend,
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

/** Canonical JSON: sorted keys, so equal configurations hash equally. */
export function canonical(x: unknown): string {
  if (Array.isArray(x)) return `[${x.map(canonical).join(',')}]`;
  if (x && typeof x === 'object') {
    return `{${Object.keys(x).sort().map((k) => `${JSON.stringify(k)}:${canonical((x as Record<string, unknown>)[k])}`).join(',')}}`;
  }
  return JSON.stringify(x);
}

export function runId(c: RunConfig): string {
  return createHash('sha256').update(canonical(c)).digest('hex').slice(0, 16);
}

export function runLabel(c: RunConfig): string {
  const t = c.task.params;
  const task = c.task.name === 'mqar'
    ? `mqar L${t.inputSeqLen} kv${t.numKvPairs} V${t.vocabSize}`
    : `niah ${t.family} L${t.seqLen}`;
  return `${task} | ${c.model.name} ${c.model.size} | lr ${c.optimizer.lr} | seed ${c.seed}`;
}
