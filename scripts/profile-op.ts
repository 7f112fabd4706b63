/**
 * `npx tsx scripts/profile-op.ts [backend] [layout] [L] [precision|default]`: the shared operator's forward
 * and forward+backward at the kernels-gpu shapes (B*L = 16384 tokens, H = 16, D = 64, block 64):
 * wall time per call and tf.profile's per-kernel totals (each kernel synchronised), to find where a
 * pass's time goes outside the attention kernels.
 */
import * as tf from '@tensorflow/tfjs-core';
import { cudaLibrary, useBackend, fallbackCounts, resetFallbackCounts } from '../kernels/backend.js';
import { blockSparseAttention } from '../kernels/block-sparse.js';
import { bigBirdLayout, denseLayout, slidingWindowLayout } from '../kernels/layout.js';
import { formatKernelTotals, kernelTotals } from '../kernels/profile.js';
import { ParamError } from '../core/params.js';
import { PRECISIONS, type Precision } from '../kernels/precision.js';

const [backend = 'native', name = 'window', Ls = '4096', precision = 'default'] = process.argv.slice(2);
const L = Number(Ls), B = Math.max(1, 16384 / L), H = 16, D = 64;
const s = { Lq: L, Lk: L, Bq: 64, Bk: 64 };
const layouts = { dense: () => denseLayout(s), window: () => slidingWindowLayout({ ...s, causal: false }, 256), bigbird: () => bigBirdLayout(s, { windowBlocks: 4, globalBlocks: 2, randomBlocks: 2, seed: 0 }) };
if (!(name in layouts)) throw new ParamError('profile-op.layout', `must be one of ${Object.keys(layouts).join(', ')}, got ${name}`);
if (![...PRECISIONS, 'default'].includes(precision)) throw new ParamError('profile-op.precision', `must be default, ${PRECISIONS.join(', ')}, got ${precision}`);
await useBackend(backend);
const layout = layouts[name as keyof typeof layouts]();
const [q, k, v, w] = [0, 1, 2, 3].map(() => tf.randomNormal([B, H, L, D])) as tf.Tensor4D[];
const opts = { precision: precision === 'default' ? undefined : (precision as Precision) };
const grad = tf.grads((a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) => tf.sum(tf.mul(blockSparseAttention(a as tf.Tensor4D, b as tf.Tensor4D, c as tf.Tensor4D, layout, opts).out, w!)));
const passes = {
  forward: () => blockSparseAttention(q!, k!, v!, layout, opts).out.dataSync(),
  'forward+backward': () => tf.tidy(() => grad([q!, k!, v!]))[0]!.dataSync(),
};
// GPU time from CUDA events (cuda only) against the host's enqueue time: which side bounds a pass.
const timer = cudaLibrary();
if (timer) {
  const enqueue: Record<string, () => void> = {
    forward: () => tf.dispose(blockSparseAttention(q!, k!, v!, layout, opts).out),
    'forward+backward': () => tf.dispose(grad([q!, k!, v!])),
    'mul (same shape)': () => tf.dispose(tf.mul(q!, w!)),
    'sum (all)': () => tf.dispose(tf.sum(q!)),
  };
  for (const [what, f] of Object.entries(enqueue)) {
    f();
    timer.tr_sync();
    timer.tr_timer_start();
    const t = performance.now();
    f();
    const host = performance.now() - t;
    const gpu = timer.tr_timer_stop();
    console.log(`${what}: ${gpu.toFixed(3)} ms GPU (events), ${host.toFixed(3)} ms to enqueue`);
  }
}
for (const [pass, f] of Object.entries(passes)) {
  f();
  const t = performance.now();
  for (let i = 0; i < 3; i++) tf.tidy(() => void f());
  const wall = (performance.now() - t) / 3;
  resetFallbackCounts();
  const info = await tf.profile(() => void f());
  console.log(`${name} L${L} ${precision} ${pass}: ${wall.toFixed(2)} ms wall per call (host read of one output included); ${info.kernels.length} kernels; fallbacks ${JSON.stringify(fallbackCounts())}`);
  console.log(formatKernelTotals(kernelTotals(info), 12));
}
