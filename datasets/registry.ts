/** Tasks by the names suites and reports use. */
import { MqarTask, parseMqarParams } from './mqar.js';
import { NiahTask, parseNiahParams } from './niah.js';
import { GridTask, gridShape, parseGridParams } from './grid.js';
import { ParamError } from '../core/params.js';

export type AnyTask = MqarTask | NiahTask | GridTask;

const TASKS = {
  mqar: (params: Record<string, unknown>, seed: number) => new MqarTask(parseMqarParams(params), seed),
  niah: (params: Record<string, unknown>, seed: number) => new NiahTask(parseNiahParams(params), seed),
  grid: (params: Record<string, unknown>, seed: number) => new GridTask(parseGridParams(params), seed),
} as const;

export function taskNames(): string[] {
  return Object.keys(TASKS);
}

export function buildTask(name: string, params: Record<string, unknown>, seed: number): AnyTask {
  const f = TASKS[name as keyof typeof TASKS];
  if (!f) throw new ParamError('task', `unknown task ${JSON.stringify(name)}; allowed: ${taskNames().join(', ')}`);
  return f(params, seed);
}

/** Validate a task's parameters; returns the longest sequence its model must take (training or evaluation). */
export function checkTask(name: string, params: Record<string, unknown>): { maxLen: number } {
  if (name === 'mqar') return { maxLen: parseMqarParams(params).inputSeqLen };
  if (name === 'niah') {
    const p = parseNiahParams(params);
    return { maxLen: Math.max(p.seqLen, ...p.evalLengths) };
  }
  if (name === 'grid') return { maxLen: gridShape(parseGridParams(params)).seqLen };
  throw new ParamError('task', `unknown task ${JSON.stringify(name)}; allowed: ${taskNames().join(', ')}`);
}
