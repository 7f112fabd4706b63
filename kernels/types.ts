import type * as tf from '@tensorflow/tfjs-core';

/** Options of the shared attention operator. */
export interface AttentionOptions {
  /** Multiplies q.k before softmax; default 1/sqrt(D). */
  scale?: number;
  /** Token-level causal rule (key position <= query position). */
  causal: boolean;
}

/** What the attention operator returns: the output and the row log-sum-exp of the scores. */
export interface AttentionResult {
  /** [B, H, Lq, Dv] */
  out: tf.Tensor4D;
}
