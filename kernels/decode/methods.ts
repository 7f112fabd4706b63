/**
 * Decode-time methods: which cached tokens or pages a step's query reads (one DecodeSelection
 * interface, kernels/decode/types.ts), or, for Mustafar, how the cache is stored. Every method gets
 * the same cache and the same split-KV kernel; only the selection differs.
 *
 *   dense            every cached token
 *   streaming        StreamingLLM: sink tokens + a local window, every head
 *   quest            Quest: per page, per channel key min/max; query-centric bound
 *                    sum_c max(q_c kmin_c, q_c kmax_c); the top pages within a token budget + the current page
 *   lserve           LServe: half the heads (per layer, chosen by profiling) streaming; the others Quest
 *                    with the selection reused for `reuse` steps (pages since then read as the tail)
 *   double-sparsity  offline-calibrated outlier channels per head; a label cache of those r channels;
 *                    the top-k tokens by q . k on them; exact attention on those tokens (+ the newest)
 *   mustafar         per-token magnitude pruning of K and V to a target sparsity, bitmap-compressed
 *                    rows, attention computed on the compressed rows
 * Budgets: tokens read per head per step for the token and page methods (constant in the context
 * length, as LServe's page budget); the pruned fraction of every K and V row for Mustafar.
 */
import * as tf from '@tensorflow/tfjs-core';
import { ParamError } from '../../core/params.js';
import { layoutFor, type LayoutSpec } from '../attention.js';
import { nBlocks } from '../layout.js';
import type { CacheExtras, LayerCache } from './kv-cache.js';
import { decodeAttn, labelScores, mustafarAttn, questScores, topkRows } from './ops.js';
import type { DecodeSelection, StepContext } from './types.js';

export const DECODE_METHODS = ['dense', 'streaming', 'quest', 'lserve', 'double-sparsity', 'mustafar'] as const;
export type DecodeMethodName = (typeof DECODE_METHODS)[number];

/** Offline state a method calibrated on validation prompts (per layer). */
export interface DecodeCalibration {
  /** lserve: per layer, which heads are streaming heads. */
  streamingHeads?: boolean[][];
  /** double-sparsity: per layer, [H][r] label channels. */
  labelChannels?: number[][][];
}

export interface DecodeMethodOptions {
  /** Tokens read per head per step (token / page methods), or the pruned fraction (mustafar). */
  budget: number;
  /** Tokens per page (quest, lserve). */
  page: number;
  /** Sink tokens (streaming, lserve's streaming heads). */
  sink: number;
  /** lserve: decode steps one page selection serves. */
  reuse: number;
  /** double-sparsity: label channels per head. */
  labelChannels: number;
}

export const DECODE_METHOD_DEFAULTS: Omit<DecodeMethodOptions, 'budget'> = { page: 16, sink: 16, reuse: 4, labelChannels: 8 };

/** One method bound to a model's layers: what the cache keeps, and the attention of one step. */
export interface DecodeMethod {
  readonly name: string;
  readonly budgetMeaning: string;
  extras(layer: number, H: number): CacheExtras;
  attend(q: tf.Tensor3D, cache: LayerCache, ctx: StepContext, scale: number): tf.Tensor3D;
  /**
   * Bytes one step reads per (batch, head) row at context len (elem: bytes per cached K/V value):
   * the memory traffic a report states, selection statistics included.
   */
  bytesRead(len: number, D: number, elem: number): number;
  dispose(): void;
}

function int2(rows: number[][]): tf.Tensor2D {
  return tf.tensor2d(rows.flat(), [rows.length, rows[0]?.length ?? 0], 'int32');
}

/** The same selection for every (batch, head) row, built on the host. */
function hostSelection(B: number, H: number, page: number, pageList: number[], tail: number | Int32Array): DecodeSelection {
  const maxp = Math.max(1, pageList.length);
  const rows = B * H;
  const pages = new Int32Array(rows * maxp).fill(-1);
  for (let r = 0; r < rows; r++) pages.set(pageList, r * maxp);
  return {
    page,
    pages: tf.tensor2d(pages, [rows, maxp], 'int32'),
    counts: tf.tensor1d(new Int32Array(rows).fill(pageList.length), 'int32'),
    tailFrom: typeof tail === 'number' ? new Int32Array(H).fill(tail) : tail,
  };
}

/** The split-KV kernel over a selection (null: dense). */
export function attendSelection(q: tf.Tensor3D, cache: LayerCache, len: number, scale: number, sel: DecodeSelection | null): tf.Tensor3D {
  const { cap, format, D } = cache.shape;
  if (!sel) return decodeAttn({ q, k: cache.k!, v: cache.v!, fmt: format, cap, len, D, scale });
  const tail = tf.tensor1d(sel.tailFrom, 'int32');
  try {
    const t = Array.from(sel.tailFrom);
    return decodeAttn({ q, k: cache.k!, v: cache.v!, fmt: format, cap, len, D, scale, sel: { pages: sel.pages, counts: sel.counts, tailFrom: tail, page: sel.page, maxTail: Math.max(...t), minTail: Math.min(...t) } });
  } finally {
    tail.dispose();
  }
}

const noExtras = (): CacheExtras => ({});

function dense(): DecodeMethod {
  return {
    name: 'dense', budgetMeaning: 'every cached token', extras: noExtras, bytesRead: (len, D, e) => len * 2 * D * e, dispose: () => {},
    attend: (q, cache, ctx, scale) => attendSelection(q, cache, ctx.len, scale, null),
  };
}

/** A model's own sparse layout (window, BigBird) reproduced per step: what its full forward computes. */
export function layoutMethod(spec: LayoutSpec, cap: number): DecodeMethod {
  if (spec.kind === 'dense') return dense();
  const l = layoutFor(spec, cap);
  return {
    name: `layout:${spec.kind}`, budgetMeaning: 'the model layout', extras: noExtras, dispose: () => {},
    bytesRead: (len, D, e) => (spec.kind === 'window' ? Math.min(len, spec.window + 1) : len) * 2 * D * e,
    attend: (q, cache, ctx, scale) => {
      const [B, H] = q.shape;
      const t = ctx.len - 1;
      let sel: DecodeSelection;
      if (spec.kind === 'window') {
        sel = hostSelection(B, H, 1, [], Math.max(0, t - spec.window));
      } else {
        if (l.H !== 1) throw new ParamError('attention.kind', 'per-head layouts are not decoded');
        const i = Math.floor(t / l.Bq), nQ = nBlocks(l.Lq, l.Bq);
        const row = Array.from(l.colIdx.subarray(l.rowPtr[i]!, l.rowPtr[i + 1]!)).filter((j) => j < i);
        if (l.mask || i >= nQ) throw new ParamError('attention.kind', `${spec.kind} layouts with token masks are not decoded`);
        sel = hostSelection(B, H, l.Bk, row, i * l.Bk);
      }
      try {
        return attendSelection(q, cache, ctx.len, scale, sel);
      } finally {
        tf.dispose([sel.pages, sel.counts]);
      }
    },
  };
}

function streaming(o: DecodeMethodOptions): DecodeMethod {
  const local = Math.max(1, o.budget - o.sink);
  return {
    name: 'streaming', budgetMeaning: `tokens read per head (${o.sink} sink + local window)`, extras: noExtras, dispose: () => {},
    bytesRead: (len, D, e) => Math.min(len, o.budget) * 2 * D * e,
    attend: (q, cache, ctx, scale) => {
      const [B, H] = q.shape;
      const sel = hostSelection(B, H, o.sink, [0], Math.max(0, ctx.len - local));
      try {
        return attendSelection(q, cache, ctx.len, scale, sel);
      } finally {
        tf.dispose([sel.pages, sel.counts]);
      }
    },
  };
}

/**
 * Page selection shared by quest and lserve. Per layer it keeps the last selection (lserve reuses it
 * for `reuse` steps): pages below the page current at selection time, chosen by the Quest bound, and
 * the tail from that page on.
 */
function pageSelector(o: DecodeMethodOptions, name: 'quest' | 'lserve', streamingHeads?: boolean[][]) {
  const nSel = Math.max(1, Math.floor(o.budget / o.page) - 1);
  const local = Math.max(1, o.budget - o.sink);
  const sinkPages = Math.max(1, Math.ceil(o.sink / o.page));
  const reuse = name === 'lserve' ? o.reuse : 1;
  const last = new Map<number, { pages: tf.Tensor2D; counts: tf.Tensor1D; tailPage: number; step: number }>();
  const sinks = new Map<number, tf.Tensor1D>();
  const method: DecodeMethod = {
    name,
    budgetMeaning: name === 'quest' ? `tokens read per head (pages of ${o.page}, the current page included)` : `tokens read per head (half the heads streaming: ${o.sink} sink + local; the rest pages of ${o.page}, selection reused ${o.reuse} steps)`,
    extras: () => ({ pageStats: o.page }),
    // the selected tokens, and the page bounds (min and max, fp32) each time a selection is made
    bytesRead: (len, D, e) => Math.min(len, o.budget) * 2 * D * e + (Math.ceil(len / o.page) * 2 * D * 4) / (name === 'lserve' ? 2 * reuse : 1),
    attend: (q, cache, ctx, scale) => {
      const [B, H] = q.shape;
      const p = cache.pages!;
      const stream = streamingHeads?.[ctx.layer] ?? new Array<boolean>(H).fill(false);
      let s = last.get(ctx.layer);
      if (!s || ctx.step - s.step >= reuse || ctx.step < s.step) {
        if (s) tf.dispose([s.pages, s.counts]);
        let hs = sinks.get(ctx.layer);
        if (!hs) sinks.set(ctx.layer, (hs = tf.keep(tf.tensor1d(stream.map((x) => (x ? sinkPages : -1)), 'int32'))));
        const nPages = Math.ceil(ctx.len / p.page), tailPage = Math.floor((ctx.len - 1) / p.page);
        const scores = questScores(q, p.kmin, p.kmax, p.capPages, nPages, hs, tailPage);
        const { idx, counts } = topkRows(scores, streamingHeads ? Math.max(nSel, sinkPages) : nSel);
        scores.dispose();
        s = { pages: tf.keep(idx), counts: tf.keep(counts), tailPage, step: ctx.step }; // kept across steps (each step runs in a tidy)
        last.set(ctx.layer, s);
      }
      const tailFrom = Int32Array.from(stream, (x) => (x ? Math.max(0, ctx.len - local) : s!.tailPage * p.page));
      return attendSelection(q, cache, ctx.len, scale, { page: p.page, pages: s.pages, counts: s.counts, tailFrom });
    },
    dispose: () => {
      for (const s of last.values()) tf.dispose([s.pages, s.counts]);
      for (const t of sinks.values()) t.dispose();
      last.clear();
      sinks.clear();
    },
  };
  return method;
}

function doubleSparsity(o: DecodeMethodOptions, cal: DecodeCalibration | undefined): DecodeMethod {
  const channels = cal?.labelChannels;
  if (!channels) throw new ParamError('decode.method', 'double-sparsity needs calibrated label channels (calibrateDecode)');
  const tensors = channels.map((c) => int2(c));
  const k = Math.max(1, o.budget - 1);
  return {
    name: 'double-sparsity', budgetMeaning: `tokens read per head (top-k by ${channels[0]![0]!.length} label channels, + the newest)`,
    extras: (layer) => ({ labelChannels: tensors[layer]! }),
    bytesRead: (len, D, e) => Math.min(len, o.budget) * 2 * D * e + len * channels[0]![0]!.length * 4,
    attend: (q, cache, ctx, scale) => {
      const [, H] = q.shape;
      const lab = cache.label!;
      const tail = ctx.len - 1;
      const scores = labelScores(q, lab.store, lab.channels, cache.shape.cap, ctx.len, tail);
      const { idx, counts } = topkRows(scores, Math.min(k, Math.max(1, tail)));
      scores.dispose();
      try {
        return attendSelection(q, cache, ctx.len, scale, { page: 1, pages: idx, counts, tailFrom: new Int32Array(H).fill(tail) });
      } finally {
        tf.dispose([idx, counts]);
      }
    },
    dispose: () => tf.dispose(tensors),
  };
}

function mustafar(o: DecodeMethodOptions, D: number): DecodeMethod {
  if (!(o.budget >= 0 && o.budget < 1)) throw new ParamError('decode.sparsities', `mustafar prunes a fraction of every row in [0, 1), got ${o.budget}`);
  const keep = Math.max(1, Math.round((1 - o.budget) * D));
  return {
    name: 'mustafar', budgetMeaning: 'pruned fraction of every K and V row (per-token magnitude)',
    extras: () => ({ mustafar: { keepK: keep, keepV: keep } }),
    bytesRead: (len, D) => len * (2 * (D / 32) * 4 + 2 * keep * 4),
    attend: (q, cache, ctx, scale) => mustafarAttn(q, cache.mustafar!, cache.shape.cap, ctx.len, scale),
    dispose: () => {},
  };
}

export function makeDecodeMethod(name: DecodeMethodName, given: Partial<DecodeMethodOptions> & { budget: number }, D: number, cal?: DecodeCalibration): DecodeMethod {
  const o = { ...DECODE_METHOD_DEFAULTS, ...given };
  switch (name) {
    case 'dense':
      return dense();
    case 'streaming':
      return streaming(o);
    case 'quest':
      return pageSelector(o, 'quest');
    case 'lserve':
      if (!cal?.streamingHeads) throw new ParamError('decode.method', 'lserve needs profiled streaming heads (calibrateDecode)');
      return pageSelector(o, 'lserve', cal.streamingHeads);
    case 'double-sparsity':
      return doubleSparsity(o, cal);
    case 'mustafar':
      return mustafar(o, D);
    default:
      throw new ParamError('decode.methods', `unknown method ${JSON.stringify(name)}; allowed: ${DECODE_METHODS.join(', ')}`);
  }
}
