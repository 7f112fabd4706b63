/**
 * Building blocks the models share. Each picks the best formulation for the active backend, so a
 * model stays backend-agnostic.
 */
import * as tf from '@tensorflow/tfjs-core';
import { hasKernel } from './backend.js';

/**
 * Rows of `table` [N, d] at integer `ids` (any shape) -> [...ids.shape, d]. tfjs' gather needs
 * UnsortedSegmentSum for its gradient, which wasm lacks; there a one-hot matmul does the same.
 */
export function gatherRows(table: tf.Tensor2D, ids: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const flat = tf.reshape(ids, [-1]) as tf.Tensor1D;
    const rows = hasKernel('UnsortedSegmentSum')
      ? tf.gather(table, flat)
      : tf.matMul(tf.cast(tf.oneHot(flat, table.shape[0]), 'float32'), table);
    return tf.reshape(rows, [...ids.shape, table.shape[1]]);
  });
}

export { layerNorm, gelu } from './fused.js';

/** Mean softmax cross-entropy of logits [N, V] against integer labels [N]. */
export function crossEntropy(logits: tf.Tensor2D, labels: tf.Tensor1D): tf.Scalar {
  return tf.tidy((): tf.Scalar => {
    const logp = tf.logSoftmax(logits);
    const onehot = tf.cast(tf.oneHot(labels, logits.shape[1]), 'float32');
    return tf.neg(tf.mean(tf.sum(tf.mul(logp, onehot), -1))) as tf.Scalar;
  });
}
