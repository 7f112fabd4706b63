/** compare's "no regressions" means every result was compared: missing, new-only and null results count unless --allow-missing. */
import { describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compareReports } from '../../reports/compare.js';
import { SCHEMA_VERSION, type Report, type RunRecord } from '../../reports/schema.js';
import { withLock } from '../../core/files.js';
import { hostname } from 'node:os';

function rec(id: string, acc: number | null, ms: number | null = 10): RunRecord {
  return {
    schemaVersion: SCHEMA_VERSION, runId: id, suite: 's', label: `run ${id}`, task: { name: 'mqar', params: {} }, model: { name: 'dense', size: 'd16', params: {}, parameterCount: 1 },
    train: {}, optimizer: {}, latencyConfig: {}, seed: 0, backend: 'cpu', fingerprint: {} as RunRecord['fingerprint'], gitSha: 'x',
    metrics: {
      accuracy: acc, accuracyDenominator: 1, exactMatch: 0, examples: 1, finalTrainLoss: 0, bestValidAccuracy: 0, trainSteps: 1, stoppedBy: 'maxSteps', trainSeconds: 0,
      trainTokensPerSec: 0, peakMemoryBytes: 0, lossCurve: [], validCurve: [],
      latency: ms === undefined ? [] : [{ batch: 1, length: 16, medianMs: ms as number, p10Ms: 9.9, p90Ms: 10.1, samples: 10, tokensPerSec: 1 }],
    },
    diagnostics: {}, fallbackKernels: { total: 0, byKernel: {} }, wallTimeSeconds: 0, startedAt: '', finishedAt: '',
  };
}
const report = (records: RunRecord[]): Report => ({ schemaVersion: SCHEMA_VERSION, suite: 's', createdAt: '', fingerprint: {} as Report['fingerprint'], records });

describe('compare: absent and null results', () => {
  const base = report([rec('a', 0.9), rec('b', 0.8)]);
  const cases: [string, Report, string][] = [
    ['no runs in common', report([rec('c', 0.9), rec('d', 0.8)]), 'MISSING'],
    ['an empty new report', report([]), 'MISSING'],
    ['a new run only', report([rec('a', 0.9), rec('b', 0.8), rec('e', 0.7)]), 'NEW'],
    ['a null new accuracy', report([rec('a', null), rec('b', 0.8)]), 'MISSING'],
    ['a null new latency median', report([rec('a', 0.9, null), rec('b', 0.8)]), 'MISSING'],
  ];
  for (const [what, next, verdict] of cases) {
    it(`${what}: a regression, and not one with allowMissing`, () => {
      const r = compareReports(base, next);
      expect(r.regressions).toBeGreaterThan(0);
      expect(r.rows.some((x) => x.verdict === verdict)).toBe(true);
      const allowed = compareReports(base, next, { allowMissing: true });
      expect(allowed.regressions).toBe(0);
      expect(allowed.rows.some((x) => x.verdict.endsWith('(allowed)'))).toBe(true);
    });
  }

  it('both reports empty: nothing was compared, which is not "no regressions"', () => {
    expect(compareReports(report([]), report([])).regressions).toBe(1);
  });

  it('a failed new run is a regression even with allowMissing; a run that now works is an improvement', () => {
    const failed = { ...rec('a', null), failure: { reason: 'nonFinite' as const, step: 11, message: 'loss NaN' } };
    expect(compareReports(base, report([failed, rec('b', 0.8)]), { allowMissing: true }).rows.find((x) => x.runId === 'a')!.verdict).toBe('FAILED');
    expect(compareReports(report([failed, rec('b', 0.8)]), base).rows.find((x) => x.runId === 'a')!.verdict).toBe('improved');
  });

  it('the same results compare clean', () => {
    expect(compareReports(base, base).regressions).toBe(0);
  });
});

describe('the results folder lock', () => {
  it('serialises holders in one process and takes over a lock whose process is gone', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tr-lock-'));
    const order: string[] = [];
    const hold = (name: string) => withLock(dir, async () => {
      order.push(`${name}+`);
      await new Promise((r) => setTimeout(r, 30));
      order.push(`${name}-`);
    });
    await Promise.all([hold('a'), hold('b')]);
    expect(order).toEqual(['a+', 'a-', 'b+', 'b-']);
    // A lock left by a killed process (pid 2^22 + 1 is above Linux's pid_max default): taken over at once.
    writeFileSync(join(dir, '.lock'), JSON.stringify({ pid: 4194305, host: hostname(), since: '' }));
    const t0 = Date.now();
    expect(await withLock(dir, () => 42)).toBe(42);
    expect(Date.now() - t0).toBeLessThan(2000);
    rmSync(dir, { recursive: true });
  });
});
