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
import { density, tokenMask } from '../kernels/layout.js';
import { assignClusters, clusterLayout, emaCentroids } from '../models/routing.js';
import { dmaAttention, dmaKeep, dmaMask } from '../models/dma.js';
import { predictorKeep, predictorScores, sparsifinerAttention } from '../models/sparsifiner.js';
import { fromKeyBits, ownBlockPlusKeysLayout } from '../kernels/instance-layout.js';
import { ParamFactory } from '../models/init.js';
import { TRANSFORMER_DEFAULTS } from '../models/transformer.js';

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

/** Logits [L, V] of one sequence. */
const seqLogits = (m: ReturnType<typeof buildModel>, ids: Int32Array) =>
  tf.tidy(() => m.head(tf.reshape(m.hidden(tf.tensor2d(ids, [1, ids.length], 'int32')), [ids.length, -1]) as tf.Tensor2D).dataSync() as Float32Array);

/** Changing token `at` leaves the logits of every earlier position unchanged (within tol; content layouts may regroup blocks) and changes a later one. */
function expectCausal(m: ReturnType<typeof buildModel>, L: number, V: number, at: number, tol: number): void {
  const ids = Int32Array.from({ length: L }, (_, i) => 1 + ((i * 11) % (V - 1)));
  const a = seqLogits(m, ids);
  const changed = Int32Array.from(ids);
  changed[at] = (changed[at]! % (V - 1)) + 1;
  const b = seqLogits(m, changed);
  for (let i = 0; i < at * V; i++) expect(Math.abs(a[i]! - b[i]!)).toBeLessThanOrEqual(tol * (1 + Math.abs(a[i]!)));
  expect(b.subarray(at * V).some((x, i) => Math.abs(x - a[at * V + i]!) > 1e-4)).toBe(true);
}

const rand = (r: Rng, n: number, s = 1) => Float32Array.from({ length: n }, () => s * r.normal());

describe('Routing Transformer', () => {
  it('k-means: each vector goes to the centroid of highest cosine; EMA moves assigned centroids, empty ones stay', () => {
    const r = new Rng(7);
    const R = 2, C = 3, D = 4, B = 2, L = 5;
    const x = rand(r, B * R * L * D), mu = rand(r, R * C * D);
    const xt = tf.tensor3d(x, [B * R, L, D]), mut = tf.tensor3d(mu, [R, C, D]);
    const a = assignClusters(xt, mut);
    const unitv = (v: Float32Array, o: number) => { const n = Math.hypot(...v.subarray(o, o + D)); return Array.from(v.subarray(o, o + D), (e) => e / (n + 1e-6)); };
    for (let g = 0; g < B * R; g++) for (let t = 0; t < L; t++) {
      const hr = g % R, xv = unitv(x, (g * L + t) * D);
      const cos = Array.from({ length: C }, (_, c) => unitv(mu, (hr * C + c) * D).reduce((s, e, d) => s + e * xv[d]!, 0));
      expect(a[g * L + t]).toBe(cos.indexOf(Math.max(...cos)));
    }
    // force cluster 2 of head 0 empty, then check the update against its formula
    const forced = Int32Array.from(a, (c, i) => (Math.floor(i / L) % R === 0 && c === 2 ? 0 : c));
    const next = emaCentroids(mut, xt, forced, 0.9).dataSync();
    for (let hr = 0; hr < R; hr++) for (let c = 0; c < C; c++) {
      const mean = new Array<number>(D).fill(0);
      let n = 0;
      for (let g = hr; g < B * R; g += R) for (let t = 0; t < L; t++) if (forced[g * L + t] === c) { unitv(x, (g * L + t) * D).forEach((e, d) => (mean[d] += e)); n++; }
      for (let d = 0; d < D; d++) {
        const old = mu[(hr * C + c) * D + d]!;
        const want = n === 0 ? old : 0.9 * old + 0.1 * (mean[d]! / n);
        expect(Math.abs(next[(hr * C + c) * D + d]! - want)).toBeLessThan(1e-5);
      }
    }
    tf.dispose([xt, mut]);
  });

  it('layout: a query sees exactly the earlier-or-equal tokens of its own cluster', () => {
    const G = 3, L = 40, C = 4;
    const r = new Rng(8);
    const qc = Int32Array.from({ length: G * L }, () => r.int(0, C));
    const kc = Int32Array.from({ length: G * L }, () => r.int(0, C));
    for (const keys of [qc, kc]) {
      const { layout, qOrder, kOrder } = clusterLayout(G, L, 8, qc, keys);
      for (let g = 0; g < G; g++) {
        const m = tokenMask(layout, g);
        for (let i = 0; i < L; i++) for (let j = 0; j < L; j++) {
          const qi = qOrder[g * L + i]!, kj = kOrder[g * L + j]!;
          expect(m[i * L + j]).toBe(kj <= qi && qc[g * L + qi] === keys[g * L + kj] ? 1 : 0);
        }
      }
    }
  });

  const cfg = { dModel: 32, nLayers: 2, nHeads: 2, routing: { clusters: 3, routingHeads: 1, window: 8, block: 8 } };
  it('is causal', () => {
    const m = buildModel('routing', cfg, { vocabSize: 40, maxLen: 64, seed: 3 });
    expectCausal(m, 64, 40, 45, 1e-5);
    m.dispose();
  });

  it(`centroids move in training passes only; a training step on ${BACKEND} lowers the loss without fallback kernels`, () => {
    const m = buildModel('routing', cfg, { vocabSize: 64, maxLen: 32, seed: 0 });
    const state = m.state!();
    expect(state.length).toBe(2);
    const before = state.map((v) => Array.from(v.dataSync()));
    tf.tidy(() => void m.hidden(tf.tensor2d(Int32Array.from({ length: 32 }, (_, i) => i + 1), [1, 32], 'int32')));
    expect(state.map((v) => Array.from(v.dataSync()))).toEqual(before);
    const losses = trainOnOneBatch(m, 8);
    expect(fallbackCounts()).toEqual({});
    expect(losses.every(Number.isFinite)).toBe(true);
    expect(losses[7]!).toBeLessThan(losses[0]!);
    expect(state.map((v) => Array.from(v.dataSync()))).not.toEqual(before);
    m.dispose();
  });
});

describe('Dynamic Mask Attention', () => {
  it('mask = exp(A * softplus(v W)); kept keys = own block + top-k of the mask before the block', () => {
    const r = new Rng(9);
    const B = 2, H = 2, L = 24, Dh = 4, blk = 8, keepKeys = 5;
    const v = rand(r, B * H * L * Dh), w = rand(r, H * Dh * H, 0.5), a = Float32Array.from([-0.7, 0.4]);
    const m = dmaMask(tf.tensor4d(v, [B, H, L, Dh]), tf.tensor2d(w, [H * Dh, H]), tf.tensor1d(a)).dataSync() as Float32Array;
    for (let b = 0; b < B; b++) for (let h = 0; h < H; h++) for (let t = 0; t < L; t++) {
      let z = 0;
      for (let hh = 0; hh < H; hh++) for (let d = 0; d < Dh; d++) z += v[((b * H + hh) * L + t) * Dh + d]! * w[(hh * Dh + d) * H + h]!;
      const want = Math.exp(a[h]! * Math.log1p(Math.exp(z)));
      expect(Math.abs(m[(b * H + h) * L + t]! - want)).toBeLessThan(1e-5 * (1 + want));
    }
    const keep = dmaKeep(m, B * H, L, blk, keepKeys);
    const layout = ownBlockPlusKeysLayout(B * H, L, blk, keep);
    for (let g = 0; g < B * H; g++) {
      const mask = tokenMask(layout, g);
      for (let I = 0; I < L / blk; I++) {
        const earlier = Array.from({ length: I * blk }, (_, j) => j).sort((x, y) => m[g * L + y]! - m[g * L + x]! || y - x).slice(0, keepKeys);
        for (let i = I * blk; i < (I + 1) * blk; i++) for (let j = 0; j < L; j++) {
          const want = j <= i && (j >= I * blk || earlier.includes(j)) ? 1 : 0;
          expect(mask[i * L + j]).toBe(want);
        }
      }
    }
  });

  it('the loss gradient reaches the mask parameters W and A (finite differences, 2%)', () => {
    const r = new Rng(10);
    const B = 1, H = 2, L = 16, Dh = 8;
    const mod = dmaAttention({ keepKeys: 64, block: 8 }, 1);
    const f = new ParamFactory(3);
    mod.init!(f, 'dmagrad', { ...TRANSFORMER_DEFAULTS, dModel: H * Dh, nHeads: H });
    const [w, a] = f.created;
    a!.assign(tf.tensor1d([0.5, -0.3]));
    const q = tf.tensor4d(rand(r, B * H * L * Dh), [B, H, L, Dh]), k = tf.tensor4d(rand(r, B * H * L * Dh), [B, H, L, Dh]);
    const v = tf.tensor4d(rand(r, B * H * L * Dh), [B, H, L, Dh]), R = tf.tensor4d(rand(r, B * H * L * Dh), [B, H, L, Dh]);
    const loss = () => tf.sum(tf.mul(mod.fn(q, k, v, 0), R)) as tf.Scalar;
    const { grads } = tf.variableGrads(loss, [w!, a!]);
    const ga = grads[a!.name]!.dataSync(), gw = grads[w!.name]!.dataSync();
    expect(Array.from(gw).some((x) => Math.abs(x) > 1e-4)).toBe(true);
    const eps = 1e-2;
    for (const h of [0, 1]) {
      const at = (d: number) => { const t = Float32Array.from([0.5, -0.3]); t[h]! += d; a!.assign(tf.tensor1d(t)); return loss().dataSync()[0]!; };
      const fd = (at(eps) - at(-eps)) / (2 * eps);
      expect(Math.abs(ga[h]! - fd)).toBeLessThanOrEqual(0.02 * Math.abs(fd) + 1e-3);
    }
    tf.dispose([q, k, v, R, w!, a!]);
  });

  const cfg = { dModel: 32, nLayers: 2, nHeads: 2, dma: { keepKeys: 8, block: 8 } };
  it('is causal', () => {
    const m = buildModel('dma', cfg, { vocabSize: 40, maxLen: 64, seed: 3 });
    expectCausal(m, 64, 40, 45, 1e-5);
    m.dispose();
  });

  it(`a training step on ${BACKEND}: no fallback kernels, the loss goes down`, () => {
    const m = buildModel('dma', cfg, { vocabSize: 64, maxLen: 32, seed: 0 });
    const losses = trainOnOneBatch(m, 8);
    expect(fallbackCounts()).toEqual({});
    expect(losses[7]!).toBeLessThan(losses[0]!);
    m.dispose();
  });
});

describe('Sparsifiner', () => {
  it('predictor top-k: each query keeps its k highest-scoring earlier-or-equal keys, and the layout exactly those', () => {
    const r = new Rng(11);
    const B = 2, H = 2, L = 20, Dh = 8, rank = 3, keepKeys = 4;
    const q = tf.tensor4d(rand(r, B * H * L * Dh), [B, H, L, Dh]), k = tf.tensor4d(rand(r, B * H * L * Dh), [B, H, L, Dh]);
    const pq = tf.tensor3d(rand(r, H * Dh * rank), [H, Dh, rank]), pk = tf.tensor3d(rand(r, H * Dh * rank), [H, Dh, rank]);
    const st = predictorScores(q, k, pq, pk);
    const s = st.dataSync() as Float32Array;
    const qa = q.arraySync(), ka = k.arraySync(), pqa = pq.arraySync(), pka = pk.arraySync();
    const keep = predictorKeep(st, keepKeys);
    const layout = fromKeyBits(B * H, L, 8, keep);
    for (let b = 0; b < B; b++) for (let h = 0; h < H; h++) {
      const g = b * H + h, mask = tokenMask(layout, g);
      const low = (x: number[][][][], p: number[][][], t: number) => Array.from({ length: rank }, (_, c) => x[b]![h]![t]!.reduce((acc, e, d) => acc + e * p[h]![d]![c]!, 0));
      for (let i = 0; i < L; i++) {
        const sc = Array.from({ length: i + 1 }, (_, j) => low(qa, pqa, i).reduce((acc, e, c) => acc + e * low(ka, pka, j)[c]!, 0) / Math.sqrt(rank));
        sc.forEach((x, j) => expect(Math.abs(s[(g * L + i) * L + j]! - x)).toBeLessThan(1e-4 * (1 + Math.abs(x))));
        const top = Array.from({ length: i + 1 }, (_, j) => j).sort((x, y) => sc[y]! - sc[x]! || x - y).slice(0, keepKeys);
        for (let j = 0; j < L; j++) expect(mask[i * L + j]).toBe(top.includes(j) ? 1 : 0);
      }
    }
    tf.dispose([q, k, pq, pk, st]);
  });

  it('the distillation loss trains the predictor only: gradient on Pq, Pk; none on q, k', () => {
    const r = new Rng(12);
    const B = 1, H = 2, L = 16, Dh = 8;
    const mod = sparsifinerAttention({ rank: 4, keepKeys: 4, block: 8, distill: 1 }, 1);
    const f = new ParamFactory(4);
    mod.init!(f, 'spgrad', { ...TRANSFORMER_DEFAULTS, dModel: H * Dh, nHeads: H });
    const q = tf.variable(tf.tensor4d(rand(r, B * H * L * Dh), [B, H, L, Dh])), k = tf.variable(tf.tensor4d(rand(r, B * H * L * Dh), [B, H, L, Dh]));
    const v = tf.tensor4d(rand(r, B * H * L * Dh), [B, H, L, Dh]);
    const { value, grads } = tf.variableGrads(() => {
      const pass = { training: true, aux: [] as tf.Scalar[] };
      mod.fn(q, k, v, 0, pass);
      expect(pass.aux.length).toBe(1);
      return pass.aux[0]!;
    }, [...f.created, q, k]);
    expect(value.dataSync()[0]!).toBeGreaterThan(0);
    for (const p of f.created) expect(Array.from(grads[p.name]!.dataSync()).some((x) => Math.abs(x) > 1e-6)).toBe(true);
    for (const x of [q, k]) expect(Array.from(grads[x.name]?.dataSync() ?? [0]).every((e) => e === 0)).toBe(true);
    tf.dispose([q, k, v, ...f.created]);
  });

  const cfg = { dModel: 32, nLayers: 2, nHeads: 2, sparsifiner: { rank: 4, keepKeys: 8, block: 8 } };
  it('is causal', () => {
    const m = buildModel('sparsifiner', cfg, { vocabSize: 40, maxLen: 64, seed: 3 });
    expectCausal(m, 64, 40, 45, 1e-5);
    m.dispose();
  });

  it(`a training step on ${BACKEND}: no fallback kernels, the loss (cross-entropy + distillation) goes down`, () => {
    const m = buildModel('sparsifiner', cfg, { vocabSize: 64, maxLen: 32, seed: 0 });
    const losses = trainOnOneBatch(m, 8);
    expect(fallbackCounts()).toEqual({});
    expect(losses[7]!).toBeLessThan(losses[0]!);
    m.dispose();
  });
});
