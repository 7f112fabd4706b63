/**
 * What the suites that run saved checkpoints (sparsify, decode) share: checking an entry against the
 * checkpoint's model.json, its short name, the task's scored test examples and validation set, row
 * slices of token batches, and the timing summary of repeated measurements.
 */
import * as tf from '@tensorflow/tfjs-core';
import { ParamError } from '../core/params.js';
import type { MixerFn, Transformer } from '../models/transformer.js';
import { readModelMeta, type SavedModelMeta } from '../models/saved.js';
import { buildTask } from '../datasets/registry.js';
import { MqarTask } from '../datasets/mqar.js';
import { GridTask } from '../datasets/grid.js';
import type { NiahTask } from '../datasets/niah.js';
import type { TokenBatch } from '../datasets/types.js';
import { quantile } from './latency.js';
import type { Timing } from '../reports/schema.js';

export interface CheckpointEntry {
  /** Folder of a saved model (bench --save-models), relative to the working directory. */
  path: string;
  /** The task the checkpoint must have been trained on (checked against its model.json). */
  task: string;
  /** Short name in labels (default: the folder's name). */
  name?: string;
}

/** Read every entry's model.json and check its task and model before anything runs. */
export function checkCheckpointEntries(where: string, entries: CheckpointEntry[], why: string): SavedModelMeta[] {
  return entries.map((k, i) => {
    const { meta } = readModelMeta(k.path);
    if (meta.task.name !== k.task) throw new ParamError(`${where}[${i}].task`, `the checkpoint at ${k.path} was trained on ${JSON.stringify(meta.task.name)}, not ${JSON.stringify(k.task)}; allowed: ${JSON.stringify(meta.task.name)}`);
    if (meta.model.name !== 'dense') throw new ParamError(`${where}[${i}].path`, `${k.path} is a ${JSON.stringify(meta.model.name)} model; ${why} (allowed: dense)`);
    return meta;
  });
}

export const checkpointName = (k: CheckpointEntry) => k.name ?? k.path.replace(/\/+$/, '').split('/').pop()!;

/** The scored test examples: MQAR the first n; NIAH ceil(n / depths) per depth at the longest trained length. */
export function checkpointTestBatch(meta: SavedModelMeta, n: number): TokenBatch {
  const task = buildTask(meta.task.name, meta.task.params, meta.seed);
  if (task instanceof MqarTask || task instanceof GridTask) return sliceRows(task.testSet(), 0, n);
  const niah = task as NiahTask;
  const L = Math.max(...niah.p.evalLengths.filter((x) => x <= niah.seqLen));
  const cells = niah.grid().filter((g) => g.length === L);
  const per = Math.max(1, Math.ceil(n / cells.length));
  return concatRows(cells.map((g) => sliceRows(g.batch, 0, per)));
}

/** The task's validation split (calibration data, never the test examples). */
export function checkpointValidBatch(meta: SavedModelMeta, n: number): TokenBatch {
  const task = buildTask(meta.task.name, meta.task.params, meta.seed) as MqarTask | NiahTask | GridTask;
  return task.validSet(n);
}

export function sliceRows(b: TokenBatch, start: number, n: number): TokenBatch {
  const m = Math.min(n, b.n - start);
  return { inputs: b.inputs.slice(start * b.seqLen, (start + m) * b.seqLen), labels: b.labels.slice(start * b.seqLen, (start + m) * b.seqLen), n: m, seqLen: b.seqLen };
}

export function concatRows(bs: TokenBatch[]): TokenBatch {
  const L = bs[0]!.seqLen, n = bs.reduce((s, b) => s + b.n, 0);
  const inputs = new Int32Array(n * L), labels = new Int32Array(n * L);
  let o = 0;
  for (const b of bs) {
    inputs.set(b.inputs, o);
    labels.set(b.labels, o);
    o += b.inputs.length;
  }
  return { inputs, labels, n, seqLen: L };
}

/** Median, p10 and p90 of repeated measurements in ms. */
export function timing(samples: number[]): Timing {
  const s = [...samples].sort((a, b) => a - b);
  return { medianMs: quantile(s, 0.5), p10Ms: quantile(s, 0.1), p90Ms: quantile(s, 0.9), samples: s.length };
}

/**
 * q and k [H, L, D] of every layer for one input [L], kept (the caller disposes them), while the model
 * attends through `attend` (the suite's dense reference): the calibration data of offline searches.
 */
export function captureQK(model: Transformer, ids: Int32Array, L: number, attend: MixerFn): { q: tf.Tensor3D; k: tf.Tensor3D; layer: number }[] {
  const got: { q: tf.Tensor3D; k: tf.Tensor3D; layer: number }[] = [];
  model.setMixer((q, k, v, layer) => {
    const [, H, , D] = q.shape;
    got.push({ q: tf.keep(tf.reshape(q, [H, L, D])) as tf.Tensor3D, k: tf.keep(tf.reshape(k, [H, L, D])) as tf.Tensor3D, layer });
    return attend(q, k, v, layer);
  });
  try {
    tf.dispose(model.hidden(tf.tensor2d(ids, [1, L], 'int32')));
  } finally {
    model.setMixer();
  }
  return got;
}
