/** The operator's precision plan (kernels/precision.ts): defaults, the bf16 backward, and errors instead of quiet fallbacks. */
import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { planPrecision, type TensorCoreCaps } from '../kernels/precision.js';
import { useBackend } from '../kernels/backend.js';
import { blockSparseAttention } from '../kernels/block-sparse.js';
import { denseLayout } from '../kernels/layout.js';
import { BACKEND } from './under-test.js';

const caps = (o: Partial<TensorCoreCaps> = {}): TensorCoreCaps => ({ shape: true, tf32ByDefault: true, bf16Backward: true, ...o });
const req = (requested: 'fp32' | 'tf32' | 'bf16' | undefined, c: TensorCoreCaps | undefined) => planPrecision({ requested, caps: c, where: 'x.precision', shape: 'D64', backend: 'native' });

describe('planPrecision', () => {
  it('defaults to tf32 where it runs and TF32 is on, else fp32', () => {
    expect(req(undefined, caps())).toEqual({ forward: 'tf32', backward: 'tf32' });
    expect(req(undefined, caps({ tf32ByDefault: false }))).toEqual({ forward: 'fp32', backward: 'fp32' });
    expect(req(undefined, caps({ shape: false }))).toEqual({ forward: 'fp32', backward: 'fp32' });
    expect(req(undefined, undefined)).toEqual({ forward: 'fp32', backward: 'fp32' });
  });
  it('bf16 runs its backward on wgmma where it exists, tf32 elsewhere', () => {
    expect(req('bf16', caps())).toEqual({ forward: 'bf16', backward: 'bf16' });
    expect(req('bf16', caps({ bf16Backward: false }))).toEqual({ forward: 'bf16', backward: 'tf32' });
    expect(req('fp32', caps())).toEqual({ forward: 'fp32', backward: 'fp32' });
  });
  it('an explicit tf32 or bf16 that cannot run is an error naming the field', () => {
    expect(() => req('tf32', undefined)).toThrow(/x\.precision.*cuda/);
    expect(() => req('bf16', caps({ shape: false }))).toThrow(/x\.precision.*head dim 64.*D64/);
    expect(() => planPrecision({ requested: 'fp16' as never, caps: caps(), where: 'x.precision', shape: '', backend: '' })).toThrow(/x\.precision.*"fp32", "tf32", "bf16".*fp16/);
  });
});

if (BACKEND !== 'cuda') describe('precision off the GPU', () => {
  it('blockSparseAttention rejects tf32/bf16 on a CPU backend instead of computing fp32 quietly', async () => {
    await useBackend(BACKEND);
    const x = tf.ones([1, 1, 64, 64]) as tf.Tensor4D;
    const layout = denseLayout({ Lq: 64, Lk: 64, Bq: 64, Bk: 64 });
    expect(() => blockSparseAttention(x, x, x, layout, { precision: 'tf32' })).toThrow(/blockSparseAttention\.precision.*fp32 only/);
    expect(() => blockSparseAttention(x, x, x, layout, { precision: 'bf16', impl: 'generic' })).toThrow(/blockSparseAttention\.precision/);
    const ok = blockSparseAttention(x, x, x, layout, { precision: 'fp32' });
    expect(ok.out.shape).toEqual([1, 1, 64, 64]);
    tf.dispose([x, ok.out, ok.lse]);
  });
});
