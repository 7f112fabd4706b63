/**
 * Tabular models: ICL-safety of the Orion-MSP-style network (exact: a test row's change moves no
 * other test row's output, nor the train rows' column embeddings or memory), sparse == dense when the
 * layout lists every block, checkpoint round trip, baselines, metrics, the ONNX adapter.
 * Float bounds: 1e-5 absolute on probabilities (float32 forward).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { useBackend } from '../kernels/backend.js';
import { BACKEND } from './under-test.js';
import { IclNetwork, ICL_DEFAULTS } from '../models/tabular/icl-network.js';
import { IclModel, quantileNormal } from '../models/tabular/icl-model.js';
import { loadCheckpoint, saveCheckpoint } from '../models/tabular/checkpoint.js';
import { KNearest, LogisticRegression, RandomForest, lbfgs } from '../models/tabular/baselines.js';
import { nearestCentroidOnnx } from '../models/tabular/onnx-builder.js';
import { OnnxIclModel } from '../models/tabular/onnx.js';
import { accuracy, binaryAuc, iclSafetyDelta, logLoss, rocAuc, makeTask, validateTabular } from '../suites/tabular.js';
import { loadShipped } from '../datasets/tabular/load.js';
import { density } from '../kernels/layout.js';
import { Rng } from '../core/rng.js';
import type { IclTask } from '../datasets/tabular/types.js';

const SMALL = { ...ICL_DEFAULTS, dCol: 8, colHeads: 2, rowHeads: 2, inducing: 4, cls: 2, latents: 4, dIcl: 16, iclBlocks: 2, iclHeads: 2, block: 4 };

function randomTask(seed: number, nTrain: number, nTest: number, F: number, C: number): IclTask {
  const rng = new Rng(seed);
  const r = (n: number): Float32Array => Float32Array.from({ length: n }, () => rng.normal());
  return { nFeatures: F, nClasses: C, nTrain, nTest, xTrain: r(nTrain * F), yTrain: Int32Array.from({ length: nTrain }, (_, i) => i % C), xTest: r(nTest * F) };
}

describe(`ICL network on ${BACKEND}`, () => {
  beforeAll(async () => {
    expect(await useBackend(BACKEND)).toBe(BACKEND);
  });

  it('is ICL-safe: changing a test row changes no other test row (ensemble and chunking included)', async () => {
    const net = new IclNetwork({ ...SMALL }, 1);
    const task = randomTask(2, 24, 10, 21, 3);
    // A small cell budget forces test-row chunks and one member per call; odd members read quantile-normal features.
    const model = new IclModel('orion-msp', net, { members: 3, temperature: 0.9, cellBudget: 30 * 21, maxFeatures: 0, transform: 'mixed' });
    expect(await iclSafetyDelta(model, task, 3, 0)).toBeLessThan(1e-5);
  });

  it('feature subsets for wide tables: sorted, distinct, fixed per member, and still ICL-safe', async () => {
    const a = IclModel.columns(1, 50, 12);
    expect(a.length).toBe(12);
    expect(Array.from(a)).toEqual([...new Set(a)].sort((x, y) => x - y));
    expect(a.every((j) => j >= 0 && j < 50)).toBe(true);
    expect(Array.from(IclModel.columns(1, 50, 12))).toEqual(Array.from(a));
    expect(Array.from(IclModel.columns(2, 50, 12))).not.toEqual(Array.from(a));
    expect(Array.from(IclModel.columns(0, 10, 12))).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    const net = new IclNetwork({ ...SMALL }, 1);
    const task = randomTask(4, 20, 30, 9, 3);
    const model = new IclModel('orion-msp', net, { members: 3, temperature: 0.9, cellBudget: 1 << 18, maxFeatures: 8, transform: 'robust' });
    const p = await model.predictProba(task);
    expect(p.every(Number.isFinite)).toBe(true);
    expect(await iclSafetyDelta(model, task, 3, 0)).toBeLessThan(1e-5);
  });

  it('test rows never change the column embeddings or the memory of train rows', () => {
    const net = new IclNetwork({ ...SMALL }, 1);
    const t = randomTask(3, 16, 6, 9, 2);
    const rows = (xTest: Float32Array): Float32Array =>
      tf.tidy(() => {
        const x = tf.tensor3d(Float32Array.from([...t.xTrain, ...xTest]), [1, 22, 9]);
        const cells = net.embedColumns(x, 16);
        return tf.slice(cells, [0, 0, 0], [16, 9, SMALL.dCol]).dataSync() as Float32Array;
      });
    const a = rows(t.xTest);
    const b = rows(t.xTest.map((v) => v * 5 + 1));
    expect(Math.max(...a.map((v, i) => Math.abs(v - b[i]!)))).toBeLessThan(1e-5);
  });

  it('sparse and dense row interaction agree where the sparse layout lists every block, and differ on wide rows', () => {
    // Two row blocks: CLS tokens are global, so after one block they equal dense; the second block reads sparse-mixed features.
    const sparse = new IclNetwork({ ...SMALL, rowBlocks: 2, rowAttention: 'sparse' }, 4);
    const dense = new IclNetwork({ ...SMALL, rowBlocks: 2, rowAttention: 'dense' }, 4);
    expect(density(sparse.rowLayout(2 + 10))).toBe(1);
    expect(density(sparse.rowLayout(2 + 200))).toBeLessThan(0.2);
    for (const [F, same] of [[10, true], [200, false]] as const) {
      const rng = new Rng(F);
      const cells = tf.tensor3d(Float32Array.from({ length: 3 * F * SMALL.dCol }, () => rng.normal()), [3, F, SMALL.dCol]);
      const a = sparse.interactRows(cells).dataSync();
      const b = dense.interactRows(cells).dataSync();
      const diff = Math.max(...a.map((v, i) => Math.abs(v - b[i]!)));
      if (same) expect(diff).toBeLessThan(1e-5);
      else expect(diff).toBeGreaterThan(1e-3);
    }
  });

  it('trains: a few AdamW steps lower the loss on a fixed separable batch; the checkpoint round-trips', async () => {
    const net = new IclNetwork({ ...SMALL }, 5);
    const task = randomTask(6, 32, 16, 4, 2);
    const yTest = Int32Array.from({ length: 16 }, (_, i) => (task.xTest[i * 4]! > 0 ? 1 : 0));
    const yTrain = Int32Array.from({ length: 32 }, (_, i) => (task.xTrain[i * 4]! > 0 ? 1 : 0));
    const x = tf.tensor3d(Float32Array.from([...task.xTrain, ...task.xTest]), [1, 48, 4]);
    const y = tf.tensor2d(yTrain, [1, 32], 'int32');
    const labels = tf.tensor1d(yTest, 'int32');
    const opt = tf.train.adam(1e-3);
    const loss = (): tf.Scalar => tf.losses.softmaxCrossEntropy(tf.oneHot(labels, 10), tf.reshape(net.forward(x, y, 32, 2), [-1, 10])) as tf.Scalar;
    const first = loss().dataSync()[0]!;
    for (let s = 0; s < 30; s++) opt.minimize(loss, false, net.vars);
    expect(loss().dataSync()[0]!).toBeLessThan(first * 0.8);
    const dir = mkdtempSync(join(tmpdir(), 'tabrecall-ckpt-'));
    saveCheckpoint(dir, net, { model: 'orion-msp', seed: 5, step: 30, trainSeconds: 1, backend: BACKEND, command: 'test', gitSha: 'x', createdAt: '', prior: {}, optimizer: {}, batchTables: 1, lossCurve: [] });
    const back = loadCheckpoint(dir).net;
    const p1 = await new IclModel('a', net).predictProba({ ...task, yTrain });
    const p2 = await new IclModel('b', back).predictProba({ ...task, yTrain });
    expect(Array.from(p2)).toEqual(Array.from(p1));
    // Building and loading a network, then disposing it, leaves no tensor memory behind.
    const before = tf.memory().numBytes;
    const again = loadCheckpoint(dir).net;
    for (const v of again.vars) v.dispose();
    expect(tf.memory().numBytes).toBe(before);
  });
});

describe('quantile-normal member features', () => {
  it('maps train values to normal quantiles of their mid-ranks, test values between them, per column', () => {
    const n = 40;
    // Column 0: distinct values 0..39 (shuffled); column 1: binary, 30 zeros and 10 ones.
    const order = Array.from({ length: n }, (_, i) => (i * 17) % n);
    const xTrain = new Float32Array(n * 2);
    order.forEach((v, r) => { xTrain[r * 2] = v; xTrain[r * 2 + 1] = r < 30 ? 0 : 1; });
    const xTest = Float32Array.from([39, 1, 19.5, 0, -5, 0.5, 100, 1]);
    const q = quantileNormal({ nFeatures: 2, nClasses: 2, nTrain: n, nTest: 4, xTrain, yTrain: new Int32Array(n), xTest });
    const train0 = (v: number): number => q.xTrain[order.indexOf(v) * 2]!;
    // Phi^-1((i + 0.5) / 40): i = 39 -> Phi^-1(0.9875) = 2.2414027, i = 0 -> -2.2414027 (|error| < 1e-6 stated for the approximation).
    expect(train0(39)).toBeCloseTo(2.2414027, 5);
    expect(train0(0)).toBeCloseTo(-2.2414027, 5);
    for (let v = 1; v < n; v++) expect(train0(v)).toBeGreaterThan(train0(v - 1));
    // Ties share one value: zeros at mid-rank 15/40, ones at 35/40.
    expect(q.xTrain[1]).toBeCloseTo(-0.3186394, 5);
    expect(q.xTrain[(n - 1) * 2 + 1]).toBeCloseTo(1.1503494, 5);
    // Test rows: equal to the train value's image, interpolated between neighbours, clamped outside the train range.
    expect(q.xTest[0]).toBeCloseTo(train0(39), 6);
    expect(q.xTest[2]).toBeCloseTo(0, 5);
    expect(q.xTest[4]).toBeCloseTo(train0(0), 6);
    expect(q.xTest[6]).toBeCloseTo(train0(39), 6);
    expect(q.xTest[5]).toBeGreaterThan(q.xTrain[1]!);
    expect(q.xTest[5]).toBeLessThan(q.xTest[1]!);
  });

  it('a suite names a bad transform and the allowed ones', () => {
    expect(() => validateTabular({ tables: ['iris'], models: [{ name: 'orion-msp', checkpoint: 'models/checkpoints/orion-msp', transform: 'log' }] }))
      .toThrow(/models\[0\]\.transform: must be one of robust, mixed, quantile; got "log"/);
  });
});

describe('baselines and metrics', () => {
  it('ROC-AUC, accuracy and log-loss on hand-checked cases', () => {
    expect(binaryAuc([0.1, 0.4, 0.35, 0.8], [false, false, true, true])).toBe(0.75);
    expect(binaryAuc([0.5, 0.5], [false, true])).toBe(0.5);
    const p = new Float32Array([0.7, 0.2, 0.1, 0.1, 0.8, 0.1, 0.2, 0.2, 0.6]);
    const y = new Int32Array([0, 1, 2]);
    expect(accuracy(p, y, 3)).toBe(1);
    expect(rocAuc(p, y, 3)).toBe(1);
    expect(logLoss(p, y, 3)).toBeCloseTo(-(Math.log(0.7) + Math.log(0.8) + Math.log(0.6)) / 3, 6);
  });

  it('L-BFGS finds the minimum of a quadratic', () => {
    const w = lbfgs((x, g) => {
      g[0] = 2 * (x[0]! - 3);
      g[1] = 20 * (x[1]! + 1);
      return (x[0]! - 3) ** 2 + 10 * (x[1]! + 1) ** 2;
    }, new Float64Array(2), 100, 1e-9);
    expect(w[0]).toBeCloseTo(3, 6);
    expect(w[1]).toBeCloseTo(-1, 6);
  });

  it('logistic regression, kNN and the random forest beat chance on a real table, with normalised probabilities', async () => {
    const task = makeTask(loadShipped('iris'), { folds: 5, maxTrainRows: 512, maxTestRows: 512 }, 0, 0);
    for (const m of [new LogisticRegression('logreg', { C: 1, maxIter: 200, tol: 1e-6 }), new KNearest('knn', 5), new RandomForest('rf', { trees: 20, seed: 0 })]) {
      const p = await m.predictProba(task);
      for (let i = 0; i < task.nTest; i++) expect(p[i * 3]! + p[i * 3 + 1]! + p[i * 3 + 2]!).toBeCloseTo(1, 5);
      expect(accuracy(p, task.yTest, 3)).toBeGreaterThan(0.85);
    }
  });

  it('runs a bring-your-own ONNX model (our nearest-centroid graph) and matches the same rule in JS', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'tabrecall-onnx-')), 'nc.onnx');
    writeFileSync(path, nearestCentroidOnnx(10));
    const task = makeTask(loadShipped('wine'), { folds: 5, maxTrainRows: 512, maxTestRows: 512 }, 1, 0);
    const p = await new OnnxIclModel(path).predictProba(task);
    const F = task.nFeatures;
    const mu = Array.from({ length: 3 }, (_, c) => {
      const rows = [...task.yTrain.keys()].filter((i) => task.yTrain[i] === c);
      return Array.from({ length: F }, (_, f) => rows.reduce((s, i) => s + task.xTrain[i * F + f]!, 0) / rows.length);
    });
    for (let i = 0; i < task.nTest; i++) {
      const d = mu.map((m) => m.reduce((s, v, f) => s + (task.xTest[i * F + f]! - v) ** 2, 0));
      const best = d.indexOf(Math.min(...d));
      expect(p[i * 3 + best]).toBe(Math.max(p[i * 3]!, p[i * 3 + 1]!, p[i * 3 + 2]!));
    }
    expect(accuracy(p, task.yTest, 3)).toBeGreaterThan(0.9);
    expect(() => new OnnxIclModel(join(tmpdir(), 'missing.onnx'))).toThrow(/model.path: no ONNX file/);
    const wrong = join(tmpdir(), 'wrong-contract.onnx');
    // The same graph with input train_x renamed (same length, so the protobuf stays valid).
    const renamed = Buffer.from(nearestCentroidOnnx(10)).toString('latin1').replaceAll('train_x', 'feats_x');
    writeFileSync(wrong, Buffer.from(renamed, 'latin1'));
    await expect(new OnnxIclModel(wrong).predictProba(task)).rejects.toThrow(/lacks input train_x/);
  });
});

describe(`pretraining on ${BACKEND}`, () => {
  it('lowers the loss, and at prior widths the sparse and dense models train to the same weights', async () => {
    const { AdamW, OPTIMIZER_DEFAULTS } = await import('../suites/optimizer.js');
    const { PRIOR_DEFAULTS, sampleBatch } = await import('../datasets/tabular/prior.js');
    const { pretrainStep } = await import('../suites/pretrain.js');
    const { buildIclNetwork } = await import('../models/tabular/registry.js');
    const small = { dCol: 8, colHeads: 2, rowHeads: 2, inducing: 4, cls: 2, latents: 4, dIcl: 16, iclBlocks: 1, iclHeads: 2 };
    const prior = { ...PRIOR_DEFAULTS, minRows: 24, maxRows: 32, minFeatures: 3, maxFeatures: 12, maxClasses: 3, minClassShare: 0.05, mix: { mlp: 0.4, tree: 0.3, linear: 0.3 } };
    const weights: Float32Array[][] = [];
    const losses: number[][] = [];
    for (const model of ['orion-msp', 'dense-icl']) {
      const net = buildIclNetwork(model, 3, small);
      const opt = new AdamW(net.vars, { ...OPTIMIZER_DEFAULTS, lr: 3e-3, warmupSteps: 0 }, 12);
      const ls: number[] = [];
      // The same batch repeatedly: the loss on it must fall.
      for (let s = 0; s < 12; s++) ls.push(await pretrainStep(net, opt, sampleBatch(1, 0, 4, prior)));
      losses.push(ls);
      weights.push(net.vars.map((v) => v.dataSync() as Float32Array));
    }
    expect(losses[0]![11]!).toBeLessThan(losses[0]![0]! * 0.9);
    expect(losses[1]).toEqual(losses[0]);
    weights[0]!.forEach((w, i) => expect(Array.from(weights[1]![i]!)).toEqual(Array.from(w)));
  });
});
