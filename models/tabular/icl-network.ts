/**
 * The Orion-MSP-style tabular ICL network, small. Four stages, all attention through the shared
 * block-sparse operator:
 * 1. column embedding: each column's cells -> vectors, then an ISAB whose inducing points read the
 *    column's TRAIN cells only and every cell reads the inducing points back;
 * 2. multi-scale row interaction: per row, CLS tokens + feature tokens at scales 1, 4, 16 (contiguous
 *    groups mean-pooled), transformer blocks with RoPE over feature positions and a block layout
 *    (BigBird-like window + global + random blocks from kernels/layout; or dense for the control);
 *    the CLS outputs of all scales form the row embedding;
 * 3. Perceiver memory: latents written by train rows only, read by every row;
 * 4. ICL predictor: label embeddings added to train rows; every row attends to train rows only
 *    (split attention: test rows never see each other); a head gives class logits for test rows.
 */
import * as tf from '@tensorflow/tfjs-core';
import { blockSparseAttention } from '../../kernels/block-sparse.js';
import type { BlockLayout } from '../../kernels/layout.js';
import { fullLayout, layoutFor, LAYOUT_DEFAULTS, type LayoutSpec } from '../../kernels/attention.js';
import { gatherRows, gelu, layerNorm, repeatParam, rope } from '../../kernels/ops.js';
import { ParamFactory, uniquePrefix } from '../init.js';
import { ParamError, enumParam, intParam, rejectUnknown } from '../../core/params.js';

export interface IclConfig {
  /** Row-interaction layout: 'sparse' (window + global + random blocks) or 'dense' (the control). */
  rowAttention: 'sparse' | 'dense';
  maxClasses: number;
  /** Width of cell and feature tokens. */
  dCol: number;
  colHeads: number;
  inducing: number;
  isabBlocks: number;
  rowBlocks: number;
  rowHeads: number;
  cls: number;
  scales: number[];
  /** Token block of the row layout; window / global / random counts are in blocks. */
  block: number;
  windowBlocks: number;
  globalBlocks: number;
  randomBlocks: number;
  ropeBase: number;
  latents: number;
  dIcl: number;
  iclBlocks: number;
  iclHeads: number;
  ffn: number;
}

export const ICL_DEFAULTS: IclConfig = {
  rowAttention: 'sparse', maxClasses: 10, dCol: 16, colHeads: 2, inducing: 8, isabBlocks: 1,
  rowBlocks: 2, rowHeads: 2, cls: 2, scales: [1, 4, 16], block: 16, windowBlocks: 1, globalBlocks: 1, randomBlocks: 2,
  ropeBase: 100000, latents: 16, dIcl: 64, iclBlocks: 3, iclHeads: 4, ffn: 2,
};

export function parseIclConfig(where: string, given: Record<string, unknown>): IclConfig {
  rejectUnknown(where, given, Object.keys(ICL_DEFAULTS));
  const g = { ...ICL_DEFAULTS, ...given };
  const int = (k: keyof IclConfig, lo: number, hi = 4096): number => intParam(where, k, g[k], lo, hi);
  const c: IclConfig = {
    rowAttention: enumParam(where, 'rowAttention', g.rowAttention, ['sparse', 'dense'] as const),
    maxClasses: int('maxClasses', 2, 100), dCol: int('dCol', 4), colHeads: int('colHeads', 1), inducing: int('inducing', 1),
    isabBlocks: int('isabBlocks', 1, 16), rowBlocks: int('rowBlocks', 1, 16), rowHeads: int('rowHeads', 1), cls: int('cls', 1, 64),
    scales: Array.isArray(g.scales) && g.scales.length > 0 ? g.scales.map((s, i) => intParam(where, `scales[${i}]`, s, 1, 1024)) : (() => { throw new ParamError(`${where}.scales`, 'must be a non-empty list of integers'); })(),
    block: int('block', 1, 512), windowBlocks: int('windowBlocks', 0), globalBlocks: int('globalBlocks', 1), randomBlocks: int('randomBlocks', 0),
    ropeBase: intParam(where, 'ropeBase', g.ropeBase, 2, 1e9), latents: int('latents', 1), dIcl: int('dIcl', 4),
    iclBlocks: int('iclBlocks', 1, 64), iclHeads: int('iclHeads', 1), ffn: int('ffn', 1, 16),
  };
  if (c.dCol % c.colHeads || c.dCol % c.rowHeads) throw new ParamError(`${where}.dCol`, `must be divisible by colHeads and rowHeads, got ${c.dCol}`);
  if (c.dIcl % c.iclHeads) throw new ParamError(`${where}.dIcl`, `must be divisible by iclHeads, got ${c.dIcl}`);
  if (c.cls > c.block * c.globalBlocks) throw new ParamError(`${where}.cls`, `CLS tokens must fit in the global blocks (${c.block * c.globalBlocks} tokens)`);
  return c;
}

type V = tf.Variable;
interface Attn { lnq: [V, V]; lnk?: [V, V]; wq: V; wk: V; wv: V; wo: V; bo: V }
interface Ffn { ln: [V, V]; w1: V; b1: V; w2: V; b2: V }
interface Block { attn: Attn; ffn: Ffn }

export class IclNetwork {
  private readonly f: ParamFactory;
  private readonly p: string;
  readonly vars: V[];
  private readonly cellW: V;
  private readonly cellB: V;
  private readonly inducing: V;
  private readonly isab: { toInducing: Block; fromInducing: Block }[] = [];
  private readonly clsTok: V[];
  private readonly rowBlocks: Block[][];
  private readonly rowLn: [V, V];
  private readonly rowProj: V;
  private readonly rowProjB: V;
  private readonly latents: V;
  private readonly write: Block;
  private readonly read: Block;
  private readonly labelEmb: V;
  private readonly icl: Block[] = [];
  private readonly outLn: [V, V];
  private readonly head1: V;
  private readonly head1b: V;
  private readonly head2: V;
  private readonly head2b: V;

  /** `randomInit` false: zero weights, for a network whose weights come from a checkpoint. */
  constructor(readonly c: IclConfig, seed: number, randomInit = true) {
    this.f = new ParamFactory(seed, randomInit);
    this.p = uniquePrefix('icl');
    const { dCol: d, dIcl: D } = c;
    this.cellW = this.f.normal([1, d], 1, `${this.p}/cellW`);
    this.cellB = this.f.normal([d], 0.1, `${this.p}/cellB`);
    this.inducing = this.f.normal([c.inducing, d], 0.5, `${this.p}/inducing`);
    for (let i = 0; i < c.isabBlocks; i++) this.isab.push({ toInducing: this.block(`isab${i}a`, d), fromInducing: this.block(`isab${i}b`, d) });
    this.clsTok = c.scales.map((_, s) => this.f.normal([c.cls, d], 0.5, `${this.p}/cls${s}`));
    this.rowBlocks = c.scales.map((_, s) => Array.from({ length: c.rowBlocks }, (_, b) => this.block(`row${s}.${b}`, d, true)));
    const rowIn = c.cls * d * c.scales.length;
    this.rowLn = this.ln(`rowln`, rowIn);
    this.rowProj = this.f.normal([rowIn, D], 1 / Math.sqrt(rowIn), `${this.p}/rowProj`);
    this.rowProjB = this.f.constant([D], 0, `${this.p}/rowProjB`);
    this.latents = this.f.normal([c.latents, D], 0.5, `${this.p}/latents`);
    this.write = this.block('write', D);
    this.read = this.block('read', D);
    this.labelEmb = this.f.normal([c.maxClasses, D], 0.5, `${this.p}/labels`);
    for (let i = 0; i < c.iclBlocks; i++) this.icl.push(this.block(`icl${i}`, D, false, true));
    this.outLn = this.ln('outln', D);
    this.head1 = this.f.normal([D, 2 * D], 1 / Math.sqrt(D), `${this.p}/head1`);
    this.head1b = this.f.constant([2 * D], 0, `${this.p}/head1b`);
    this.head2 = this.f.normal([2 * D, c.maxClasses], 0.02, `${this.p}/head2`);
    this.head2b = this.f.constant([c.maxClasses], 0, `${this.p}/head2b`);
    this.vars = this.f.created;
  }

  private ln(name: string, d: number): [V, V] {
    return [this.f.constant([d], 1, `${this.p}/${name}g`), this.f.constant([d], 0, `${this.p}/${name}b`)];
  }

  /** `self`: queries and keys are the same tokens, so one pre-norm serves both. */
  private block(name: string, d: number, self = false, similarityInit = false): Block {
    const s = 1 / Math.sqrt(d);
    // ICL blocks start as similarity attention (q = k = identity + noise): a test row weighs the train
    // rows whose embeddings resemble its own, a soft nearest-neighbour rule the training refines.
    // With random q/k the attention starts uniform and the model needs far longer to find ICL.
    const qk = (n: string): V => (similarityInit ? this.f.identityPlusNoise(d, s * 0.3, `${this.p}/${name}.${n}`) : this.f.normal([d, d], s, `${this.p}/${name}.${n}`));
    const h = this.c.ffn * d;
    return {
      attn: {
        lnq: this.ln(`${name}.lnq`, d), ...(self ? {} : { lnk: this.ln(`${name}.lnk`, d) }),
        wq: qk('wq'), wk: qk('wk'),
        wv: this.f.normal([d, d], s, `${this.p}/${name}.wv`), wo: this.f.normal([d, d], s * 0.5, `${this.p}/${name}.wo`),
        bo: this.f.constant([d], 0, `${this.p}/${name}.bo`),
      },
      ffn: {
        ln: this.ln(`${name}.lnf`, d),
        w1: this.f.normal([d, h], s, `${this.p}/${name}.w1`), b1: this.f.constant([h], 0, `${this.p}/${name}.b1`),
        w2: this.f.normal([h, d], (0.5 * 1) / Math.sqrt(h), `${this.p}/${name}.w2`), b2: this.f.constant([d], 0, `${this.p}/${name}.b2`),
      },
    };
  }

  get parameterCount(): number {
    return this.vars.reduce((s, v) => s + v.size, 0);
  }

  /** x [B, L, din] @ w [din, dout] (+ b) */
  private static lin(x: tf.Tensor, w: V, b?: V): tf.Tensor {
    const din = x.shape[x.shape.length - 1]!;
    const y = tf.matMul(tf.reshape(x, [-1, din]), w as tf.Tensor2D);
    const out = tf.reshape(y, [...x.shape.slice(0, -1), w.shape[1]!]);
    return b ? tf.add(out, b) : out;
  }

  /** Multi-head attention of xq [B, Lq, d] over xkv [B, Lk, d] under `layout` (full cross layout by default). */
  private mha(a: Attn, xq: tf.Tensor3D, xkv: tf.Tensor3D, heads: number, o: { layout?: BlockLayout; rope?: boolean } = {}): tf.Tensor3D {
    const [B, Lq, d] = xq.shape;
    const Lk = xkv.shape[1];
    const dh = d / heads;
    const hq = layerNorm(xq, a.lnq[0] as tf.Tensor1D, a.lnq[1] as tf.Tensor1D);
    const hk = a.lnk ? layerNorm(xkv, a.lnk[0] as tf.Tensor1D, a.lnk[1] as tf.Tensor1D) : hq;
    const split = (x: tf.Tensor, L: number): tf.Tensor4D => tf.transpose(tf.reshape(x, [B, L, heads, dh]), [0, 2, 1, 3]) as tf.Tensor4D;
    let q = split(IclNetwork.lin(hq, a.wq), Lq);
    let k = split(IclNetwork.lin(hk, a.wk), Lk);
    const v = split(IclNetwork.lin(hk, a.wv), Lk);
    if (o.rope) {
      q = rope(q, this.c.ropeBase);
      k = rope(k, this.c.ropeBase);
    }
    const out = blockSparseAttention(q, k, v, o.layout ?? fullLayout(Lq, Lk)).out;
    const merged = tf.reshape(tf.transpose(out, [0, 2, 1, 3]), [B, Lq, d]);
    return tf.add(xq, IclNetwork.lin(merged, a.wo, a.bo)) as tf.Tensor3D;
  }

  private ffn(f: Ffn, x: tf.Tensor3D): tf.Tensor3D {
    const h = layerNorm(x, f.ln[0] as tf.Tensor1D, f.ln[1] as tf.Tensor1D);
    return tf.add(x, IclNetwork.lin(gelu(IclNetwork.lin(h, f.w1, f.b1)), f.w2, f.b2)) as tf.Tensor3D;
  }

  /** The row-interaction layout for L tokens (CLS first): bidirectional, from the shared layout specs. */
  rowLayout(L: number): BlockLayout {
    const c = this.c;
    const spec: LayoutSpec = { ...LAYOUT_DEFAULTS, kind: c.rowAttention === 'dense' ? 'dense' : 'bigbird', block: c.block, windowBlocks: c.windowBlocks, globalBlocks: c.globalBlocks, randomBlocks: c.randomBlocks, seed: 0 };
    return layoutFor(spec, L, false);
  }

  /** Stage 1: x [T, n, F] -> cell embeddings [T*n, F, dCol]; inducing points read the first nTrain rows only. */
  embedColumns(x: tf.Tensor3D, nTrain: number): tf.Tensor3D {
    const [T, n, F] = x.shape;
    const d = this.c.dCol;
    const cells = tf.reshape(tf.transpose(x, [0, 2, 1]), [T * F, n, 1]);
    let e = IclNetwork.lin(cells, this.cellW, this.cellB) as tf.Tensor3D;
    for (const blk of this.isab) {
      const train = tf.slice(e, [0, 0, 0], [T * F, nTrain, d]) as tf.Tensor3D;
      let h = repeatParam(this.inducing, [T * F]) as tf.Tensor3D;
      h = this.ffn(blk.toInducing.ffn, this.mha(blk.toInducing.attn, h, train, this.c.colHeads));
      e = this.ffn(blk.fromInducing.ffn, this.mha(blk.fromInducing.attn, e, h, this.c.colHeads));
    }
    return tf.reshape(tf.transpose(tf.reshape(e, [T, F, n, d]), [0, 2, 1, 3]), [T * n, F, d]) as tf.Tensor3D;
  }

  /** Stage 2: cell embeddings [R, F, d] -> row embeddings [R, dIcl]. */
  interactRows(cells: tf.Tensor3D): tf.Tensor2D {
    const [R, F, d] = cells.shape;
    const c = this.c;
    const outs = c.scales.map((s, si) => {
      let tok = cells;
      if (s > 1) {
        const G = Math.ceil(F / s);
        const padded = G * s > F ? tf.pad(cells, [[0, 0], [0, G * s - F], [0, 0]]) : cells;
        const counts = tf.tensor3d(Float32Array.from({ length: G }, (_, g) => 1 / Math.min(s, F - g * s)), [1, G, 1]);
        tok = tf.mul(tf.sum(tf.reshape(padded, [R, G, s, d]), 2), counts) as tf.Tensor3D;
      }
      let x = tf.concat([repeatParam(this.clsTok[si]!, [R]), tok], 1) as tf.Tensor3D;
      const layout = this.rowLayout(x.shape[1]);
      for (const b of this.rowBlocks[si]!) x = this.ffn(b.ffn, this.mha(b.attn, x, x, c.rowHeads, { layout, rope: true }));
      return tf.reshape(tf.slice(x, [0, 0, 0], [R, c.cls, d]), [R, c.cls * d]);
    });
    const cat = outs.length === 1 ? outs[0]! : tf.concat(outs, 1);
    return IclNetwork.lin(layerNorm(cat, this.rowLn[0] as tf.Tensor1D, this.rowLn[1] as tf.Tensor1D), this.rowProj, this.rowProjB) as tf.Tensor2D;
  }

  /** Stages 3-4: rows [T, n, D], train labels [T, nTrain] -> test logits [T, n - nTrain, maxClasses]. */
  predictRows(rows: tf.Tensor3D, yTrain: tf.Tensor2D, nTrain: number, nClasses: number): tf.Tensor3D {
    const [T, n, D] = rows.shape;
    const c = this.c;
    const train = (x: tf.Tensor3D): tf.Tensor3D => tf.slice(x, [0, 0, 0], [T, nTrain, D]) as tf.Tensor3D;
    // Perceiver memory: written by train rows only, read by all.
    let mem = repeatParam(this.latents, [T]) as tf.Tensor3D;
    mem = this.ffn(this.write.ffn, this.mha(this.write.attn, mem, train(rows), c.iclHeads));
    let h = this.ffn(this.read.ffn, this.mha(this.read.attn, rows, mem, c.iclHeads));
    // Label injection on train rows.
    const lab = tf.reshape(gatherRows(this.labelEmb as tf.Tensor2D, tf.reshape(yTrain, [-1])), [T, nTrain, D]);
    h = tf.concat([tf.add(train(h), lab), tf.slice(h, [0, nTrain, 0], [T, n - nTrain, D])], 1) as tf.Tensor3D;
    for (const b of this.icl) h = this.ffn(b.ffn, this.mha(b.attn, h, train(h), c.iclHeads));
    const test = layerNorm(tf.slice(h, [0, nTrain, 0], [T, n - nTrain, D]), this.outLn[0] as tf.Tensor1D, this.outLn[1] as tf.Tensor1D);
    const logits = IclNetwork.lin(gelu(IclNetwork.lin(test, this.head1, this.head1b)), this.head2, this.head2b);
    // Classes the table does not have are masked out of the softmax.
    const mask = tf.tensor1d(Float32Array.from({ length: c.maxClasses }, (_, k) => (k < nClasses ? 0 : -1e4)));
    return tf.add(logits, mask) as tf.Tensor3D;
  }

  /** x [T, n, F] (train rows first), yTrain [T, nTrain] int32 -> logits [T, n - nTrain, maxClasses]. */
  forward(x: tf.Tensor3D, yTrain: tf.Tensor2D, nTrain: number, nClasses: number): tf.Tensor3D {
    if (nClasses > this.c.maxClasses) throw new ParamError('task.nClasses', `${nClasses} classes, more than the model's maxClasses ${this.c.maxClasses}`);
    return tf.tidy(() => {
      const [T, n] = x.shape;
      const rows = tf.reshape(this.interactRows(this.embedColumns(x, nTrain)), [T, n, this.c.dIcl]) as tf.Tensor3D;
      return this.predictRows(rows, yTrain, nTrain, nClasses);
    });
  }
}
