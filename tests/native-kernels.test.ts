/**
 * Every native kernel against tfjs-cpu on random inputs. Error bounds: float32 results agree within
 * 1e-4 relative + 1e-5 absolute (different summation orders, FTZ, fast exp/tanh with rel. error < 1e-6);
 * integer and boolean results agree exactly.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { useBackend, fallbackCounts, resetFallbackCounts } from '../kernels/backend.js';
import { Rng } from '../core/rng.js';
import { gelu, layerNorm } from '../kernels/fused.js';
import { repeatParam } from '../kernels/ops.js';
import { BACKEND } from './under-test.js';

const RTOL = 1e-4;
const ATOL = 1e-5;

function randTensor(rng: Rng, shape: number[], dtype: 'float32' | 'int32' | 'bool' = 'float32', positive = false): tf.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  if (dtype === 'int32') return tf.tensor(Int32Array.from({ length: n }, () => rng.int(-5, 6)), shape, 'int32');
  if (dtype === 'bool') return tf.tensor(Uint8Array.from({ length: n }, () => rng.int(0, 2)), shape, 'bool');
  return tf.tensor(Float32Array.from({ length: n }, () => (positive ? 0.1 + 2 * rng.float() : rng.normal())), shape);
}

/** Run f on cpu and on native with the same inputs; compare outputs. */
async function same(f: (...xs: tf.Tensor[]) => tf.Tensor | tf.Tensor[], inputs: () => tf.Tensor[]): Promise<void> {
  await tf.setBackend('cpu');
  const xsCpu = inputs();
  const outCpu = [f(...xsCpu)].flat();
  const want = outCpu.map((t) => ({ shape: t.shape, dtype: t.dtype, data: Array.from(t.dataSync()) }));
  await tf.setBackend(BACKEND);
  const xsNat = xsCpu.map((t) => tf.tensor(want.length ? t.dataSync() : t.dataSync(), t.shape, t.dtype));
  const outNat = [f(...xsNat)].flat();
  expect(outNat.length).toBe(want.length);
  outNat.forEach((t, i) => {
    expect(t.shape).toEqual(want[i]!.shape);
    expect(t.dtype).toBe(want[i]!.dtype);
    const got = Array.from(t.dataSync());
    const w = want[i]!.data;
    for (let j = 0; j < w.length; j++) {
      if (Number.isNaN(w[j])) expect(Number.isNaN(got[j])).toBe(true);
      else expect(Math.abs(got[j]! - w[j]!)).toBeLessThanOrEqual(ATOL + RTOL * Math.abs(w[j]!));
    }
  });
}

beforeAll(async () => {
  expect(await useBackend(BACKEND)).toBe(BACKEND);
});

describe(`${BACKEND} kernels match tfjs-cpu`, () => {
  const rng = new Rng(42);
  const unaryOps: [string, (x: tf.Tensor) => tf.Tensor, boolean][] = [
    ['neg', tf.neg, false], ['exp', tf.exp, false], ['log', tf.log, true], ['sqrt', tf.sqrt, true], ['rsqrt', tf.rsqrt, true],
    ['square', tf.square, false], ['tanh', tf.tanh, false], ['sigmoid', tf.sigmoid, false], ['relu', tf.relu, false],
    ['abs', tf.abs, false], ['sin', tf.sin, false], ['cos', tf.cos, false], ['erf', tf.erf, false], ['floor', tf.floor, false],
    ['ceil', tf.ceil, false], ['sign', tf.sign, false], ['reciprocal', tf.reciprocal, true], ['log1p', tf.log1p, true],
    ['step', (x) => tf.step(x, 0.5), false], ['elu', tf.elu, false], ['softplus', tf.softplus, false], ['relu6', tf.relu6, false],
  ];
  for (const [name, f, positive] of unaryOps) {
    it(`unary ${name} (shapes 0, 1, 7x13, 3x5x33)`, async () => {
      for (const shape of [[0], [1], [7, 13], [3, 5, 33]]) await same(f, () => [randTensor(rng, shape, 'float32', positive)]);
    });
  }
  it('unary ops on int32 keep int32 where tfjs does', async () => {
    for (const f of [tf.neg, tf.abs, tf.square]) await same(f, () => [randTensor(rng, [4, 9], 'int32')]);
  });

  const binaryOps: [string, (a: tf.Tensor, b: tf.Tensor) => tf.Tensor][] = [
    ['add', tf.add], ['sub', tf.sub], ['mul', tf.mul], ['div', tf.div], ['maximum', tf.maximum], ['minimum', tf.minimum],
    ['squaredDifference', tf.squaredDifference], ['equal', tf.equal], ['notEqual', tf.notEqual], ['greater', tf.greater],
    ['greaterEqual', tf.greaterEqual], ['less', tf.less], ['lessEqual', tf.lessEqual],
  ];
  const shapes: [number[], number[]][] = [
    [[5, 7], [5, 7]], [[5, 7], [7]], [[5, 1], [1, 7]], [[2, 3, 4, 5], [3, 1, 5]], [[1], [6, 4]], [[0, 3], [3]], [[4, 3, 64], [64]],
  ];
  for (const [name, f] of binaryOps) {
    it(`binary ${name} with broadcasting`, async () => {
      for (const [sa, sb] of shapes) await same(f, () => [randTensor(rng, sa), randTensor(rng, sb)]);
      await same(f, () => [randTensor(rng, [3, 4], 'int32'), randTensor(rng, [4], 'int32')]);
    });
  }
  it('pow with positive bases, and logical ops on bool', async () => {
    await same(tf.pow, () => [randTensor(rng, [6, 5], 'float32', true), randTensor(rng, [5])]);
    await same(tf.logicalAnd, () => [randTensor(rng, [6, 5], 'bool'), randTensor(rng, [5], 'bool')]);
    await same(tf.logicalOr, () => [randTensor(rng, [6, 5], 'bool'), randTensor(rng, [6, 5], 'bool')]);
    await same(tf.logicalNot, () => [randTensor(rng, [6, 5], 'bool')]);
  });

  it('reductions over every axis combination, keepDims, dtypes', async () => {
    const x = () => [randTensor(rng, [3, 4, 5])];
    for (const axis of [0, 1, 2, -1, [0, 1], [1, 2], [0, 2], [0, 1, 2]] as (number | number[])[]) {
      for (const keep of [false, true]) {
        await same((t) => tf.sum(t, axis, keep), x);
        await same((t) => tf.mean(t, axis, keep), x);
        await same((t) => tf.max(t, axis, keep), x);
        await same((t) => tf.min(t, axis, keep), x);
        await same((t) => tf.prod(t, axis, keep), x);
      }
    }
    await same((t) => tf.sum(t, 1), () => [randTensor(rng, [3, 4], 'int32')]);
    await same((t) => tf.sum(t), () => [randTensor(rng, [3, 4], 'bool')]);
    await same((t) => tf.argMax(t, 1), x);
    await same((t) => tf.argMin(t, 0), x);
    await same((t) => tf.any(t, 1), () => [randTensor(rng, [3, 4], 'bool')]);
    await same((t) => tf.all(t, 0), () => [randTensor(rng, [3, 4], 'bool')]);
  });

  it('matmul: transposes, batches, broadcast batch, edge sizes', async () => {
    const cases: [number[], number[], boolean, boolean][] = [
      [[7, 5], [5, 3], false, false], [[5, 7], [5, 3], true, false], [[7, 5], [3, 5], false, true], [[5, 7], [3, 5], true, true],
      [[4, 7, 5], [4, 5, 3], false, false], [[2, 3, 64, 32], [2, 3, 64, 32], false, true], [[4, 7, 5], [5, 3], false, false],
      [[1, 1], [1, 1], false, false], [[130, 70], [70, 90], false, false],
    ];
    for (const [sa, sb, ta, tb] of cases) await same((a, b) => tf.matMul(a, b, ta, tb), () => [randTensor(rng, sa), randTensor(rng, sb)]);
  });

  it('transpose, slice, stridedSlice, concat, stack, unstack, tile, pad, reshape, cast', async () => {
    const x = () => [randTensor(rng, [2, 3, 4, 5])];
    for (const perm of [[0, 1, 2, 3], [3, 2, 1, 0], [0, 2, 1, 3], [2, 0, 3, 1]]) await same((t) => tf.transpose(t, perm), x);
    await same((t) => tf.transpose(t, [1, 0]), () => [randTensor(rng, [3, 4], 'bool')]);
    await same((t) => tf.slice(t, [1, 0, 1, 2], [1, 2, 3, -1]), x);
    await same((t) => tf.stridedSlice(t, [0, 0, 0, 0], [2, 3, 4, 5], [1, 2, 1, 2]), x);
    await same((t) => tf.stridedSlice(t, [1, 2, 3, 4], [0, 0, 0, 0], [-1, -1, -1, -2]), x);
    await same((a, b) => tf.concat([a, b], 1), () => [randTensor(rng, [2, 3, 4]), randTensor(rng, [2, 5, 4])]);
    await same((a, b) => tf.concat([a, b], -1), () => [randTensor(rng, [2, 3]), randTensor(rng, [2, 0])]);
    await same((a, b) => tf.stack([a, b], 1), () => [randTensor(rng, [2, 3]), randTensor(rng, [2, 3])]);
    await same((t) => tf.unstack(t, 2), x);
    await same((t) => tf.split(t, [1, 3, 1], 3), x);
    await same((t) => tf.split(t, 3, 1), x);
    await same((t) => tf.tile(t, [2, 1, 3]), () => [randTensor(rng, [2, 3, 1])]);
    await same((t) => tf.pad(t, [[1, 0], [2, 3]], 0.5), () => [randTensor(rng, [2, 3])]);
    await same((t) => tf.reshape(t, [6, -1]), x);
    await same((t) => tf.expandDims(t, 1), x);
    await same((t) => tf.expandDims(t, -1), x);
    await same(() => tf.range(0, 7, 1), () => []);
    await same(() => tf.range(3, -4, -2), () => []);
    await same(() => tf.range(0, 5, 1, 'int32'), () => []);
    await same(() => tf.range(2, 2), () => []);
    await same((t) => tf.cast(t, 'int32'), () => [randTensor(rng, [3, 4])]);
    await same((t) => tf.cast(t, 'bool'), () => [randTensor(rng, [3, 4], 'int32')]);
    await same((t) => tf.cast(t, 'float32'), () => [randTensor(rng, [3, 4], 'bool')]);
  });

  it('gather, unsortedSegmentSum, oneHot, where, softmax, cumsum, fill, zerosLike/onesLike', async () => {
    const idx = () => tf.tensor(Int32Array.from({ length: 12 }, () => rng.int(0, 6)), [3, 4], 'int32');
    await same((t, i) => tf.gather(t, i), () => [randTensor(rng, [6, 5]), idx()]);
    await same((t, i) => tf.gather(t, i, 1), () => [randTensor(rng, [2, 6, 5]), idx()]);
    await same((t, i) => tf.gather(t, i, 1, 1), () => [randTensor(rng, [3, 6, 5]), idx()]);
    await same((t, i) => tf.unsortedSegmentSum(t, i as tf.Tensor1D, 6), () => [randTensor(rng, [12, 5]), tf.reshape(idx(), [12])]);
    await same((i) => tf.oneHot(i, 7), () => [idx()]);
    await same((i) => tf.oneHot(i, 7, 2, -1, 'float32'), () => [idx()]);
    await same((c, a, b) => tf.where(c, a, b), () => [randTensor(rng, [4, 5], 'bool'), randTensor(rng, [4, 5]), randTensor(rng, [4, 5])]);
    await same((t) => tf.softmax(t), () => [randTensor(rng, [3, 4, 17])]);
    await same((t) => tf.cumsum(t, 1), () => [randTensor(rng, [3, 6, 2])]);
    await same((t) => tf.cumsum(t, 0, true, true), () => [randTensor(rng, [5, 3])]);
    await same(() => tf.fill([2, 3], 1.5), () => []);
    await same((t) => tf.zerosLike(t), () => [randTensor(rng, [3, 2], 'int32')]);
    await same((t) => tf.onesLike(t), () => [randTensor(rng, [3, 2])]);
    await same((t) => tf.addN([t, t, t]), () => [randTensor(rng, [3, 2])]);
  });
});

describe('fused ops', () => {
  const rng = new Rng(7);
  it('layerNorm and GELU: values and gradients equal the autodiff of the unfused reference', async () => {
    for (const shape of [[4, 8], [2, 3, 64], [1, 1]]) {
      const d = shape[shape.length - 1]!;
      const inputs = () => [randTensor(rng, shape), randTensor(rng, [d]), randTensor(rng, [d])];
      // cpu runs the composite (no fused kernel there); native runs the fused kernels.
      await same((x, g, b) => layerNorm(x, g as tf.Tensor1D, b as tf.Tensor1D), inputs);
      await same((x, g, b) => tf.grads((x, g, b) => tf.sum(tf.mul(layerNorm(x!, g as tf.Tensor1D, b as tf.Tensor1D), tf.range(0, tf.util.sizeFromShape(shape)).reshape(shape))))([x, g, b]), inputs);
      await same((x) => gelu(x), () => [randTensor(rng, shape)]);
      await same((x) => tf.grad((x) => tf.sum(tf.mul(gelu(x), x)))(x), () => [randTensor(rng, shape)]);
    }
  });
  it('repeatParam: values and gradient equal broadcastTo autodiff on tfjs-cpu (gradient: one sum, not a slice per repetition)', async () => {
    const w = randTensor(rng, [5, 3, 4]);
    // cpu: tf.broadcastTo (Tile's gradient); BACKEND: repeatParam.
    const ref = (useRepeat: boolean) => (p: tf.Tensor) => (useRepeat ? repeatParam(p, [5]) : tf.broadcastTo(p, [5, 3, 4]));
    for (const useRepeat of [false, true]) {
      await tf.setBackend('cpu');
      const p = tf.tensor(Float32Array.from({ length: 12 }, () => rng.normal()), [3, 4]);
      const want = [ref(false)(p), tf.grad((p) => tf.sum(tf.mul(ref(false)(p), w)))(p)].map((t) => Array.from(t.dataSync()));
      await tf.setBackend(BACKEND);
      const pb = tf.tensor(p.dataSync(), [3, 4]);
      const wb = tf.tensor(w.dataSync(), w.shape);
      const got = [ref(useRepeat)(pb), tf.grad((p) => tf.sum(tf.mul(ref(useRepeat)(p), wb)))(pb)].map((t) => Array.from(t.dataSync()));
      got.forEach((g, i) => g.forEach((v, j) => expect(Math.abs(v - want[i]![j]!)).toBeLessThanOrEqual(ATOL + RTOL * Math.abs(want[i]![j]!))));
    }
  });
});

describe('fallback accounting', () => {
  it('counts kernels that run through tfjs-cpu', async () => {
    await tf.setBackend(BACKEND);
    resetFallbackCounts();
    tf.tidy(() => tf.mirrorPad(tf.ones([2, 2]), [[1, 1], [1, 1]], 'reflect').dataSync());
    expect(fallbackCounts()).toEqual({ MirrorPad: 1 });
  });
});

// kernels/gradients.ts replaces tfjs's Sum and Mean gradients (ones from the Fill kernel, not a host
// array). d/dx sum(reduce(x) * w) is w broadcast over the reduced axes (sum), or that over n (mean):
// exact in float32 for sum; mean within 1 ulp-scale of w / n.
describe(`Sum and Mean gradients on ${BACKEND}`, () => {
  beforeAll(async () => {
    await useBackend(BACKEND);
  });
  it('equal the broadcast upstream gradient (sum) and its 1/n share (mean), over all, one and several axes', () => {
    const rng = new Rng(31);
    for (const axis of [undefined, 1, [0, 2], -1]) {
      const x = randTensor(rng, [3, 4, 5]);
      const axes = axis === undefined ? [0, 1, 2] : [axis].flat().map((a) => (a + 3) % 3);
      const keep = x.shape.map((d, i) => (axes.includes(i) ? 1 : d));
      const n = axes.reduce((p, a) => p * x.shape[a]!, 1);
      const w = randTensor(rng, keep);
      const want = Array.from(tf.broadcastTo(w, x.shape).dataSync());
      const gs = Array.from(tf.grad((a: tf.Tensor) => tf.sum(tf.mul(tf.sum(a, axis, true), w)))(x).dataSync());
      const gm = Array.from(tf.grad((a: tf.Tensor) => tf.sum(tf.mul(tf.mean(a, axis, true), w)))(x).dataSync());
      expect(gs).toEqual(want);
      gm.forEach((g, i) => expect(Math.abs(g - want[i]! / n)).toBeLessThanOrEqual(1e-7 * Math.abs(want[i]!)));
    }
  });
});
