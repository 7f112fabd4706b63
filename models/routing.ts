/**
 * Routing Transformer (Roy et al., seed paper): content-based sparse attention by online k-means.
 * In each layer, `routingHeads` heads route and the others attend locally (a sliding window). A
 * routing head shares its query and key projection (k = q, as in the paper), assigns every token to
 * the nearest of `clusters` centroids (cosine: unit-normalised vectors), and each query attends to the
 * earlier-or-equal tokens of its own cluster. Centroids are not trained by gradients: a training pass
 * moves each centroid toward the mean of the unit vectors assigned to it by an exponential moving
 * average, mu <- decay * mu + (1 - decay) * mean (the paper's update; clusters with no token keep
 * their centroid).
 *
 * Through the operator: tokens of each (input, head) are sorted by (cluster, position), so a cluster is
 * a contiguous run and its attention a lower triangle of blocks; the layout (token bits exact) is per
 * input and head (kernels/instance-layout.ts), outputs are put back in position order by a gather.
 *
 * One deviation, for causality: the paper's implementation splits the cluster-sorted sequence into
 * equal-size chunks and attends within a chunk. In a causal model that leaks the future: where a chunk
 * boundary falls depends on how many later tokens joined each cluster. Attending within the cluster
 * depends only on earlier tokens' clusters, so the model stays causal; the cost is then the sum of the
 * squared cluster sizes (density reported by the diagnostics), O(L^2 / clusters) when balanced.
 */
import * as tf from '@tensorflow/tfjs-core';
import { blockSparseAttention } from '../kernels/block-sparse.js';
import { slidingWindowLayout, type BlockLayout } from '../kernels/layout.js';
import { foldHeads, fromKeyBits, gatherPerHead, invertOrders, unfoldHeads } from '../kernels/instance-layout.js';
import { boolParam, intParam, numParam, rejectUnknown } from '../core/params.js';
import { Rng } from '../core/rng.js';
import { ownedVariable, type ParamFactory } from './init.js';
import type { AttentionModule, MixerPass, TransformerConfig } from './transformer.js';

export interface RoutingConfig {
  /** Centroids per routing head and layer. */
  clusters: number;
  /** Heads per layer that route (the first ones); the rest attend through the local window. */
  routingHeads: number;
  /** Local heads: token window |i - j| <= window (causal). */
  window: number;
  /** Block size of the layouts. */
  block: number;
  /** EMA decay of the centroids per training pass, in [0, 1). */
  decay: number;
  /** Keys are the queries (the paper's shared projection); false: separate keys, clustered with the same centroids. */
  sharedQK: boolean;
}

export const ROUTING_DEFAULTS: RoutingConfig = { clusters: 4, routingHeads: 1, window: 16, block: 16, decay: 0.99, sharedQK: true };

export function parseRoutingConfig(where: string, given: Record<string, unknown>): RoutingConfig {
  rejectUnknown(where, given, Object.keys(ROUTING_DEFAULTS));
  const g = { ...ROUTING_DEFAULTS, ...given };
  return {
    clusters: intParam(where, 'clusters', g.clusters, 1, 4096),
    routingHeads: intParam(where, 'routingHeads', g.routingHeads, 0, 1024),
    window: intParam(where, 'window', g.window, 0),
    block: intParam(where, 'block', g.block, 1, 4096),
    decay: numParam(where, 'decay', g.decay, 0, 0.999999),
    sharedQK: boolParam(where, 'sharedQK', g.sharedQK),
  };
}

/** Unit rows of x [..., D] (zero rows stay zero). */
function unit(x: tf.Tensor): tf.Tensor {
  return tf.div(x, tf.add(tf.norm(x, 'euclidean', -1, true), 1e-6));
}

/** Nearest centroid (cosine) of every row: x [G, L, D], centroids [R, C, D] with G = B*R -> [G*L] cluster ids. */
export function assignClusters(x: tf.Tensor3D, centroids: tf.Tensor3D): Int32Array {
  return tf.tidy(() => {
    const [G, L, D] = x.shape;
    const [R, C] = centroids.shape;
    const xs = tf.reshape(unit(x), [G / R, R, L, D]);
    const mu = tf.reshape(unit(centroids), [1, R, C, D]);
    const scores = tf.matMul(xs, tf.broadcastTo(mu, [G / R, R, C, D]), false, true); // [B, R, L, C]
    return tf.argMax(scores, -1).dataSync() as Int32Array;
  });
}

/**
 * The EMA step: per routing head r and cluster c, mu <- decay * mu + (1 - decay) * mean of the unit
 * vectors of x [B*R, L, D] assigned to c over the batch; a cluster with no vector keeps its centroid.
 */
export function emaCentroids(centroids: tf.Tensor3D, x: tf.Tensor3D, assign: Int32Array, decay: number): tf.Tensor3D {
  return tf.tidy(() => {
    const [R, C, D] = centroids.shape;
    const [G, L] = x.shape;
    const B = G / R;
    // tfjs' oneHot needs a depth of at least 2; one cluster takes the first column.
    const oh = tf.slice(tf.cast(tf.oneHot(tf.tensor1d(assign, 'int32'), Math.max(2, C)), 'float32'), [0, 0], [-1, C]); // [B*R*L, C]
    const ohR = tf.transpose(tf.reshape(oh, [B, R, L, C]), [1, 3, 0, 2]); // [R, C, B, L]
    const xR = tf.transpose(tf.reshape(unit(x), [B, R, L, D]), [1, 0, 2, 3]); // [R, B, L, D]
    const sums = tf.matMul(tf.reshape(ohR, [R, C, B * L]), tf.reshape(xR, [R, B * L, D])); // [R, C, D]
    const counts = tf.sum(tf.reshape(ohR, [R, C, B * L]), -1, true); // [R, C, 1]
    const mean = tf.div(sums, tf.maximum(counts, 1));
    const moved = tf.add(tf.mul(centroids, decay), tf.mul(mean, 1 - decay));
    return tf.where(tf.broadcastTo(tf.greater(counts, 0), [R, C, D]), moved, centroids) as tf.Tensor3D;
  });
}

/**
 * Within-cluster causal attention of G = B*R heads: tokens sorted by (cluster, position), the layout in
 * sorted order. qc/kc: cluster ids [G*L] of queries and keys (the same array when keys are the queries).
 */
export function clusterLayout(G: number, L: number, block: number, qc: Int32Array, kc: Int32Array, excludeSelf = false): { layout: BlockLayout; qOrder: Int32Array; kOrder: Int32Array } {
  const order = (c: Int32Array) => {
    const o = new Int32Array(G * L);
    for (let g = 0; g < G; g++) {
      const idx = Array.from({ length: L }, (_, t) => t).sort((a, b) => c[g * L + a]! - c[g * L + b]! || a - b);
      o.set(idx, g * L);
    }
    return o;
  };
  const qOrder = order(qc);
  const kOrder = kc === qc ? qOrder : order(kc);
  // In sorted order a cluster is a run, and within it positions increase: query i's keys are a
  // prefix of its cluster's key run, up to the last key at or before its position. Queries visit
  // the clusters in increasing order, so the run's start only moves forward.
  const bits = new Uint8Array(G * L * L);
  for (let g = 0; g < G; g++) {
    let t0 = 0;
    for (let i = 0; i < L; i++) {
      const qi = qOrder[g * L + i]!, c = qc[g * L + qi]!;
      while (t0 < L && kc[g * L + kOrder[g * L + t0]!]! < c) t0++;
      let t = t0;
      const row = (g * L + i) * L;
      while (t < L && kc[g * L + kOrder[g * L + t]!] === c && kOrder[g * L + t]! <= qi) bits[row + t++] = 1;
      // Shared keys: q.q is a token's largest score, so it attends to itself only when nothing else is there.
      if (excludeSelf && t - 1 > t0) bits[row + t - 1] = 0;
    }
  }
  const layout = fromKeyBits(G, L, block, bits);
  return { layout, qOrder, kOrder };
}

/** The attention module of a routing transformer with `nLayers` layers (centroids seeded from `seed`). */
export function routingAttention(c: RoutingConfig, nLayers: number, seed: number): AttentionModule & { centroids: tf.Variable[] } {
  const centroids: tf.Variable[] = [];
  const local = new Map<string, BlockLayout>();
  const localLayout = (L: number) => {
    const key = `${L}`;
    let l = local.get(key);
    if (!l) local.set(key, (l = slidingWindowLayout({ Lq: L, Lk: L, Bq: Math.min(c.block, L), Bk: Math.min(c.block, L), causal: true }, c.window)));
    return l;
  };
  const mod = {
    centroids,
    config: { routing: c },
    init(_f: ParamFactory, prefix: string, t: TransformerConfig) {
      const R = Math.min(c.routingHeads, t.nHeads), Dh = t.dModel / t.nHeads;
      if (R === 0) return;
      const rng = new Rng(Rng.derive(seed, 'routing/centroids'));
      for (let l = 0; l < nLayers; l++) {
        const data = Float32Array.from({ length: R * c.clusters * Dh }, () => rng.normal());
        centroids.push(ownedVariable(tf.tensor3d(data, [R, c.clusters, Dh]), `${prefix}/b${l}/centroids`, false));
      }
    },
    state: () => centroids,
    fn(q: tf.Tensor4D, k: tf.Tensor4D, v: tf.Tensor4D, layer: number, pass?: MixerPass): tf.Tensor4D {
      const [B, H, L, D] = q.shape;
      const R = Math.min(c.routingHeads, H);
      const parts: tf.Tensor4D[] = [];
      if (R > 0) {
        const slice = (x: tf.Tensor4D) => (R === H ? x : tf.slice(x, [0, 0, 0, 0], [B, R, L, D]));
        const qr = foldHeads(slice(q)), vr = foldHeads(slice(v));
        const kr = c.sharedQK ? qr : foldHeads(slice(k));
        const mu = centroids[layer]!;
        // Clusters by content: the vectors before the rotary embedding, which would otherwise make a token's cluster depend on its position.
        const uq = pass?.unrotated ? foldHeads(slice(pass.unrotated.q)) : qr;
        const uk = c.sharedQK ? uq : pass?.unrotated ? foldHeads(slice(pass.unrotated.k)) : kr;
        const q3 = tf.reshape(uq, [B * R, L, D]) as tf.Tensor3D, k3 = tf.reshape(uk, [B * R, L, D]) as tf.Tensor3D;
        const qc = assignClusters(q3, mu as tf.Tensor3D);
        const kc = c.sharedQK ? qc : assignClusters(k3, mu as tf.Tensor3D);
        if (pass?.training) {
          const x = c.sharedQK ? q3 : tf.concat([q3, k3], 1) as tf.Tensor3D;
          const a = c.sharedQK ? qc : interleaveAssign(qc, kc, B * R, L);
          mu.assign(emaCentroids(mu as tf.Tensor3D, x, a, c.decay));
        }
        const { layout, qOrder, kOrder } = clusterLayout(B * R, L, c.block, qc, kc, c.sharedQK);
        const out = blockSparseAttention(gatherPerHead(qr, qOrder), gatherPerHead(kr, kOrder), gatherPerHead(vr, kOrder), layout).out;
        parts.push(unfoldHeads(gatherPerHead(out, invertOrders(qOrder, L)), B, R));
      }
      if (R < H) {
        const rest = (x: tf.Tensor4D) => tf.slice(x, [0, R, 0, 0], [B, H - R, L, x.shape[3]]);
        parts.push(blockSparseAttention(rest(q), rest(k), rest(v), localLayout(L)).out);
      }
      return parts.length === 1 ? parts[0]! : tf.concat(parts, 1) as tf.Tensor4D;
    },
    dispose() {
      for (const v of centroids) v.dispose();
      centroids.length = 0;
    },
  };
  return mod;
}

/** Assignments of [q3; k3] concatenated along the length ([G, 2L]) from the two [G*L] arrays. */
function interleaveAssign(qc: Int32Array, kc: Int32Array, G: number, L: number): Int32Array {
  const out = new Int32Array(G * 2 * L);
  for (let g = 0; g < G; g++) {
    out.set(qc.subarray(g * L, (g + 1) * L), g * 2 * L);
    out.set(kc.subarray(g * L, (g + 1) * L), g * 2 * L + L);
  }
  return out;
}
