/**
 * Causal transformer: token + learned position embeddings, pre-norm blocks (multi-head attention,
 * GELU MLP), final norm, tied or separate output head. Attention goes through kernels/ only; which
 * pairs attend is the `attention` config (dense here; sparse layouts plug in through the operator).
 */
import * as tf from '@tensorflow/tfjs-core';
import { attention, type LayoutSpec } from '../kernels/attention.js';
import { causalDepthwiseConv, gatherRows, gelu, layerNorm, rope } from '../kernels/ops.js';
import { ParamFactory, uniquePrefix } from './init.js';
import type { ModelContext, SequenceModel } from './types.js';
import { boolParam, enumParam, intParam, rejectUnknown, ParamError } from '../core/params.js';
import { NmMasks, parseNmConfig, type NmConfig } from './nm-sparsity.js';

export interface TransformerConfig {
  /** 'rope' (rotary, default) or 'learned' absolute position embeddings. */
  positions: 'rope' | 'learned';
  /** Kernel size of a causal depthwise convolution before attention in every block (0 = none): Zoology's MQAR hybrid. */
  shortConv: number;
  dModel: number;
  nLayers: number;
  nHeads: number;
  mlpRatio: number;
  tiedHead: boolean;
  /** N:M sparse training of every linear layer (models/nm-sparsity.ts); absent = dense weights. Not in the defaults, so dense configs keep their run ids. */
  nm?: NmConfig;
  /** false: bidirectional attention (masked denoising, grids); absent = causal. */
  causal?: boolean;
}

export const TRANSFORMER_DEFAULTS: TransformerConfig = { positions: 'rope', shortConv: 0, dModel: 64, nLayers: 2, nHeads: 2, mlpRatio: 4, tiedHead: false };

export function parseTransformerConfig(where: string, given: Record<string, unknown>): TransformerConfig {
  rejectUnknown(where, given, [...Object.keys(TRANSFORMER_DEFAULTS), 'nm', 'causal']);
  const g = { ...TRANSFORMER_DEFAULTS, ...given };
  const c: TransformerConfig = {
    positions: enumParam(where, 'positions', g.positions, ['rope', 'learned'] as const),
    shortConv: intParam(where, 'shortConv', g.shortConv, 0, 64),
    dModel: intParam(where, 'dModel', g.dModel, 1, 65536),
    nLayers: intParam(where, 'nLayers', g.nLayers, 1, 1024),
    nHeads: intParam(where, 'nHeads', g.nHeads, 1, 1024),
    mlpRatio: intParam(where, 'mlpRatio', g.mlpRatio, 1, 64),
    tiedHead: boolParam(where, 'tiedHead', g.tiedHead),
    ...(given.nm !== undefined ? { nm: parseNmConfig(`${where}.nm`, (given.nm ?? {}) as Record<string, unknown>) } : {}),
    ...(given.causal !== undefined ? { causal: boolParam(where, 'causal', given.causal) } : {}),
  };
  if (c.dModel % c.nHeads !== 0) throw new ParamError(`${where}.nHeads`, `must divide dModel (${c.dModel}), got ${c.nHeads}`);
  return c;
}

interface Block {
  convW?: tf.Variable; convB?: tf.Variable;
  ln1g: tf.Variable; ln1b: tf.Variable;
  wqkv: tf.Variable; bqkv: tf.Variable;
  wo: tf.Variable; bo: tf.Variable;
  ln2g: tf.Variable; ln2b: tf.Variable;
  w1: tf.Variable; b1: tf.Variable;
  w2: tf.Variable; b2: tf.Variable;
}

/**
 * What a forward pass offers a block's attention beyond q, k, v: whether it is a training pass (the
 * Routing Transformer's centroid updates) and where to add terms to the training objective
 * (Sparsifiner's distillation loss). Tensors pushed to `aux` live in the forward's scope.
 */
export interface MixerPass {
  training: boolean;
  aux: tf.Scalar[];
  /** This block's q and k before the rotary embedding (content only; the Routing Transformer clusters these). */
  unrotated?: { q: tf.Tensor4D; k: tf.Tensor4D };
}

/** The attention of a block: q, k, v [B, H, L, Dh] -> [B, H, L, Dh]; layer = the block's index. */
export type MixerFn = (q: tf.Tensor4D, k: tf.Tensor4D, v: tf.Tensor4D, layer: number, pass?: MixerPass) => tf.Tensor4D;

/**
 * Attention of the model's own (Combiner, LongGen, the trainable-sparsity models): the mixer, its
 * parameters for the run's configuration, and, where it learns, its weights. `init` creates trained
 * weights from the model's factory after the transformer's own, so the shared weights equal a dense
 * model's of the same seed; `state` are variables it updates without gradients (saved with the model).
 */
export interface AttentionModule {
  fn: MixerFn;
  config: Record<string, unknown>;
  init?(f: ParamFactory, prefix: string, c: TransformerConfig): void;
  state?(): tf.Variable[];
  dispose?(): void;
}

export class Transformer implements SequenceModel {
  readonly maxLen: number;
  readonly config: Record<string, unknown>;
  private readonly tokEmb: tf.Variable;
  private readonly posEmb: tf.Variable | undefined;
  private readonly blocks: Block[] = [];
  private readonly lnfg: tf.Variable;
  private readonly lnfb: tf.Variable;
  private readonly wout: tf.Variable | undefined;
  private readonly all: tf.Variable[];
  private mix: MixerFn;
  private readonly ownMix: MixerFn;
  private readonly customMixer: boolean;
  private readonly nm?: NmMasks;
  private training = false;

  constructor(
    readonly name: string,
    readonly c: TransformerConfig,
    ctx: ModelContext,
    private readonly layout?: LayoutSpec,
    private readonly mixer?: AttentionModule,
  ) {
    this.mix = this.ownMix = mixer?.fn ?? ((q, k, v) => attention(q, k, v, layout, c.causal ?? true));
    this.customMixer = !!mixer;
    if (c.nm) this.nm = new NmMasks(c.nm);
    this.maxLen = ctx.maxLen;
    this.config = { ...c, ...(layout ? { attention: layout } : {}), ...(mixer ? mixer.config : {}) };
    const f = new ParamFactory(ctx.seed);
    const p = uniquePrefix(name);
    const d = c.dModel;
    const std = 0.02;
    const residStd = std / Math.sqrt(2 * c.nLayers);
    this.tokEmb = f.normal([ctx.vocabSize, d], std, `${p}/tok`);
    this.posEmb = c.positions === 'learned' ? f.normal([ctx.maxLen, d], std, `${p}/pos`) : undefined;
    for (let l = 0; l < c.nLayers; l++) {
      const q = `${p}/b${l}`;
      this.blocks.push({
        ...(c.shortConv > 0 ? { convW: f.normal([c.shortConv, d], 1 / Math.sqrt(c.shortConv), `${q}/convw`), convB: f.constant([d], 0, `${q}/convb`) } : {}),
        ln1g: f.constant([d], 1, `${q}/ln1g`), ln1b: f.constant([d], 0, `${q}/ln1b`),
        wqkv: f.normal([d, 3 * d], std, `${q}/wqkv`), bqkv: f.constant([3 * d], 0, `${q}/bqkv`),
        wo: f.normal([d, d], residStd, `${q}/wo`), bo: f.constant([d], 0, `${q}/bo`),
        ln2g: f.constant([d], 1, `${q}/ln2g`), ln2b: f.constant([d], 0, `${q}/ln2b`),
        w1: f.normal([d, c.mlpRatio * d], std, `${q}/w1`), b1: f.constant([c.mlpRatio * d], 0, `${q}/b1`),
        w2: f.normal([c.mlpRatio * d, d], residStd, `${q}/w2`), b2: f.constant([d], 0, `${q}/b2`),
      });
    }
    this.lnfg = f.constant([d], 1, `${p}/lnfg`);
    this.lnfb = f.constant([d], 0, `${p}/lnfb`);
    this.wout = c.tiedHead ? undefined : f.normal([d, ctx.vocabSize], std, `${p}/wout`);
    mixer?.init?.(f, p, c);
    this.all = f.created;
  }

  variables(): tf.Variable[] {
    return this.all;
  }

  state(): tf.Variable[] {
    return this.mixer?.state?.() ?? [];
  }

  setTraining(on: boolean): void {
    this.training = on;
  }

  /**
   * Attend through another mixer (a layout selector's, a capture for calibration) with the same
   * weights; undefined restores the model's own. Post-training sparsification (suites/sparsify.ts).
   */
  setMixer(fn?: MixerFn): void {
    this.mix = fn ?? this.ownMix;
  }

  hidden(ids: tf.Tensor2D): tf.Tensor3D {
    return this.hiddenWithAux(ids).h;
  }

  hiddenWithAux(ids: tf.Tensor2D): { h: tf.Tensor3D; aux?: tf.Scalar } {
    if (ids.shape[1] > this.maxLen) throw new Error(`model ${this.name}: sequence length ${ids.shape[1]} exceeds maxLen ${this.maxLen}`);
    return this.run(ids, 0, this.mix);
  }

  /**
   * Whether the model attends through a mixer of its own (Combiner's factorised attention) rather
   * than a layout: such attention is not a softmax over cached keys, so it has no KV-cached decoder.
   */
  get ownMixer(): boolean {
    return this.customMixer;
  }

  /** Whether attention is causal (false: bidirectional, which has no left-to-right decoder). */
  get causal(): boolean {
    return this.c.causal ?? true;
  }

  /** The model's own attention pattern (undefined: dense), for decoders that must reproduce it. */
  get layoutSpec(): LayoutSpec | undefined {
    return this.layout;
  }

  /**
   * Final hidden states of n tokens at positions pos.. (ids [B, n]), attending through `mix` (which
   * sees q and k already rotated to their positions): the shared body of the full forward (pos 0) and
   * of KV-cached decoding (kernels/decode), which also passes the short convolutions' state (the last
   * k-1 inputs of every block, updated here).
   */
  forwardFrom(ids: tf.Tensor2D, pos: number, mix: MixerFn, conv?: ConvState): tf.Tensor3D {
    return this.run(ids, pos, mix, conv).h;
  }

  private run(ids: tf.Tensor2D, pos: number, mix: MixerFn, conv?: ConvState): { h: tf.Tensor3D; aux?: tf.Scalar } {
    this.nm?.tick();
    return tf.tidy(() => {
      const pass: MixerPass = { training: this.training, aux: [] };
      const [B, L] = ids.shape;
      const d = this.c.dModel;
      let x = gatherRows(this.tokEmb as tf.Tensor2D, ids) as tf.Tensor3D;
      if (this.posEmb) x = tf.add(x, tf.slice(this.posEmb, [pos, 0], [L, d])) as tf.Tensor3D;
      for (const [layer, b] of this.blocks.entries()) {
        let h = layerNorm(x, b.ln1g as tf.Tensor1D, b.ln1b as tf.Tensor1D) as tf.Tensor3D;
        if (b.convW) h = conv ? convWithState(h, b.convW as tf.Tensor2D, b.convB as tf.Tensor1D, conv, layer) : causalDepthwiseConv(h, b.convW as tf.Tensor2D, b.convB as tf.Tensor1D);
        x = tf.add(x, this.selfAttention(h, b, B, L, layer, pos, mix, pass)) as tf.Tensor3D;
        const h2 = layerNorm(x, b.ln2g as tf.Tensor1D, b.ln2b as tf.Tensor1D) as tf.Tensor3D;
        x = tf.add(x, this.mlp(h2, b)) as tf.Tensor3D;
      }
      const out = layerNorm(x, this.lnfg as tf.Tensor1D, this.lnfb as tf.Tensor1D) as tf.Tensor3D;
      return pass.aux.length ? { h: out, aux: tf.addN(pass.aux) as tf.Scalar } : { h: out };
    });
  }

  head(h: tf.Tensor2D): tf.Tensor2D {
    return tf.tidy(() => (this.wout ? this.lin(h, this.wout) : tf.matMul(h, this.tokEmb as tf.Tensor2D, false, true)));
  }

  private selfAttention(h: tf.Tensor3D, b: Block, B: number, L: number, layer: number, pos: number, mix: MixerFn, pass: MixerPass): tf.Tensor3D {
    const d = this.c.dModel;
    const H = this.c.nHeads;
    const Dh = d / H;
    const qkv = tf.add(this.lin(tf.reshape(h, [B * L, d]) as tf.Tensor2D, b.wqkv), b.bqkv);
    // [B*L, 3d] -> [3, B, H, L, Dh] in one transpose, then split.
    const t = tf.transpose(tf.reshape(qkv, [B, L, 3, H, Dh]), [2, 0, 3, 1, 4]);
    const [q, k, v] = tf.unstack(t, 0) as tf.Tensor4D[];
    const rot = this.c.positions === 'rope';
    pass.unrotated = { q: q!, k: k! };
    const o = mix(rot ? rope(q!, 10000, pos) : q!, rot ? rope(k!, 10000, pos) : k!, v!, layer, pass); // [B, H, L, Dh]
    const merged = tf.reshape(tf.transpose(o, [0, 2, 1, 3]), [B * L, d]);
    return tf.reshape(tf.add(this.lin(merged as tf.Tensor2D, b.wo), b.bo), [B, L, d]);
  }

  private mlp(h: tf.Tensor3D, b: Block): tf.Tensor3D {
    const [B, L, d] = h.shape;
    const u = gelu(tf.add(this.lin(tf.reshape(h, [B * L, d]) as tf.Tensor2D, b.w1), b.b1));
    return tf.reshape(tf.add(this.lin(u as tf.Tensor2D, b.w2), b.b2), [B, L, d]);
  }

  /** A linear layer's product: N:M-sparse in both passes when the model trains with nm, else a plain matmul. */
  private lin(x: tf.Tensor2D, w: tf.Variable): tf.Tensor2D {
    return this.nm ? this.nm.matMul(x, w) : tf.matMul(x, w as tf.Tensor2D);
  }

  dispose(): void {
    this.nm?.clear();
    this.mixer?.dispose?.();
    for (const v of this.all) v.dispose();
  }
}

/** Per block, the last k-1 (normalised) inputs of its short convolution: a decoder's conv cache. */
export type ConvState = (tf.Tensor3D | undefined)[];

/** The causal convolution of new rows h [B, n, d] continuing the rows in state (zeros before the first). */
function convWithState(h: tf.Tensor3D, w: tf.Tensor2D, b: tf.Tensor1D, state: ConvState, layer: number): tf.Tensor3D {
  const k = w.shape[0], n = h.shape[1];
  const prev = state[layer];
  const x = prev ? tf.concat([prev, h], 1) as tf.Tensor3D : h;
  const y = tf.slice(causalDepthwiseConv(x, w, b), [0, x.shape[1] - n, 0], [-1, n, -1]) as tf.Tensor3D;
  if (k > 1) {
    const keepRows = Math.min(k - 1, x.shape[1]);
    const next = tf.keep(tf.slice(x, [0, x.shape[1] - keepRows, 0], [-1, keepRows, -1]) as tf.Tensor3D);
    prev?.dispose();
    state[layer] = next;
  }
  return y;
}

export function parameterCount(model: SequenceModel): number {
  return model.variables().reduce((s, v) => s + v.size, 0);
}
