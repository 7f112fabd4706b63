/**
 * The shared block-sparse operator: layouts (exact index lists, density, validation) and values +
 * gradients of the generic and fused implementations against the dense masked reference.
 * Error bounds: outputs and lse within 2e-4 absolute + 2e-4 relative; gradients (dq, dk, dv,
 * dKeyBias) within 1e-3 absolute + 1e-3 relative (float32, different summation orders, fast exp).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { cudaLibrary, useBackend } from '../kernels/backend.js';
import {
  bigBirdLayout, causalLayout, denseLayout, density, fromBlockSets, fromTokenMask, globalLayout, intersectLayout, randomLayout,
  fromPredicate, rowBlocks, slidingWindowLayout, stackHeads, stridedLayout, tokenMask, unionLayout, validateLayout, type BlockLayout,
} from '../kernels/layout.js';
import { blockSparseAttention, blockSparseAttentionBackward, packBf16, referenceAttention } from '../kernels/block-sparse.js';
import { Rng } from '../core/rng.js';
import { BACKEND } from './under-test.js';

const rows = (l: BlockLayout, h = 0) => Array.from({ length: Math.ceil(l.Lq / l.Bq) }, (_, i) => rowBlocks(l, h, i));

describe('layouts', () => {
  const s = { Lq: 8, Lk: 8, Bq: 2, Bk: 2 };
  it('dense and causal', () => {
    expect(rows(denseLayout(s))).toEqual([[0, 1, 2, 3], [0, 1, 2, 3], [0, 1, 2, 3], [0, 1, 2, 3]]);
    const c = causalLayout(s);
    expect(rows(c)).toEqual([[0], [0, 1], [0, 1, 2], [0, 1, 2, 3]]);
    expect(Array.from(c.full)).toEqual([0, 1, 0, 1, 1, 0, 1, 1, 1, 0]); // diagonal blocks are partial
    expect(density(c)).toBeCloseTo(10 / 16);
  });
  it('sliding window (token level, causal)', () => {
    const w = slidingWindowLayout({ ...s, causal: true }, 2);
    expect(rows(w)).toEqual([[0], [0, 1], [1, 2], [2, 3]]);
    const m = tokenMask(w);
    expect(Array.from(m.subarray(5 * 8, 6 * 8))).toEqual([0, 0, 0, 1, 1, 1, 0, 0]);
    expect(Array.from(w.full)).toEqual([0, 0, 0, 0, 0, 0, 0]);
  });
  it('strided, global, random, union, intersection, bigbird, token-mask coarsening', () => {
    expect(rows(stridedLayout(s, 2))).toEqual([[0, 2], [1, 3], [0, 2], [1, 3]]);
    expect(rows(globalLayout(s, 1))).toEqual([[0, 1, 2, 3], [0], [0], [0]]);
    const r = randomLayout(s, 2, 5);
    expect(rows(r).every((x) => x.length === 2)).toBe(true);
    expect(rows(randomLayout(s, 2, 5))).toEqual(rows(r));
    expect(rows(unionLayout(stridedLayout(s, 2), globalLayout(s, 1)))).toEqual([[0, 1, 2, 3], [0, 1, 3], [0, 2], [0, 1, 3]]);
    expect(rows(intersectLayout(stridedLayout(s, 2), causalLayout(s)))).toEqual([[0], [1], [0, 2], [1, 3]]);
    const bb = bigBirdLayout({ Lq: 12, Lk: 12, Bq: 2, Bk: 2 }, { windowBlocks: 1, globalBlocks: 1, randomBlocks: 1, seed: 3 });
    for (const [i, x] of rows(bb).entries()) {
      for (const j of [i - 1, i, i + 1, 0].filter((j) => j >= 0 && j < 6)) expect(x).toContain(j);
    }
    const mask = new Uint8Array(64);
    mask[0 * 8 + 7] = 1;
    mask[5 * 8 + 2] = 1;
    expect(rows(fromTokenMask(s, mask))).toEqual([[3], [], [1], []]);
  });
  it('non-multiple lengths, Lq != Lk, per-head layouts', () => {
    const l = causalLayout({ Lq: 5, Lk: 7, Bq: 2, Bk: 3 });
    // off = Lk - Lq = 2: query row 1 sees keys 0..3, so query block 0 already reaches key block 1.
    expect(rows(l)).toEqual([[0, 1], [0, 1], [0, 1, 2]]);
    const ph = stackHeads([causalLayout(s), stridedLayout({ ...s, causal: true }, 2)]);
    expect(ph.H).toBe(2);
    expect(rows(ph, 0)).toEqual([[0], [0, 1], [0, 1, 2], [0, 1, 2, 3]]);
    expect(rows(ph, 1)).toEqual([[0], [1], [0, 2], [1, 3]]);
    expect(() => stackHeads([causalLayout(s), denseLayout(s)])).toThrow(/layout: stacked heads need/);
  });
  it('validation names the field', () => {
    const ok = denseLayout(s);
    expect(() => validateLayout({ ...ok, colIdx: Int32Array.from([1, 0, ...ok.colIdx.subarray(2)]) })).toThrow(/layout\.colIdx: must be sorted/);
    expect(() => validateLayout({ ...ok, colIdx: Int32Array.from([9, ...ok.colIdx.subarray(1)]) })).toThrow(/layout\.colIdx: key block 9 out of range \[0, 4\)/);
    expect(() => validateLayout({ ...ok, rowPtr: ok.rowPtr.subarray(1) })).toThrow(/layout\.rowPtr: must have/);
  });
});

function rand(rng: Rng, shape: number[]): tf.Tensor {
  return tf.tensor(Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.normal()), shape);
}

function close(a: tf.Tensor, b: tf.Tensor, atol: number, rtol: number, what: string): void {
  const x = a.dataSync(), y = b.dataSync();
  expect(a.shape, what).toEqual(b.shape);
  for (let i = 0; i < x.length; i++) {
    if (y[i] === -Infinity) expect(x[i], `${what}[${i}]`).toBe(-Infinity);
    else expect(Math.abs(x[i]! - y[i]!), `${what}[${i}] ${x[i]} vs ${y[i]}`).toBeLessThanOrEqual(atol + rtol * Math.abs(y[i]!));
  }
}

interface Case { name: string; B: number; H: number; Lq: number; Lk: number; D: number; layout: BlockLayout; keyBias?: number[] }

function cases(): Case[] {
  const c = (Lq: number, Lk: number, Bq: number, Bk: number) => ({ Lq, Lk, Bq, Bk });
  const emptyRows = fromBlockSets(c(8, 8, 4, 4), [[new Set([0]), new Set()]]);
  return [
    { name: 'dense', B: 2, H: 2, Lq: 16, Lk: 16, D: 8, layout: denseLayout(c(16, 16, 4, 4)) },
    { name: 'causal', B: 1, H: 2, Lq: 16, Lk: 16, D: 8, layout: causalLayout(c(16, 16, 4, 4)) },
    { name: 'window', B: 1, H: 2, Lq: 24, Lk: 24, D: 4, layout: slidingWindowLayout({ ...c(24, 24, 4, 4), causal: true }, 5) },
    { name: 'bigbird', B: 1, H: 1, Lq: 32, Lk: 32, D: 8, layout: bigBirdLayout(c(32, 32, 4, 4), { windowBlocks: 1, globalBlocks: 1, randomBlocks: 1, seed: 1 }) },
    { name: 'per-head', B: 1, H: 2, Lq: 16, Lk: 16, D: 8, layout: stackHeads([causalLayout(c(16, 16, 4, 4)), stridedLayout({ ...c(16, 16, 4, 4), causal: true }, 2)]) },
    { name: 'empty rows', B: 1, H: 1, Lq: 8, Lk: 8, D: 4, layout: emptyRows },
    { name: 'single block', B: 1, H: 1, Lq: 3, Lk: 3, D: 4, layout: causalLayout(c(3, 3, 4, 4)) },
    { name: 'non-multiple, Lq != Lk', B: 2, H: 1, Lq: 7, Lk: 13, D: 6, layout: causalLayout(c(7, 13, 3, 4)) },
    { name: 'keyBias', B: 2, H: 2, Lq: 12, Lk: 12, D: 4, layout: causalLayout(c(12, 12, 4, 4)), keyBias: [1, 2, 12] },
  ];
}

async function checkImpl(impl: 'fused' | 'generic'): Promise<void> {
  const rng = new Rng(9);
  for (const cs of cases()) {
    const q = rand(rng, [cs.B, cs.H, cs.Lq, cs.D]) as tf.Tensor4D;
    const k = rand(rng, [cs.B, cs.H, cs.Lk, cs.D]) as tf.Tensor4D;
    const v = rand(rng, [cs.B, cs.H, cs.Lk, cs.D + 1]) as tf.Tensor4D;
    const kb = cs.keyBias ? (rand(rng, cs.keyBias) as tf.Tensor3D) : undefined;
    const w = rand(rng, [cs.B, cs.H, cs.Lq, cs.D + 1]); // a random cotangent
    const scale = 0.7;
    const ref = referenceAttention(q, k, v, cs.layout, scale, kb);
    const got = blockSparseAttention(q, k, v, cs.layout, { scale, keyBias: kb, impl });
    close(got.out, ref.out, 2e-4, 2e-4, `${cs.name} ${impl} out`);
    close(got.lse, ref.lse, 2e-4, 2e-4, `${cs.name} ${impl} lse`);
    const loss = (f: (q: tf.Tensor4D, k: tf.Tensor4D, v: tf.Tensor4D, kb?: tf.Tensor3D) => tf.Tensor4D) =>
      tf.grads((...xs: tf.Tensor[]) => tf.sum(tf.mul(f(xs[0] as tf.Tensor4D, xs[1] as tf.Tensor4D, xs[2] as tf.Tensor4D, xs[3] as tf.Tensor3D | undefined), w)));
    const args = kb ? [q, k, v, kb] : [q, k, v];
    const gRef = loss((a, b, c, d) => referenceAttention(a, b, c, cs.layout, scale, d).out)(args);
    const gGot = loss((a, b, c, d) => blockSparseAttention(a, b, c, cs.layout, { scale, keyBias: d, impl }).out)(args);
    gGot.forEach((g, i) => close(g, gRef[i]!, 1e-3, 1e-3, `${cs.name} ${impl} grad ${['dq', 'dk', 'dv', 'dKeyBias'][i]}`));
    // Empty rows give zeros, never NaN.
    expect(Array.from(got.out.dataSync()).some(Number.isNaN)).toBe(false);
  }
}

describe(`blockSparseAttention on ${BACKEND}`, () => {
  beforeAll(async () => {
    expect(await useBackend(BACKEND)).toBe(BACKEND);
  });
  it('fused kernel: values and gradients match the reference', async () => {
    await checkImpl('fused');
  });
  it('generic path: values and gradients match the reference', async () => {
    await checkImpl('generic');
  });
});

describe(`blockSparseAttentionBackward on ${BACKEND}`, () => {
  it('gives the gradients autodiff gets through the fused operator (same kernel, bit for bit), dKeyBias unreduced', async () => {
    expect(await useBackend(BACKEND)).toBe(BACKEND);
    const rng = new Rng(41);
    const layout = causalLayout({ Lq: 12, Lk: 12, Bq: 4, Bk: 4 });
    const [q, k, v, w] = [0, 1, 2, 3].map(() => rand(rng, [2, 2, 12, 4]) as tf.Tensor4D);
    const kb = rand(rng, [2, 2, 12]) as tf.Tensor3D;
    const opts = { scale: 0.5, keyBias: kb, impl: 'fused' as const };
    const want = tf.grads((a: tf.Tensor, b: tf.Tensor, c: tf.Tensor, d: tf.Tensor) =>
      tf.sum(tf.mul(blockSparseAttention(a as tf.Tensor4D, b as tf.Tensor4D, c as tf.Tensor4D, layout, { ...opts, keyBias: d as tf.Tensor3D }).out, w!)))([q!, k!, v!, kb]);
    const fwd = blockSparseAttention(q!, k!, v!, layout, opts);
    const got = blockSparseAttentionBackward(q!, k!, v!, fwd, w!, layout, opts);
    [got.dq, got.dk, got.dv, got.dKeyBias].forEach((g, i) => expect(Array.from(g.dataSync())).toEqual(Array.from(want[i]!.dataSync())));
    expect(() => blockSparseAttentionBackward(q!, k!, v!, { out: q!, lse: tf.zeros([2, 2, 12]) as tf.Tensor3D }, tf.zeros([2, 2, 12, 5]) as tf.Tensor4D, layout, opts)).toThrow(/dOut: must have the output's shape/);
    for (const scale of [0, -0.5, NaN, Infinity]) {
      expect(() => blockSparseAttention(q!, k!, v!, layout, { ...opts, scale })).toThrow(/blockSparseAttention\.scale: must be a finite number > 0/);
      expect(() => blockSparseAttentionBackward(q!, k!, v!, fwd, w!, layout, { ...opts, scale })).toThrow(/blockSparseAttentionBackward\.scale: must be a finite number > 0/);
    }
  });
});

if (BACKEND === 'native') describe('blockSparseAttention on wasm', () => {
  it('generic path (no gather gradient kernel: one-hot selection): values and gradients match', async () => {
    expect(await useBackend('wasm')).toBe('wasm');
    await checkImpl('generic');
  });
});

// The tensor-core forwards (cuda; head dim 64, 64x64 blocks). Bounds, relative Frobenius error
// ||out - ref|| / ||ref||: bf16 operands <= 1e-2 (lse within 2e-2 absolute); tf32 <= 2e-3 (lse 4e-3).
if (BACKEND === 'cuda') describe('blockSparseAttention tensor-core forwards on cuda', () => {
  it.each([['bf16', 1e-2, 2e-2], ['tf32', 2e-3, 4e-3]] as ['bf16' | 'tf32', number, number][])('%s matches the fp32 reference on dense, causal, window, BigBird, per-head, keyBias, masked and ragged layouts', async (precision, tol, lseTol) => {
    expect(await useBackend('cuda')).toBe('cuda');
    const rng = new Rng(21);
    const s = (Lq: number, Lk: number) => ({ Lq, Lk, Bq: 64, Bk: 64 });
    const masked = fromPredicate(s(256, 256), [[0, 1, 2, 3].map((i) => new Set([0, i]))], (_h, i, j) => (i * 7 + j * 3) % 5 !== 0 && j <= i);
    const list: [string, BlockLayout, number, number, boolean][] = [
      ['dense', denseLayout(s(256, 256)), 2, 256, false],
      ['causal', causalLayout(s(320, 320)), 1, 320, false],
      ['window', slidingWindowLayout({ ...s(512, 512), causal: false }, 100), 1, 512, false],
      ['bigbird', bigBirdLayout(s(512, 512), { windowBlocks: 1, globalBlocks: 1, randomBlocks: 2, seed: 3 }), 2, 512, true],
      ['per-head', stackHeads([causalLayout(s(256, 256)), stridedLayout({ ...s(256, 256), causal: true }, 2)]), 1, 256, true],
      ['masked', masked, 1, 256, false],
      ['ragged', causalLayout(s(200, 200)), 2, 200, true],
      // rows of 32+ tiles: on sm_90 the default runs the 128-key-step kernel here (half-listed slots
      // and partial diagonal tiles in the causal one, key bias in the dense one)
      ['dense long', denseLayout(s(2048, 2048)), 1, 2048, true],
      ['causal long', causalLayout(s(4096, 4096)), 1, 4096, false],
    ];
    const lib = cudaLibrary()!;
    for (const [name, layout, B, L, bias] of list) {
      const H = 2;
      const q = rand(rng, [B, H, L, 64]) as tf.Tensor4D;
      const k = rand(rng, [B, H, L, 64]) as tf.Tensor4D;
      const v = rand(rng, [B, H, L, 64]) as tf.Tensor4D;
      const kb = bias ? (rand(rng, [B, 1, L]) as tf.Tensor3D) : undefined;
      const ref = referenceAttention(q, k, v, layout, 0.125, kb);
      const got = blockSparseAttention(q, k, v, layout, { scale: 0.125, keyBias: kb, precision });
      const r = ref.out.dataSync(), g = got.out.dataSync();
      const ran = lib.tr_bsa_last_fwd_kernel();
      if (precision === 'bf16' && ran !== 'mma.sync') expect(ran, name).toBe(name.endsWith('long') ? 'wgmma-ws3-k128' : 'wgmma-tma-k2v3-c4');
      let num = 0, den = 0;
      for (let i = 0; i < r.length; i++) (num += (g[i]! - r[i]!) ** 2), (den += r[i]! ** 2);
      expect(Math.sqrt(num / Math.max(den, 1e-30)), `${name} ${precision}`).toBeLessThanOrEqual(tol);
      const rl = ref.lse.dataSync(), gl = got.lse.dataSync();
      for (let i = 0; i < rl.length; i++) {
        if (!Number.isFinite(rl[i]!)) expect(gl[i]).toBe(rl[i]);
        else expect(Math.abs(gl[i]! - rl[i]!), `${name} ${precision} lse`).toBeLessThanOrEqual(lseTol);
      }
      expect(Array.from(g).some(Number.isNaN)).toBe(false);
      tf.dispose([q, k, v, ref.out, ref.lse, got.out, got.lse, ...(kb ? [kb] : [])]);
    }
  });

  // The tensor-core backward, each gradient's relative Frobenius error against the fp32 reference's:
  // tf32 <= 5e-3; bf16 (wgmma passes on H100/H200, tf32 ones elsewhere) <= 3e-2 (q/k/v, P and dS
  // rounded to bf16's 8 bits, and the saved output and lse carry the bf16 forward's error).
  it.each([['tf32', 5e-3], ['bf16', 3e-2]] as ['bf16' | 'tf32', number][])('%s: gradients from the tensor-core backward match the fp32 reference', async (precision, tol) => {
    expect(await useBackend('cuda')).toBe('cuda');
    const rng = new Rng(23);
    const s = (L: number) => ({ Lq: L, Lk: L, Bq: 64, Bk: 64 });
    const masked = fromPredicate(s(256), [[0, 1, 2, 3].map((i) => new Set([0, i]))], (_h, i, j) => (i * 7 + j * 3) % 5 !== 0 && j <= i);
    const list: [string, BlockLayout, number, boolean][] = [
      ['dense', denseLayout(s(256)), 256, false],
      ['window', slidingWindowLayout({ ...s(512), causal: false }, 100), 512, false],
      ['bigbird', bigBirdLayout(s(512), { windowBlocks: 1, globalBlocks: 1, randomBlocks: 2, seed: 3 }), 512, true],
      ['masked', masked, 256, false],
      ['ragged', causalLayout(s(200)), 200, true],
    ];
    for (const [name, layout, L, bias] of list) {
      const [q, k, v, w] = [0, 1, 2, 3].map(() => rand(rng, [2, 2, L, 64]) as tf.Tensor4D);
      const kb = bias ? (rand(rng, [2, 1, L]) as tf.Tensor3D) : undefined;
      const args = kb ? [q!, k!, v!, kb] : [q!, k!, v!];
      const grads = (f: (xs: tf.Tensor[]) => tf.Tensor4D) => tf.grads((...xs: tf.Tensor[]) => tf.sum(tf.mul(f(xs), w!)))(args);
      const ref = grads((xs) => referenceAttention(xs[0] as tf.Tensor4D, xs[1] as tf.Tensor4D, xs[2] as tf.Tensor4D, layout, 0.125, xs[3] as tf.Tensor3D | undefined).out);
      const got = grads((xs) => blockSparseAttention(xs[0] as tf.Tensor4D, xs[1] as tf.Tensor4D, xs[2] as tf.Tensor4D, layout, { scale: 0.125, keyBias: xs[3] as tf.Tensor3D | undefined, precision }).out);
      got.forEach((g, i) => {
        const r = ref[i]!.dataSync(), x = g.dataSync();
        let num = 0, den = 0;
        for (let j = 0; j < r.length; j++) (num += (x[j]! - r[j]!) ** 2), (den += r[j]! ** 2);
        expect(Math.sqrt(num / Math.max(den, 1e-30)), `${name} ${precision} ${['dq', 'dk', 'dv', 'dKeyBias'][i]}`).toBeLessThanOrEqual(tol);
        expect(Array.from(x).some(Number.isNaN)).toBe(false);
      });
      tf.dispose([...args, w!, ...ref, ...got]);
    }
  });

  it('bf16Inputs (q/k/v packed once by packBf16) gives the bits of the per-call conversion; forward only', async () => {
    expect(await useBackend('cuda')).toBe('cuda');
    const rng = new Rng(22);
    const layout = bigBirdLayout({ Lq: 384, Lk: 384, Bq: 64, Bk: 64 }, { windowBlocks: 1, globalBlocks: 1, randomBlocks: 1, seed: 5 });
    const [q, k, v] = [0, 1, 2].map(() => rand(rng, [2, 2, 384, 64]) as tf.Tensor4D);
    const kb = rand(rng, [2, 1, 384]) as tf.Tensor3D;
    const packed = [q!, k!, v!].map((t) => packBf16(t));
    expect(packed[0]!.shape).toEqual([2, 2, 384, 32]);
    const a = blockSparseAttention(q!, k!, v!, layout, { keyBias: kb, precision: 'bf16' });
    const b = blockSparseAttention(packed[0]!, packed[1]!, packed[2]!, layout, { keyBias: kb, precision: 'bf16', bf16Inputs: true });
    expect(b.out.shape).toEqual([2, 2, 384, 64]);
    expect(Array.from(b.out.dataSync())).toEqual(Array.from(a.out.dataSync()));
    expect(Array.from(b.lse.dataSync())).toEqual(Array.from(a.lse.dataSync()));
    expect(() => blockSparseAttention(packed[0]!, packed[1]!, packed[2]!, layout, { bf16Inputs: true })).toThrow(/precision/);
    expect(() => tf.grad((x: tf.Tensor) => tf.sum(blockSparseAttention(x as tf.Tensor4D, packed[1]!, packed[2]!, layout, { precision: 'bf16', bf16Inputs: true }).out))(packed[0]!)).toThrow(/forward-only/);
    tf.dispose([q!, k!, v!, kb, ...packed, a.out, a.lse, b.out, b.lse]);
  });
});

if (BACKEND !== 'cuda') describe('bf16 inputs off the GPU', () => {
  it('packBf16 and bf16Inputs fail with errors naming the cuda backend', async () => {
    await useBackend(BACKEND);
    const x = tf.ones([1, 1, 64, 64]) as tf.Tensor4D;
    const layout = denseLayout({ Lq: 64, Lk: 64, Bq: 64, Bk: 64 });
    expect(() => packBf16(x)).toThrow(/packBf16.*cuda/);
    expect(() => packBf16(tf.ones([1, 1, 64, 63]) as tf.Tensor4D)).toThrow(/packBf16.x.*even/);
    expect(() => blockSparseAttention(x, x, x, layout, { precision: 'bf16', bf16Inputs: true })).toThrow(/bf16Inputs.*cuda/);
    x.dispose();
  });
});
