/**
 * Combiner (Ren et al., NeurIPS 2021), Combiner-Fixed: full attention capability at O(L sqrt L) cost.
 * Each query attends directly to its own segment and indirectly, through one summary per other
 * segment, to everything else, in ONE softmax. Through the shared operator:
 *   summary keys   = mean-pooled keys of each segment;
 *   summary values = attention of the segment's mean-pooled query over the segment's keys/values
 *                    (as the authors' code computes them), itself an operator call;
 *   main call      = queries over [tokens ++ summaries] with combinerFixedLayout (own segment,
 *                    causal inside; summaries of strictly earlier segments when causal).
 */
import * as tf from '@tensorflow/tfjs-core';
import { blockSparseAttention } from '../kernels/block-sparse.js';
import { combinerFixedLayout, combinerSegLen, segmentSummaryLayout, type BlockLayout } from '../kernels/layout.js';
import { boolParam, intParam, rejectUnknown } from '../datasets/params.js';

export interface CombinerConfig {
  /** Segment length; 0 = the largest power of two <= sqrt(L). */
  segLen: number;
  causal: boolean;
}

export const COMBINER_DEFAULTS: CombinerConfig = { segLen: 0, causal: true };

export function parseCombinerConfig(where: string, given: Record<string, unknown>): CombinerConfig {
  rejectUnknown(where, given, Object.keys(COMBINER_DEFAULTS));
  const g = { ...COMBINER_DEFAULTS, ...given };
  return { segLen: intParam(where, 'segLen', g.segLen, 0, 65536), causal: boolParam(where, 'causal', g.causal) };
}

const layouts = new Map<string, [BlockLayout, BlockLayout]>();

function layoutsFor(L: number, segLen: number, causal: boolean): [BlockLayout, BlockLayout] {
  const key = `${L}:${segLen}:${causal}`;
  let l = layouts.get(key);
  if (!l) {
    l = [segmentSummaryLayout(L, segLen), combinerFixedLayout(L, segLen, causal)];
    layouts.set(key, l);
  }
  return l;
}

/** q [B,H,L,D], k, v -> [B,H,L,Dv]. */
export function combinerFixedAttention(q: tf.Tensor4D, k: tf.Tensor4D, v: tf.Tensor4D, c: CombinerConfig): tf.Tensor4D {
  return tf.tidy(() => {
    const [B, H, L, D] = q.shape;
    const segLen = c.segLen || combinerSegLen(L);
    const nseg = L / segLen;
    const [summaryLayout, mainLayout] = layoutsFor(L, segLen, c.causal);
    const pool = (x: tf.Tensor4D) => tf.mean(tf.reshape(x, [B, H, nseg, segLen, x.shape[3]]), 3) as tf.Tensor4D;
    const summaryValues = blockSparseAttention(pool(q), k, v, summaryLayout, { scale: 1 / Math.sqrt(D) }).out;
    const keys = tf.concat([k, pool(k)], 2) as tf.Tensor4D;
    const values = tf.concat([v, summaryValues], 2) as tf.Tensor4D;
    return blockSparseAttention(q, keys, values, mainLayout, { scale: 1 / Math.sqrt(D) }).out;
  });
}
