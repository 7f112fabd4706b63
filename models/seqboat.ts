/**
 * SeqBoat (Ren et al., NeurIPS 2023; renll/SeqBoat): a MEGA-style multi-dimensional damped EMA over
 * the whole sequence, a latent configurator that decides per token whether the gated attention unit
 * runs (Sparse Modular Activation), compaction of the active tokens, local chunked attention over the
 * compacted sequence through the shared operator (each chunk sees itself causally and the previous
 * chunk), and scatter back. The attention output of active tokens is scaled by the probability of
 * their "active" decision, which is how the discrete choice gets gradients.
 * Variant notes: softmax attention (the paper's default is relu^2; softmax is its documented
 * alternative), no relative-position bias (RoPE is applied to q and k instead), pre-norm blocks with
 * the residual added after silu(hx + h).
 */
import * as tf from '@tensorflow/tfjs-core';
import { blockSparseAttention } from '../kernels/block-sparse.js';
import { fromBlockSets, type BlockLayout } from '../kernels/layout.js';
import { gatherRows, gelu, layerNorm, rope } from '../kernels/ops.js';
import { ParamFactory, uniquePrefix } from './init.js';
import type { ModelContext, SequenceModel } from './types.js';
import { boolParam, intParam, rejectUnknown } from '../core/params.js';

export interface SeqBoatConfig {
  dModel: number;
  nLayers: number;
  /** EMA dimensions per channel (MEGA's ndim). */
  emaDim: number;
  /** Query/key width of the gated attention unit. */
  dQk: number;
  /** Value width (hdim). */
  dV: number;
  /** Local attention chunk (window) size over the compacted sequence. */
  chunk: number;
  mlpRatio: number;
  /** Tests only: every token active (then SeqBoat is chunked local attention over the full sequence). */
  forceActive: boolean;
}

export const SEQBOAT_DEFAULTS: SeqBoatConfig = { dModel: 64, nLayers: 2, emaDim: 8, dQk: 32, dV: 128, chunk: 16, mlpRatio: 2, forceActive: false };

export function parseSeqBoatConfig(where: string, given: Record<string, unknown>): SeqBoatConfig {
  rejectUnknown(where, given, Object.keys(SEQBOAT_DEFAULTS));
  const g = { ...SEQBOAT_DEFAULTS, ...given };
  return {
    dModel: intParam(where, 'dModel', g.dModel, 2, 65536),
    nLayers: intParam(where, 'nLayers', g.nLayers, 1, 1024),
    emaDim: intParam(where, 'emaDim', g.emaDim, 1, 256),
    dQk: intParam(where, 'dQk', g.dQk, 2, 65536),
    dV: intParam(where, 'dV', g.dV, 1, 65536),
    chunk: intParam(where, 'chunk', g.chunk, 1, 65536),
    mlpRatio: intParam(where, 'mlpRatio', g.mlpRatio, 1, 64),
    forceActive: boolParam(where, 'forceActive', g.forceActive),
  };
}

export interface EmaParams {
  delta: tf.Tensor2D; // [d, n]
  alpha: tf.Tensor2D;
  beta: tf.Tensor2D;
  gamma: tf.Tensor2D;
  omega: tf.Tensor1D; // [d]
}

/** MEGA's EMA kernel k[d, t] = sum_n (p*beta)[d,n] * q[d,n]^t * gamma[d,n] / sqrt(n), t < L. */
export function emaKernel(e: EmaParams, L: number): tf.Tensor2D {
  return tf.tidy(() => {
    const n = e.delta.shape[1];
    const p = tf.sigmoid(e.delta);
    const q = tf.sub(1, tf.mul(p, tf.sigmoid(e.alpha)));
    const t = tf.reshape(tf.range(0, L, 1, 'float32'), [1, 1, L]);
    const powers = tf.exp(tf.mul(tf.expandDims(tf.log(q), 2), t)); // [d, n, L]
    const w = tf.expandDims(tf.mul(tf.mul(tf.mul(p, e.beta), e.gamma), 1 / Math.sqrt(n)), 2);
    return tf.sum(tf.mul(w, powers), 1) as tf.Tensor2D;
  });
}

const toeplitz = new Map<number, [Int32Array, Float32Array]>();

/** Lag index t - s and lower-triangle mask of an L x L Toeplitz matrix (cached per length). */
function toeplitzIndex(L: number): [Int32Array, Float32Array] {
  let c = toeplitz.get(L);
  if (!c) {
    const lag = new Int32Array(L * L);
    const mask = new Float32Array(L * L);
    for (let t = 0; t < L; t++) for (let s = 0; s <= t; s++) (lag[t * L + s] = t - s), (mask[t * L + s] = 1);
    toeplitz.set(L, (c = [lag, mask]));
  }
  return c;
}

/** Causal convolution of x [B, L, d] with the EMA kernel (a Toeplitz matmul per channel) + omega * x. */
export function emaApply(x: tf.Tensor3D, e: EmaParams): tf.Tensor3D {
  return tf.tidy(() => {
    const [B, L, d] = x.shape;
    const k = emaKernel(e, L); // [d, L]
    // Toeplitz T[d, t, s] = k[d, t - s] for s <= t: gather kernel taps by lag, zero above the diagonal.
    const [lag, mask] = toeplitzIndex(L);
    const T = tf.mul(tf.reshape(tf.gather(k, tf.tensor1d(lag, 'int32'), 1), [d, L, L]), tf.tensor2d(mask, [L, L]));
    const xd = tf.transpose(x, [2, 1, 0]); // [d, L, B]
    const y = tf.transpose(tf.matMul(T, xd), [2, 1, 0]); // [B, L, d]
    return tf.add(y, tf.mul(x, e.omega)) as tf.Tensor3D;
  });
}

/** Local chunked causal layout: chunk i sees chunk i (causally) and chunk i - 1 (fully). */
export function chunkLayout(L: number, chunk: number): BlockLayout {
  const c = Math.min(chunk, L);
  const n = Math.ceil(L / c);
  return fromBlockSets({ Lq: L, Lk: L, Bq: c, Bk: c, causal: true }, [Array.from({ length: n }, (_, i) => new Set(i > 0 ? [i - 1, i] : [i]))]);
}

/**
 * Active positions per row, compacted in order and padded with -1: [B, Lc] (Lc = most active in any
 * row, at least 1). Rows keep their order, so causality carries over to the compacted sequence.
 */
export function compactionIndex(active: Uint8Array, B: number, L: number): { index: Int32Array; Lc: number } {
  let Lc = 1;
  for (let b = 0; b < B; b++) {
    let n = 0;
    for (let t = 0; t < L; t++) n += active[b * L + t]!;
    Lc = Math.max(Lc, n);
  }
  const index = new Int32Array(B * Lc).fill(-1);
  for (let b = 0; b < B; b++) {
    let n = 0;
    for (let t = 0; t < L; t++) if (active[b * L + t]) index[b * Lc + n++] = t;
  }
  return { index, Lc };
}

/** x [B, L, d] -> compacted [B, Lc, d] (zeros at padding). */
export function compact(x: tf.Tensor3D, index: Int32Array, Lc: number): tf.Tensor3D {
  return tf.tidy(() => {
    const [B, L, d] = x.shape;
    const flat = tf.concat([tf.reshape(x, [B * L, d]), tf.zeros([1, d])], 0) as tf.Tensor2D; // row B*L = zeros
    const rows = Int32Array.from(index, (t, i) => (t < 0 ? B * L : Math.floor(i / Lc) * L + t));
    return tf.reshape(gatherRows(flat, tf.tensor1d(rows, 'int32')), [B, Lc, d]) as tf.Tensor3D;
  });
}

/** Compacted y [B, Lc, d] -> full length [B, L, d], zeros at inactive positions. */
export function scatter(y: tf.Tensor3D, index: Int32Array, L: number): tf.Tensor3D {
  return tf.tidy(() => {
    const [B, Lc, d] = y.shape;
    // Inverse map: full position -> compacted row (or a zero row).
    const inv = new Int32Array(B * L).fill(B * Lc);
    index.forEach((t, i) => {
      if (t >= 0) inv[Math.floor(i / Lc) * L + t] = i;
    });
    const flat = tf.concat([tf.reshape(y, [B * Lc, d]), tf.zeros([1, d])], 0) as tf.Tensor2D;
    return tf.reshape(gatherRows(flat, tf.tensor1d(inv, 'int32')), [B, L, d]) as tf.Tensor3D;
  });
}

interface Layer {
  ln1g: tf.Variable; ln1b: tf.Variable;
  delta: tf.Variable; alpha: tf.Variable; beta: tf.Variable; gamma: tf.Variable; omega: tf.Variable;
  whx: tf.Variable; bhx: tf.Variable; logTemp: tf.Variable;
  wmx: tf.Variable; bmx: tf.Variable; qkGamma: tf.Variable; qkBeta: tf.Variable;
  wh: tf.Variable; bh: tf.Variable;
  ln2g: tf.Variable; ln2b: tf.Variable; w1: tf.Variable; b1: tf.Variable; w2: tf.Variable; b2: tf.Variable;
}

const silu = (x: tf.Tensor) => tf.mul(x, tf.sigmoid(x));

const chunkLayouts = new Map<string, BlockLayout>();

export class SeqBoat implements SequenceModel {
  readonly name = 'seqboat';
  readonly maxLen: number;
  readonly config: Record<string, unknown>;
  private readonly tokEmb: tf.Variable;
  private readonly layers: Layer[] = [];
  private readonly lnfg: tf.Variable;
  private readonly lnfb: tf.Variable;
  private readonly wout: tf.Variable;
  private readonly all: tf.Variable[];
  /** Active and total token counts per layer since the last reset. */
  private readonly activeCount: number[];
  private readonly totalCount: number[];

  constructor(readonly c: SeqBoatConfig, ctx: ModelContext) {
    this.maxLen = ctx.maxLen;
    this.config = { ...c };
    const f = new ParamFactory(ctx.seed);
    const p = uniquePrefix('seqboat');
    const d = c.dModel;
    const n = c.emaDim;
    const std = 0.02;
    this.tokEmb = f.normal([ctx.vocabSize, d], std, `${p}/tok`);
    for (let l = 0; l < c.nLayers; l++) {
      const q = `${p}/l${l}`;
      this.layers.push({
        ln1g: f.constant([d], 1, `${q}/ln1g`), ln1b: f.constant([d], 0, `${q}/ln1b`),
        // MEGA's init: delta, alpha ~ N(0, 0.2); beta ~ N(0, 0.02) + 1 (alternating sign in MEGA); gamma ~ N(0, 1).
        delta: f.normal([d, n], 0.2, `${q}/delta`), alpha: f.normal([d, n], 0.2, `${q}/alpha`),
        beta: f.normal([d, n], 0.5, `${q}/beta`), gamma: f.normal([d, n], 1, `${q}/gamma`), omega: f.normal([d], 1, `${q}/omega`),
        whx: f.normal([d, 2 + d], std, `${q}/whx`), bhx: f.constant([2 + d], 0, `${q}/bhx`),
        logTemp: f.constant([1], Math.log(Math.sqrt(d)), `${q}/logtemp`),
        wmx: f.normal([d, c.dQk + 2 * c.dV], std, `${q}/wmx`), bmx: f.constant([c.dQk + 2 * c.dV], 0, `${q}/bmx`),
        qkGamma: f.normal([2, c.dQk], std, `${q}/qkg`), qkBeta: f.constant([2, c.dQk], 0, `${q}/qkb`),
        wh: f.normal([c.dV, d], std / Math.sqrt(2 * c.nLayers), `${q}/wh`), bh: f.constant([d], 0, `${q}/bh`),
        ln2g: f.constant([d], 1, `${q}/ln2g`), ln2b: f.constant([d], 0, `${q}/ln2b`),
        w1: f.normal([d, c.mlpRatio * d], std, `${q}/w1`), b1: f.constant([c.mlpRatio * d], 0, `${q}/b1`),
        w2: f.normal([c.mlpRatio * d, d], std / Math.sqrt(2 * c.nLayers), `${q}/w2`), b2: f.constant([d], 0, `${q}/b2`),
      });
    }
    this.lnfg = f.constant([d], 1, `${p}/lnfg`);
    this.lnfb = f.constant([d], 0, `${p}/lnfb`);
    this.wout = f.normal([d, ctx.vocabSize], std, `${p}/wout`);
    this.all = f.created;
    this.activeCount = new Array(c.nLayers).fill(0);
    this.totalCount = new Array(c.nLayers).fill(0);
  }

  variables(): tf.Variable[] {
    return this.all;
  }

  hidden(ids: tf.Tensor2D): tf.Tensor3D {
    return tf.tidy(() => {
      const [B, L] = ids.shape;
      let x = gatherRows(this.tokEmb as tf.Tensor2D, ids) as tf.Tensor3D;
      this.layers.forEach((ly, i) => {
        x = this.layer(x, ly, i, B, L);
      });
      return layerNorm(x, this.lnfg as tf.Tensor1D, this.lnfb as tf.Tensor1D) as tf.Tensor3D;
    });
  }

  private layer(x: tf.Tensor3D, ly: Layer, li: number, B: number, L: number): tf.Tensor3D {
    const d = this.c.dModel;
    const xn = layerNorm(x, ly.ln1g as tf.Tensor1D, ly.ln1b as tf.Tensor1D) as tf.Tensor3D;
    const mx = silu(emaApply(xn, { delta: ly.delta as tf.Tensor2D, alpha: ly.alpha as tf.Tensor2D, beta: ly.beta as tf.Tensor2D, gamma: ly.gamma as tf.Tensor2D, omega: ly.omega as tf.Tensor1D })) as tf.Tensor3D;
    const uh = tf.add(tf.matMul(tf.reshape(mx, [B * L, d]), ly.whx as tf.Tensor2D), ly.bhx);
    const u = tf.slice(uh, [0, 0], [B * L, 2]);
    const hx = tf.reshape(tf.slice(uh, [0, 2], [B * L, d]), [B, L, d]);
    // Latent configurator: P(active) from a temperature-scaled softmax over two routing logits.
    const probs = tf.softmax(tf.div(u, tf.exp(ly.logTemp)));
    const pActive = tf.slice(probs, [0, 1], [B * L, 1]);
    const active = this.c.forceActive ? new Uint8Array(B * L).fill(1) : Uint8Array.from(pActive.dataSync(), (v) => (v > 0.5 ? 1 : 0));
    let nActive = 0;
    for (const a of active) nActive += a;
    this.activeCount[li]! += nActive;
    this.totalCount[li]! += B * L;
    let hFull: tf.Tensor | undefined;  // none active: no attention term (not tf.zeros: a host array per layer and step on the GPU)
    if (nActive > 0) {
      const { index, Lc } = compactionIndex(active, B, L);
      const mxc = compact(mx, index, Lc);
      const zrv = silu(tf.add(tf.matMul(tf.reshape(mxc, [B * Lc, d]), ly.wmx as tf.Tensor2D), ly.bmx));
      const { dQk, dV } = this.c;
      const z = tf.slice(zrv, [0, 0], [B * Lc, dQk]);
      const r = tf.slice(zrv, [0, dQk], [B * Lc, dV]);
      const v = tf.reshape(tf.slice(zrv, [0, dQk + dV], [B * Lc, dV]), [B, 1, Lc, dV]) as tf.Tensor4D;
      const affine = (h: number) => tf.reshape(tf.add(tf.mul(z, tf.slice(ly.qkGamma, [h, 0], [1, dQk])), tf.slice(ly.qkBeta, [h, 0], [1, dQk])), [B, 1, Lc, dQk]) as tf.Tensor4D;
      const key = `${Lc}:${this.c.chunk}`;
      let layout = chunkLayouts.get(key);
      if (!layout) chunkLayouts.set(key, (layout = chunkLayout(Lc, this.c.chunk)));
      const att = blockSparseAttention(rope(affine(0)), rope(affine(1)), v, layout).out; // [B, 1, Lc, dV]
      const h = tf.add(tf.matMul(tf.mul(tf.reshape(att, [B * Lc, dV]), r), ly.wh as tf.Tensor2D), ly.bh);
      // Scatter back; scale by P(active) so the routing decision receives gradients.
      hFull = tf.mul(scatter(tf.reshape(h, [B, Lc, d]) as tf.Tensor3D, index, L), tf.reshape(pActive, [B, L, 1]));
    }
    const y = tf.add(x, silu(hFull ? tf.add(hx, hFull) : hx)) as tf.Tensor3D;
    const yn = layerNorm(y, ly.ln2g as tf.Tensor1D, ly.ln2b as tf.Tensor1D);
    const m = tf.add(tf.matMul(gelu(tf.add(tf.matMul(tf.reshape(yn, [B * L, d]), ly.w1 as tf.Tensor2D), ly.b1)) as tf.Tensor2D, ly.w2 as tf.Tensor2D), ly.b2);
    return tf.add(y, tf.reshape(m, [B, L, d])) as tf.Tensor3D;
  }

  head(h: tf.Tensor2D): tf.Tensor2D {
    return tf.matMul(h, this.wout as tf.Tensor2D);
  }

  /** Fraction of tokens that ran the attention unit, per layer, since the last reset. */
  diagnostics(): Record<string, number[]> {
    return { activationRate: this.activeCount.map((a, i) => (this.totalCount[i] ? a / this.totalCount[i]! : 0)) };
  }

  resetDiagnostics(): void {
    this.activeCount.fill(0);
    this.totalCount.fill(0);
  }

  dispose(): void {
    for (const v of this.all) v.dispose();
  }
}
