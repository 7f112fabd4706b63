/**
 * The `kernels` suite: latency of the shared operator itself, forward, forward+backward and (fused) the backward alone, per
 * layout (dense, window, BigBird), sequence length, implementation (fused, generic) and backend,
 * plus a density sweep (random block layouts at one length). Effective GFLOP/s counts only allowed
 * blocks: 4*B*H*Lq*Lk*D*density per forward, 2.5x that for the backward alone and 3.5x for both
 * (FlashAttention's convention).
 */
import * as tf from '@tensorflow/tfjs-core';
import { Bench } from 'tinybench';
import { createHash } from 'node:crypto';
import { bigBirdLayout, fromBlockSets, combinerAxialLayout, combinerFixedLayout, combinerSegLen, denseLayout, density, randomLayout, slidingWindowLayout, unionLayout, type BlockLayout } from '../kernels/layout.js';
import { combinerAttention } from '../models/combiner.js';
import { blockSparseAttention, blockSparseAttentionBackward, FUSED_KERNEL, packBf16, type AttentionImpl } from '../kernels/block-sparse.js';
import { BACKEND_NAMES, cudaLibrary, hasKernel, useBackend } from '../kernels/backend.js';
import type { CudaLib } from '../kernels/native/lib.js';
import { quantile } from './latency.js';
import { canonical } from '../core/canonical.js';
import { Rng } from '../core/rng.js';
import { SCHEMA_VERSION, type Fingerprint, type RunRecord } from '../reports/schema.js';
import { ParamError, checkFields, enumParam, intParam } from '../core/params.js';
import type { Job } from './orchestrator.js';

export interface KernelsConfig {
  backends: string[];
  B: number;
  H: number;
  D: number;
  block: number;
  lengths: number[];
  /** Longest L per backend (wasm is slow). */
  maxLength: Record<string, number>;
  window: number;
  bigbird: { windowBlocks: number; globalBlocks: number; randomBlocks: number };
  densitySweep: { length: number; randomBlocks: number[] };
  impls: ('fused' | 'generic')[];
  /** 'backward': the fused gradient kernel alone, from a forward computed outside the timing. */
  passes: KernelPass[];
  timeMs: number;
  minSamples: number;
  /** Skip the generic path above this estimate of its working set. */
  genericMaxBytes: number;
  /** Also measure Combiner-Fixed and Combiner-Axial (bidirectional, fused only) at each length. */
  combiner?: boolean;
  /** Tokens per call: B = batchTokens / L at each length (the anchor table's B*L = 16384); else B. */
  batchTokens?: number;
  /** Forward precisions of the fused kernel: 'fp32' exact; 'tf32', 'bf16' tensor cores (cuda only). Default ['fp32']. */
  precisions?: ('fp32' | 'tf32' | 'bf16')[];
}

export type KernelPass = 'forward' | 'forward+backward' | 'backward';
const PASSES: KernelPass[] = ['forward', 'forward+backward', 'backward'];
/** FLOPs of a pass in units of the forward's. */
const PASS_FLOPS: Record<KernelPass, number> = { forward: 1, 'forward+backward': 3.5, backward: 2.5 };

export interface KernelCase {
  backend: string;
  impl: 'fused' | 'generic';
  precision: 'fp32' | 'tf32' | 'bf16';
  pass: KernelPass;
  layoutName: string;
  layoutParams: Record<string, unknown>;
  L: number;
  layout: BlockLayout;
}

function layoutsAt(c: KernelsConfig, L: number): { name: string; params: Record<string, unknown>; layout: BlockLayout }[] {
  const s = { Lq: L, Lk: L, Bq: c.block, Bk: c.block };
  return [
    { name: 'dense', params: {}, layout: denseLayout(s) },
    { name: 'window', params: { window: c.window }, layout: slidingWindowLayout(s, c.window) },
    { name: 'bigbird', params: { ...c.bigbird }, layout: bigBirdLayout(s, { ...c.bigbird, seed: 0 }) },
    // Combiner: two operator calls (summaries, then tokens ++ summaries); `layout` is the main call's.
    ...(c.combiner ? (['fixed', 'axial'] as const).map((v) => ({
      name: `combiner-${v}`,
      params: { segLen: combinerSegLen(L) },
      layout: v === 'fixed' ? combinerFixedLayout(L, combinerSegLen(L), false) : combinerAxialLayout(L, combinerSegLen(L), false),
    })) : []),
  ];
}

function sweepLayouts(c: KernelsConfig): { name: string; params: Record<string, unknown>; layout: BlockLayout }[] {
  const L = c.densitySweep.length;
  const s = { Lq: L, Lk: L, Bq: c.block, Bk: c.block };
  // Each query block's own diagonal block, so no row is empty, plus r random blocks.
  const own = fromBlockSets(s, [Array.from({ length: Math.ceil(L / c.block) }, (_, i) => new Set([i]))]);
  return c.densitySweep.randomBlocks.map((r) => ({
    name: 'random',
    params: { randomBlocks: r },
    layout: unionLayout(randomLayout(s, r, 0), own),
  }));
}

/** Working set of the generic path (gathered K/V + scores), to skip what would not fit. */
function genericBytes(c: KernelsConfig, l: BlockLayout, pass: string): number {
  const nQ = Math.ceil(l.Lq / l.Bq);
  let maxNnz = 1;
  for (let i = 0; i < nQ; i++) maxNnz = Math.max(maxNnz, l.rowPtr[i + 1]! - l.rowPtr[i]!);
  const M = maxNnz * l.Bk;
  const bytes = 4 * batchOf(c, l.Lq) * c.H * nQ * (l.Bq * M * 2 + M * c.D * 2);
  return pass === 'forward' ? bytes : bytes * 3;
}

/** All cases; `fusedOn` lists the backends that have a fused kernel (others run generic only). */
export function kernelCases(c: KernelsConfig, backends: string[], fusedOn: Set<string> = new Set(backends)): KernelCase[] {
  for (const p of c.passes) if (!PASSES.includes(p)) throw new ParamError('kernels.passes', `each must be one of ${PASSES.join(', ')}; got ${JSON.stringify(p)}`);
  const cases: KernelCase[] = [];
  for (const backend of backends) {
    const maxL = c.maxLength[backend] ?? Infinity;
    const lists = [
      ...c.lengths.filter((L) => L <= maxL).flatMap((L) => layoutsAt(c, L).map((x) => ({ ...x, L }))),
      ...(c.densitySweep.length <= maxL ? sweepLayouts(c).map((x) => ({ ...x, L: c.densitySweep.length })) : []),
    ];
    for (const x of lists) {
      for (const impl of c.impls) {
        for (const pass of c.passes) {
          if (impl === 'generic' && genericBytes(c, x.layout, pass) > c.genericMaxBytes) continue;
          if (impl === 'fused' && !fusedOn.has(backend)) continue;
          if (x.name.startsWith('combiner') && impl !== 'fused') continue;
          // the backward alone is the fused gradient kernel (Combiner composes several operator calls)
          if (pass === 'backward' && (impl !== 'fused' || x.name.startsWith('combiner'))) continue;
          for (const precision of c.precisions ?? ['fp32']) {
            // tf32/bf16 are fused-kernel paths on cuda, forward and backward (bf16's forward on packed
            // bf16 inputs; its backward passes on fp32 inputs converted per call, as training runs it).
            if (precision !== 'fp32' && (impl !== 'fused' || backend !== 'cuda' || x.name.startsWith('combiner'))) continue;
            cases.push({ backend, impl, precision, pass, layoutName: x.name, layoutParams: x.params, L: x.L, layout: x.layout });
          }
        }
      }
    }
  }
  return cases;
}

export function kernelCaseId(suite: string, c: KernelsConfig, k: KernelCase): string {
  // precision joins the id only when it is not fp32, so earlier fp32 records keep their ids.
  const cfg = { suite, B: batchOf(c, k.L), H: c.H, D: c.D, block: c.block, backend: k.backend, impl: k.impl, pass: k.pass, layout: k.layoutName, params: k.layoutParams, L: k.L, ...(k.precision !== 'fp32' ? { precision: k.precision } : {}) };
  return createHash('sha256').update(canonical(cfg)).digest('hex').slice(0, 16);
}

export function kernelCaseLabel(k: KernelCase): string {
  const p = Object.entries(k.layoutParams).map(([a, b]) => `${a}=${typeof b === 'object' ? JSON.stringify(b) : b}`).join(' ');
  return `attention ${k.pass} | ${k.layoutName}${p ? ` ${p}` : ''} L${k.L} | ${k.impl}${k.precision !== 'fp32' ? ` ${k.precision}` : ''} | ${k.backend}`;
}

export const batchOf = (c: KernelsConfig, L: number): number => (c.batchTokens ? Math.max(1, Math.floor(c.batchTokens / L)) : c.B);

/** Random inputs of the last shape measured, kept across cases (generating 4 x 16M normals takes seconds). */
let inputs: { key: string; q: tf.Tensor4D; k: tf.Tensor4D; v: tf.Tensor4D; w: tf.Tensor4D } | undefined;

function inputsFor(B: number, H: number, L: number, D: number, backend: string) {
  const key = `${backend}:${B}x${H}x${L}x${D}`;
  if (inputs?.key === key) return inputs;
  if (inputs) tf.dispose([inputs.q, inputs.k, inputs.v, inputs.w]);
  const rng = new Rng(7);
  const mk = () => tf.tensor4d(Float32Array.from({ length: B * H * L * D }, () => rng.normal()), [B, H, L, D]);
  inputs = { key, q: mk(), k: mk(), v: mk(), w: mk() };
  return inputs;
}

type DeviceTimer = Pick<CudaLib, 'tr_timer_start' | 'tr_timer_stop'>;

/**
 * Per-call GPU time from CUDA events around `reps` back-to-back calls (the host only enqueues, so
 * launch overhead overlaps the GPU work, as in a training loop). Each sample starts behind one
 * untimed call: without it the GPU sat idle from the start event until the host had enqueued the
 * first timed launch, and that host latency was counted (2-4% of a 3 ms forward timed once per
 * sample). Samples until timeMs has passed and at least minSamples were taken. Beside each sample,
 * the host's time to enqueue one call (the record's diagnostics.enqueueMsPerCall, next to the GPU
 * times in sample order, gpuMsPerCall): a sample whose enqueue time reaches its GPU time measured the
 * host, not the kernel.
 */
function deviceSamples(timer: DeviceTimer, call: () => void, timeMs: number, minSamples: number): { gpu: number[]; host: number[] } {
  call();
  timer.tr_timer_start();
  call();
  const first = timer.tr_timer_stop();
  const reps = Math.max(1, Math.min(50, Math.floor(5 / Math.max(first, 1e-3))));
  const gpu: number[] = [], host: number[] = [];
  const t0 = performance.now();
  while (gpu.length < minSamples || (performance.now() - t0 < timeMs && gpu.length < 200)) {
    call();
    timer.tr_timer_start();
    const h = performance.now();
    for (let r = 0; r < reps; r++) call();
    // the host's enqueue time per call: where it reaches the GPU time, the host bounds the sample
    host.push((performance.now() - h) / reps);
    gpu.push(timer.tr_timer_stop() / reps);
  }
  return { gpu, host };
}

/** Measure one case on the active backend. */
export async function measureKernelCase(suite: string, c: KernelsConfig, k: KernelCase, fp: Fingerprint): Promise<RunRecord> {
  if (tf.getBackend() !== k.backend) await useBackend(k.backend);
  if (k.impl === 'fused' && !hasKernel(FUSED_KERNEL)) throw new ParamError('kernels.impls', `backend ${k.backend} has no fused kernel`);
  const t0 = performance.now();
  const B = batchOf(c, k.L);
  const raw = inputsFor(B, c.H, k.L, c.D, k.backend);
  const { w } = raw;
  // bf16 forward as the anchors measure it: q/k/v already bf16 on the device (converted once, outside
  // the timing); packed inputs have no gradient, so forward+backward takes the fp32 ones.
  const bf16Inputs = k.precision === 'bf16' && k.pass === 'forward';
  const [q, kk, v] = bf16Inputs ? [raw.q, raw.k, raw.v].map((t) => packBf16(t)) : [raw.q, raw.k, raw.v];
  const impl: AttentionImpl = k.impl;
  const precision = k.precision;
  const combiner = k.layoutName.startsWith('combiner-')
    ? { variant: k.layoutName === 'combiner-fixed' ? ('fixed' as const) : ('axial' as const), segLen: Number(k.layoutParams.segLen), causal: false }
    : undefined;
  const attend = (a: tf.Tensor4D, b: tf.Tensor4D, cc: tf.Tensor4D) =>
    combiner ? combinerAttention(a, b, cc, combiner) : blockSparseAttention(a, b, cc, k.layout, { impl, precision, bf16Inputs }).out;
  const grad = tf.grads((a: tf.Tensor, b: tf.Tensor, cc: tf.Tensor) => tf.sum(tf.mul(attend(a as tf.Tensor4D, b as tf.Tensor4D, cc as tf.Tensor4D), w)));
  // the backward alone: from a forward computed once, outside the timing; w is the output gradient
  const fwd = k.pass === 'backward' ? blockSparseAttention(q, kk, v, k.layout, { impl, precision }) : undefined;
  const backward = () => {
    const g = blockSparseAttentionBackward(q, kk, v, fwd!, w as tf.Tensor4D, k.layout, { precision });
    return [g.dq, g.dk, g.dv, g.dKeyBias];
  };
  // one call of the pass; its results, to be read (CPU: the host waits on them) or disposed. Inside a
  // tidy: the operator's other results (the forward's lse, Combiner's intermediates) would otherwise
  // leak, one allocation per call (1 MB of lse per forward at the GPU shapes, for the whole suite).
  const pass: () => tf.Tensor[] = k.pass === 'forward' ? () => [attend(q, kk, v)] : k.pass === 'backward' ? backward : () => grad([q, kk, v]);
  const run = () => tf.tidy(pass);
  const call = () => {
    const r = run();
    r[0]!.dataSync();
    tf.dispose(r);
  };
  const cuda = k.backend === 'cuda' ? cudaLibrary() : undefined;
  let samples: number[];
  const diagnostics: Record<string, number[]> = {};
  if (cuda) {
    // No host read per call on the GPU: results are disposed unread and timed with CUDA events.
    const enqueue = () => tf.dispose(run());
    const d = deviceSamples(cuda, enqueue, c.timeMs, c.minSamples);
    diagnostics.gpuMsPerCall = [...d.gpu];  // in sample order: clock or power drift shows as a trend
    diagnostics.enqueueMsPerCall = d.host;
    samples = d.gpu.sort((a, b) => a - b);
  } else {
    const bench = new Bench({ time: c.timeMs, iterations: c.minSamples, warmup: true, warmupIterations: 2, warmupTime: 0, retainSamples: true });
    bench.add(kernelCaseLabel(k), call);
    await bench.run();
    samples = [...((bench.tasks[0]!.result as { latency?: { samples?: number[] } }).latency?.samples ?? [])].sort((a, b) => a - b);
  }
  // which bf16 forward ran (the cuda library picks one per layout)
  const variant = cuda && k.precision === 'bf16' && k.pass === 'forward' ? cuda.tr_bsa_last_fwd_kernel() || undefined : undefined;
  if (bf16Inputs) tf.dispose([q, kk, v]);
  if (fwd) tf.dispose([fwd.out, fwd.lse]);
  if (samples.length === 0) throw new Error(`kernels: no samples for ${kernelCaseLabel(k)}`);
  const median = quantile(samples, 0.5);
  const dens = density(k.layout);
  const flops = 4 * B * c.H * k.L * k.L * c.D * dens * PASS_FLOPS[k.pass];
  const now = new Date().toISOString();
  return {
    schemaVersion: SCHEMA_VERSION,
    runId: kernelCaseId(suite, c, k),
    suite,
    label: kernelCaseLabel(k),
    task: { name: 'attention-op', params: { B, H: c.H, L: k.L, D: c.D, block: c.block, ...(k.precision !== 'fp32' ? { precision: k.precision } : {}), ...(bf16Inputs ? { inputs: 'bf16' } : {}) } },
    model: { name: k.layoutName, size: `L${k.L}`, params: k.layoutParams, parameterCount: 0 },
    train: {}, optimizer: {}, latencyConfig: { timeMs: c.timeMs, minSamples: c.minSamples },
    seed: 0, backend: k.backend, fingerprint: fp, gitSha: fp.gitSha,
    metrics: {
      accuracy: null, accuracyDenominator: 0, exactMatch: 0, examples: 0, finalTrainLoss: NaN, bestValidAccuracy: NaN, trainSteps: 0,
      stoppedBy: 'n/a', trainSeconds: 0, trainTokensPerSec: 0, peakMemoryBytes: 0, lossCurve: [], validCurve: [],
      latency: [{ batch: B, length: k.L, medianMs: median, p10Ms: quantile(samples, 0.1), p90Ms: quantile(samples, 0.9), samples: samples.length, tokensPerSec: (B * k.L) / (median / 1000) }],
      kernel: { layout: k.layoutName, impl: k.impl, ...(k.precision !== 'fp32' ? { precision: k.precision } : {}), ...(variant ? { variant } : {}), pass: k.pass, density: dens, flops, gflops: flops / (median / 1000) / 1e9, speedupVsDense: null },
    },
    diagnostics, fallbackKernels: { total: 0, byKernel: {} },
    wallTimeSeconds: (performance.now() - t0) / 1000, startedAt: now, finishedAt: now,
  };
}

/** Fill speedupVsDense from the dense records of the same backend, impl, pass and L. */
export function addSpeedups(records: RunRecord[]): void {
  for (const r of records) {
    const k = r.metrics.kernel;
    if (!k || k.layout === 'dense') continue;
    const dense = records.find((d) => d.metrics.kernel?.layout === 'dense' && d.backend === r.backend && d.metrics.kernel.impl === k.impl
      && d.metrics.kernel.pass === k.pass && d.task.params.L === r.task.params.L && (d.metrics.kernel.precision ?? 'fp32') === (k.precision ?? 'fp32'));
    k.speedupVsDense = dense ? dense.metrics.latency[0]!.medianMs / r.metrics.latency[0]!.medianMs : null;
  }
}

/** The cases as orchestrator jobs; `addSpeedups` is the report's finalize step. */
export function kernelJobs(suite: string, c: KernelsConfig, cases: KernelCase[], fp: Fingerprint): Job[] {
  return cases.map((k) => ({ id: kernelCaseId(suite, c, k), label: kernelCaseLabel(k), run: () => measureKernelCase(suite, c, k, fp) }));
}

/** A kernels suite's `kernels` object: keys, ranges and lists checked (unknown keys name the allowed ones). */
export function validateKernels(raw: Record<string, unknown>): Partial<KernelsConfig> {
  const w = 'suite.kernels';
  const backends = BACKEND_NAMES.filter((b) => b !== 'auto');
  checkFields(w, raw, {
    backends: { each: backends }, B: { int: [1, 1 << 16] }, H: { int: [1, 1024] }, D: { int: [1, 1024] }, block: { int: [1, 4096] }, lengths: { ints: [1, 1 << 24] },
    maxLength: { object: true }, window: { int: [1, 1 << 24] }, bigbird: { object: true }, densitySweep: { object: true }, impls: { each: ['fused', 'generic'] }, passes: { each: PASSES },
    timeMs: { num: [1, 3.6e6] }, minSamples: { int: [1, 1e6] }, genericMaxBytes: { num: [0, 1e15] }, combiner: { bool: true }, batchTokens: { int: [1, 1 << 30] }, precisions: { each: ['fp32', 'tf32', 'bf16'] },
  });
  if (raw.bigbird !== undefined) checkFields(`${w}.bigbird`, raw.bigbird, { windowBlocks: { int: [0, 1 << 16] }, globalBlocks: { int: [0, 1 << 16] }, randomBlocks: { int: [0, 1 << 16] } });
  // An empty randomBlocks list: no density sweep.
  if (raw.densitySweep !== undefined) checkFields(`${w}.densitySweep`, raw.densitySweep, { length: { int: [1, 1 << 24] }, randomBlocks: { ints: [0, 1 << 16], empty: true } });
  for (const [b, L] of Object.entries((raw.maxLength as Record<string, unknown> | undefined) ?? {})) {
    enumParam(`${w}.maxLength`, 'key', b, backends);
    intParam(`${w}.maxLength`, b, L, 1);
  }
  return raw as Partial<KernelsConfig>;
}

export const KERNELS_DEFAULTS: KernelsConfig = {
  backends: ['native', 'wasm'],
  B: 1, H: 4, D: 64, block: 64,
  lengths: [512, 1024, 2048, 4096, 8192],
  maxLength: { wasm: 1024 },
  window: 256,
  bigbird: { windowBlocks: 1, globalBlocks: 1, randomBlocks: 2 },
  densitySweep: { length: 4096, randomBlocks: [1, 3, 7, 15, 31, 63] },
  impls: ['fused', 'generic'],
  passes: ['forward', 'forward+backward'],
  timeMs: 400,
  minSamples: 5,
  genericMaxBytes: 3e9,
  combiner: true,
};
