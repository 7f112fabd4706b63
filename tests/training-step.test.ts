/**
 * A whole training step of the dense baseline: native matches tfjs-cpu (loss within 1e-4 relative,
 * every updated weight within 1e-3 relative + 1e-5 absolute after one AdamW step), runs with zero
 * fallback kernels, and uses exactly the profiled kernel list below.
 */
import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { useBackend, fallbackCounts, resetFallbackCounts } from '../kernels/backend.js';
import { MqarTask, parseMqarParams } from '../datasets/mqar.js';
import { buildModel } from '../models/registry.js';
import { train, trainingStep } from '../suites/train.js';
import { AdamW, OPTIMIZER_DEFAULTS } from '../suites/optimizer.js';
import { evaluate } from '../suites/evaluate.js';
import { nativeKernelNames } from '../kernels/native/kernels.js';
import { FUSED_KERNELS } from '../kernels/native/fused-kernels.js';
import { BACKEND } from './under-test.js';

/** Kernels one training step + evaluation of the dense baseline runs (profiled with tf.profile). */
const TRAINING_STEP_KERNELS = [
  'Add', 'AddN', 'ArgMax', 'BatchMatMul', 'BlockSparseAttention', 'BlockSparseAttentionGrad', 'Cast', 'Concat', 'Exp', 'Fill', 'GatherV2', 'Identity', 'Log', 'Max', 'Maximum', 'Mean',
  'Multiply', 'Neg', 'OneHot', 'Pack', 'PadV2', 'RealDiv', 'Reshape', 'Slice', 'SplitV', 'Sqrt', 'Square', 'Sub', 'Sum', 'Transpose',
  'TrGelu', 'TrGeluGrad', 'TrLayerNorm', 'TrLayerNormGrad', 'Unpack', 'UnsortedSegmentSum',
];

const params = parseMqarParams({ vocabSize: 64, inputSeqLen: 32, numKvPairs: 4, numTrainExamples: 256, numTestExamples: 32 });
const modelCfg = { dModel: 32, nLayers: 2, nHeads: 2 };

async function oneStep(backend: string) {
  await useBackend(backend);
  const task = new MqarTask(params, 0);
  const model = buildModel('dense', modelCfg, { vocabSize: 64, maxLen: 32, seed: 0 });
  const opt = new AdamW(model.variables(), OPTIMIZER_DEFAULTS, 10);
  resetFallbackCounts();
  let kernels: string[] = [];
  const b = task.trainBatch(0, 8);
  let loss = 0;
  const info = await tf.profile(() => {
    const value = trainingStep(model, opt, b);
    loss = value.dataSync()[0]!;
    evaluate(model, task.testSet(), 16);
  });
  kernels = [...new Set(info.kernels.map((k) => k.name))].filter((k) => !k.endsWith('__op')).sort();
  const weights = model.variables().map((v) => Array.from(v.dataSync()));
  const fallbacks = fallbackCounts();
  model.dispose();
  return { loss, weights, kernels, fallbacks };
}

describe('a dense-baseline training step', () => {
  it(`on ${BACKEND}: matches cpu, no fallbacks, only listed kernels`, async () => {
    const cpu = await oneStep('cpu');
    const nat = await oneStep(BACKEND);
    expect(Math.abs(nat.loss - cpu.loss)).toBeLessThanOrEqual(1e-4 * Math.abs(cpu.loss));
    nat.weights.forEach((w, i) => w.forEach((x, j) => expect(Math.abs(x - cpu.weights[i]![j]!)).toBeLessThanOrEqual(1e-5 + 1e-3 * Math.abs(cpu.weights[i]![j]!))));
    expect(nat.fallbacks).toEqual({});
    expect(nat.kernels.filter((k) => !TRAINING_STEP_KERNELS.includes(k))).toEqual([]);
    expect(TRAINING_STEP_KERNELS.filter((k) => !nat.kernels.includes(k))).toEqual([]);
    const fused = Object.keys(FUSED_KERNELS);
    for (const k of nat.kernels) expect(nativeKernelNames().concat(fused)).toContain(k);
  });

  if (BACKEND === 'cuda') {
    // With TF32 off (test:gpu sets TABRECALL_TF32=0) the GPU step is fp32 throughout: loss within 1e-4
    // relative of native, weights within 1e-3 relative + 1e-5 absolute after one AdamW step.
    it('on cuda: matches native', async () => {
      const nat = await oneStep('native');
      const gpu = await oneStep('cuda');
      expect(Math.abs(gpu.loss - nat.loss)).toBeLessThanOrEqual(1e-4 * Math.abs(nat.loss));
      gpu.weights.forEach((w, i) => w.forEach((x, j) => expect(Math.abs(x - nat.weights[i]![j]!)).toBeLessThanOrEqual(1e-5 + 1e-3 * Math.abs(nat.weights[i]![j]!))));
    });
  }

  it('same seed and backend give identical training results', async () => {
    await useBackend(BACKEND);
    const run = () => {
      const task = new MqarTask(params, 3);
      const model = buildModel('dense', modelCfg, { vocabSize: 64, maxLen: 32, seed: 3 });
      const r = train(model, task, { maxSteps: 30, batchSize: 16, evalEvery: 10, patience: 100, minDelta: 0, validExamples: 32 }, { ...OPTIMIZER_DEFAULTS, warmupSteps: 5 });
      const acc = evaluate(model, task.testSet(), 16);
      model.dispose();
      return { loss: r.finalLoss, curve: r.validCurve, acc: acc.accuracy };
    };
    const a = run();
    const b = run();
    expect(b).toEqual(a);
  });
});

describe(`every model trains on ${BACKEND} without fallback kernels`, () => {
  it.each([
    ['dense', {}], ['window', { attention: { block: 8, window: 8 } }], ['bigbird', { attention: { block: 8 } }],
    ['combiner-fixed', { combiner: { segLen: 8 } }], ['combiner-axial', { combiner: { segLen: 8 } }],
    ['seqboat', { dModel: 32, nLayers: 2, emaDim: 2, dQk: 8, dV: 16, chunk: 8 }],
  ] as [string, Record<string, unknown>][])('%s', async (name, extra) => {
    await useBackend(BACKEND);
    const task = new MqarTask(params, 0);
    const base = name === 'seqboat' ? {} : modelCfg;
    const model = buildModel(name, { ...base, ...extra }, { vocabSize: 64, maxLen: 32, seed: 0 });
    const opt = new AdamW(model.variables(), OPTIMIZER_DEFAULTS, 10);
    resetFallbackCounts();
    const loss = trainingStep(model, opt, task.trainBatch(0, 8));
    expect(Number.isFinite(loss.dataSync()[0]!)).toBe(true);
    loss.dispose();
    evaluate(model, task.testSet(), 16);
    expect(fallbackCounts()).toEqual({});
    opt.dispose();
    model.dispose();
  });
});
