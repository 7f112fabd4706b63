/**
 * Trainable sparsity (issue 21), LongGen so far: the middle third of the layers attend fully; the
 * sparse layers' layout lists exactly the sink blocks, the local blocks and the own block (or the
 * strided blocks); the model is causal (changing a later token leaves every earlier output unchanged,
 * bit for bit); with allSparse off and a sink + local window covering the whole sequence it equals
 * the dense transformer with the same weights (1e-5); a training step runs on the backend under test
 * without fallback kernels and lowers the loss. N:M sparse training (BDWP): masks have exactly N
 * non-zeros in every group of M along the forward's reduction axis (forward mask) and along the output
 * axis (backward mask); the product's value is x (W . Mf), its input gradient dy (W . Mb)^T and its
 * weight gradient the dense x^T dy (1e-5); a 2:4 model trains without fallback kernels. MoA: the
 * span search keeps the mean density within the budget and gives the extra blocks to the head whose
 * attention needs them; the layout is exactly each head's window; spans scale with the length.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { useBackend, fallbackCounts, resetFallbackCounts } from '../kernels/backend.js';
import { BACKEND } from './under-test.js';
import { fullLayers, longGenLayout, LONGGEN_DEFAULTS } from '../models/longgen.js';
import { rowBlocks } from '../kernels/layout.js';
import { buildModel } from '../models/registry.js';
import { MqarTask, parseMqarParams } from '../datasets/mqar.js';
import { AdamW, OPTIMIZER_DEFAULTS } from '../suites/optimizer.js';
import { trainingStep } from '../suites/train.js';
import { NmMasks, nmMask } from '../models/nm-sparsity.js';
import { Rng } from '../core/rng.js';
import { chooseSpans, moa, moaBlocks, MOA_BETAS } from '../kernels/selectors/moa.js';
import { density } from '../kernels/layout.js';

beforeAll(async () => {
  await useBackend(BACKEND);
});

/** `steps` AdamW steps on one small MQAR batch (fallback counts reset first); the losses. */
function trainOnOneBatch(m: ReturnType<typeof buildModel>, steps: number): number[] {
  const task = new MqarTask(parseMqarParams({ vocabSize: 64, inputSeqLen: 32, numKvPairs: 4, numTrainExamples: 256, numTestExamples: 32 }), 0);
  const opt = new AdamW(m.variables(), { ...OPTIMIZER_DEFAULTS, lr: 3e-3, warmupSteps: 0 }, 20);
  resetFallbackCounts();
  const batch = task.trainBatch(0, 16);
  const losses: number[] = [];
  for (let s = 0; s < steps; s++) {
    const l = trainingStep(m, opt, batch);
    losses.push(l.dataSync()[0]!);
    l.dispose();
  }
  return losses;
}

describe('LongGen', () => {
  it('full layers: round(n/3), at least one, in the middle; none when allSparse', () => {
    const show = (n: number) => fullLayers(n, { allSparse: false }).map((x) => (x ? 'F' : 's')).join('');
    expect([2, 3, 4, 6, 9, 12].map(show)).toEqual(['Fs', 'sFs', 'sFss', 'ssFFss', 'sssFFFsss', 'ssssFFFFssss']);
    expect(fullLayers(6, { allSparse: true })).toEqual(new Array(6).fill(false));
  });

  it('sparse layouts list exactly the sink, local and own blocks (or the strided ones)', () => {
    const sw = longGenLayout({ ...LONGGEN_DEFAULTS, block: 8, sinkBlocks: 1, localBlocks: 2 }, 64, false);
    expect(Array.from({ length: 8 }, (_, i) => rowBlocks(sw, 0, i))).toEqual([[0], [0, 1], [0, 1, 2], [0, 1, 2, 3], [0, 2, 3, 4], [0, 3, 4, 5], [0, 4, 5, 6], [0, 5, 6, 7]]);
    const st = longGenLayout({ ...LONGGEN_DEFAULTS, pattern: 'strided', block: 8, stride: 3 }, 64, false);
    expect(rowBlocks(st, 0, 7)).toEqual([1, 4, 7]);
    const full = longGenLayout(LONGGEN_DEFAULTS, 64, true);
    expect(rowBlocks(full, 0, 3)).toEqual([0, 1, 2, 3]);
  });

  const cfg = { dModel: 32, nLayers: 3, nHeads: 2, longgen: { block: 8, sinkBlocks: 1, localBlocks: 1 } };
  const logits = (m: ReturnType<typeof buildModel>, ids: Int32Array, L: number) =>
    tf.tidy(() => m.head(tf.reshape(m.hidden(tf.tensor2d(ids, [1, L], 'int32')), [L, -1]) as tf.Tensor2D).dataSync() as Float32Array);

  it('is causal: a later token never changes an earlier output', () => {
    const m = buildModel('longgen', cfg, { vocabSize: 40, maxLen: 64, seed: 3 });
    const ids = Int32Array.from({ length: 64 }, (_, i) => 1 + ((i * 11) % 39));
    const a = logits(m, ids, 64);
    const changed = Int32Array.from(ids);
    changed[50] = (changed[50]! % 39) + 1;
    const b = logits(m, changed, 64);
    expect(Array.from(b.subarray(0, 50 * 40))).toEqual(Array.from(a.subarray(0, 50 * 40)));
    expect(b.subarray(50 * 40).some((x, i) => x !== a[50 * 40 + i])).toBe(true);
    m.dispose();
  });

  it('with sink + local covering the whole sequence it is the dense transformer', () => {
    const wide = { ...cfg, longgen: { block: 8, sinkBlocks: 8, localBlocks: 8, allSparse: true } };
    const m = buildModel('longgen', wide, { vocabSize: 40, maxLen: 64, seed: 5 });
    const d = buildModel('dense', { dModel: 32, nLayers: 3, nHeads: 2 }, { vocabSize: 40, maxLen: 64, seed: 5 });
    const ids = Int32Array.from({ length: 64 }, (_, i) => 1 + ((i * 7) % 39));
    const a = logits(m, ids, 64), b = logits(d, ids, 64);
    for (let i = 0; i < a.length; i++) expect(Math.abs(a[i]! - b[i]!)).toBeLessThanOrEqual(1e-5 + 1e-5 * Math.abs(b[i]!));
    m.dispose();
    d.dispose();
  });

  it(`a training step on ${BACKEND}: no fallback kernels, the loss goes down`, () => {
    const m = buildModel('longgen', cfg, { vocabSize: 64, maxLen: 32, seed: 0 });
    const losses = trainOnOneBatch(m, 8);
    expect(fallbackCounts()).toEqual({});
    expect(losses.every(Number.isFinite)).toBe(true);
    expect(losses[7]!).toBeLessThan(losses[0]!);
    m.dispose();
  });
});

describe('N:M sparse training (BDWP)', () => {
  const close = (a: ArrayLike<number>, b: ArrayLike<number>) => {
    for (let i = 0; i < a.length; i++) expect(Math.abs(a[i]! - b[i]!)).toBeLessThanOrEqual(1e-5 + 1e-5 * Math.abs(b[i]!));
  };
  it('masks: exactly N non-zeros per M in both directions (a partial last group keeps min(N, size))', () => {
    const r = new Rng(1);
    const rows = 10, cols = 7, w = Float32Array.from({ length: rows * cols }, () => r.normal());
    for (const [n, m] of [[2, 4], [1, 4], [3, 8]] as const) {
      const f = nmMask(w, rows, cols, n, m, 0), b = nmMask(w, rows, cols, n, m, 1);
      for (let c = 0; c < cols; c++) for (let g = 0; g < rows; g += m) {
        let k = 0;
        for (let i = g; i < Math.min(rows, g + m); i++) k += f[i * cols + c]!;
        expect(k).toBe(Math.min(n, rows - g));
        // the kept ones are the largest by magnitude
        const kept = Array.from({ length: Math.min(m, rows - g) }, (_, j) => g + j).filter((i) => f[i * cols + c]);
        const dropped = Array.from({ length: Math.min(m, rows - g) }, (_, j) => g + j).filter((i) => !f[i * cols + c]);
        for (const a of kept) for (const d of dropped) expect(Math.abs(w[a * cols + c]!)).toBeGreaterThanOrEqual(Math.abs(w[d * cols + c]!));
      }
      for (let row = 0; row < rows; row++) for (let g = 0; g < cols; g += m) {
        let k = 0;
        for (let j = g; j < Math.min(cols, g + m); j++) k += b[row * cols + j]!;
        expect(k).toBe(Math.min(n, cols - g));
      }
    }
  });

  it('forward x (W . Mf), input gradient dy (W . Mb)^T, dense weight gradient', () => {
    const r = new Rng(2);
    const N = 5, din = 8, dout = 12;
    const x = tf.tensor2d(Float32Array.from({ length: N * din }, () => r.normal()), [N, din]);
    const w = tf.variable(tf.tensor2d(Float32Array.from({ length: din * dout }, () => r.normal()), [din, dout]));
    const dy = tf.tensor2d(Float32Array.from({ length: N * dout }, () => r.normal()), [N, dout]);
    const masks = new NmMasks({ n: 2, m: 4, every: 1 });
    const [mf, mb] = masks.masksOf(w);
    const y = masks.matMul(x, w);
    close(y.dataSync(), tf.matMul(x, tf.mul(w, mf)).dataSync());
    const g = tf.grads((a: tf.Tensor, b: tf.Tensor) => masks.matMul(a as tf.Tensor2D, b as tf.Variable))([x, w], dy);
    close(g[0]!.dataSync(), tf.matMul(dy, tf.mul(w, mb), false, true).dataSync());
    close(g[1]!.dataSync(), tf.matMul(x, dy, true, false).dataSync());
    masks.clear();
    tf.dispose([x, w, dy, y, ...g]);
  });

  it(`a 2:4 dense transformer trains on ${BACKEND} without fallback kernels`, () => {
    const m = buildModel('dense', { dModel: 32, nLayers: 2, nHeads: 2, nm: { n: 2, m: 4, every: 3 } }, { vocabSize: 64, maxLen: 32, seed: 0 });
    expect(m.config.nm).toEqual({ n: 2, m: 4, every: 3 });
    const losses = trainOnOneBatch(m, 9);
    expect(fallbackCounts()).toEqual({});
    expect(losses.every(Number.isFinite)).toBe(true);
    expect(losses[8]!).toBeLessThan(losses[0]!);
    m.dispose();
  });
});

describe('MoA', () => {
  it('span search: mean density within the budget; the head that loses mass gets the longer span', () => {
    // head 0 keeps all its mass at the smallest span (local), head 1 only at the full span
    const kept = [MOA_BETAS.map(() => 1), MOA_BETAS.map((_, c) => (c === MOA_BETAS.length - 1 ? 1 : 0.1 * c))];
    const dens = MOA_BETAS.map((b) => Math.min(1, 0.1 + b));
    for (const budget of [0.2, 0.5, 0.8]) {
      const pick = chooseSpans(kept, dens, budget);
      expect((dens[pick[0]!]! + dens[pick[1]!]!) / 2).toBeLessThanOrEqual(budget + 1e-9);
      expect(pick[1]!).toBeGreaterThanOrEqual(pick[0]!);
      expect(pick[0]).toBe(0);
    }
  });

  it('calibrated on a local head and a sink head: per-head windows, exactly those blocks, density <= budget, spans grow with L', () => {
    const H = 2, L = 128, D = 16, B = 16;
    const r = new Rng(4);
    // head 0: queries match their own position's key (local); head 1: every query matches key 0 (needs the whole span)
    const q = new Float32Array(H * L * D), k = new Float32Array(H * L * D);
    for (let t = 0; t < L; t++) for (let d = 0; d < D; d++) {
      const e = r.normal();
      q[(0 * L + t) * D + d] = 3 * e;
      k[(0 * L + t) * D + d] = 3 * e;
      k[(1 * L + t) * D + d] = t === 0 ? 4 : 0.1 * r.normal();
      q[(1 * L + t) * D + d] = 4;
    }
    const x = { q: tf.tensor3d(q, [H, L, D]), k: tf.tensor3d(k, [H, L, D]), layer: 0 };
    const ctx = { block: B, scale: 1 / Math.sqrt(D) };
    const state = moa.calibrate!([[x]], 0.5, ctx) as { betas: number[][] };
    const [b0, b1] = state.betas[0]!;
    expect(b1!).toBeGreaterThan(b0!);
    const { layout } = moa.select(x, 0.5, ctx, state);
    const l = layout as import('../kernels/layout.js').BlockLayout;
    expect(l.H).toBe(2);
    expect(density(l)).toBeLessThanOrEqual(0.5 + 1e-9);
    const nQ = L / B;
    for (let h = 0; h < 2; h++) for (let i = 0; i < nQ; i++) {
      const n = moaBlocks(state.betas[0]![h]!, nQ);
      const cols = Array.from(l.colIdx.subarray(l.rowPtr[h * (nQ + 1) + i]!, l.rowPtr[h * (nQ + 1) + i + 1]!));
      expect(cols).toEqual(Array.from({ length: Math.min(i + 1, n) }, (_, t) => i - Math.min(i + 1, n) + 1 + t));
    }
    // elastic: the same betas give longer windows at twice the length
    expect(moaBlocks(b1!, 2 * nQ)).toBeGreaterThanOrEqual(moaBlocks(b1!, nQ));
    tf.dispose([x.q, x.k]);
  });
});
