/**
 * ICL checkpoints: `model.json` (format, model name, config, training provenance, tensor index, and
 * the data files it belongs with, by name and sha256) and the data files (float32, little-endian,
 * tensors in the model's variable order): weights, plus optimizer state in resumable training
 * checkpoints.
 *
 * Atomic as a whole: each save writes data files under new names (`weights.s<step>.bin`), then
 * renames model.json into place, then deletes the files no longer referenced. A kill at any point
 * leaves the previous model.json with the files it names, or the new one with its own; loading checks
 * the digests, so a file changed or swapped under a model.json is an error, never a silent mix.
 * Format 1 (the shipped checkpoint: `weights.bin`, no digests) is still read.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { removeStaleTemps, writeAtomic } from '../../core/files.js';
import { ParamError } from '../../core/params.js';
import { assignOwned } from '../init.js';
import { IclNetwork, parseIclConfig, type IclConfig } from './icl-network.js';

export const CHECKPOINT_FORMAT = 'tabrecall-icl-checkpoint/2';
const READABLE_FORMATS = ['tabrecall-icl-checkpoint/1', CHECKPOINT_FORMAT];

export interface CheckpointFile {
  name: string;
  sha256: string;
}

export interface CheckpointMeta {
  format: string;
  model: string;
  config: IclConfig;
  seed: number;
  step: number;
  trainSeconds: number;
  backend: string;
  command: string;
  gitSha: string;
  createdAt: string;
  prior: Record<string, unknown>;
  optimizer: Record<string, unknown>;
  batchTables: number;
  lossCurve: [number, number][];
  tensors: { shape: number[] }[];
  optimizerStep?: number;
  /** Format 2: the data files this index belongs with (format 1: weights.bin / optimizer.bin, unchecked). */
  files?: { weights: CheckpointFile; optimizer?: CheckpointFile };
  /** Losses of the steps since the last loss-curve point (so a resumed curve equals an uninterrupted one). */
  lossWindow?: number[];
  /**
   * Set when the run started from another checkpoint's weights (pretrain --init); trainSeconds there
   * includes its own start, and its own initFrom is kept, so the chain back to a random init is whole.
   */
  initFrom?: InitFrom;
}

export interface InitFrom { dir: string; model: string; step: number; trainSeconds: number; backend: string; command: string; gitSha: string; initFrom?: InitFrom }

function concat(arrays: Float32Array[]): Uint8Array {
  const out = new Float32Array(arrays.reduce((s, a) => s + a.length, 0));
  let o = 0;
  for (const a of arrays) {
    out.set(a, o);
    o += a.length;
  }
  return new Uint8Array(out.buffer);
}

function split(bytes: Buffer, shapes: number[][], where: string): Float32Array[] {
  const total = shapes.reduce((s, sh) => s + sh.reduce((a, b) => a * b, 1), 0);
  if (bytes.length !== total * 4) throw new ParamError(where, `holds ${bytes.length} bytes, the index needs ${total * 4}`);
  const all = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length));
  let o = 0;
  return shapes.map((sh) => {
    const n = sh.reduce((a, b) => a * b, 1);
    const a = all.subarray(o, o + n);
    o += n;
    return a;
  });
}

const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

export function saveCheckpoint(dir: string, net: IclNetwork, meta: Omit<CheckpointMeta, 'format' | 'tensors' | 'config' | 'files'>, opt?: { t: number; m: Float32Array[]; v: Float32Array[] }): void {
  removeStaleTemps(dir);
  const tag = `s${String(meta.step).padStart(9, '0')}`;
  const put = (kind: string, bytes: Uint8Array): CheckpointFile => {
    const name = `${kind}.${tag}.bin`;
    writeAtomic(join(dir, name), bytes);
    return { name, sha256: sha256(bytes) };
  };
  const weights = put('weights', concat(net.vars.map((v) => v.dataSync() as Float32Array)));
  const optimizer = opt ? put('optimizer', concat([...opt.m, ...opt.v])) : undefined;
  // The index last: until this rename, the previous model.json and its files are the checkpoint.
  const full: CheckpointMeta = {
    format: CHECKPOINT_FORMAT, ...meta, config: net.c, tensors: net.vars.map((v) => ({ shape: v.shape })), ...(opt ? { optimizerStep: opt.t } : {}),
    files: { weights, ...(optimizer ? { optimizer } : {}) },
  };
  writeAtomic(join(dir, 'model.json'), JSON.stringify(full, null, 1));
  const keep = new Set([weights.name, optimizer?.name]);
  for (const f of readdirSync(dir)) if (/^(weights|optimizer)(\.s\d+)?\.bin$/.test(f) && !keep.has(f)) rmSync(join(dir, f), { force: true });
}

export function readMeta(dir: string): CheckpointMeta {
  const p = join(dir, 'model.json');
  if (!existsSync(p)) throw new ParamError('checkpoint', `no checkpoint at ${dir} (model.json missing)`);
  let meta: CheckpointMeta;
  try {
    meta = JSON.parse(readFileSync(p, 'utf8')) as CheckpointMeta;
  } catch (e) {
    throw new ParamError('checkpoint', `${p}: not valid JSON (${(e as Error).message})`);
  }
  if (!READABLE_FORMATS.includes(meta.format)) throw new ParamError('checkpoint.format', `${dir}: expected one of ${READABLE_FORMATS.join(', ')}, got ${JSON.stringify(meta.format)}`);
  return meta;
}

/** The files a checkpoint reads: model.json and the data files it names (for digests of what a model was run from). */
export function checkpointFiles(dir: string): string[] {
  const meta = readMeta(dir);
  return [join(dir, 'model.json'), join(dir, meta.files?.weights.name ?? 'weights.bin')];
}

/** A data file's bytes, checked against the digest model.json gives for it (format 2). */
function readData(dir: string, file: CheckpointFile | undefined, legacy: string, field: string): Buffer {
  const p = join(dir, file?.name ?? legacy);
  if (!existsSync(p)) throw new ParamError(field, `${dir}: ${file?.name ?? legacy} missing (model.json names it)`);
  const bytes = readFileSync(p);
  if (file && sha256(bytes) !== file.sha256) throw new ParamError(field, `${p}: sha256 does not match model.json (changed after saving, or a save was interrupted); the checkpoint is not usable`);
  return bytes;
}

/** A network with the checkpoint's weights (and its optimizer state when asked and present). */
export function loadCheckpoint(dir: string, overrides: Partial<IclConfig> = {}): { net: IclNetwork; meta: CheckpointMeta; optimizer?: { t: number; m: Float32Array[]; v: Float32Array[] } } {
  const meta = readMeta(dir);
  // Overrides may change what does not change the parameters (the row layout: dense-icl reads orion-msp's weights).
  const net = new IclNetwork(parseIclConfig('checkpoint.config', { ...meta.config, ...overrides } as unknown as Record<string, unknown>), meta.seed, false);
  const shapes = net.vars.map((v) => v.shape);
  if (shapes.length !== meta.tensors.length || shapes.some((s, i) => s.join('x') !== meta.tensors[i]!.shape.join('x'))) {
    throw new ParamError('checkpoint.tensors', `${dir}: tensor shapes do not match the configured network`);
  }
  const w = split(readData(dir, meta.files?.weights, 'weights.bin', 'checkpoint.files.weights'), shapes, `${dir}/${meta.files?.weights.name ?? 'weights.bin'}`);
  net.vars.forEach((v, i) => assignOwned(v, tf.tensor(w[i]!, v.shape)));
  let optimizer;
  const ob = meta.files ? meta.files.optimizer?.name : existsSync(join(dir, 'optimizer.bin')) ? 'optimizer.bin' : undefined;
  if (meta.optimizerStep !== undefined && ob !== undefined) {
    const s = split(readData(dir, meta.files?.optimizer, 'optimizer.bin', 'checkpoint.files.optimizer'), [...shapes, ...shapes], join(dir, ob));
    optimizer = { t: meta.optimizerStep, m: s.slice(0, shapes.length), v: s.slice(shapes.length) };
  }
  return { net, meta, optimizer };
}
