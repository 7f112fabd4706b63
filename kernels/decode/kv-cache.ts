/**
 * A layer's KV cache: keys and values [B, H, cap, D] written in place as tokens arrive (fp32, or bf16
 * on cuda), plus what a method keeps beside them: Quest/LServe page statistics (per page, per channel
 * key min and max), Double Sparsity's label cache (r channels of every key), or Mustafar's compressed
 * rows instead of dense K and V. `bytes()` is what the cache holds, the number a report calls KV memory.
 */
import * as tf from '@tensorflow/tfjs-core';
import { ParamError } from '../../core/params.js';
import { cacheTensor, kvWrite, labelWrite, mustafarCompress, pageMinMax } from './ops.js';
import type { KvFormat } from './types.js';

export interface CacheExtras {
  /** Page statistics for page selection, page tokens per page. */
  pageStats?: number;
  /** Double Sparsity's label channels of this layer, int32 [H, r]. */
  labelChannels?: tf.Tensor2D;
  /** Mustafar: kept channels per token of K and V (the cache holds only compressed rows). */
  mustafar?: { keepK: number; keepV: number };
}

export interface CacheShape {
  B: number;
  H: number;
  D: number;
  cap: number;
  format: KvFormat;
}

export class LayerCache {
  len = 0;
  readonly k?: tf.Tensor;
  readonly v?: tf.Tensor;
  readonly pages?: { page: number; capPages: number; kmin: tf.Tensor; kmax: tf.Tensor };
  readonly label?: { channels: tf.Tensor2D; r: number; store: tf.Tensor };
  readonly mustafar?: { keepK: number; keepV: number; kbits: tf.Tensor; kvals: tf.Tensor; vbits: tf.Tensor; vvals: tf.Tensor };

  constructor(readonly shape: CacheShape, extras: CacheExtras = {}) {
    const { B, H, D, cap, format } = shape;
    if (format === 'bf16' && (D % 2 !== 0 || tf.getBackend() !== 'cuda')) throw new ParamError('decode.format', `bf16 caches need the cuda backend and an even head dim (this is ${tf.getBackend()}, D = ${D}); allowed here: fp32`);
    if (extras.mustafar) {
      if (D % 32 !== 0) throw new ParamError('decode.method', `mustafar's bitmap rows need a head dim that is a multiple of 32, got ${D}`);
      if (format !== 'fp32') throw new ParamError('decode.format', 'mustafar stores fp32 values (its compressed rows replace the dense cache); allowed: fp32');
      const { keepK, keepV } = extras.mustafar;
      this.mustafar = { keepK, keepV, kbits: cacheTensor([B, H, cap, D / 32], 'int32'), kvals: cacheTensor([B, H, cap, keepK]), vbits: cacheTensor([B, H, cap, D / 32], 'int32'), vvals: cacheTensor([B, H, cap, keepV]) };
    } else {
      const slot = format === 'bf16' ? D / 2 : D;
      this.k = cacheTensor([B, H, cap, slot]);
      this.v = cacheTensor([B, H, cap, slot]);
    }
    if (extras.pageStats) {
      const page = extras.pageStats, capPages = Math.ceil(cap / page);
      this.pages = { page, capPages, kmin: cacheTensor([B, H, capPages, D]), kmax: cacheTensor([B, H, capPages, D]) };
    }
    if (extras.labelChannels) {
      const r = extras.labelChannels.shape[1];
      this.label = { channels: extras.labelChannels, r, store: cacheTensor([B, H, cap, r]) };
    }
  }

  /** Append n tokens' keys and values [B, H, n, D] (fp32, RoPE applied) at positions len... */
  append(k: tf.Tensor4D, v: tf.Tensor4D): void {
    const { B, H, D, cap, format } = this.shape;
    const n = k.shape[2];
    if (k.shape[0] !== B || k.shape[1] !== H || k.shape[3] !== D) throw new ParamError('decode.append', `keys must be [${B}, ${H}, n, ${D}], got [${k.shape}]`);
    if (this.len + n > cap) throw new ParamError('decode.cap', `the cache holds ${cap} tokens; appending ${n} to ${this.len} overflows it (raise the decoder's capacity)`);
    const pos = this.len;
    if (this.mustafar) {
      mustafarCompress(k, this.mustafar.kbits, this.mustafar.kvals, cap, pos, this.mustafar.keepK);
      mustafarCompress(v, this.mustafar.vbits, this.mustafar.vvals, cap, pos, this.mustafar.keepV);
    } else {
      kvWrite(format, k, this.k!, cap, pos);
      kvWrite(format, v, this.v!, cap, pos);
    }
    this.len += n;
    if (this.pages) {
      const p = this.pages;
      pageMinMax(format, this.k!, p.kmin, p.kmax, { B, H, D, cap, page: p.page, capPages: p.capPages }, Math.floor(pos / p.page), Math.ceil(this.len / p.page), this.len);
    }
    if (this.label) labelWrite(k, this.label.store, this.label.channels, cap, pos);
  }

  /** Bytes held for the tokens cached so far (capacity not counted). */
  bytes(): number {
    const { B, H, D } = this.shape, rows = B * H * this.len;
    let b = 0;
    if (this.mustafar) b += rows * ((D / 32) * 4 * 2 + (this.mustafar.keepK + this.mustafar.keepV) * 4);
    else b += rows * D * 2 * (this.shape.format === 'bf16' ? 2 : 4);
    if (this.pages) b += B * H * Math.ceil(this.len / this.pages.page) * D * 2 * 4;
    if (this.label) b += rows * this.label.r * 4;
    return b;
  }

  dispose(): void {
    tf.dispose([this.k, this.v, this.pages?.kmin, this.pages?.kmax, this.label?.store, this.mustafar?.kbits, this.mustafar?.kvals, this.mustafar?.vbits, this.mustafar?.vvals].filter((x): x is tf.Tensor => !!x));
  }
}

/**
 * Append `len` tokens of seeded random keys and values to every cache (all of one shape) without a
 * model: one random chunk of `chunk` tokens (keys from seed, values from seed + 1) appended
 * repeatedly. What latency and bandwidth measurements fill long caches with: a step costs the same
 * whatever the cache holds, and drawing every token's normals on the host would cost more than the case.
 */
export function fillRandom(caches: LayerCache[], len: number, seed: number, chunk: number): void {
  const { B, H, D } = caches[0]!.shape;
  const size = Math.min(chunk, len);
  const k = tf.randomNormal([B, H, size, D], 0, 1, 'float32', seed) as tf.Tensor4D;
  const v = tf.randomNormal([B, H, size, D], 0, 1, 'float32', seed + 1) as tf.Tensor4D;
  try {
    for (let done = 0; done < len; done += size) {
      const n = Math.min(size, len - done);
      tf.tidy(() => {
        const kk = n === size ? k : (tf.slice(k, [0, 0, 0, 0], [-1, -1, n, -1]) as tf.Tensor4D);
        const vv = n === size ? v : (tf.slice(v, [0, 0, 0, 0], [-1, -1, n, -1]) as tf.Tensor4D);
        for (const c of caches) c.append(kk, vv);
      });
    }
  } finally {
    tf.dispose([k, v]);
  }
}
