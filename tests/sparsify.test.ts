/**
 * The sparsify suite: bad input (unknown method, budget outside (0, 1], a checkpoint trained on another
 * task) fails with one line naming the field and the allowed values and writes nothing; a run on a
 * tiny saved model reports densities, costs and ratios, and at budget 1 every block selector computes
 * all causal blocks and scores exactly what dense scores.
 */
import { describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cli, tinySuite } from './faults/harness.js';

function sparsifySuite(dir: string, ck: string, o: Record<string, unknown> = {}, task = 'mqar'): string {
  const p = join(dir, `sp-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(p, JSON.stringify({
    name: 'sp-test', kind: 'sparsify', description: 't', seeds: [0],
    sparsify: { checkpoints: [{ path: ck, task, name: 'tiny' }], methods: ['oracle', 'a-shape', 'seer', 'minference'], budgets: [0.5, 1], block: 8, examples: 8, batch: 4, calibrationExamples: 2, reps: 1, ...o },
  }));
  return p;
}

describe('sparsify suite', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tr-sp-'));
  const models = join(dir, 'models');
  let ck = '';
  it('trains and saves a tiny model to sparsify', () => {
    const r = cli('bench.ts', ['--suite', tinySuite(dir, { seeds: [0], train: { maxSteps: 30, evalEvery: 10 } }), '--out', join(dir, 'train'), '--jobs', '1', '--backend', 'native', '--save-models', models]);
    expect(r.code, r.err).toBe(0);
    ck = join(models, readdirSync(models)[0]!);
  });
  it('bad input: one line naming the field and the allowed values, nothing written', () => {
    const cases: [Record<string, unknown>, string, RegExp][] = [
      [{ methods: ['oracle', 'magic'] }, 'mqar', /suite\.sparsify\.methods\.1: must be one of oracle, a-shape, window, minference, flexprefill, anchor, pbs, seer, double-sparsity/],
      [{ budgets: [0.5, 0] }, 'mqar', /suite\.sparsify\.budgets\[1\]: must be a number in \(0, 1\], got 0/],
      [{ budgets: [1.5] }, 'mqar', /suite\.sparsify\.budgets\[0\]: must be a number in \(0, 1\]/],
      [{}, 'niah', /suite\.sparsify\.checkpoints\[0\]\.task: the checkpoint at .* was trained on "mqar", not "niah"; allowed: "mqar"/],
      [{ checkpoints: [{ path: join(dir, 'none'), task: 'mqar' }] }, 'mqar', /checkpoint: no saved model at/],
    ];
    for (const [o, task, re] of cases) {
      const out = join(dir, `bad-${Math.random().toString(36).slice(2)}`);
      const r = cli('bench.ts', ['--suite', sparsifySuite(dir, ck, o, task), '--out', out, '--backend', 'native']);
      expect(r.code, r.err).toBe(2);
      expect(r.err.trim().split('\n').length, r.err).toBe(1);
      expect(r.err).toMatch(re);
      expect(existsSync(out)).toBe(false);
    }
  });
  it('reports densities, costs and ratios; budget 1 scores exactly what dense scores', () => {
    const out = join(dir, 'sp');
    const r = cli('bench.ts', ['--suite', sparsifySuite(dir, ck), '--out', out, '--jobs', '1', '--backend', 'native']);
    expect(r.code, r.err).toBe(0);
    const recs = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')).records as { label: string; metrics: { accuracy: number; sparsify: Record<string, never> } }[];
    expect(recs.length).toBe(1 + 4 * 2);
    const dense = recs.find((x) => x.metrics.sparsify.method === 'dense')!;
    for (const x of recs) {
      const s = x.metrics.sparsify as unknown as { method: string; budget: number; blockDensity: number; pairDensity: number; perHead: { blocks: number[][] }; attention: { medianMs: number }; prefill: { medianMs: number }; accuracyRatio: number | null; selector: unknown };
      expect(s.perHead.blocks.length).toBe(1); // one layer
      expect(s.perHead.blocks[0]!.length).toBe(2); // two heads
      expect(s.prefill.medianMs).toBeGreaterThan(0);
      expect(s.attention.medianMs).toBeGreaterThan(0);
      if (s.method === 'dense') continue;
      expect(s.selector).not.toBeNull();
      expect(s.accuracyRatio).toBeCloseTo(x.metrics.accuracy / dense.metrics.accuracy, 12);
      if (s.budget === 1 && s.method !== 'minference') {
        expect(s.blockDensity, x.label).toBe(1);
        expect(x.metrics.accuracy, x.label).toBe(dense.metrics.accuracy);
      }
      if (s.budget === 0.5 && s.method !== 'minference') expect(s.blockDensity).toBeLessThan(0.75);
    }
  });
});
