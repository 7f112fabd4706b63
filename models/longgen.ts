/**
 * LongGen (seed paper): a hybrid transformer in which a third of the layers, in the middle of the
 * stack, attend fully and the others through a sparse pattern: attention sink + local window
 * (`pattern: "sink-window"`) or strided blocks (`pattern: "strided"`). Same weights and size as the
 * dense transformer; every layer attends through the shared operator with its own layout. Compare
 * with `dense` (all full) and `allSparse: true` (every layer sparse) at the same size.
 */
import * as tf from '@tensorflow/tfjs-core';
import { blockSparseAttention } from '../kernels/block-sparse.js';
import { causalLayout, sinkWindowLayout, stridedLayout, type BlockLayout } from '../kernels/layout.js';
import { boolParam, enumParam, intParam, rejectUnknown } from '../core/params.js';

export interface LongGenConfig {
  pattern: 'sink-window' | 'strided';
  /** Block size of the sparse layouts (sequences shorter than a block use one block). */
  block: number;
  /** sink-window: key blocks at the start every query sees. */
  sinkBlocks: number;
  /** sink-window: key blocks before the own block; strided: the stride in blocks. */
  localBlocks: number;
  stride: number;
  /** Every layer sparse (the all-sparse control). */
  allSparse: boolean;
}

export const LONGGEN_DEFAULTS: LongGenConfig = { pattern: 'sink-window', block: 16, sinkBlocks: 1, localBlocks: 1, stride: 4, allSparse: false };

export function parseLongGenConfig(where: string, given: Record<string, unknown>): LongGenConfig {
  rejectUnknown(where, given, Object.keys(LONGGEN_DEFAULTS));
  const g = { ...LONGGEN_DEFAULTS, ...given };
  return {
    pattern: enumParam(where, 'pattern', g.pattern, ['sink-window', 'strided'] as const),
    block: intParam(where, 'block', g.block, 1, 4096),
    sinkBlocks: intParam(where, 'sinkBlocks', g.sinkBlocks, 0, 1 << 16),
    localBlocks: intParam(where, 'localBlocks', g.localBlocks, 0, 1 << 16),
    stride: intParam(where, 'stride', g.stride, 1, 1 << 16),
    allSparse: boolParam(where, 'allSparse', g.allSparse),
  };
}

/** Which layers attend fully: round(n / 3) of them (at least one unless allSparse), centred in the stack. */
export function fullLayers(nLayers: number, c: Pick<LongGenConfig, 'allSparse'>): boolean[] {
  if (c.allSparse) return new Array<boolean>(nLayers).fill(false);
  const f = Math.max(1, Math.round(nLayers / 3));
  const first = Math.floor((nLayers - f) / 2);
  return Array.from({ length: nLayers }, (_, l) => l >= first && l < first + f);
}

const cache = new Map<string, BlockLayout>();

/** The causal layout of layer kind `full` or the sparse pattern at length L. */
export function longGenLayout(c: LongGenConfig, L: number, full: boolean): BlockLayout {
  const B = Math.min(c.block, L);
  const key = `${full ? 'full' : JSON.stringify(c)}:${L}:${B}`;
  let l = cache.get(key);
  if (!l) {
    const s = { Lq: L, Lk: L, Bq: B, Bk: B, causal: true };
    l = full ? causalLayout(s) : c.pattern === 'strided' ? stridedLayout(s, c.stride) : sinkWindowLayout(s, c.sinkBlocks, c.localBlocks);
    cache.set(key, l);
  }
  return l;
}

/** The mixer a Transformer attends through: layer l's layout by its kind. */
export function longGenAttention(c: LongGenConfig, nLayers: number): (q: tf.Tensor4D, k: tf.Tensor4D, v: tf.Tensor4D, layer: number) => tf.Tensor4D {
  const full = fullLayers(nLayers, c);
  return (q, k, v, layer) => blockSparseAttention(q, k, v, longGenLayout(c, q.shape[2], full[layer]!)).out;
}
