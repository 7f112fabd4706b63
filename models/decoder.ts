/**
 * KV-cached incremental decoding of a transformer: prefill writes every layer's keys and values
 * (RoPE applied) into a LayerCache, then each step runs one token per sequence through the same
 * blocks (Transformer.forwardFrom) with attention from kernels/decode: the decode method's selection
 * over the cache, through the split-KV kernel. With the dense method (or the model's own window /
 * BigBird layout) a step computes what the full forward computes at that position.
 */
import * as tf from '@tensorflow/tfjs-core';
import { attention } from '../kernels/attention.js';
import { LayerCache, fillRandom } from '../kernels/decode/kv-cache.js';
import { layoutMethod, type DecodeMethod } from '../kernels/decode/methods.js';
import type { KvFormat } from '../kernels/decode/types.js';
import { canDecode } from '../kernels/decode/ops.js';
import { ParamError } from '../core/params.js';
import { Transformer, type ConvState } from './transformer.js';
import type { SequenceModel } from './types.js';

export interface DecoderOptions {
  batch: number;
  /** Tokens the cache holds (prompt + generated). */
  cap: number;
  format?: KvFormat;
  /** Default: the model's own layout (dense, window or BigBird). */
  method?: DecodeMethod;
}

export class Decoder implements SequenceDecoder {
  readonly cached = true;
  readonly caches: LayerCache[];
  private readonly conv: ConvState = [];
  private readonly method: DecodeMethod;
  private readonly ownMethod: boolean;
  private steps = 0;
  private readonly H: number;
  private readonly D: number;

  constructor(readonly model: Transformer, readonly o: DecoderOptions) {
    if (!model.causal) throw new ParamError('decode.model', `${model.name} is bidirectional (causal: false): it has no left-to-right decoder`);
    if (model.ownMixer) throw new ParamError('decode.model', `${model.name} attends through its own mixer (not a softmax over cached keys): it has no KV-cached decoder; decoderFor gives it a recomputing one`);
    if (o.cap > model.maxLen && model.c.positions === 'learned') throw new ParamError('decode.cap', `${o.cap} exceeds the model's learned positions (${model.maxLen})`);
    this.H = model.c.nHeads;
    this.D = model.c.dModel / model.c.nHeads;
    this.ownMethod = !o.method;
    this.method = o.method ?? layoutMethod(model.layoutSpec ?? { kind: 'dense' } as never, o.cap);
    this.caches = Array.from({ length: model.c.nLayers }, (_, l) => new LayerCache({ B: o.batch, H: this.H, D: this.D, cap: o.cap, format: o.format ?? 'fp32' }, this.method.extras(l, this.H)));
  }

  get len(): number {
    return this.caches[0]!.len;
  }

  /** ids [B * L] (row-major) -> logits of the last position [B, vocab]; fills the cache. */
  prefill(ids: Int32Array, L: number): tf.Tensor2D {
    const B = this.o.batch;
    if (ids.length !== B * L) throw new ParamError('decode.prefill', `ids must hold batch x L = ${B * L} tokens, got ${ids.length}`);
    if (this.len !== 0) throw new ParamError('decode.prefill', 'the cache is not empty (one prefill per decoder)');
    return tf.tidy(() => {
      const h = this.model.forwardFrom(tf.tensor2d(ids, [B, L], 'int32'), 0, (q, k, v, layer) => {
        this.caches[layer]!.append(k, v);
        return attention(q, k, v, this.model.layoutSpec);
      }, this.conv);
      return this.model.head(tf.reshape(tf.slice(h, [0, L - 1, 0], [B, 1, -1]), [B, -1]) as tf.Tensor2D);
    });
  }

  /** One token per sequence [B] at the next position -> logits [B, vocab]. */
  step(tokens: Int32Array): tf.Tensor2D {
    const B = this.o.batch, H = this.H, D = this.D;
    if (tokens.length !== B) throw new ParamError('decode.step', `one token per sequence (${B}), got ${tokens.length}`);
    const pos = this.len, step = this.steps++;
    const scale = 1 / Math.sqrt(D);
    return tf.tidy(() => {
      const h = this.model.forwardFrom(tf.tensor2d(tokens, [B, 1], 'int32'), pos, (q, k, v, layer) => {
        const c = this.caches[layer]!;
        c.append(k, v);
        const o = this.method.attend(tf.reshape(q, [B, H, D]) as tf.Tensor3D, c, { layer, len: c.len, step }, scale);
        return tf.reshape(o, [B, H, 1, D]) as tf.Tensor4D;
      }, this.conv);
      return this.model.head(tf.reshape(h, [B, -1]) as tf.Tensor2D);
    });
  }

  /**
   * Fill every layer's cache with `len` tokens of seeded random keys and values, without a prefill:
   * what latency measurements at long contexts use (a step's cost does not depend on the values). One
   * random chunk of up to 1024 tokens is appended repeatedly.
   */
  fillRandom(len: number, seed: number): void {
    if (this.len !== 0) throw new ParamError('decode.fillRandom', 'the cache is not empty');
    fillRandom(this.caches, len, seed, 1024);
  }

  /** Bytes the caches hold now (all layers). */
  bytes(): number {
    return this.caches.reduce((s, c) => s + c.bytes(), 0);
  }

  dispose(): void {
    for (const c of this.caches) c.dispose();
    tf.dispose(this.conv.filter((x): x is tf.Tensor3D => !!x));
    if (this.ownMethod) this.method.dispose();
  }
}

/** What generation needs of a decoder: a prefill, one-token steps, the bytes it keeps. */
export interface SequenceDecoder {
  /** True for a KV cache; false where each step runs the model over the whole prefix again. */
  readonly cached: boolean;
  readonly len: number;
  prefill(ids: Int32Array, L: number): tf.Tensor2D;
  step(tokens: Int32Array): tf.Tensor2D;
  bytes(): number;
  dispose(): void;
}

/**
 * Greedy decoding for models without a token cache (Combiner's segment summaries and SeqBoat's EMA +
 * compacted chunks are not a softmax over cached keys): every step runs the full forward and takes
 * the prefix's last position, so its logits are the full forward's by construction. The forward runs
 * at the capacity with the positions after the prefix holding token 0: a causal model's outputs at
 * the prefix do not depend on them, and models with length rules (Combiner's segments divide the
 * length) run at the length they were built for. It keeps the token ids only (no decode speed).
 */
export class RecomputeDecoder implements SequenceDecoder {
  readonly cached = false;
  private ids: Int32Array[] = [];
  private n = 0;

  constructor(readonly model: SequenceModel, readonly batch: number, readonly cap: number) {
    const comb = (model.config as { combiner?: { causal?: boolean } }).combiner;
    if (comb && comb.causal === false) throw new ParamError('decode.model', `${model.name} is not causal (combiner.causal false): it cannot generate`);
  }

  get len(): number {
    return this.n;
  }

  prefill(ids: Int32Array, L: number): tf.Tensor2D {
    if (ids.length !== this.batch * L) throw new ParamError('decode.prefill', `ids must hold batch x L = ${this.batch * L} tokens, got ${ids.length}`);
    this.ids = Array.from({ length: this.batch }, (_, b) => ids.slice(b * L, (b + 1) * L));
    this.n = L;
    return this.last();
  }

  step(tokens: Int32Array): tf.Tensor2D {
    if (tokens.length !== this.batch) throw new ParamError('decode.step', `one token per sequence (${this.batch}), got ${tokens.length}`);
    this.ids = this.ids.map((row, b) => Int32Array.from([...row, tokens[b]!]));
    this.n++;
    return this.last();
  }

  private last(): tf.Tensor2D {
    const B = this.batch, n = this.n, L = Math.max(this.cap, n);
    const flat = new Int32Array(B * L);
    this.ids.forEach((row, b) => flat.set(row, b * L));
    return tf.tidy(() => {
      const h = this.model.hidden(tf.tensor2d(flat, [B, L], 'int32'));
      return this.model.head(tf.reshape(tf.slice(h, [0, n - 1, 0], [B, 1, -1]), [B, -1]) as tf.Tensor2D);
    });
  }

  bytes(): number {
    return this.batch * this.n * 4;
  }

  dispose(): void {
    this.ids = [];
  }
}

/**
 * The decoder of a model: a KV cache for transformers (on native / cuda), else recomputation. A
 * decode method needs the cache: asking one of a model without it is an error.
 */
export function decoderFor(model: SequenceModel, o: DecoderOptions): SequenceDecoder {
  if (model instanceof Transformer && !model.causal) throw new ParamError('decode.model', `${model.name} is bidirectional (causal: false): it has no left-to-right decoder; its tasks are scored by iterative unmasking (suites/denoise.ts)`);
  if (model instanceof Transformer && !model.ownMixer && canDecode()) return new Decoder(model, o);
  if (o.method) throw new ParamError('decode.method', `${model.name} on ${tf.getBackend()} has no KV cache (decode methods read one: transformers on native or cuda); allowed here: none`);
  if (o.format === 'bf16') throw new ParamError('decode.format', `${model.name} on ${tf.getBackend()} has no KV cache to store in bf16; allowed here: fp32`);
  return new RecomputeDecoder(model, o.batch, o.cap);
}

/** Row-wise argmax of logits [B, V] on the host. */
export function argmaxRows(logits: tf.Tensor2D): Int32Array {
  const a = tf.argMax(logits, 1);
  const out = a.dataSync() as Int32Array;
  a.dispose();
  return Int32Array.from(out);
}
