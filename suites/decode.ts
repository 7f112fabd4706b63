/**
 * Decode suites: what decode-time sparsity keeps of a trained model, and what it costs.
 *   method cases (checkpoint x method x budget): NIAH answers generated token by token through the
 *     KV cache and, next to it, teacher-forced through the same decoder; KV memory and bytes read per
 *     step at the test length; time to first token (prefill + first token, batch 1); per-token decode
 *     latency and tokens/s at every latency length and batch (the cache filled with random keys and
 *     values: a step's cost does not depend on them).
 *   bandwidth cases (kernel x format x batch x length): the decode attention kernel alone over a
 *     cache of `heads` x `headDim`, its achieved bandwidth (K and V bytes read / time) against the
 *     device's measured copy bandwidth (read + write bytes / time of one large copy).
 * Calibration (LServe's streaming heads, Double Sparsity's channels) uses validation prompts only.
 */
import { createHash } from 'node:crypto';
import * as tf from '@tensorflow/tfjs-core';
import { ParamError, checkFields } from '../core/params.js';
import { canonical } from '../core/canonical.js';
import { loadModel, type SavedModelMeta } from '../models/saved.js';
import { checkCheckpointEntries, checkpointName, checkpointTestBatch, checkpointValidBatch, sliceRows, timing, type CheckpointEntry } from './checkpoint-data.js';
import { Transformer } from '../models/transformer.js';
import { Decoder, argmaxRows } from '../models/decoder.js';
import { IGNORE_INDEX, type TokenBatch } from '../datasets/types.js';
import { scoreByDecoding } from './generate.js';
import { DECODE_METHOD_DEFAULTS, DECODE_METHODS, makeDecodeMethod, type DecodeCalibration, type DecodeMethodName } from '../kernels/decode/methods.js';
import { calibrateDecode } from './decode-calibrate.js';
import { LayerCache, fillRandom } from '../kernels/decode/kv-cache.js';
import { copyBandwidth, sync } from '../kernels/decode/ops.js';
import { KV_FORMATS, type KvFormat } from '../kernels/decode/types.js';
import type { Job } from './orchestrator.js';
import { SCHEMA_VERSION, type DecodeMetrics, type Fingerprint, type RunRecord, type Timing } from '../reports/schema.js';

export type DecodeCheckpoint = CheckpointEntry;

export interface DecodeConfig {
  checkpoints: DecodeCheckpoint[];
  methods: DecodeMethodName[];
  /** Tokens read per head per step (streaming, quest, lserve, double-sparsity). */
  budgets: number[];
  /** Mustafar's pruned fraction of every K and V row. */
  sparsities: number[];
  page: number;
  sink: number;
  reuse: number;
  labelChannels: number;
  /** Test examples scored per case (spread over the depths at the checkpoint's longest trained length). */
  examples: number;
  batch: number;
  calibrationExamples: number;
  /** Prompt tokens before the first answer decoded through the method (suites/generate.ts). */
  queryTokens: number;
  /** The cache format of method cases (mustafar keeps its own fp32 compressed rows). */
  format: KvFormat;
  latency: { lengths: number[]; batches: number[]; steps: number; reps: number; ttftReps: number };
  /** mustafarMaxLength: Mustafar kernel cases run up to this length (compressing the synthetic cache is O(D^2) per row). */
  bandwidth?: { kernels: string[]; formats: KvFormat[]; batches: number[]; heads: number; headDim: number; lengths: number[]; mustafarMaxLength?: number; reps: number; copyBytes: number };
}

const LATENCY_DEFAULTS: DecodeConfig['latency'] = { lengths: [1024], batches: [1], steps: 8, reps: 2, ttftReps: 2 };
export const DECODE_DEFAULTS: Omit<DecodeConfig, 'checkpoints'> = {
  methods: [...DECODE_METHODS], budgets: [64, 128, 256], sparsities: [0.5, 0.7], ...DECODE_METHOD_DEFAULTS,
  examples: 44, batch: 4, calibrationExamples: 4, queryTokens: 2, format: 'fp32', latency: LATENCY_DEFAULTS,
};
/** Kernel cases: 'dense', 'mustafar-<sparsity>', or '<method>-<tokens>' for a selecting method (selection + attention). */
const KERNEL_CASE = /^(dense|mustafar-(0(\.\d+)?)|(streaming|quest|lserve|double-sparsity)-(\d+))$/;
function parseKernel(name: string): { method: DecodeMethodName; budget: number } {
  const m = KERNEL_CASE.exec(name);
  if (!m) throw new ParamError('suite.decode.bandwidth.kernels', `unknown kernel case ${JSON.stringify(name)}; allowed: dense, mustafar-<sparsity in [0, 1)>, streaming-<tokens>, quest-<tokens>, lserve-<tokens>, double-sparsity-<tokens>`);
  if (m[1] === 'dense') return { method: 'dense', budget: 0 };
  if (m[2]) return { method: 'mustafar', budget: Number(m[2]) };
  return { method: m[4] as DecodeMethodName, budget: Number(m[5]) };
}

export function validateDecode(raw: Record<string, unknown>): DecodeConfig {
  const w = 'suite.decode';
  checkFields(w, raw, {
    checkpoints: { list: true }, methods: { each: DECODE_METHODS }, budgets: { ints: [2, 1 << 20] }, sparsities: { list: true }, page: { int: [1, 4096] },
    sink: { int: [1, 1 << 16] }, reuse: { int: [1, 1024] }, labelChannels: { int: [1, 1024] }, examples: { int: [1, 1 << 20] }, batch: { int: [1, 4096] },
    calibrationExamples: { int: [1, 1024] }, queryTokens: { int: [1, 1 << 16] }, format: { oneOf: KV_FORMATS }, latency: { object: true }, bandwidth: { object: true },
  });
  const c = { ...DECODE_DEFAULTS, ...raw } as DecodeConfig;
  if (!Array.isArray(c.checkpoints) || c.checkpoints.length === 0) throw new ParamError(`${w}.checkpoints`, 'must be a non-empty list of { "path": ..., "task": ... }');
  c.checkpoints.forEach((k, i) => checkFields(`${w}.checkpoints[${i}]`, k, { path: { str: true }, task: { oneOf: ['niah', 'mqar'] }, name: { str: true } }));
  c.sparsities.forEach((s, i) => {
    if (typeof s !== 'number' || !(s >= 0 && s < 1)) throw new ParamError(`${w}.sparsities[${i}]`, `must be a fraction in [0, 1), got ${JSON.stringify(s)}`);
  });
  checkFields(`${w}.latency`, c.latency, { lengths: { ints: [16, 1 << 24] }, batches: { ints: [1, 4096] }, steps: { int: [1, 10000] }, reps: { int: [1, 1000] }, ttftReps: { int: [1, 1000] } });
  c.latency = { ...LATENCY_DEFAULTS, ...c.latency };
  for (const b of c.budgets) if (b % c.page !== 0 && (c.methods.includes('quest') || c.methods.includes('lserve'))) throw new ParamError(`${w}.budgets`, `page methods read whole pages: every budget must be a multiple of page (${c.page}), got ${b}`);
  if (c.bandwidth) {
    checkFields(`${w}.bandwidth`, c.bandwidth, { kernels: { list: true }, formats: { each: KV_FORMATS }, batches: { ints: [1, 4096] }, heads: { int: [1, 1024] }, headDim: { int: [32, 256] }, lengths: { ints: [16, 1 << 24] }, mustafarMaxLength: { int: [16, 1 << 24] }, reps: { int: [1, 1000] }, copyBytes: { int: [1 << 20, 2 ** 34] } });
    const given: Partial<NonNullable<DecodeConfig['bandwidth']>> = c.bandwidth;
    c.bandwidth = { kernels: ['dense'], formats: ['fp32'], batches: [16], heads: 8, headDim: 128, lengths: [4096], reps: 10, copyBytes: 1 << 28, ...given };
    c.bandwidth.kernels.forEach((k) => parseKernel(String(k)));
  }
  return c;
}

export function checkDecodeCheckpoints(c: DecodeConfig): SavedModelMeta[] {
  return checkCheckpointEntries('suite.decode.checkpoints', c.checkpoints, "decode methods replace a dense transformer's cache reads");
}

export type DecodeCase =
  | { kind: 'method'; checkpoint: DecodeCheckpoint; meta: SavedModelMeta; method: DecodeMethodName; budget: number }
  | { kind: 'bandwidth'; kernel: string; format: KvFormat; batch: number; length: number };

export function decodeCases(c: DecodeConfig, metas: SavedModelMeta[]): DecodeCase[] {
  const out: DecodeCase[] = [];
  c.checkpoints.forEach((checkpoint, i) => {
    for (const method of c.methods) {
      const budgets = method === 'dense' ? [0] : method === 'mustafar' ? c.sparsities : c.budgets;
      for (const budget of budgets) out.push({ kind: 'method', checkpoint, meta: metas[i]!, method, budget });
    }
  });
  const bw = c.bandwidth;
  if (bw) {
    for (const kernel of bw.kernels) for (const format of kernel.startsWith('mustafar') ? (['fp32'] as KvFormat[]) : bw.formats) {
      for (const batch of bw.batches) for (const length of bw.lengths) {
        if (kernel.startsWith('mustafar') && length > (bw.mustafarMaxLength ?? Infinity)) continue;
        out.push({ kind: 'bandwidth', kernel, format, batch, length });
      }
    }
  }
  return out;
}

const ckName = checkpointName;

export function decodeLabel(k: DecodeCase): string {
  if (k.kind === 'bandwidth') return `decode kernel ${k.kernel} | ${k.format} | batch ${k.batch} | L ${k.length}`;
  const b = k.method === 'dense' ? '' : k.method === 'mustafar' ? ` sparsity ${k.budget}` : ` budget ${k.budget}`;
  return `${ckName(k.checkpoint)} | ${k.method}${b}`;
}

export function decodeCaseId(suite: string, c: DecodeConfig, k: DecodeCase, backend: string): string {
  const base = k.kind === 'bandwidth'
    ? { suite, ...k, heads: c.bandwidth!.heads, headDim: c.bandwidth!.headDim, reps: c.bandwidth!.reps }
    : { suite, weights: k.meta.weights.sha256, method: k.method, budget: k.budget, page: c.page, sink: c.sink, reuse: c.reuse, labelChannels: c.labelChannels, examples: c.examples, calibrationExamples: c.calibrationExamples, queryTokens: c.queryTokens, format: c.format, latency: c.latency };
  return createHash('sha256').update(canonical({ ...base, backend })).digest('hex').slice(0, 16);
}

/** The scored test examples (exactly n). */
const testBatch = (meta: SavedModelMeta, n: number): TokenBatch => sliceRows(checkpointTestBatch(meta, n), 0, n);

const calibrations = new Map<string, { cal: DecodeCalibration; seconds: number }>();

function calibration(model: Transformer, meta: SavedModelMeta, c: DecodeConfig, method: DecodeMethodName, budget: number): { cal: DecodeCalibration; seconds: number } {
  if (method !== 'lserve' && method !== 'double-sparsity') return { cal: {}, seconds: 0 };
  const key = `${meta.weights.sha256}/${method}/${method === 'lserve' ? budget : ''}/${c.calibrationExamples}/${c.sink}/${c.labelChannels}`;
  const hit = calibrations.get(key);
  if (hit) return hit;
  const t0 = performance.now();
  const v = checkpointValidBatch(meta, c.calibrationExamples);
  const prompts = Array.from({ length: v.n }, (_, i) => {
    const row = v.labels.subarray(i * v.seqLen, (i + 1) * v.seqLen);
    const first = row.findIndex((x) => x !== IGNORE_INDEX);
    return v.inputs.slice(i * v.seqLen, i * v.seqLen + (first < 0 ? v.seqLen : first + 1));
  });
  const cal = calibrateDecode(model, prompts, { sink: c.sink, local: Math.max(1, budget - c.sink), labelChannels: c.labelChannels });
  const out = { cal, seconds: (performance.now() - t0) / 1000 };
  calibrations.set(key, out);
  return out;
}

const isCuda = () => tf.getBackend() === 'cuda';

export async function measureDecodeMethod(suite: string, c: DecodeConfig, k: Extract<DecodeCase, { kind: 'method' }>, backend: string, fp: Fingerprint): Promise<RunRecord> {
  const t0 = performance.now();
  const startedAt = new Date().toISOString();
  const maxCtx = Math.max(...c.latency.lengths) + c.latency.steps + 4;
  const { model, meta } = loadModel(k.checkpoint.path, { maxLen: maxCtx });
  try {
    if (!(model instanceof Transformer)) throw new ParamError('suite.decode.checkpoints.path', `${k.checkpoint.path}: not a transformer`);
    const H = model.c.nHeads, D = model.c.dModel / H;
    const format: KvFormat = k.method === 'mustafar' ? 'fp32' : c.format;
    const elem = format === 'bf16' ? 2 : 4;
    const { cal, seconds } = calibration(model, meta, c, k.method, k.budget);
    const opts = { budget: k.budget, page: c.page, sink: c.sink, reuse: c.reuse, labelChannels: c.labelChannels };
    const method = () => makeDecodeMethod(k.method, opts, D, cal);
    const test = testBatch(meta, c.examples);
    const score = scoreByDecoding(model, test, { batch: c.batch, format, method, queryTokens: c.queryTokens });
    const L = test.seqLen;
    const probe = method();
    const bytesRead = probe.bytesRead(L, D, elem), bytesDense = L * 2 * D * elem, budgetMeaning = probe.budgetMeaning;
    probe.dispose();
    // Time to first token (prefill + first token, batch 1; rep 0 warms up): the first test prompt up
    // to its first answer, then a seeded pseudo-random prompt at every latency length.
    const timeFirstToken = (ids: Int32Array, cap: number): { ttft: Timing; bytesPerToken: number } => {
      const samples: number[] = [];
      let bytesPerToken = 0;
      for (let rep = 0; rep <= c.latency.ttftReps; rep++) {
        const m = method();
        const s0 = performance.now();
        const dec = new Decoder(model, { batch: 1, cap, format, method: m });
        argmaxRows(dec.prefill(ids, ids.length));
        const ms = performance.now() - s0;
        bytesPerToken = dec.bytes() / ids.length;
        dec.dispose();
        m.dispose();
        if (rep > 0) samples.push(ms);
      }
      return { ttft: timing(samples), bytesPerToken };
    };
    const first = test.labels.subarray(0, L).findIndex((x) => x !== IGNORE_INDEX);
    const atPrompt = timeFirstToken(test.inputs.slice(0, first + 1), first + 2);
    const kvBytes = atPrompt.bytesPerToken * L;
    const ttftByLength: DecodeMetrics['ttftByLength'] = c.latency.lengths.map((len) => {
      const ids = Int32Array.from({ length: len }, (_, i) => 2 + ((i * 2654435761) >>> 0) % Math.max(1, meta.vocabSize - 2));
      return { length: len, ttft: timeFirstToken(ids, len + 1).ttft };
    });
    const latency: DecodeMetrics['latency'] = [];
    for (const len of c.latency.lengths) {
      for (const batch of c.latency.batches) {
        const m = method();
        const dec = new Decoder(model, { batch, cap: len + c.latency.steps * (c.latency.reps + 1) + 2, format, method: m });
        try {
          dec.fillRandom(len, 7);
          const tokens = Int32Array.from({ length: batch }, (_, b) => 2 + (b % Math.max(1, meta.vocabSize - 2)));
          const samples: number[] = [];
          for (let rep = 0; rep <= c.latency.reps; rep++) {
            for (let s = 0; s < c.latency.steps; s++) {
              const s0 = performance.now();
              argmaxRows(dec.step(tokens)); // the next token on the host: what greedy decoding waits for
              if (rep > 0) samples.push(performance.now() - s0);
            }
          }
          const step = timing(samples);
          latency.push({ length: len, batch, step, tokensPerSec: batch / (step.medianMs / 1000), kvBytes: dec.bytes() / dec.len * len });
        } finally {
          dec.dispose();
          m.dispose();
        }
      }
    }
    const decode: DecodeMetrics = {
      case: 'method', checkpoint: ckName(k.checkpoint), checkpointSha256: meta.weights.sha256, method: k.method, budget: k.budget, budgetMeaning, format, length: L,
      generatedExactMatch: score.generatedExactMatch, teacherExactMatch: score.teacherExactMatch, examples: score.examples, answerTokens: score.answerTokens,
      kvBytes, kvBytesDense: L * 2 * D * (format === 'bf16' ? 2 : 4) * H * model.c.nLayers, bytesReadFraction: bytesRead / bytesDense,
      ttft: atPrompt.ttft, ttftByLength, latency, calibrationSeconds: seconds, ...(cal.streamingHeads ? { streamingHeads: cal.streamingHeads } : {}),
      ...(cal.labelChannels ? { labelChannels: cal.labelChannels } : {}), denseExactMatch: null, accuracyRatio: null,
    };
    return record(suite, c, k, backend, fp, t0, startedAt, { accuracy: score.generatedExactMatch, examples: score.examples, decode, meta, parameterCount: model.variables().reduce((s, x) => s + x.size, 0) });
  } finally {
    model.dispose();
  }
}

let copyGbs: number | undefined;

export async function measureDecodeBandwidth(suite: string, c: DecodeConfig, k: Extract<DecodeCase, { kind: 'bandwidth' }>, backend: string, fp: Fingerprint): Promise<RunRecord> {
  const t0 = performance.now();
  const startedAt = new Date().toISOString();
  const bw = c.bandwidth!;
  const { heads: H, headDim: D } = bw;
  const B = k.batch, L = k.length;
  copyGbs ??= copyBandwidth(bw.copyBytes, 10);
  const { method: name, budget } = parseKernel(k.kernel);
  // a selecting method's calibration stand-ins: the first half of the heads streaming, channels 0..r-1
  const r = DECODE_METHOD_DEFAULTS.labelChannels;
  const cal: DecodeCalibration = { streamingHeads: [Array.from({ length: H }, (_, h) => h < H / 2)], labelChannels: [Array.from({ length: H }, () => Array.from({ length: r }, (_, i) => i))] };
  const method = makeDecodeMethod(name, { budget }, D, cal);
  const cache = new LayerCache({ B, H, D, cap: L, format: k.format }, method.extras(0, H));
  const q = tf.randomNormal([B, H, D], 0, 1, 'float32', 3) as tf.Tensor3D;
  try {
    fillRandom([cache], L, 1, 256);
    const scale = 1 / Math.sqrt(D);
    let step = 0;
    const call = () => tf.tidy(() => method.attend(q, cache, { layer: 0, len: L, step: step++ }, scale));
    const timeN = (n: number) => {
      const outs: tf.Tensor[] = [];
      sync();
      const s0 = performance.now();
      for (let i = 0; i < n; i++) outs.push(call());
      sync();
      const ms = (performance.now() - s0) / n;
      tf.dispose(outs);
      return ms;
    };
    const first = timeN(1);
    const n = Math.max(1, Math.min(200, Math.ceil(20 / Math.max(first, 1e-3))));
    const samples = Array.from({ length: bw.reps }, () => timeN(n));
    const t = timing(samples);
    const bytesRead = B * H * method.bytesRead(L, D, k.format === 'bf16' ? 2 : 4);
    const gbPerSec = bytesRead / (t.medianMs / 1000) / 1e9;
    const decode: DecodeMetrics = {
      case: 'bandwidth', method: k.kernel, budget, budgetMeaning: method.budgetMeaning, format: k.format, length: L,
      generatedExactMatch: null, teacherExactMatch: null, examples: 0, answerTokens: 0, kvBytes: bytesRead, kvBytesDense: B * H * L * 2 * D * (k.format === 'bf16' ? 2 : 4), bytesReadFraction: null,
      ttft: null, ttftByLength: [], latency: [], calibrationSeconds: 0, denseExactMatch: null, accuracyRatio: null,
      bandwidth: { batch: B, heads: H, headDim: D, bytesRead, time: t, gbPerSec, copyGbPerSec: copyGbs, fractionOfCopy: gbPerSec / copyGbs, splitKv: isCuda() },
    };
    return record(suite, c, k, backend, fp, t0, startedAt, { accuracy: null, examples: 0, decode, parameterCount: 0 });
  } finally {
    cache.dispose();
    q.dispose();
    method.dispose();
  }
}

function record(suite: string, c: DecodeConfig, k: DecodeCase, backend: string, fp: Fingerprint, t0: number, startedAt: string,
  x: { accuracy: number | null; examples: number; decode: DecodeMetrics; meta?: SavedModelMeta; parameterCount: number }): RunRecord {
  const lat = x.decode.latency[0];
  return {
    schemaVersion: SCHEMA_VERSION, runId: decodeCaseId(suite, c, k, backend), suite, label: decodeLabel(k),
    task: x.meta ? x.meta.task : { name: 'decode-kernel', params: {} },
    model: x.meta ? { ...x.meta.model, parameterCount: x.parameterCount } : { name: `decode-${k.kind === 'bandwidth' ? k.kernel : ''}`, size: '', params: {}, parameterCount: 0 },
    train: {}, optimizer: {}, latencyConfig: { ...c.latency }, seed: x.meta?.seed ?? 0, backend, fingerprint: fp, gitSha: fp.gitSha,
    metrics: {
      accuracy: x.accuracy, accuracyDenominator: x.examples, exactMatch: x.accuracy ?? undefined, examples: x.examples,
      finalTrainLoss: NaN, bestValidAccuracy: NaN, trainSteps: x.meta?.provenance.trainSteps ?? 0, stoppedBy: 'n/a', trainSeconds: x.meta?.provenance.trainSeconds ?? 0, trainTokensPerSec: 0,
      peakMemoryBytes: 0, lossCurve: [], validCurve: [],
      latency: lat ? [{ batch: lat.batch, length: lat.length, medianMs: lat.step.medianMs, p10Ms: lat.step.p10Ms, p90Ms: lat.step.p90Ms, samples: lat.step.samples, tokensPerSec: lat.tokensPerSec }] : [],
      decode: x.decode,
    },
    diagnostics: {}, fallbackKernels: { total: 0, byKernel: {} },
    wallTimeSeconds: (performance.now() - t0) / 1000, startedAt, finishedAt: new Date().toISOString(),
  } as RunRecord;
}

/** Accuracy ratios to each checkpoint's dense case. */
export function addDecodeRatios(records: RunRecord[]): void {
  for (const r of records) {
    const d = r.metrics.decode;
    if (!d || d.case !== 'method' || d.method === 'dense') continue;
    const ref = records.find((x) => x.metrics.decode?.case === 'method' && x.metrics.decode.method === 'dense' && x.metrics.decode.checkpointSha256 === d.checkpointSha256 && x.backend === r.backend);
    const dm = ref?.metrics.decode;
    if (!dm || dm.generatedExactMatch === null) continue;
    d.denseExactMatch = dm.generatedExactMatch;
    d.accuracyRatio = dm.generatedExactMatch ? (d.generatedExactMatch ?? 0) / dm.generatedExactMatch : null;
  }
}

export function decodeJobs(suite: string, c: DecodeConfig, cases: DecodeCase[], backend: string, fp: Fingerprint): Job[] {
  return cases.map((k) => ({
    id: decodeCaseId(suite, c, k, backend), label: decodeLabel(k),
    run: () => (k.kind === 'method' ? measureDecodeMethod(suite, c, k, backend, fp) : measureDecodeBandwidth(suite, c, k, backend, fp)),
  }));
}
