/**
 * Generation scoring and the decode suite: through the KV cache, teacher-forced predictions equal the
 * full forward's argmax at every answer position, and generated ones equal the full forward's argmax
 * on the sequence with its own answers fed back (multi-value needles: several answers per example);
 * bad decode suites fail with one line naming the field and the allowed values; a small decode suite
 * on the shipped L=256 checkpoint runs every method and kernel case and reports finite numbers.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { useBackend } from '../kernels/backend.js';
import { Transformer, TRANSFORMER_DEFAULTS } from '../models/transformer.js';
import { generateNiah, parseNiahParams, niahVocabSize } from '../datasets/niah.js';
import { IGNORE_INDEX } from '../datasets/types.js';
import { decodePredictions } from '../suites/generate.js';
import { cli } from './faults/harness.js';

beforeAll(async () => {
  await useBackend('native');
});

describe('answers by generation', () => {
  it('teacher-forced = full-forward argmax; generated = full-forward argmax with its answers fed back (multi-value)', () => {
    const p = parseNiahParams({ family: 'multivalue', numNeedles: 3, seqLen: 96, evalLengths: [96] });
    const b = generateNiah(p, 4, 96, undefined, 5);
    const model = new Transformer('dense', { ...TRANSFORMER_DEFAULTS, dModel: 64, nHeads: 2, shortConv: 3 }, { vocabSize: niahVocabSize(p), maxLen: 96, seed: 2 });
    const L = 96;
    const argmaxFull = (inputs: Int32Array) => tf.tidy(() => tf.argMax(model.head(tf.reshape(model.hidden(tf.tensor2d(inputs, [b.n, L], 'int32')), [b.n * L, -1]) as tf.Tensor2D), 1).dataSync() as Int32Array);
    const teacher = decodePredictions(model, b, 0, b.n, false, { batch: b.n });
    const full = argmaxFull(b.inputs);
    let scored = 0;
    for (let i = 0; i < b.n * L; i++) if (b.labels[i] !== IGNORE_INDEX) {
      expect(teacher[i]).toBe(full[i]);
      scored++;
    }
    expect(scored).toBe(b.n * 3);
    const gen = decodePredictions(model, b, 0, b.n, true, { batch: b.n });
    const fed = Int32Array.from(b.inputs);
    for (let i = 0; i < b.n * L; i++) if (b.labels[i] !== IGNORE_INDEX && (i + 1) % L !== 0) fed[i + 1] = gen[i]!;
    const again = argmaxFull(fed);
    for (let i = 0; i < b.n * L; i++) if (b.labels[i] !== IGNORE_INDEX) expect(gen[i]).toBe(again[i]);
    model.dispose();
  });
});

function decodeSuite(dir: string, o: Record<string, unknown> = {}): string {
  const p = join(dir, `dec-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(p, JSON.stringify({
    name: 'decode-test', kind: 'decode', description: 't', seeds: [0],
    decode: {
      checkpoints: [{ path: 'models/checkpoints/sequence/niah-multikey-L256-d128', task: 'niah', name: 'L256' }],
      methods: ['dense', 'streaming', 'quest', 'lserve', 'double-sparsity', 'mustafar'], budgets: [32], sparsities: [0.5], examples: 8, batch: 4, calibrationExamples: 2,
      latency: { lengths: [256], batches: [1, 2], steps: 2, reps: 1, ttftReps: 1 },
      bandwidth: { kernels: ['dense', 'quest-64', 'mustafar-0.5'], formats: ['fp32'], batches: [1], heads: 2, headDim: 32, lengths: [256], reps: 2, copyBytes: 1 << 20 },
      ...o,
    },
  }));
  return p;
}

describe('decode suite', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tr-dec-'));
  it('bad input: one line naming the field and the allowed values, nothing written', () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ methods: ['dense', 'magic'] }, /suite\.decode\.methods\.1: must be one of dense, streaming, quest, lserve, double-sparsity, mustafar/],
      [{ budgets: [40] }, /suite\.decode\.budgets: page methods read whole pages: every budget must be a multiple of page \(16\), got 40/],
      [{ sparsities: [1.2] }, /suite\.decode\.sparsities\[0\]: must be a fraction in \[0, 1\)/],
      [{ format: 'fp16' }, /suite\.decode\.format: must be one of fp32, bf16/],
      [{ bandwidth: { kernels: ['quest'] } }, /suite\.decode\.bandwidth\.kernels: unknown kernel case "quest"; allowed: dense, mustafar-<sparsity in \[0, 1\)>/],
      [{ checkpoints: [{ path: 'models/checkpoints/sequence/niah-multikey-L256-d128', task: 'mqar' }] }, /suite\.decode\.checkpoints\[0\]\.task: .* was trained on "niah", not "mqar"; allowed: "niah"/],
    ];
    for (const [o, re] of cases) {
      const out = join(dir, `bad-${Math.random().toString(36).slice(2)}`);
      const r = cli('bench.ts', ['--suite', decodeSuite(dir, o), '--out', out, '--backend', 'native']);
      expect(r.code, r.out + r.err).not.toBe(0);
      expect(r.err).toMatch(re);
      expect(existsSync(join(out, 'report.json'))).toBe(false);
    }
  });
  it('runs every method and kernel case on the shipped checkpoint: finite numbers, both scores, ratios to dense', () => {
    const out = join(dir, 'ok');
    const r = cli('bench.ts', ['--suite', decodeSuite(dir), '--out', out, '--backend', 'native']);
    expect(r.code, r.err).toBe(0);
    const rep = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8'));
    const recs = rep.records as { label: string; metrics: { decode: Record<string, any> } }[];
    expect(recs.length).toBe(6 + 3);
    const dense = recs.find((x) => x.metrics.decode.method === 'dense' && x.metrics.decode.case === 'method')!.metrics.decode;
    expect(dense.generatedExactMatch).toBeGreaterThan(0.8); // the checkpoint scores 0.996 teacher-forced
    for (const x of recs.filter((x) => x.metrics.decode.case === 'method')) {
      const d = x.metrics.decode;
      expect(d.generatedExactMatch).toBe(d.teacherExactMatch); // one answer token per example
      expect(d.latency.length).toBe(2);
      for (const l of d.latency) expect(Number.isFinite(l.step.medianMs) && l.step.medianMs > 0).toBe(true);
      expect(d.kvBytes).toBeGreaterThan(0);
      if (d.method !== 'dense') expect(d.accuracyRatio).toBeCloseTo(d.generatedExactMatch / dense.generatedExactMatch, 9);
    }
    const must = recs.find((x) => x.metrics.decode.method === 'mustafar')!.metrics.decode;
    expect(must.kvBytes).toBeLessThan(dense.kvBytes * 0.6);
    for (const x of recs.filter((x) => x.metrics.decode.case === 'bandwidth')) {
      expect(x.metrics.decode.bandwidth.gbPerSec).toBeGreaterThan(0);
      expect(x.metrics.decode.bandwidth.copyGbPerSec).toBeGreaterThan(0);
    }
    expect(r.out).toMatch(/kernel case\s+median ms/);
  });
});

describe('models without a KV cache', () => {
  it('combiner and seqboat generate by recomputing the prefix: logits equal the full forward; decode methods are refused', async () => {
    const { buildModel } = await import('../models/registry.js');
    const { decoderFor } = await import('../models/decoder.js');
    const { makeDecodeMethod } = await import('../kernels/decode/methods.js');
    for (const [name, params] of [['combiner-fixed', { combiner: { segLen: 8 } }], ['seqboat', { dModel: 32, nLayers: 1, emaDim: 2, dQk: 8, dV: 16, chunk: 8 }]] as const) {
      const model = buildModel(name, params, { vocabSize: 40, maxLen: 64, seed: 1 });
      const ids = Int32Array.from({ length: 2 * 20 }, (_, i) => 1 + ((i * 7) % 39));
      const dec = decoderFor(model, { batch: 2, cap: 32 }); // combiner: segments of 8 divide the capacity
      expect(dec.cached).toBe(false);
      const prompt = Int32Array.from([...ids.subarray(0, 16), ...ids.subarray(20, 36)]);
      dec.prefill(prompt, 16).dispose();
      const got = dec.step(Int32Array.from([ids[16]!, ids[36]!]));
      // the full forward at length 24 (a multiple of 8) over the first 17 tokens + any tokens after them
      const seq = new Int32Array(2 * 24).fill(5);
      seq.set(ids.subarray(0, 17), 0);
      seq.set(ids.subarray(20, 37), 24);
      const full = tf.tidy(() => model.head(tf.reshape(tf.slice(model.hidden(tf.tensor2d(seq, [2, 24], 'int32')), [0, 16, 0], [2, 1, -1]), [2, -1]) as tf.Tensor2D));
      const a = got.dataSync(), b = full.dataSync();
      for (let i = 0; i < a.length; i++) expect(Math.abs(a[i]! - b[i]!)).toBeLessThanOrEqual(1e-6 + 1e-6 * Math.abs(b[i]!));
      tf.dispose([got, full]);
      const m = makeDecodeMethod('quest', { budget: 32 }, 16);
      expect(() => decoderFor(model, { batch: 1, cap: 8, method: m })).toThrow(/decode\.method: .* has no KV cache/);
      model.dispose();
    }
  });
});
