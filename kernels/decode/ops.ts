/**
 * The decode kernels of the native and cuda libraries (kernels/native/src/decode.cpp,
 * kernels/cuda/src/decode.cu), called on the active backend's buffers. Outputs are new tensors;
 * the cache writes (kvWrite, pageMinMax, labelWrite, mustafarCompress) fill cache tensors in place,
 * which is what makes a decode step cost O(new tokens) instead of a copy of the cache. Only
 * kernels/decode/kv-cache.ts owns such tensors, so no other tensor ever sees them change.
 */
import * as tf from '@tensorflow/tfjs-core';
import { NativeBackend } from '../native/backend.js';
import { ParamError } from '../../core/params.js';
import type { KvFormat } from './types.js';

/** The active backend if it runs the decode kernels (native or cuda). */
export function decodeBackend(): NativeBackend {
  const b = tf.backend();
  if (!(b instanceof NativeBackend)) {
    throw new ParamError('backend', `decoding with a KV cache runs on the native or cuda backend (its cache is written in place); this is ${tf.getBackend()}`);
  }
  return b;
}

/** Whether the active backend runs the decode kernels. */
export function canDecode(): boolean {
  return tf.backend() instanceof NativeBackend;
}

export const FMT: Record<KvFormat, number> = { fp32: 0, bf16: 1 };

function out(b: NativeBackend, shape: number[], dtype: 'float32' | 'int32'): { info: tf.TensorInfo; tensor: () => tf.Tensor } {
  const info = b.makeOutput(shape, dtype);
  return { info, tensor: () => tf.engine().makeTensorFromTensorInfo(info, b) };
}

/** A zero-filled tensor the cache owns (written in place later). */
export function cacheTensor(shape: number[], dtype: 'float32' | 'int32' = 'float32'): tf.Tensor {
  return tf.zeros(shape, dtype);
}

export function kvWrite(fmt: KvFormat, src: tf.Tensor4D, dst: tf.Tensor, cap: number, pos: number): void {
  const b = decodeBackend();
  const [B, H, n, D] = src.shape;
  b.lib.tr_kv_write(FMT[fmt], b.buf(src), b.buf(dst), B, H, n, D, cap, pos);
}

export interface DecodeAttnArgs {
  q: tf.Tensor3D; k: tf.Tensor; v: tf.Tensor; fmt: KvFormat; cap: number; len: number; D: number; scale: number;
  sel?: { pages: tf.Tensor2D; counts: tf.Tensor1D; tailFrom: tf.Tensor1D; page: number; maxTail: number; minTail: number };
}

/** q [B, H, D] -> [B, H, D] over the cache (api.h: tr_decode_attn). */
export function decodeAttn(a: DecodeAttnArgs): tf.Tensor3D {
  const b = decodeBackend();
  const [B, H] = a.q.shape;
  const o = out(b, [B, H, a.D], 'float32');
  const s = a.sel;
  const maxp = s ? s.pages.shape[1] : 0;
  const vmax = s ? maxp * s.page + Math.max(0, a.len - s.minTail) : a.len;
  b.lib.tr_decode_attn(b.buf(a.q), b.buf(a.k), b.buf(a.v), b.buf(o.info), B, H, a.D, a.cap, a.len, FMT[a.fmt], a.scale,
    s ? b.buf(s.pages) : null, s ? b.buf(s.counts) : null, s ? b.buf(s.tailFrom) : null, maxp, s ? s.page : 1, vmax);
  return o.tensor() as tf.Tensor3D;
}

/** scores [rows, n] -> indices [rows, k] of the k largest (ascending, -1 padded) and counts [rows]. */
export function topkRows(scores: tf.Tensor2D, k: number): { idx: tf.Tensor2D; counts: tf.Tensor1D } {
  const b = decodeBackend();
  const [rows, n] = scores.shape;
  const idx = out(b, [rows, k], 'int32'), counts = out(b, [rows], 'int32');
  b.lib.tr_topk_rows(b.buf(scores), rows, n, k, b.buf(idx.info), b.buf(counts.info));
  return { idx: idx.tensor() as tf.Tensor2D, counts: counts.tensor() as tf.Tensor1D };
}

export function pageMinMax(fmt: KvFormat, k: tf.Tensor, kmin: tf.Tensor, kmax: tf.Tensor, dims: { B: number; H: number; D: number; cap: number; page: number; capPages: number }, p0: number, p1: number, len: number): void {
  const b = decodeBackend();
  b.lib.tr_page_minmax(b.buf(k), FMT[fmt], b.buf(kmin), b.buf(kmax), dims.B, dims.H, dims.D, dims.cap, dims.page, dims.capPages, p0, p1, len);
}

/** Quest's page bounds [B*H, nPages] (streaming heads: +inf on their sink pages, -inf elsewhere). */
export function questScores(q: tf.Tensor3D, kmin: tf.Tensor, kmax: tf.Tensor, capPages: number, nPages: number, headSink: tf.Tensor1D, tailPage: number): tf.Tensor2D {
  const b = decodeBackend();
  const [B, H, D] = q.shape;
  const o = out(b, [B * H, nPages], 'float32');
  b.lib.tr_quest_scores(b.buf(q), b.buf(kmin), b.buf(kmax), b.buf(o.info), B, H, D, capPages, nPages, b.buf(headSink), tailPage);
  return o.tensor() as tf.Tensor2D;
}

export function labelWrite(src: tf.Tensor4D, label: tf.Tensor, channels: tf.Tensor2D, cap: number, pos: number): void {
  const b = decodeBackend();
  const [B, H, n, D] = src.shape;
  b.lib.tr_label_write(b.buf(src), b.buf(label), b.buf(channels), B, H, n, D, channels.shape[1], cap, pos);
}

export function labelScores(q: tf.Tensor3D, label: tf.Tensor, channels: tf.Tensor2D, cap: number, len: number, tailFrom: number): tf.Tensor2D {
  const b = decodeBackend();
  const [B, H, D] = q.shape;
  const o = out(b, [B * H, len], 'float32');
  b.lib.tr_label_scores(b.buf(q), b.buf(label), b.buf(channels), b.buf(o.info), B, H, D, channels.shape[1], cap, len, tailFrom);
  return o.tensor() as tf.Tensor2D;
}

export function mustafarCompress(src: tf.Tensor4D, bits: tf.Tensor, vals: tf.Tensor, cap: number, pos: number, keep: number): void {
  const b = decodeBackend();
  const [B, H, n, D] = src.shape;
  b.lib.tr_mustafar_compress(b.buf(src), b.buf(bits), b.buf(vals), B, H, n, D, cap, pos, keep);
}

export function mustafarAttn(q: tf.Tensor3D, c: { kbits: tf.Tensor; kvals: tf.Tensor; vbits: tf.Tensor; vvals: tf.Tensor; keepK: number; keepV: number }, cap: number, len: number, scale: number): tf.Tensor3D {
  const b = decodeBackend();
  const [B, H, D] = q.shape;
  const o = out(b, [B, H, D], 'float32');
  b.lib.tr_decode_attn_mustafar(b.buf(q), b.buf(c.kbits), b.buf(c.kvals), b.buf(c.vbits), b.buf(c.vvals), b.buf(o.info), B, H, D, cap, len, c.keepK, c.keepV, scale);
  return o.tensor() as tf.Tensor3D;
}

/** The memory copy bandwidth of the backend's device in GB/s (read + write), best of reps. */
export function copyBandwidth(bytes: number, reps: number): number {
  return decodeBackend().lib.tr_copy_bandwidth(bytes, reps);
}

/** Wait for queued device work (cuda); a no-op on the CPU. */
export function sync(): void {
  const b = decodeBackend();
  b.lib.tr_sync?.();
}
