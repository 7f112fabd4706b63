/**
 * Dynamic Mask Attention (DMA, seed paper; the Doge / flash-dmattn formulation): a content-aware,
 * trainable mask from the value states. Per layer, the values of all heads (merged, [L, d]) go
 * through a learned projection to one number per key and head, and
 *
 *   m[h, j] = exp(A[h] * softplus((v_j W)[h]))
 *
 * is added to every query's score of key j (the operator's key bias), so the mask is trained end to
 * end (A starts at 0: m = 1, no preference). Each query block keeps its own block (causal) and the
 * `keepKeys` earlier keys with the largest m: the top-k is over the keys before the block, which every
 * query of the block may see, so rows of a block share one key set. The layout lists only the blocks
 * holding kept keys, so masked regions are never computed (the paper's position-aware skipping); the
 * top-k itself is not differentiable, the kept keys' m is.
 */
import * as tf from '@tensorflow/tfjs-core';
import { blockSparseAttention } from '../kernels/block-sparse.js';
import { nBlocks } from '../kernels/layout.js';
import { foldHeads, ownBlockPlusKeysLayout, topKRecent, unfoldHeads } from '../kernels/instance-layout.js';
import { intParam, rejectUnknown } from '../core/params.js';
import type { ParamFactory } from './init.js';
import type { AttentionModule, TransformerConfig } from './transformer.js';

export interface DmaConfig {
  /** Earlier keys kept per query block and head (ties to the more recent key). */
  keepKeys: number;
  /** Block size of the layout (the own block is always attended). */
  block: number;
}

export const DMA_DEFAULTS: DmaConfig = { keepKeys: 16, block: 16 };

export function parseDmaConfig(where: string, given: Record<string, unknown>): DmaConfig {
  rejectUnknown(where, given, Object.keys(DMA_DEFAULTS));
  const g = { ...DMA_DEFAULTS, ...given };
  return { keepKeys: intParam(where, 'keepKeys', g.keepKeys, 0, 1 << 20), block: intParam(where, 'block', g.block, 1, 4096) };
}

/** m = exp(A * softplus(v_merged W)) per key and head: v [B, H, L, Dh], w [H*Dh, H], a [H] -> [B, H, L]. */
export function dmaMask(v: tf.Tensor4D, w: tf.Tensor2D, a: tf.Tensor1D): tf.Tensor3D {
  return tf.tidy(() => {
    const [B, H, L, Dh] = v.shape;
    const merged = tf.reshape(tf.transpose(v, [0, 2, 1, 3]), [B * L, H * Dh]);
    const z = tf.reshape(tf.matMul(merged, w), [B, L, H]);
    return tf.transpose(tf.exp(tf.mul(tf.reshape(a, [1, 1, H]), tf.softplus(z))), [0, 2, 1]) as tf.Tensor3D;
  });
}

/** Which earlier keys each (input*head, query block) keeps: the keepKeys largest m before the block. */
export function dmaKeep(m: Float32Array, G: number, L: number, block: number, keepKeys: number): Uint8Array {
  const B = Math.min(block, L), nQ = nBlocks(L, B);
  const keep = new Uint8Array(G * nQ * L);
  for (let g = 0; g < G; g++) {
    for (let I = 1; I < nQ; I++) {
      for (const j of topKRecent(m, g * L, I * B, keepKeys)) keep[(g * nQ + I) * L + j] = 1;
    }
  }
  return keep;
}

export function dmaAttention(c: DmaConfig, nLayers: number): AttentionModule {
  const w: tf.Variable[] = [], a: tf.Variable[] = [];
  return {
    config: { dma: c },
    init(f: ParamFactory, prefix: string, t: TransformerConfig) {
      for (let l = 0; l < nLayers; l++) {
        w.push(f.normal([t.dModel, t.nHeads], 0.02, `${prefix}/b${l}/dmaw`));
        a.push(f.constant([t.nHeads], 0, `${prefix}/b${l}/dmaa`));
      }
    },
    fn(q, k, v, layer) {
      const [B, H, L] = q.shape;
      const m = dmaMask(v, w[layer] as tf.Tensor2D, a[layer] as tf.Tensor1D);
      const keep = dmaKeep(m.dataSync() as Float32Array, B * H, L, c.block, c.keepKeys);
      const layout = ownBlockPlusKeysLayout(B * H, L, c.block, keep);
      const out = blockSparseAttention(foldHeads(q), foldHeads(k), foldHeads(v), layout, { keyBias: tf.reshape(m, [1, B * H, L]) as tf.Tensor3D }).out;
      return unfoldHeads(out, B, H);
    },
  };
}
