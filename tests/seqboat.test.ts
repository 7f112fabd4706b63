/** SeqBoat's parts against simple references. Bounds: 1e-4 absolute + 1e-4 relative unless stated. */
import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { useBackend } from '../kernels/backend.js';
import { chunkLayout, compact, compactionIndex, emaApply, scatter, SeqBoat, parseSeqBoatConfig } from '../models/seqboat.js';
import { referenceAttention } from '../kernels/block-sparse.js';
import { rowBlocks } from '../kernels/layout.js';
import { Rng } from '../core/rng.js';
import { BACKEND } from './under-test.js';

function rand(rng: Rng, shape: number[], scale = 1): tf.Tensor {
  return tf.tensor(Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.normal() * scale), shape);
}

beforeAll(async () => {
  expect(await useBackend(BACKEND)).toBe(BACKEND);
});

describe('SeqBoat', () => {
  const rng = new Rng(11);

  it('EMA equals the direct recurrence h_t = q h_{t-1} + p beta x_t, y_t = sum_n gamma h_t / sqrt(n) + omega x_t', () => {
    const [B, L, d, n] = [2, 12, 3, 4];
    const e = { delta: rand(rng, [d, n]) as tf.Tensor2D, alpha: rand(rng, [d, n]) as tf.Tensor2D, beta: rand(rng, [d, n]) as tf.Tensor2D, gamma: rand(rng, [d, n]) as tf.Tensor2D, omega: rand(rng, [d]) as tf.Tensor1D };
    const x = rand(rng, [B, L, d]) as tf.Tensor3D;
    const got = emaApply(x, e).arraySync() as number[][][];
    const [dl, al, be, ga, om] = [e.delta, e.alpha, e.beta, e.gamma, e.omega].map((t) => t.arraySync()) as [number[][], number[][], number[][], number[][], number[]];
    const xs = x.arraySync() as number[][][];
    const sig = (v: number) => 1 / (1 + Math.exp(-v));
    for (let b = 0; b < B; b++) {
      for (let c = 0; c < d; c++) {
        const h = new Array(n).fill(0);
        for (let t = 0; t < L; t++) {
          let y = om[c]! * xs[b]![t]![c]!;
          for (let k = 0; k < n; k++) {
            const p = sig(dl[c]![k]!);
            const q = 1 - p * sig(al[c]![k]!);
            h[k] = q * h[k] + p * be[c]![k]! * xs[b]![t]![c]!;
            y += (ga[c]![k]! * h[k]) / Math.sqrt(n);
          }
          expect(Math.abs(got[b]![t]![c]! - y)).toBeLessThanOrEqual(1e-4 + 1e-4 * Math.abs(y));
        }
      }
    }
  });

  it('compaction then scatter is the identity on active tokens and zero elsewhere; order is kept', () => {
    const [B, L, d] = [3, 10, 2];
    const active = Uint8Array.from({ length: B * L }, (_, i) => (i * 7) % 3 === 0 ? 1 : 0);
    active.fill(0, L, 2 * L); // a row with no active token
    const { index, Lc } = compactionIndex(active, B, L);
    const x = rand(rng, [B, L, d]) as tf.Tensor3D;
    const c = compact(x, index, Lc);
    const back = scatter(c, index, L).arraySync() as number[][][];
    const xs = x.arraySync() as number[][][];
    for (let b = 0; b < B; b++) for (let t = 0; t < L; t++) for (let k = 0; k < d; k++) {
      expect(back[b]![t]![k]).toBeCloseTo(active[b * L + t] ? xs[b]![t]![k]! : 0, 6);
    }
    for (let b = 0; b < B; b++) {
      const row = Array.from(index.subarray(b * Lc, (b + 1) * Lc)).filter((t) => t >= 0);
      expect(row).toEqual([...row].sort((p, q) => p - q));
    }
  });

  it('the local chunk layout: each chunk sees itself (causally) and the previous chunk', () => {
    const l = chunkLayout(10, 4);
    expect([0, 1, 2].map((i) => rowBlocks(l, 0, i))).toEqual([[0], [0, 1], [1, 2]]);
  });

  it('is causal: perturbing token t changes no hidden state before t', () => {
    const m = new SeqBoat(parseSeqBoatConfig('t', { dModel: 16, nLayers: 2, emaDim: 2, dQk: 8, dV: 16, chunk: 4 }), { vocabSize: 20, maxLen: 24, seed: 1 });
    const ids = Int32Array.from({ length: 24 }, (_, i) => (i * 5) % 20);
    const base = m.hidden(tf.tensor2d(ids, [1, 24], 'int32')).arraySync() as number[][][];
    for (const t of [3, 12, 23]) {
      const ids2 = ids.slice();
      ids2[t] = (ids2[t]! + 7) % 20;
      const out = m.hidden(tf.tensor2d(ids2, [1, 24], 'int32')).arraySync() as number[][][];
      for (let i = 0; i < t; i++) for (let k = 0; k < 16; k++) expect(out[0]![i]![k]).toBeCloseTo(base[0]![i]![k]!, 5);
    }
    const rates = m.diagnostics().activationRate!;
    expect(rates.length).toBe(2);
    expect(rates.every((r) => r >= 0 && r <= 1)).toBe(true);
    m.dispose();
  });

  it('with every token active, its attention unit is chunked local attention over the full sequence', () => {
    // Compaction with all tokens active is the identity, so the attention call sees the full sequence.
    const [B, L] = [2, 12];
    const active = new Uint8Array(B * L).fill(1);
    const { index, Lc } = compactionIndex(active, B, L);
    expect(Lc).toBe(L);
    expect(Array.from(index)).toEqual(Array.from({ length: B * L }, (_, i) => i % L));
    const x = rand(rng, [B, L, 3]) as tf.Tensor3D;
    expect(Array.from(compact(x, index, Lc).dataSync())).toEqual(Array.from(x.dataSync()));
    // And the chunk layout over it is exactly "own chunk causal + previous chunk" token attention.
    const [q, k, v] = [rand(rng, [B, 1, L, 4]), rand(rng, [B, 1, L, 4]), rand(rng, [B, 1, L, 4])] as tf.Tensor4D[];
    const viaLayout = referenceAttention(q!, k!, v!, chunkLayout(L, 4), 0.5).out.arraySync() as number[][][][];
    const s = tf.mul(tf.matMul(q!, k!, false, true), 0.5).arraySync() as number[][][][];
    const vs = v!.arraySync() as number[][][][];
    for (let b = 0; b < B; b++) for (let i = 0; i < L; i++) {
      const keys = Array.from({ length: L }, (_, j) => j).filter((j) => j <= i && Math.floor(j / 4) >= Math.floor(i / 4) - 1);
      const w = keys.map((j) => Math.exp(s[b]![0]![i]![j]!));
      const z = w.reduce((a, c) => a + c, 0);
      for (let dd = 0; dd < 4; dd++) {
        const want = keys.reduce((acc, j, n) => acc + (w[n]! / z) * vs[b]![0]![j]![dd]!, 0);
        expect(Math.abs(viaLayout[b]![0]![i]![dd]! - want)).toBeLessThanOrEqual(1e-4 + 1e-4 * Math.abs(want));
      }
    }
    const m = new SeqBoat(parseSeqBoatConfig('t', { dModel: 8, nLayers: 1, emaDim: 2, dQk: 4, dV: 8, chunk: 4, forceActive: true }), { vocabSize: 10, maxLen: 12, seed: 2 });
    m.hidden(tf.tensor2d(Int32Array.from({ length: 12 }, (_, i) => i % 10), [1, 12], 'int32'));
    expect(m.diagnostics().activationRate).toEqual([1]);
    m.dispose();
  });

  it('a training step works when no token is active (unused attention parameters get zero gradients)', async () => {
    const { train } = await import('../suites/train.js');
    const { OPTIMIZER_DEFAULTS } = await import('../suites/optimizer.js');
    const { MqarTask, parseMqarParams } = await import('../datasets/mqar.js');
    const m = new SeqBoat(parseSeqBoatConfig('t', { dModel: 8, nLayers: 1, emaDim: 2, dQk: 4, dV: 8, chunk: 4 }), { vocabSize: 32, maxLen: 16, seed: 4 });
    // Push every routing decision to "inactive".
    const whx = m.variables().find((v) => v.name.includes('/bhx'))!;
    whx.assign(tf.tensor1d(Float32Array.from({ length: whx.size }, (_, i) => (i === 0 ? 50 : i === 1 ? -50 : 0))));
    const task = new MqarTask(parseMqarParams({ vocabSize: 32, inputSeqLen: 16, numKvPairs: 2, numTrainExamples: 64, numTestExamples: 8 }), 0);
    const r = train(m, task, { maxSteps: 3, batchSize: 4, evalEvery: 3, patience: 5, minDelta: 0, validExamples: 8 }, OPTIMIZER_DEFAULTS);
    expect(r.steps).toBe(3);
    expect(m.diagnostics().activationRate![0]).toBe(0);
    m.dispose();
  });

  it('trains: gradients reach every parameter (the routing through P(active))', () => {
    const m = new SeqBoat(parseSeqBoatConfig('t', { dModel: 8, nLayers: 1, emaDim: 2, dQk: 4, dV: 8, chunk: 4, forceActive: true }), { vocabSize: 10, maxLen: 12, seed: 3 });
    const ids = tf.tensor2d(Int32Array.from({ length: 24 }, (_, i) => i % 10), [2, 12], 'int32');
    const { grads } = tf.variableGrads(() => tf.sum(tf.square(m.head(tf.reshape(m.hidden(ids), [24, 8]) as tf.Tensor2D))) as tf.Scalar, m.variables());
    for (const v of m.variables()) {
      const g = grads[v.name]!;
      expect(Array.from(g.dataSync()).some(Number.isNaN), v.name).toBe(false);
    }
    expect(Math.abs(grads[m.variables().find((v) => v.name.includes('logtemp'))!.name]!.dataSync()[0]!)).toBeGreaterThan(0);
    m.dispose();
  });
});
