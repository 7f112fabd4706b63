/**
 * Combiner-Fixed through the shared operator. Bounds: 2e-4 absolute + 2e-4 relative (float32).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { useBackend } from '../kernels/backend.js';
import { combinerAttention } from '../models/combiner.js';
import { blockSparseAttention, referenceAttention } from '../kernels/block-sparse.js';
import { axialColumnLayout, causalLayout, combinerAxialLayout, combinerFixedLayout, denseLayout, rowBlocks, tokenMask } from '../kernels/layout.js';
import { Rng } from '../core/rng.js';
import { BACKEND } from './under-test.js';
import { buildModel } from '../models/registry.js';

function rand(rng: Rng, shape: number[]): tf.Tensor4D {
  return tf.tensor4d(Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.normal()), shape as [number, number, number, number]);
}

function maxDiff(a: tf.Tensor, b: tf.Tensor): number {
  const x = a.dataSync(), y = b.dataSync();
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i]! - y[i]!) / (2e-4 + 2e-4 * Math.abs(y[i]!)));
  return m;
}

for (const backend of [BACKEND, 'cpu']) {
  describe(`Combiner-Fixed on ${backend}`, () => {
    beforeAll(async () => {
      expect(await useBackend(backend)).toBe(backend);
    });
    const rng = new Rng(3);

    it('the layout: own segment (causal) + summaries of strictly earlier segments', () => {
      const l = combinerFixedLayout(16, 4, true);
      expect(l.Lk).toBe(20);
      expect([0, 1, 2, 3].map((i) => rowBlocks(l, 0, i))).toEqual([[0], [1, 4], [2, 4], [3, 4]]);
      const m = tokenMask(l);
      // Query 9 (segment 2): keys 8, 9 directly; summaries of segments 0 and 1 (keys 16, 17).
      expect([...m.subarray(9 * 20, 10 * 20)].flatMap((x, j) => (x ? [j] : []))).toEqual([8, 9, 16, 17]);
    });

    it('the axial layouts: the row directly + the row\'s column summaries; columns over earlier rows', () => {
      const col = axialColumnLayout(4, 4, true); // column-major: query (c, r) -> keys (c, r' < r)
      const m = tokenMask(col);
      expect([...m.subarray(6 * 16, 7 * 16)].flatMap((x, j) => (x ? [j] : []))).toEqual([4, 5]);
      const main = combinerAxialLayout(16, 4, true);
      const mm = tokenMask(main);
      expect([...mm.subarray(9 * 32, 10 * 32)].flatMap((x, j) => (x ? [j] : []))).toEqual([8, 9, 24, 25, 26, 27]);
      expect([...mm.subarray(2 * 32, 3 * 32)].flatMap((x, j) => (x ? [j] : []))).toEqual([0, 1, 2]); // row 0: no summaries
    });

    for (const variant of ['fixed', 'axial'] as const) {
      it(`${variant}: with the span = the whole sequence it equals dense attention (causal and bidirectional)`, () => {
        const [q, k, v] = [rand(rng, [2, 2, 16, 8]), rand(rng, [2, 2, 16, 8]), rand(rng, [2, 2, 16, 8])];
        const s = 1 / Math.sqrt(8);
        const c = combinerAttention(q, k, v, { variant, segLen: 16, causal: true });
        expect(maxDiff(c, referenceAttention(q, k, v, causalLayout({ Lq: 16, Lk: 16, Bq: 16, Bk: 16 }), s).out)).toBeLessThanOrEqual(1);
        const b = combinerAttention(q, k, v, { variant, segLen: 16, causal: false });
        expect(maxDiff(b, referenceAttention(q, k, v, denseLayout({ Lq: 16, Lk: 16, Bq: 16, Bk: 16 }), s).out)).toBeLessThanOrEqual(1);
      });

      it(`${variant}: the causal variant never looks ahead (perturbing token t changes no output before t)`, () => {
        causalityCheck(variant);
      });
    }

    function causalityCheck(variant: 'fixed' | 'axial') {
      const [q, k, v] = [rand(rng, [1, 2, 64, 8]), rand(rng, [1, 2, 64, 8]), rand(rng, [1, 2, 64, 8])];
      const base = combinerAttention(q, k, v, { variant, segLen: 8, causal: true }).arraySync() as number[][][][];
      for (const t of [5, 8, 30, 63]) {
        const bump = tf.tidy(() => {
          const mask = tf.tensor4d(Float32Array.from({ length: 64 * 8 * 2 }, (_, i) => (Math.floor(i / 8) % 64 === t ? 10 : 0)), [1, 2, 64, 8]);
          return [tf.add(q, mask), tf.add(k, mask), tf.add(v, mask)] as tf.Tensor4D[];
        });
        const out = combinerAttention(bump[0]!, bump[1]!, bump[2]!, { variant, segLen: 8, causal: true }).arraySync() as number[][][][];
        for (let h = 0; h < 2; h++) for (let i = 0; i < t; i++) for (let d = 0; d < 8; d++) expect(out[0]![h]![i]![d]).toBeCloseTo(base[0]![h]![i]![d]!, 5);
        // ...and does change outputs from t on.
        expect(Math.abs(out[0]![0]![t]![0]! - base[0]![0]![t]![0]!)).toBeGreaterThan(0);
      }
    }

    it('masked layouts: the operator (values and gradients) matches the reference', () => {
      const l = combinerFixedLayout(32, 8, true);
      const [q, k, v] = [rand(rng, [1, 2, 32, 4]), rand(rng, [1, 2, 36, 4]), rand(rng, [1, 2, 36, 4])];
      expect(maxDiff(blockSparseAttention(q, k, v, l, { scale: 0.5 }).out, referenceAttention(q, k, v, l, 0.5).out)).toBeLessThanOrEqual(1);
      const f = (impl: 'auto' | 'reference') => tf.grads((a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) => tf.sum(tf.square(impl === 'reference'
        ? referenceAttention(a as tf.Tensor4D, b as tf.Tensor4D, c as tf.Tensor4D, l, 0.5).out
        : blockSparseAttention(a as tf.Tensor4D, b as tf.Tensor4D, c as tf.Tensor4D, l, { scale: 0.5 }).out)))([q, k, v]);
      const [g1, g2] = [f('auto'), f('reference')];
      g1.forEach((g, i) => expect(maxDiff(g, g2[i]!) / 5).toBeLessThanOrEqual(1)); // gradients: 1e-3 + 1e-3 rel
    });

    it('the combiner models run forward', () => {
      for (const name of ['combiner-fixed', 'combiner-axial']) {
      const m = buildModel(name, { dModel: 16, nLayers: 1, nHeads: 2, combiner: { segLen: 4 } }, { vocabSize: 32, maxLen: 16, seed: 0 });
      const h = m.hidden(tf.tensor2d(Int32Array.from({ length: 32 }, (_, i) => i % 32), [2, 16], 'int32'));
      expect(h.shape).toEqual([2, 16, 16]);
      expect(Array.from(h.dataSync()).some(Number.isNaN)).toBe(false);
      m.dispose();
      }
    });
  });
}
