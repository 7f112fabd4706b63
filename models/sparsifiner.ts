/**
 * Sparsifiner (seed paper): instance-dependent sparse attention from a lightweight connectivity
 * predictor. Per layer and head, a low-rank predictor (q Pq)(k Pk)^T / sqrt(rank) estimates the
 * attention scores; each query keeps its `keepKeys` highest-scoring earlier-or-equal keys (a binary
 * mask per query, ties to the lower index), and the operator attends over exactly those keys.
 * The mask is not differentiable: the predictor learns from a distillation loss, the cross-entropy
 * from the model's full causal attention map (detached) to the predictor's softmax, averaged over
 * queries and weighted by `distill` (KL up to the map's entropy; in training passes only). The
 * predictor reads detached q and k, so the distillation loss trains the predictor and nothing else,
 * as the paper freezes the backbone's attention target.
 */
import * as tf from '@tensorflow/tfjs-core';
import { blockSparseAttention } from '../kernels/block-sparse.js';
import { foldHeads, fromKeyBits, unfoldHeads } from '../kernels/instance-layout.js';
import { topK } from '../kernels/selectors/select.js';
import { canDecode, topkRows } from '../kernels/decode/ops.js';
import { causalBias, stopGradient } from '../kernels/ops.js';
import { intParam, numParam, rejectUnknown } from '../core/params.js';
import type { ParamFactory } from './init.js';
import type { AttentionModule, MixerPass, TransformerConfig } from './transformer.js';

export interface SparsifinerConfig {
  /** Rank of the predictor's query and key projections (per head). */
  rank: number;
  /** Keys kept per query. */
  keepKeys: number;
  /** Block size of the layout. */
  block: number;
  /** Weight of the distillation loss in the training objective. */
  distill: number;
}

export const SPARSIFINER_DEFAULTS: SparsifinerConfig = { rank: 8, keepKeys: 16, block: 16, distill: 1 };

export function parseSparsifinerConfig(where: string, given: Record<string, unknown>): SparsifinerConfig {
  rejectUnknown(where, given, Object.keys(SPARSIFINER_DEFAULTS));
  const g = { ...SPARSIFINER_DEFAULTS, ...given };
  return {
    rank: intParam(where, 'rank', g.rank, 1, 1024),
    keepKeys: intParam(where, 'keepKeys', g.keepKeys, 1, 1 << 20),
    block: intParam(where, 'block', g.block, 1, 4096),
    distill: numParam(where, 'distill', g.distill, 0, 1e6),
  };
}

/** The predictor's scores [B, H, L, L] (no mask) from q, k [B, H, L, Dh] and projections [H, Dh, r]. */
export function predictorScores(q: tf.Tensor4D, k: tf.Tensor4D, pq: tf.Tensor3D, pk: tf.Tensor3D): tf.Tensor4D {
  return tf.tidy(() => {
    const [B, H, , Dh] = q.shape;
    const r = pq.shape[2];
    const proj = (x: tf.Tensor4D, p: tf.Tensor3D) => tf.matMul(stopGradient(x), tf.broadcastTo(tf.reshape(p, [1, H, Dh, r]), [B, H, Dh, r]));
    return tf.mul(tf.matMul(proj(q, pq), proj(k, pk), false, true), 1 / Math.sqrt(r)) as tf.Tensor4D;
  });
}

/**
 * Per query row of G heads, the keepKeys highest-scoring keys j <= i of s [B, H, L, L]: [G * L * L]
 * bits. On native and cuda the backend's row top-k kernel selects (the device sorts, the host reads
 * only the indices); elsewhere the host does. Ties go to the lower index either way.
 */
export function predictorKeep(s: tf.Tensor4D, keepKeys: number): Uint8Array {
  const [B, H, L] = s.shape;
  const G = B * H;
  const keep = new Uint8Array(G * L * L);
  if (canDecode()) {
    const { idx, counts } = tf.tidy(() => topkRows(tf.reshape(tf.add(s, causalBias(L, -Infinity)), [G * L, L]) as tf.Tensor2D, Math.min(keepKeys, L)));
    const ix = idx.dataSync(), n = counts.dataSync(), k = idx.shape[1];
    for (let r = 0; r < G * L; r++) for (let t = 0; t < n[r]!; t++) keep[r * L + ix[r * k + t]!] = 1;
    tf.dispose([idx, counts]);
    return keep;
  }
  const a = s.dataSync();
  for (let r = 0; r < G * L; r++) {
    const i = r % L;
    for (const j of topK(a, r * L, i + 1, keepKeys)) keep[r * L + j] = 1;
  }
  return keep;
}


/** Cross-entropy from the detached full causal attention map of q, k to the predictor's softmax over scores s; mean over queries. */
export function distillationLoss(q: tf.Tensor4D, k: tf.Tensor4D, s: tf.Tensor4D): tf.Scalar {
  return tf.tidy(() => {
    const L = q.shape[2];
    const mask = causalBias(L);
    const target = tf.softmax(tf.add(tf.mul(tf.matMul(stopGradient(q), stopGradient(k), false, true), 1 / Math.sqrt(q.shape[3])), mask));
    const sm = tf.add(s, mask);
    const logp = tf.sub(sm, tf.logSumExp(sm, -1, true));
    return tf.neg(tf.mean(tf.sum(tf.mul(target, logp), -1))) as tf.Scalar;
  });
}

export function sparsifinerAttention(c: SparsifinerConfig, nLayers: number): AttentionModule {
  const pq: tf.Variable[] = [], pk: tf.Variable[] = [];
  return {
    config: { sparsifiner: c },
    init(f: ParamFactory, prefix: string, t: TransformerConfig) {
      const Dh = t.dModel / t.nHeads;
      for (let l = 0; l < nLayers; l++) {
        pq.push(f.normal([t.nHeads, Dh, c.rank], 1 / Math.sqrt(Dh), `${prefix}/b${l}/spq`));
        pk.push(f.normal([t.nHeads, Dh, c.rank], 1 / Math.sqrt(Dh), `${prefix}/b${l}/spk`));
      }
    },
    fn(q, k, v, layer, pass?: MixerPass) {
      const [B, H, L] = q.shape;
      const s = predictorScores(q, k, pq[layer] as tf.Tensor3D, pk[layer] as tf.Tensor3D);
      const keep = predictorKeep(s, c.keepKeys);
      const out = blockSparseAttention(foldHeads(q), foldHeads(k), foldHeads(v), fromKeyBits(B * H, L, c.block, keep)).out;
      if (pass?.training && c.distill > 0) pass.aux.push(tf.mul(distillationLoss(q, k, s), c.distill) as tf.Scalar);
      return unfoldHeads(out, B, H);
    },
  };
}
