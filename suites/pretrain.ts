/** One pretraining step of an ICL network on a batch of prior tables: cross-entropy on the test rows. */
import * as tf from '@tensorflow/tfjs-core';
import { crossEntropy } from '../kernels/ops.js';
import type { PriorBatch } from '../datasets/tabular/prior.js';
import type { IclNetwork } from '../models/tabular/icl-network.js';
import type { AdamW } from './optimizer.js';

export async function pretrainStep(net: IclNetwork, opt: AdamW, b: PriorBatch): Promise<number> {
  const T = b.tables.length;
  const { nRows: n, nFeatures: F, nTrain } = b;
  const nTest = n - nTrain;
  const x = new Float32Array(T * n * F);
  const y = new Int32Array(T * nTrain);
  const yt = new Int32Array(T * nTest);
  b.tables.forEach((t, i) => {
    x.set(t.xTrain, i * n * F);
    x.set(t.xTest, i * n * F + nTrain * F);
    y.set(t.yTrain, i * nTrain);
    yt.set(t.yTest, i * nTest);
  });
  const { value, grads } = tf.tidy(() => {
    const X = tf.tensor3d(x, [T, n, F]);
    const Y = tf.tensor2d(y, [T, nTrain], 'int32');
    const labels = tf.tensor1d(yt, 'int32');
    return tf.variableGrads(() => crossEntropy(tf.reshape(net.forward(X, Y, nTrain, b.nClasses), [-1, net.c.maxClasses]) as tf.Tensor2D, labels), net.vars);
  });
  opt.step(net.vars.map((v) => grads[v.name]!));
  const loss = (await value.data())[0]!;
  tf.dispose([value, ...Object.values(grads)]);
  return loss;
}
