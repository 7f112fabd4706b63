/**
 * Fused ops: one kernel where the backend has one (native, cuda), the equivalent composite of tfjs
 * ops elsewhere (whose gradient tfjs derives). Gradients of the fused kernels are registered here.
 */
import * as tf from '@tensorflow/tfjs-core';
import { hasKernel } from './backend.js';

tf.registerGradient({
  kernelName: 'TrLayerNorm',
  inputsToSave: ['x', 'gamma'],
  outputsToSave: [false, true, true],
  gradFunc: (dys, saved) => {
    const dy = (Array.isArray(dys) ? dys[0] : dys) as tf.Tensor;
    const [x, gamma, mean, rstd] = saved as tf.Tensor[];
    const [dx, dg, db] = tf.engine().runKernel('TrLayerNormGrad', { dy, x: x!, gamma: gamma!, mean: mean!, rstd: rstd! }, {}) as tf.Tensor[];
    return { x: () => dx!, gamma: () => dg!, beta: () => db! };
  },
});

tf.registerGradient({
  kernelName: 'TrGelu',
  inputsToSave: ['x'],
  gradFunc: (dy, saved) => {
    const [x] = saved as tf.Tensor[];
    return { x: () => tf.engine().runKernel('TrGeluGrad', { dy: dy as tf.Tensor, x: x! }, {}) as tf.Tensor };
  },
});

/** Layer normalisation over the last axis with learned gain and bias. */
export function layerNorm(x: tf.Tensor, gamma: tf.Tensor1D, beta: tf.Tensor1D, eps = 1e-5): tf.Tensor {
  if (hasKernel('TrLayerNorm')) {
    return (tf.engine().runKernel('TrLayerNorm', { x, gamma, beta }, { eps }) as tf.Tensor[])[0]!;
  }
  return tf.tidy(() => {
    const { mean, variance } = tf.moments(x, -1, true);
    return tf.add(tf.mul(tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, eps))), gamma), beta);
  });
}

/** GELU, tanh approximation (GPT-2's): avoids erf, which is slow on wasm. */
export function gelu(x: tf.Tensor): tf.Tensor {
  if (hasKernel('TrGelu')) return tf.engine().runKernel('TrGelu', { x }, {}) as tf.Tensor;
  return tf.tidy(() => {
    const c = Math.sqrt(2 / Math.PI);
    const inner = tf.mul(tf.add(x, tf.mul(tf.pow(x, 3), 0.044715)), c);
    return tf.mul(tf.mul(x, 0.5), tf.add(tf.tanh(inner), 1));
  });
}
