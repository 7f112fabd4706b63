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
import { axialColumnLayout, combinerAxialLayout, combinerFixedLayout, combinerSegLen, segmentSummaryLayout, type BlockLayout } from '../kernels/layout.js';
import { boolParam, enumParam, intParam, rejectUnknown } from '../core/params.js';

export interface CombinerConfig {
  /** 'fixed' (segments + segment summaries) or 'axial' (rows + column summaries). */
  variant: 'fixed' | 'axial';
  /** Segment (fixed) or row (axial) length; 0 = the largest power of two <= sqrt(L). */
  segLen: number;
  causal: boolean;
}

export const COMBINER_DEFAULTS: CombinerConfig = { variant: 'fixed', segLen: 0, causal: true };

export function parseCombinerConfig(where: string, given: Record<string, unknown>): CombinerConfig {
  rejectUnknown(where, given, Object.keys(COMBINER_DEFAULTS));
  const g = { ...COMBINER_DEFAULTS, ...given };
  return {
    variant: enumParam(where, 'variant', g.variant, ['fixed', 'axial'] as const),
    segLen: intParam(where, 'segLen', g.segLen, 0, 65536),
    causal: boolParam(where, 'causal', g.causal),
  };
}

const layouts = new Map<string, [BlockLayout, BlockLayout]>();

function layoutsFor(variant: 'fixed' | 'axial', L: number, segLen: number, causal: boolean): [BlockLayout, BlockLayout] {
  const key = `${variant}:${L}:${segLen}:${causal}`;
  let l = layouts.get(key);
  if (!l) {
    l = variant === 'fixed'
      ? [segmentSummaryLayout(L, segLen), combinerFixedLayout(L, segLen, causal)]
      : [axialColumnLayout(L / segLen, segLen, causal), combinerAxialLayout(L, segLen, causal)];
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
    const [summaryLayout, mainLayout] = layoutsFor('fixed', L, segLen, c.causal);
    const pool = (x: tf.Tensor4D) => tf.mean(tf.reshape(x, [B, H, nseg, segLen, x.shape[3]]), 3) as tf.Tensor4D;
    const summaryValues = blockSparseAttention(pool(q), k, v, summaryLayout, { scale: 1 / Math.sqrt(D) }).out;
    const keys = tf.concat([k, pool(k)], 2) as tf.Tensor4D;
    const values = tf.concat([v, summaryValues], 2) as tf.Tensor4D;
    return blockSparseAttention(q, keys, values, mainLayout, { scale: 1 / Math.sqrt(D) }).out;
  });
}

/**
 * Combiner-Axial (rowmajor): rows of segLen tokens. Step 1 summarises, for every position (r, c), its
 * column over the earlier rows (causal) with attention: the summary key and value are the
 * attention-weighted keys and values ("wsum"). Step 2: each query attends to its own row directly and
 * to its row's column summaries in one softmax, so every earlier position is reachable in two hops.
 */
export function combinerAxialAttention(q: tf.Tensor4D, k: tf.Tensor4D, v: tf.Tensor4D, c: CombinerConfig): tf.Tensor4D {
  return tf.tidy(() => {
    const [B, H, L, D] = q.shape;
    const Dv = v.shape[3];
    const ncol = c.segLen || combinerSegLen(L);
    if (L % ncol !== 0) throw new Error(`combiner: segLen ${ncol} must divide the sequence length ${L}`);
    const nrow = L / ncol;
    const [columnLayout, mainLayout] = layoutsFor('axial', L, ncol, c.causal);
    const colMajor = (x: tf.Tensor4D) => tf.reshape(tf.transpose(tf.reshape(x, [B, H, nrow, ncol, x.shape[3]]), [0, 1, 3, 2, 4]), [B, H, L, x.shape[3]]) as tf.Tensor4D;
    const rowMajor = (x: tf.Tensor4D) => tf.reshape(tf.transpose(tf.reshape(x, [B, H, ncol, nrow, x.shape[3]]), [0, 1, 3, 2, 4]), [B, H, L, x.shape[3]]) as tf.Tensor4D;
    // Step 1: weighted sums of keys and values along each column, in one operator call. Causal: the
    // summary at (r, c) covers rows < r and is queried by (r - 1, c), so nothing in it comes from row r
    // (a query (r, c0 < c) must not see token (r, c) through it).
    const kv = tf.concat([k, v], 3) as tf.Tensor4D;
    const colQuery = c.causal
      ? (tf.concat([tf.fill([B, H, ncol, D], 0), tf.slice(q, [0, 0, 0, 0], [B, H, L - ncol, D])], 2) as tf.Tensor4D)
      : q;
    const summaries = rowMajor(blockSparseAttention(colMajor(colQuery), colMajor(k), colMajor(kv), columnLayout, { scale: 1 / Math.sqrt(D) }).out);
    const sumK = tf.slice(summaries, [0, 0, 0, 0], [B, H, L, D]) as tf.Tensor4D;
    const sumV = tf.slice(summaries, [0, 0, 0, D], [B, H, L, Dv]) as tf.Tensor4D;
    // Step 2: the row directly + the row's column summaries, one softmax.
    const keys = tf.concat([k, sumK], 2) as tf.Tensor4D;
    const values = tf.concat([v, sumV], 2) as tf.Tensor4D;
    return blockSparseAttention(q, keys, values, mainLayout, { scale: 1 / Math.sqrt(D) }).out;
  });
}

export function combinerAttention(q: tf.Tensor4D, k: tf.Tensor4D, v: tf.Tensor4D, c: CombinerConfig): tf.Tensor4D {
  return c.variant === 'axial' ? combinerAxialAttention(q, k, v, c) : combinerFixedAttention(q, k, v, c);
}
