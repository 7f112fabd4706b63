/**
 * Decoding's boundary types. A KV cache holds, per layer, keys and values [B, H, cap, D] of the tokens
 * seen so far (len of them); one decode step attends each (batch, head) row's single query over the
 * tokens its selection names. One selection interface serves every method (kernels/decode/methods):
 *   selection = null          every cached token [0, len) (dense)
 *   selection = { page, pages [B*H, maxp], counts [B*H], tailFrom [H] }
 *     the tokens of each row's counts[r] listed pages (page tokens each) below tailFrom[h], plus every
 *     token in [tailFrom[h], len): the local window / current page a method always keeps.
 * Pages of one token are token lists (Double Sparsity); BigBird's layout row is pages of its block.
 */
import type * as tf from '@tensorflow/tfjs-core';

export const KV_FORMATS = ['fp32', 'bf16'] as const;
/** How the cache stores K and V: fp32, or bf16 (cuda only; two values per float32 slot). */
export type KvFormat = (typeof KV_FORMATS)[number];

export interface DecodeSelection {
  page: number;
  /** int32 [B*H, maxp] page indices, ascending per row (-1 past counts[r]). */
  pages: tf.Tensor2D;
  /** int32 [B*H]. */
  counts: tf.Tensor1D;
  /** Per head, the first token every row of that head reads regardless of pages (host values). */
  tailFrom: Int32Array;
}

/** What one decode step of a layer sees. */
export interface StepContext {
  layer: number;
  /** Tokens in the cache including the one being decoded. */
  len: number;
  /** Decode steps since the prefill (0 = the first generated token's step). */
  step: number;
}
