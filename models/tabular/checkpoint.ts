/**
 * ICL checkpoints: `model.json` (format, model name, config, training provenance, tensor index) and
 * `weights.bin` (float32, little-endian, tensors in the model's variable order); `optimizer.bin`
 * only in resumable training checkpoints. Files are written to temp names and renamed.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { writeAtomic } from '../../reports/write.js';
import { ParamError } from '../../datasets/params.js';
import { assignOwned } from '../init.js';
import { IclNetwork, parseIclConfig, type IclConfig } from './icl-network.js';

export const CHECKPOINT_FORMAT = 'tabrecall-icl-checkpoint/1';

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

export function saveCheckpoint(dir: string, net: IclNetwork, meta: Omit<CheckpointMeta, 'format' | 'tensors' | 'config'>, opt?: { t: number; m: Float32Array[]; v: Float32Array[] }): void {
  writeAtomic(join(dir, 'weights.bin'), concat(net.vars.map((v) => v.dataSync() as Float32Array)));
  if (opt) writeAtomic(join(dir, 'optimizer.bin'), concat([...opt.m, ...opt.v]));
  // The index last: a reader never sees an index that points at weights not yet written.
  const full: CheckpointMeta = { format: CHECKPOINT_FORMAT, ...meta, config: net.c, tensors: net.vars.map((v) => ({ shape: v.shape })), ...(opt ? { optimizerStep: opt.t } : {}) };
  writeAtomic(join(dir, 'model.json'), JSON.stringify(full, null, 1));
}

export function readMeta(dir: string): CheckpointMeta {
  const p = join(dir, 'model.json');
  if (!existsSync(p)) throw new ParamError('checkpoint', `no checkpoint at ${dir} (model.json missing)`);
  const meta = JSON.parse(readFileSync(p, 'utf8')) as CheckpointMeta;
  if (meta.format !== CHECKPOINT_FORMAT) throw new ParamError('checkpoint.format', `${dir}: expected ${CHECKPOINT_FORMAT}, got ${JSON.stringify(meta.format)}`);
  return meta;
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
  const w = split(readFileSync(join(dir, 'weights.bin')), shapes, `${dir}/weights.bin`);
  net.vars.forEach((v, i) => assignOwned(v, tf.tensor(w[i]!, v.shape)));
  let optimizer;
  const ob = join(dir, 'optimizer.bin');
  if (meta.optimizerStep !== undefined && existsSync(ob)) {
    const s = split(readFileSync(ob), [...shapes, ...shapes], ob);
    optimizer = { t: meta.optimizerStep, m: s.slice(0, shapes.length), v: s.slice(shapes.length) };
  }
  return { net, meta, optimizer };
}
