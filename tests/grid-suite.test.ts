/**
 * The grid suite end to end (issue 22): a small bidirectional checkpoint trained here and saved, then
 * `bench --suite` (kind grid) through dense and every method: one record per case with accuracy in
 * [0, 1], sparse methods listing fewer blocks than dense, a time per step and per generation at the
 * checkpoint's grid and a timing grid, ratios to dense; bad input is one line naming the field, and
 * a causal checkpoint is refused.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { useBackend } from '../kernels/backend.js';
import { buildModel } from '../models/registry.js';
import { saveModel } from '../models/saved.js';
import { GridTask, gridShape, parseGridParams } from '../datasets/grid.js';
import { AdamW, OPTIMIZER_DEFAULTS } from '../suites/optimizer.js';
import { trainingStep } from '../suites/train.js';
import { cli } from './faults/harness.js';
import type { Report } from '../reports/schema.js';

const dir = mkdtempSync(join(tmpdir(), 'tr-grid-'));

function checkpoint(name: string, causal: boolean): string {
  const params = { frames: 2, height: 2, width: 8, textPairs: 2, textVocab: 8, gridVocab: 8, numTrainExamples: 256, numTestExamples: 16, denoiseSteps: 2 };
  const p = parseGridParams(params);
  const task = new GridTask(p, 0);
  const mp = { dModel: 32, nLayers: 1, nHeads: 2, causal };
  const m = buildModel('dense', mp, { vocabSize: task.vocabSize, maxLen: task.seqLen, seed: 0 });
  const opt = new AdamW(m.variables(), { ...OPTIMIZER_DEFAULTS, lr: 3e-3, warmupSteps: 0 }, 10);
  for (let s = 0; s < 10; s++) trainingStep(m, opt, task.trainBatch(s, 16)).dispose();
  const path = join(dir, name);
  saveModel(path, m, {
    model: { name: 'dense', size: 'd32', params: mp }, task: { name: 'grid', params }, vocabSize: task.vocabSize, maxLen: gridShape(p).seqLen, seed: 0,
    provenance: { runId: name, label: name, gitSha: 'test', backend: 'native', device: 'cpu', trainSteps: 10, trainSeconds: 0, testAccuracy: null, createdAt: new Date().toISOString() },
  });
  m.dispose();
  opt.dispose();
  return path;
}

function suite(path: string, o: Record<string, unknown> = {}): string {
  const p = join(dir, `grid-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(p, JSON.stringify({
    name: 'grid-test', kind: 'grid', description: 't', seeds: [0],
    grid: { checkpoints: [{ path, task: 'grid', name: 'tiny' }], budgets: [0.5], block: 4, examples: 8, batch: 4, calibrationExamples: 2, reps: 1, timingGrids: [[2, 4, 8]], ...o },
  }));
  return p;
}

let bidir = '', causal = '';
beforeAll(async () => {
  await useBackend('native');
  bidir = checkpoint('bidir', false);
  causal = checkpoint('causal', true);
});

describe('grid suite', () => {
  it('bad input: one line naming the field, nothing written', () => {
    const cases: [string, Record<string, unknown>, RegExp][] = [
      ['b', { methods: ['sparsed', 'magic'] }, /suite\.grid\.methods\.1: must be one of sparsed, adaspa/],
      ['b', { budgets: [1.5] }, /suite\.grid\.budgets\[0\]: must be a number in \(0, 1\]/],
      ['b', { timingGrids: [[2, 4]] }, /suite\.grid\.timingGrids\[0\]: must be \[frames, height, width\]/],
      ['c', {}, /is a causal model; the grid methods are bidirectional/],
    ];
    for (const [which, o, re] of cases) {
      const out = join(dir, `bad-${Math.random().toString(36).slice(2)}`);
      const r = cli('bench.ts', ['--suite', suite(which === 'c' ? causal : bidir, o), '--out', out, '--backend', 'native']);
      expect(r.code).not.toBe(0);
      expect(r.err).toMatch(re);
      expect(existsSync(join(out, 'report.json'))).toBe(false);
    }
  });

  it('every method against dense: accuracy, density, step and generation times, ratios', () => {
    const out = join(dir, 'run');
    const r = cli('bench.ts', ['--suite', suite(bidir), '--out', out, '--backend', 'native']);
    expect(r.code, r.err).toBe(0);
    const rep = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')) as Report;
    const methods = rep.records.map((x) => x.metrics.grid!.method);
    expect(methods).toEqual(['dense', 'sparsed', 'adaspa', 'sparse-vdit', 'efficient-vdit', 'paro', 'mminference']);
    for (const x of rep.records) {
      const g = x.metrics.grid!;
      expect(x.metrics.accuracy!).toBeGreaterThanOrEqual(0);
      expect(x.metrics.accuracy!).toBeLessThanOrEqual(1);
      expect(g.timings.map((t) => t.tokens)).toEqual([41, 64]);
      for (const t of g.timings) {
        expect(t.stepMs).toHaveLength(2);
        expect(t.generation.medianMs).toBeGreaterThan(0);
      }
      if (g.method === 'dense') expect(g.density).toBe(1);
      else {
        // Sparse-vDiT keeps a head dense when no candidate pattern holds its mass (a barely trained model here)
        if (g.method === 'sparse-vdit') expect(g.density).toBeLessThanOrEqual(1);
        else expect(g.density).toBeLessThan(1);
        expect(g.accuracyRatio).not.toBeNull();
        expect(g.timings.every((t) => Number.isFinite(t.speedup))).toBe(true);
        expect(g.picture!.layers).toHaveLength(1);
      }
    }
    expect(r.out).toMatch(/speedup @64/);
  }, 120_000);
});
