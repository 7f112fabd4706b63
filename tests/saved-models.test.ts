/**
 * Saved sequence models (models/saved.ts) and Zoology-format eval files (datasets/eval-file.ts):
 * a saved model loads to identical logits; a changed weights file, a missing one or a shape mismatch is
 * an error; eval files (JSON and gzip) score what the in-memory batch scores; bad files fail with one
 * line naming the field; bench --save-models writes a loadable model and --eval-file with a bad file
 * writes nothing.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { useBackend } from '../kernels/backend.js';
import { buildModel } from '../models/registry.js';
import { loadModel, saveModel } from '../models/saved.js';
import { readEvalFile, toEvalDoc } from '../datasets/eval-file.js';
import { MqarTask, parseMqarParams } from '../datasets/mqar.js';
import { evaluate } from '../suites/evaluate.js';
import { ParamError } from '../core/params.js';
import { cli, tinySuite } from './faults/harness.js';

const params = { dModel: 16, nLayers: 1, nHeads: 2 };
const meta = (maxLen: number) => ({
  model: { name: 'dense', size: 'd16', params }, task: { name: 'mqar', params: {} }, vocabSize: 32, maxLen, seed: 3,
  provenance: { runId: 'x', label: 'x', gitSha: 'x', backend: 'native', device: 'cpu', trainSteps: 0, trainSeconds: 0, testAccuracy: null, createdAt: 'now' },
});

beforeAll(async () => {
  await useBackend('native');
});

describe('saved models', () => {
  it('load gives the same logits; a changed or missing weights file is an error', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tr-saved-'));
    // A model whose weights differ from a fresh build of its config (seed 9 vs the meta's seed 3).
    const m = buildModel('dense', params, { vocabSize: 32, maxLen: 16, seed: 9 });
    saveModel(dir, m, meta(16));
    const ids = tf.tensor2d(Int32Array.from({ length: 16 }, (_, i) => (i * 7) % 32), [1, 16], 'int32');
    const want = m.hidden(ids).dataSync();
    const { model } = loadModel(dir);
    expect(Array.from(model.hidden(ids).dataSync())).toEqual(Array.from(want));
    expect(() => loadModel(dir, { maxLen: 64 })).not.toThrow(); // rotary positions: any length
    const w = readdirSync(dir).find((f) => f.startsWith('weights-'))!;
    const bytes = readFileSync(join(dir, w));
    bytes[0] ^= 1;
    writeFileSync(join(dir, w), bytes);
    expect(() => loadModel(dir)).toThrow(/sha256 .* does not match/);
    expect(() => loadModel(join(dir, 'nope'))).toThrow(ParamError);
  });
  it('a model.json whose config does not fit its weights is an error naming the tensor', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tr-saved-'));
    saveModel(dir, buildModel('dense', params, { vocabSize: 32, maxLen: 16, seed: 1 }), meta(16));
    const j = JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8'));
    j.vocabSize = 40;
    writeFileSync(join(dir, 'model.json'), JSON.stringify(j));
    expect(() => loadModel(dir)).toThrow(/tensor 0 .* has shape \[32,16\] in the file, \[40,16\] in the model/);
  });
});

describe('eval files', () => {
  const task = new MqarTask(parseMqarParams({ vocabSize: 64, inputSeqLen: 32, numKvPairs: 4, numTrainExamples: 100, numTestExamples: 20 }), 0);
  it('JSON and gzip score exactly what the in-memory batch scores', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tr-eval-'));
    const b = task.testSet();
    const doc = JSON.stringify(toEvalDoc(b));
    writeFileSync(join(dir, 'set.json'), doc);
    writeFileSync(join(dir, 'set.json.gz'), gzipSync(doc));
    const m = buildModel('dense', params, { vocabSize: task.vocabSize, maxLen: 32, seed: 0 });
    const want = evaluate(m, b, 8);
    for (const f of ['set.json', 'set.json.gz']) {
      const e = readEvalFile(join(dir, f), { vocabSize: task.vocabSize, maxLen: 32 });
      expect(e.batch.inputs).toEqual(b.inputs);
      expect(evaluate(m, e.batch, 8).accuracy).toBe(want.accuracy);
    }
  });
  it('wrong shapes, out-of-vocabulary tokens, too-long rows and nothing scored are named errors', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tr-eval-'));
    const cases: [unknown, RegExp][] = [
      [{ inputs: [[1, 2]] }, /--eval-file\.labels: .*must be a non-empty array/],
      [{ inputs: [[1, 2], [1]], labels: [[-100, 3], [4]] }, /--eval-file\.inputs\[1\]: .*length 1, row 0 has 2/],
      [{ inputs: [[1, 2]], labels: [[-100, 3, 4]] }, /--eval-file\.labels\[0\]: .*length 3/],
      [{ inputs: [[1, 99]], labels: [[-100, 3]] }, /--eval-file\.inputs\[0\]\[1\]: .*token 99 outside the model's vocabulary \[0, 64\)/],
      [{ inputs: [[1, 2]], labels: [[-5, 3]] }, /--eval-file\.labels\[0\]\[0\]: .*must be -100/],
      [{ inputs: [Array(40).fill(1)], labels: [Array(40).fill(-100)] }, /length 40, the model was built for at most 32/],
      [{ inputs: [[1, 2]], labels: [[-100, -100]] }, /nothing would be scored/],
      [[1, 2], /must be a JSON object/],
    ];
    cases.forEach(([doc, re], i) => {
      const p = join(dir, `bad${i}.json`);
      writeFileSync(p, JSON.stringify(doc));
      expect(() => readEvalFile(p, { vocabSize: 64, maxLen: 32 })).toThrow(re);
    });
    writeFileSync(join(dir, 'x.json'), '{not json');
    expect(() => readEvalFile(join(dir, 'x.json'), { vocabSize: 64, maxLen: 32 })).toThrow(/not valid JSON/);
  });
});

describe('bench --save-models and --eval-file', () => {
  it('saves a loadable model per run and scores the eval file; a bad eval file writes nothing', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tr-save-'));
    const suite = tinySuite(dir, { seeds: [0], train: { maxSteps: 10, evalEvery: 10 } });
    const s = JSON.parse(readFileSync(suite, 'utf8'));
    const tp = s.entries[0].taskParams;
    const t = new MqarTask(parseMqarParams(tp), 0);
    const set = join(dir, 'set.json');
    writeFileSync(set, JSON.stringify(toEvalDoc(t.validSet(8))));
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, JSON.stringify({ inputs: [[1e6]], labels: [[1]] }));
    const outBad = join(dir, 'out-bad');
    const rb = cli('bench.ts', ['--suite', suite, '--out', outBad, '--jobs', '1', '--backend', 'native', '--eval-file', bad]);
    expect(rb.code).toBe(2);
    expect(rb.err.trim().split('\n').pop()).toMatch(/--eval-file\.inputs\[0\]\[0\]: .*outside the model's vocabulary/);
    expect(existsSync(outBad)).toBe(false);
    const out = join(dir, 'out');
    const r = cli('bench.ts', ['--suite', suite, '--out', out, '--jobs', '1', '--backend', 'native', '--save-models', join(dir, 'models'), '--eval-file', set]);
    expect(r.code, r.err).toBe(0);
    const rec = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')).records[0];
    expect(rec.metrics.evalFile).toMatchObject({ examples: 8, seqLen: tp.inputSeqLen });
    expect(rec.metrics.evalFile.accuracy).toBeGreaterThanOrEqual(0);
    const { meta: m } = loadModel(join(dir, 'models', rec.runId));
    expect(m.provenance.runId).toBe(rec.runId);
    expect(m.task).toEqual(rec.task);
  });
});

describe('suite entries starting from a saved model (init)', () => {
  it('copies the weights and records where they came from; a mismatched init is a one-line error before anything is written', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tr-init-'));
    const suite = tinySuite(dir, { seeds: [0], train: { maxSteps: 10, evalEvery: 10 } });
    const r = cli('bench.ts', ['--suite', suite, '--out', join(dir, 'a'), '--jobs', '1', '--backend', 'native', '--save-models', join(dir, 'm')]);
    expect(r.code, r.err).toBe(0);
    const src = join(dir, 'm', readdirSync(join(dir, 'm'))[0]!);
    const s = JSON.parse(readFileSync(suite, 'utf8'));
    s.name = 'tiny2';
    s.entries[0].init = src;
    writeFileSync(join(dir, 'tiny2.json'), JSON.stringify(s));
    const r2 = cli('bench.ts', ['--suite', join(dir, 'tiny2.json'), '--out', join(dir, 'b'), '--jobs', '1', '--backend', 'native', '--save-models', join(dir, 'm2')]);
    expect(r2.code, r2.err).toBe(0);
    const saved = loadModel(join(dir, 'm2', readdirSync(join(dir, 'm2'))[0]!)).meta;
    expect(saved.provenance.initFrom?.path).toBe(src);
    expect(saved.provenance.initFrom?.provenance.runId).toBe(readdirSync(join(dir, 'm'))[0]);
    s.entries[0].models[0].params.dModel = 32;
    writeFileSync(join(dir, 'tiny3.json'), JSON.stringify(s));
    const r3 = cli('bench.ts', ['--suite', join(dir, 'tiny3.json'), '--out', join(dir, 'c'), '--jobs', '1', '--backend', 'native']);
    expect(r3.code).toBe(2);
    expect(r3.err.trim().split('\n').length).toBe(1);
    expect(r3.err).toMatch(/suite\.entries\.init: .* the entry builds dense .*"dModel":32/);
    expect(existsSync(join(dir, 'c'))).toBe(false);
  });
});
