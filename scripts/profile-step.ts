/** `npx tsx scripts/profile-step.ts [backend]`: per-kernel time of one training step of the dense baseline (tf.profile). */
import * as tf from '@tensorflow/tfjs-core';
import { useBackend, fallbackCounts } from '../kernels/backend.js';
import { MqarTask, parseMqarParams } from '../datasets/mqar.js';
import { buildModel } from '../models/registry.js';
import { trainingStep } from '../suites/train.js';
import { AdamW, OPTIMIZER_DEFAULTS } from '../suites/optimizer.js';
import { formatKernelTotals, kernelTotals } from '../kernels/profile.js';
await useBackend(process.argv[2] ?? 'native');
const task = new MqarTask(parseMqarParams({ vocabSize: 256, inputSeqLen: 64, numKvPairs: 8, numTrainExamples: 2000, numTestExamples: 8 }), 0);
const model = buildModel('dense', { dModel: 64, nLayers: 2, nHeads: 2 }, { vocabSize: 256, maxLen: 64, seed: 0 });
const opt = new AdamW(model.variables(), OPTIMIZER_DEFAULTS, 10);
const step = (i: number) => tf.tidy(() => { trainingStep(model, opt, task.trainBatch(i, 32)).dataSync(); });
for (let i = 0; i < 3; i++) step(i);
let t = performance.now(); for (let i = 0; i < 10; i++) step(i); console.log('ms/step', (performance.now() - t) / 10);
const info = await tf.profile(() => step(0));
console.log(formatKernelTotals(kernelTotals(info)));
console.log('kernels', info.kernels.length, 'fallbacks', JSON.stringify(fallbackCounts()));
