/**
 * A bench never loses or corrupts results: killed at any rename it leaves readable files and
 * `--resume` repairs everything (no temp file left); report.json holds every record in runs/ whatever
 * the filter, and two benches on one folder both end up in it; a NaN loss is a failed run, not a number.
 */
import { describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CHILD_ENV, cli, filesUnder, killAtFault, tinySuite, TSX } from './harness.js';

const report = (out: string) => JSON.parse(readFileSync(join(out, 'report.json'), 'utf8'));
const temps = (out: string) => filesUnder(out).filter((f) => f.endsWith('.tmp'));

describe('bench killed at each rename', () => {
  const root = mkdtempSync(join(tmpdir(), 'tr-bench-kill-'));
  const suite = tinySuite(root);
  // A run record, the Arrow report, the JSON report: the three files a finished run renames into place.
  for (const point of ['[0-9a-f]{16}\\.json', 'report\\.arrow', 'report\\.json'])
    for (const signal of ['SIGINT', 'SIGKILL'] as const) {
      it(`${signal} at rename:${point}: what is on disk is readable, --resume completes it`, async () => {
        const out = join(root, `${signal}-${point.replace(/\W/g, '')}`);
        await killAtFault('bench.ts', ['--suite', suite, '--backend', 'native', '--out', out, '--jobs', '1'], `rename:${point}`, signal);
        expect(temps(out).length).toBeGreaterThan(0); // the kill left its temp file behind...
        for (const f of filesUnder(out).filter((x) => x.endsWith('.json'))) expect(() => JSON.parse(readFileSync(join(out, f), 'utf8')), f).not.toThrow();
        const r = cli('bench.ts', ['--suite', suite, '--backend', 'native', '--out', out, '--resume', '--jobs', '1']);
        expect(r.code, r.err).toBe(0);
        expect(temps(out)).toEqual([]); // ...and the next bench removed it
        const rep = report(out);
        expect(rep.records.map((x: { seed: number }) => x.seed)).toEqual([0, 1]);
        expect(readdirSync(join(out, 'runs')).sort()).toEqual(rep.records.map((x: { runId: string }) => `${x.runId}.json`).sort());
        expect(existsSync(join(out, 'report.arrow'))).toBe(true);
      });
    }
});

describe('bench --jobs 2', () => {
  it('SIGKILL of the whole bench while a worker renames a record: --resume (with workers) completes it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tr-workers-'));
    const suite = tinySuite(dir, { seeds: [0, 1, 2] });
    const out = join(dir, 'out');
    await killAtFault('bench.ts', ['--suite', suite, '--backend', 'native', '--out', out, '--jobs', '2'], 'rename:[0-9a-f]{16}\\.json', 'SIGKILL');
    const r = cli('bench.ts', ['--suite', suite, '--backend', 'native', '--out', out, '--resume', '--jobs', '2']);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/3 runs in .* \(2 workers\)/);
    expect(report(out).records.map((x: { seed: number }) => x.seed)).toEqual([0, 1, 2]);
    expect(report(out).fingerprint.backendInfo.concurrentJobs).toBe('2');
    expect(temps(out)).toEqual([]);
    expect(existsSync(join(out, 'claims'))).toBe(false);
  });
});

describe('report.json holds every record in runs/', () => {
  it('a filtered bench (with or without --resume) keeps the other runs in the report', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tr-filter-'));
    const suite = tinySuite(dir);
    const out = join(dir, 'out');
    expect(cli('bench.ts', ['--suite', suite, '--backend', 'native', '--out', out, '--jobs', '1']).code).toBe(0);
    const before = report(out).records.map((x: { runId: string }) => x.runId);
    for (const extra of [['--resume'], []]) {
      const r = cli('bench.ts', ['--suite', suite, '--backend', 'native', '--out', out, '--filter', 'seed 1', '--jobs', '1', ...extra]);
      expect(r.code, r.err).toBe(0);
      expect(report(out).records.map((x: { runId: string }) => x.runId)).toEqual(before); // same runs, planned order
      expect(r.out).toMatch(/the report also keeps 1 earlier record/);
    }
  });

  it('two benches on one --out at once: both runs are in the final report', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tr-concurrent-'));
    const suite = tinySuite(dir);
    const out = join(dir, 'out');
    const run = (filter: string) => new Promise<number>((resolve) => {
      spawn(TSX, [join('scripts', 'bench.ts'), '--suite', suite, '--backend', 'native', '--out', out, '--filter', filter], { stdio: 'ignore', env: CHILD_ENV }).on('exit', (c) => resolve(c ?? -1));
    });
    expect(await Promise.all([run('seed 0'), run('seed 1')])).toEqual([0, 0]);
    expect(report(out).records.map((x: { seed: number }) => x.seed)).toEqual([0, 1]);
    expect(existsSync(join(out, '.lock'))).toBe(false);
    expect(temps(out)).toEqual([]);
  });
});

describe('a non-finite loss', () => {
  it('fails the run with a record that says so; bench exits 1; the leaderboard and compare show it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tr-nan-'));
    const good = join(dir, 'good');
    const bad = join(dir, 'bad');
    expect(cli('bench.ts', ['--suite', tinySuite(dir, { seeds: [0] }), '--backend', 'native', '--out', good]).code).toBe(0);
    const r = cli('bench.ts', ['--suite', tinySuite(dir, { seeds: [0], lr: 1000, name: 'tiny-nan' }), '--backend', 'native', '--out', bad]);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/FAILED mqar .* lr 1000 .*: nonFinite at step \d+: training loss became NaN/);
    const rec = report(bad).records[0];
    expect(rec.failure).toMatchObject({ reason: 'nonFinite' });
    expect(rec.metrics.stoppedBy).toBe('nonFinite');
    expect(rec.metrics.accuracy).toBeNull();
    expect(rec.metrics.trainSteps).toBeLessThan(20);
    expect(readFileSync(join(bad, 'leaderboard.html'), 'utf8')).toMatch(/<h2>Failed runs \(1\)<\/h2>/);
    // --resume keeps the failed record (same seed, same failure) and still exits 1.
    expect(cli('bench.ts', ['--suite', join(dir, 'tiny-nan.json'), '--backend', 'native', '--out', bad, '--resume']).code).toBe(1);
    // compare: a failed run is a regression, whether or not the base report has its run id.
    const c = cli('compare.ts', [join(good, 'report.json'), join(bad, 'report.json')]);
    expect(c.code).toBe(1);
    expect(c.out).toMatch(/FAILED/);
    expect(cli('compare.ts', [join(bad, 'report.json'), join(bad, 'report.json')]).code).toBe(1);
  });
});

describe('bad settings: one line naming the field and the allowed values, exit 2, nothing written', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tr-bad-'));
  const cases: [string, Parameters<typeof tinySuite>[1], RegExp][] = [
    ['negative maxSteps', { train: { maxSteps: -1 } }, /suite\.entries\[0\]\.train\.maxSteps: must be an integer in \[1, /],
    ['batchSize 0', { train: { batchSize: 0 } }, /suite\.entries\[0\]\.train\.batchSize: must be an integer in \[1, /],
    ['a typo (maxStep)', { train: { maxStep: 10 } }, /suite\.entries\[0\]\.train\.maxStep: unknown parameter; allowed: maxSteps, batchSize/],
    ['a latency typo', { latency: { lenghts: [16] } }, /suite\.entries\[0\]\.latency\.lenghts: unknown parameter; allowed: batches, lengths/],
    ['a latency length above the model maximum', { latency: { lengths: [16, 64] } }, /suite\.entries\[0\]\.latency\.lengths: 64 exceed the longest sequence the model is built for \(16/],
    ['lr 0', { lr: 0 }, /suite\.entries\[0\]\.optimizer\.lr: must be greater than 0/],
  ];
  for (const [what, o, re] of cases) {
    it(what, () => {
      const out = join(dir, what.replace(/\W/g, ''));
      const r = cli('bench.ts', ['--suite', tinySuite(dir, { ...o, name: 'bad' }), '--backend', 'native', '--out', out]);
      expect(r.code).toBe(2);
      expect(r.err.trim().split('\n')).toHaveLength(1);
      expect(r.err).toMatch(re);
      expect(existsSync(out)).toBe(false);
    });
  }

  it('unknown keys of a suite, an entry and a kernels suite', () => {
    const write = (name: string, s: unknown) => {
      const p = join(dir, `${name}.json`);
      writeFileSync(p, JSON.stringify(s));
      return p;
    };
    const base = JSON.parse(readFileSync(tinySuite(dir, { name: 'base' }), 'utf8'));
    const variants: [unknown, RegExp][] = [
      [{ ...base, seed: [0] }, /suite\.seed: unknown parameter; allowed: name, description, kind, seeds/],
      [{ ...base, entries: [{ ...base.entries[0], trian: {} }] }, /suite\.entries\[0\]\.trian: unknown parameter; allowed: init, task, taskParams/],
      [{ ...base, entries: [{ ...base.entries[0], sweep: { 'train.maxSteps': [-5] } }] }, /suite\.entries\[0\]\.train\.maxSteps: must be an integer in \[1, /],
      [{ name: 'k', seeds: [0], kind: 'kernels', kernels: { lenghts: [512] } }, /suite\.kernels\.lenghts: unknown parameter; allowed: backends, B, H/],
      [{ name: 'k', seeds: [0], kind: 'kernels', kernels: { impls: ['fast'] } }, /suite\.kernels\.impls\.0: must be one of fused, generic/],
    ];
    variants.forEach(([s, re], i) => {
      const r = cli('bench.ts', ['--suite', write(`v${i}`, s), '--list']);
      expect(r.code, String(re)).toBe(2);
      expect(r.err).toMatch(re);
    });
  });

  it('a missing checkpoint or .onnx file', () => {
    const tab = (model: Record<string, unknown>) => {
      const p = join(dir, 'tab.json');
      writeFileSync(p, JSON.stringify({ name: 'tab', seeds: [0], kind: 'tabular', tabular: { tables: ['iris'], folds: 5, evalFolds: 1, models: [model] } }));
      return p;
    };
    for (const [model, re] of [
      [{ name: 'orion-msp', checkpoint: 'no/such/ckpt' }, /suite\.tabular\.models\[0\]\.checkpoint: no usable checkpoint at no\/such\/ckpt: no checkpoint at .*model\.json missing/],
      [{ name: 'onnx', path: 'no/such/model.onnx' }, /suite\.tabular\.models\[0\]\.path: no such file: no\/such\/model\.onnx/],
    ] as const) {
      const r = cli('bench.ts', ['--suite', tab(model), '--backend', 'native', '--out', join(dir, 'tab-out')]);
      expect(r.code, r.err).toBe(2);
      expect(r.err.trim().split('\n')).toHaveLength(1);
      expect(r.err).toMatch(re);
    }
  });
});
