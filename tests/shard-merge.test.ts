/** Issue 24's scheduler-free scale-out: bench --shard i/n slices a suite, npm run merge joins the folders. */
import { describe, expect, it } from 'vitest';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { assignShards, parseShard } from '../suites/shard.js';
import type { Report } from '../reports/schema.js';
import { cli, tinySuite } from './faults/harness.js';

const ids = (dir: string) => readdirSync(join(dir, 'runs')).filter((f) => f.endsWith('.json')).map((f) => f.replace(/\.json$/, '')).sort();
const accuracies = (dir: string) => Object.fromEntries((JSON.parse(readFileSync(join(dir, 'report.json'), 'utf8')) as Report).records.map((r) => [r.runId, r.metrics.accuracy]));

describe('shards', () => {
  it('LPT assignment: every job once, shard costs within one job of each other, the same every time', () => {
    const jobs = Array.from({ length: 23 }, (_, i) => ({ id: `j${i}`, cost: 1 + ((i * 7) % 5) }));
    for (const n of [1, 2, 3, 4, 30]) {
      const a = assignShards(jobs, n);
      expect(a.size).toBe(jobs.length);
      const load = new Array<number>(n).fill(0);
      for (const j of jobs) load[a.get(j.id)!]! += j.cost;
      if (n < jobs.length) expect(Math.max(...load) - Math.min(...load)).toBeLessThanOrEqual(5);
      expect([...assignShards(jobs, n)]).toEqual([...a]);
    }
    expect(parseShard('1/4')).toEqual({ index: 1, count: 4 });
    for (const bad of ['4/4', '1', '-1/2', 'a/b', '0/0']) expect(() => parseShard(bad)).toThrow(/--shard: must be i\/n with 0 <= i < n/);
  });

  it('two shards merged equal the whole suite run in one process (accuracies bit for bit); bad merges refused with one line, nothing written', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tr-shard-'));
    const suite = tinySuite(dir, { seeds: [0, 1, 2] });
    const whole = join(dir, 'whole'), s0 = join(dir, 's0'), s1 = join(dir, 's1'), merged = join(dir, 'merged');
    expect(cli('bench.ts', ['--suite', suite, '--backend', 'native', '--jobs', '1', '--out', whole]).code).toBe(0);
    for (const [i, d] of [[0, s0], [1, s1]] as const) {
      const r = cli('bench.ts', ['--suite', suite, '--backend', 'native', '--jobs', '1', '--out', d, '--shard', `${i}/2`]);
      expect(r.code).toBe(0);
      expect(r.err).toMatch(new RegExp(`shard ${i}/2 of suite tiny: \\d of 3 runs`));
    }
    expect(ids(s0).filter((x) => ids(s1).includes(x))).toEqual([]);
    expect([...ids(s0), ...ids(s1)].sort()).toEqual(ids(whole));
    const m = cli('merge.ts', [s0, s1, '--out', merged]);
    expect(m.code).toBe(0);
    expect(m.out).toMatch(/merged 3 runs of suite tiny from 2 folder\(s\)/);
    expect(accuracies(merged)).toEqual(accuracies(whole));
    expect(existsSync(join(merged, 'leaderboard.html')) && existsSync(join(merged, 'report.arrow'))).toBe(true);

    // Another suite's folder
    const other = join(dir, 'other');
    expect(cli('bench.ts', ['--suite', tinySuite(dir, { name: 'tiny2', seeds: [0] }), '--backend', 'native', '--jobs', '1', '--out', other]).code).toBe(0);
    const mixedSuites = cli('merge.ts', [s0, other, '--out', join(dir, 'm1')]);
    expect(mixedSuites.code).toBe(2);
    expect(mixedSuites.err.trim().split('\n')).toHaveLength(1);
    expect(mixedSuites.err).toMatch(/different suites: tiny .*tiny2/);
    expect(existsSync(join(dir, 'm1'))).toBe(false);
    // Another code version
    const old = join(dir, 'old');
    cpSync(s1, old, { recursive: true });
    for (const f of readdirSync(join(old, 'runs'))) {
      const p = join(old, 'runs', f);
      writeFileSync(p, readFileSync(p, 'utf8').replace(/"gitSha": "[0-9a-f]+"/g, '"gitSha": "0123456789ab"'));
    }
    const mixed = cli('merge.ts', [s0, old, '--out', join(dir, 'm2')]);
    expect(mixed.code).toBe(2);
    expect(mixed.err).toMatch(/different code versions: .*0123456789ab.*pass --allow-mixed/);
    expect(existsSync(join(dir, 'm2'))).toBe(false);
    expect(cli('merge.ts', [s0, old, '--out', join(dir, 'm3'), '--allow-mixed']).code).toBe(0);
    // One run, two different results
    const dup = join(dir, 'dup');
    cpSync(s0, dup, { recursive: true });
    const f = readdirSync(join(dup, 'runs')).find((x) => x.endsWith('.json'))!;
    const rec = JSON.parse(readFileSync(join(dup, 'runs', f), 'utf8'));
    rec.metrics.accuracy = rec.metrics.accuracy === 0 ? 0.5 : 0;
    writeFileSync(join(dup, 'runs', f), JSON.stringify(rec));
    const clash = cli('merge.ts', [s0, dup, '--out', join(dir, 'm4')]);
    expect(clash.code).toBe(2);
    expect(clash.err).toMatch(new RegExp(`run ${f.replace('.json', '')} .* has different results in .*s0 and .*dup`));
    expect(existsSync(join(dir, 'm4'))).toBe(false);
    // The same result twice is kept once
    expect(cli('merge.ts', [s0, s0, s1, '--out', join(dir, 'm5')]).out).toMatch(/merged 3 runs/);
    expect(cli('bench.ts', ['--suite', suite, '--backend', 'native', '--out', join(dir, 'x'), '--shard', '2/2']).err).toMatch(/--shard: must be i\/n with 0 <= i < n/);
  });
});
