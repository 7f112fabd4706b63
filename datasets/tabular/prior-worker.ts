/** Worker side of PriorPool: draws the batches it is asked for and sends them back (buffers moved, not copied). */
import { parentPort } from 'node:worker_threads';
import { sampleBatch, type PriorConfig } from './prior.js';

parentPort!.on('message', (m: { seed: number; step: number; size: number; cfg: PriorConfig }) => {
  const b = sampleBatch(m.seed, m.step, m.size, m.cfg);
  const buffers = b.tables.flatMap((t) => [t.xTrain.buffer, t.xTest.buffer, t.yTrain.buffer, t.yTest.buffer]) as ArrayBuffer[];
  parentPort!.postMessage({ step: m.step, batch: b }, buffers);
});
