import * as tf from '@tensorflow/tfjs-core';
import { useBackend } from '../kernels/backend.js';
await useBackend('native');
const x = tf.randomNormal([3, 4, 5]);
for (const axis of [0, 1, 2, -1, [0, 1], [1, 2], [0, 2], [0, 1, 2]] as (number|number[])[]) for (const k of [false, true]) for (const f of ['sum','mean','max','min','prod'] as const) {
  const n = (tf as any)[f](x, axis, k); await tf.setBackend('cpu'); const xc = tf.tensor(x.dataSync(), x.shape); const c = (tf as any)[f](xc, axis, k); await tf.setBackend('native');
  if (JSON.stringify(n.shape) !== JSON.stringify(c.shape)) console.log(f, axis, k, n.shape, c.shape);
}
