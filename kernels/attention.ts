/**
 * How models attend: a layout spec (dense, window, BigBird, ...) resolved to a block layout for the
 * sequence length at hand (cached), then the shared block-sparse operator. No model contains an
 * attention loop of its own.
 */
import * as tf from '@tensorflow/tfjs-core';
import { bigBirdLayout, causalLayout, denseLayout, slidingWindowLayout, type BlockLayout } from './layout.js';
import { blockSparseAttention } from './block-sparse.js';
import { ParamError, enumParam, intParam, rejectUnknown } from '../core/params.js';

export const LAYOUT_KINDS = ['dense', 'window', 'bigbird'] as const;
export type LayoutKind = (typeof LAYOUT_KINDS)[number];

export interface LayoutSpec {
  kind: LayoutKind;
  /** Block size (Bq = Bk); sequences shorter than a block use one block. */
  block: number;
  /** window: token window |i - j| <= window. */
  window: number;
  /** bigbird: neighbouring blocks each side, global blocks, random blocks per row. */
  windowBlocks: number;
  globalBlocks: number;
  randomBlocks: number;
  seed: number;
}

export const LAYOUT_DEFAULTS: LayoutSpec = { kind: 'dense', block: 64, window: 16, windowBlocks: 1, globalBlocks: 1, randomBlocks: 1, seed: 0 };

export function parseLayoutSpec(where: string, given: Record<string, unknown>): LayoutSpec {
  rejectUnknown(where, given, Object.keys(LAYOUT_DEFAULTS));
  const g = { ...LAYOUT_DEFAULTS, ...given };
  return {
    kind: enumParam(where, 'kind', g.kind, LAYOUT_KINDS),
    block: intParam(where, 'block', g.block, 1, 4096),
    window: intParam(where, 'window', g.window, 0),
    windowBlocks: intParam(where, 'windowBlocks', g.windowBlocks, 0),
    globalBlocks: intParam(where, 'globalBlocks', g.globalBlocks, 0),
    randomBlocks: intParam(where, 'randomBlocks', g.randomBlocks, 0),
    seed: intParam(where, 'seed', g.seed, 0),
  };
}

const cache = new Map<string, BlockLayout>();

/** The causal block layout of a spec at sequence length L. */
export function layoutFor(spec: LayoutSpec, L: number, causal = true): BlockLayout {
  const key = `${JSON.stringify(spec)}:${L}:${causal}`;
  let l = cache.get(key);
  if (!l) {
    const B = Math.min(spec.block, L);
    const s = { Lq: L, Lk: L, Bq: B, Bk: B, causal };
    switch (spec.kind) {
      case 'dense':
        l = causal ? causalLayout(s) : denseLayout(s);
        break;
      case 'window':
        l = slidingWindowLayout(s, spec.window);
        break;
      case 'bigbird':
        l = bigBirdLayout(s, spec);
        break;
      default:
        throw new ParamError('attention.kind', `unknown layout ${JSON.stringify(spec.kind)}; allowed: ${LAYOUT_KINDS.join(', ')}`);
    }
    cache.set(key, l);
  }
  return l;
}

/** Every query sees every key, Lq x Lk (cross attention: latents, inducing points, ICL over train rows). */
export function fullLayout(Lq: number, Lk: number): BlockLayout {
  const key = `full:${Lq}:${Lk}`;
  let l = cache.get(key);
  if (!l) cache.set(key, (l = denseLayout({ Lq, Lk, Bq: Math.min(64, Lq), Bk: Math.min(64, Lk), causal: false })));
  return l;
}

/** q [B,H,L,D], k, v -> [B,H,L,Dv] under the spec's layout (causal unless told otherwise). */
export function attention(q: tf.Tensor4D, k: tf.Tensor4D, v: tf.Tensor4D, spec: LayoutSpec = LAYOUT_DEFAULTS, causal = true): tf.Tensor4D {
  return blockSparseAttention(q, k, v, layoutFor(spec, q.shape[2], causal)).out;
}
