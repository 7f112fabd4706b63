/**
 * Saved sequence models (bench --save-models DIR): one folder per trained run with `model.json` (format,
 * model name and parameters, the task it was trained on, vocabulary and maximum length, provenance:
 * run id, code version, backend and device, training steps and time, test accuracy) and
 * `weights-<sha12>.bin` (float32 little-endian, the model's variables in order).
 *
 * Atomic: the weights file is content-named and written first (temp + rename), then model.json is
 * renamed into place; a kill at any point leaves either no model.json or one whose weights exist.
 * Loading checks the digest and every tensor's shape, so a file swapped under model.json is an error.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { writeAtomic } from '../core/files.js';
import { ParamError } from '../core/params.js';
import { buildModel } from './registry.js';
import type { SequenceModel } from './types.js';

export const SAVED_MODEL_FORMAT = 'tabrecall-sequence-model/1';

export interface SavedModelMeta {
  format: string;
  model: { name: string; size: string; params: Record<string, unknown> };
  task: { name: string; params: Record<string, unknown> };
  vocabSize: number;
  maxLen: number;
  seed: number;
  provenance: {
    runId: string;
    label: string;
    gitSha: string;
    backend: string;
    device: string;
    trainSteps: number;
    trainSeconds: number;
    testAccuracy: number | null;
    createdAt: string;
    /** The saved model the run started from (a suite entry's init), with that model's own provenance. */
    initFrom?: { path: string; sha256: string; provenance: SavedModelMeta['provenance'] };
  };
  weights: { file: string; sha256: string; tensors: { name: string; shape: number[] }[] };
}

/** What a checkpoint holds, in order: the trained variables, then the state updated without gradients. */
export function savedTensors(model: SequenceModel): tf.Variable[] {
  return [...model.variables(), ...(model.state?.() ?? [])];
}

export interface LoadedModel {
  model: SequenceModel;
  meta: SavedModelMeta;
  dir: string;
}

/** Write a trained model to dir (created if missing); returns model.json's path. */
export function saveModel(dir: string, model: SequenceModel, meta: Omit<SavedModelMeta, 'format' | 'weights'>): string {
  const vars = savedTensors(model);
  const parts = vars.map((v) => v.dataSync() as Float32Array);
  const total = parts.reduce((s, p) => s + p.length, 0);
  const buf = new Float32Array(total);
  let o = 0;
  for (const p of parts) {
    buf.set(p, o);
    o += p.length;
  }
  const bytes = new Uint8Array(buf.buffer);
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  const file = `weights-${sha256.slice(0, 12)}.bin`;
  writeAtomic(join(dir, file), bytes);
  const full: SavedModelMeta = { format: SAVED_MODEL_FORMAT, ...meta, weights: { file, sha256, tensors: vars.map((v) => ({ name: v.name, shape: v.shape })) } };
  const path = join(dir, 'model.json');
  writeAtomic(path, `${JSON.stringify(full, null, 1)}\n`);
  // Older weights of the same folder are no longer referenced.
  for (const f of readdirSync(dir)) if (/^weights-[0-9a-f]{12}\.bin$/.test(f) && f !== file) rmSync(join(dir, f), { force: true });
  return path;
}

/** The metadata of a saved model (dir holding model.json, or the model.json path), validated. */
export function readModelMeta(path: string): { meta: SavedModelMeta; dir: string } {
  const dir = path.endsWith('.json') ? path.slice(0, path.lastIndexOf('/') + 1) || '.' : path;
  const file = path.endsWith('.json') ? path : join(path, 'model.json');
  if (!existsSync(file)) throw new ParamError('checkpoint', `no saved model at ${JSON.stringify(path)} (expected ${file})`);
  let meta: SavedModelMeta;
  try {
    meta = JSON.parse(readFileSync(file, 'utf8')) as SavedModelMeta;
  } catch (e) {
    throw new ParamError('checkpoint', `${file} is not valid JSON (${(e as Error).message})`);
  }
  if (meta.format !== SAVED_MODEL_FORMAT) throw new ParamError('checkpoint.format', `${file}: must be ${JSON.stringify(SAVED_MODEL_FORMAT)}, got ${JSON.stringify(meta.format)}`);
  return { meta, dir };
}

/** Load a saved model: build it from its config, then assign the weights (digest and shapes checked). */
export function loadModel(path: string, opts: { maxLen?: number } = {}): LoadedModel {
  const { meta, dir } = readModelMeta(path);
  // A longer maxLen adds no weights only where positions are rotary (learned positions are a table).
  if (opts.maxLen !== undefined && opts.maxLen > meta.maxLen && (meta.model.params.positions ?? 'rope') !== 'rope') {
    throw new ParamError('checkpoint.maxLen', `${path} has learned positions up to ${meta.maxLen}; it cannot run at ${opts.maxLen}`);
  }
  const wpath = join(dir, meta.weights.file);
  if (!existsSync(wpath)) throw new ParamError('checkpoint.weights', `${wpath} is missing`);
  const bytes = readFileSync(wpath);
  const sha = createHash('sha256').update(bytes).digest('hex');
  if (sha !== meta.weights.sha256) throw new ParamError('checkpoint.weights', `${wpath}: sha256 ${sha.slice(0, 12)} does not match model.json's ${meta.weights.sha256.slice(0, 12)}`);
  const model = buildModel(meta.model.name, meta.model.params, { vocabSize: meta.vocabSize, maxLen: Math.max(meta.maxLen, opts.maxLen ?? 0), seed: meta.seed });
  const vars = savedTensors(model);
  if (vars.length !== meta.weights.tensors.length) {
    model.dispose();
    throw new ParamError('checkpoint.weights', `${wpath}: ${meta.weights.tensors.length} tensors, the model has ${vars.length}`);
  }
  const all = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  let o = 0;
  vars.forEach((v, i) => {
    const want = meta.weights.tensors[i]!.shape;
    if (want.join() !== v.shape.join()) {
      model.dispose();
      throw new ParamError('checkpoint.weights', `tensor ${i} (${v.name}) has shape [${want}] in the file, [${v.shape}] in the model`);
    }
    v.assign(tf.tensor(all.subarray(o, o + v.size), v.shape));
    o += v.size;
  });
  if (o !== all.length) {
    model.dispose();
    throw new ParamError('checkpoint.weights', `${wpath}: ${all.length} values, the model takes ${o}`);
  }
  return { model, meta, dir };
}
