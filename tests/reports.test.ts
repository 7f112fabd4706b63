import { describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, writeFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tableFromIPC } from 'apache-arrow';
import { writeReport } from '../reports/write.js';
import { readReport, ReportError } from '../reports/read.js';
import { compareReports } from '../reports/compare.js';
import { SCHEMA_VERSION, type Report, type RunRecord } from '../reports/schema.js';
import { fingerprint } from '../reports/fingerprint.js';
import { renderLeaderboard } from '../reports/html.js';
import { parseAnchors } from '../reports/anchors.js';

export function fakeRecord(over: Partial<RunRecord> = {}, acc = 0.99, latencyMs = 10): RunRecord {
  const fp = fingerprint('native');
  return {
    schemaVersion: SCHEMA_VERSION,
    runId: 'abc123',
    suite: 'quick',
    label: 'mqar L64 kv8 V256 | dense d64 | lr 0.003 | seed 0',
    task: { name: 'mqar', params: { inputSeqLen: 64, numKvPairs: 8, vocabSize: 256 } },
    model: { name: 'dense', size: 'd64', params: { dModel: 64 }, parameterCount: 1234 },
    train: {}, optimizer: { lr: 0.003 }, latencyConfig: {},
    seed: 0, backend: 'native', fingerprint: fp, gitSha: fp.gitSha,
    metrics: {
      accuracy: acc, accuracyDenominator: 8000, exactMatch: 0.95, examples: 1000, finalTrainLoss: 0.01, bestValidAccuracy: 1,
      trainSteps: 500, stoppedBy: 'perfect', trainSeconds: 10, trainTokensPerSec: 1000, peakMemoryBytes: 1e6,
      latency: [{ batch: 1, length: 64, medianMs: latencyMs, p10Ms: latencyMs * 0.98, p90Ms: latencyMs * 1.02, samples: 50, tokensPerSec: 6400 / latencyMs }],
      lossCurve: [[0, 5]], validCurve: [[100, 1]],
    },
    diagnostics: {}, fallbackKernels: { total: 0, byKernel: {} }, wallTimeSeconds: 12,
    startedAt: new Date().toISOString(), finishedAt: new Date().toISOString(),
    ...over,
  };
}

function report(records: RunRecord[]): Report {
  return { schemaVersion: SCHEMA_VERSION, suite: 'quick', createdAt: new Date().toISOString(), fingerprint: records[0]!.fingerprint, records };
}

describe('reports', () => {
  it('round-trips JSON and writes an Arrow table with one row per run', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tr-rep-'));
    const r = report([fakeRecord(), fakeRecord({ runId: 'def456', seed: 1 }, 0.5)]);
    const paths = writeReport(join(dir, 'report.json'), r);
    expect(readReport(paths.json)).toEqual(r);
    const t = tableFromIPC(readFileSync(paths.arrow));
    expect(t.numRows).toBe(2);
    expect(t.getChild('accuracy')!.get(1)).toBe(0.5);
    expect(t.getChild('run_id')!.get(0)).toBe('abc123');
    expect(readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('refuses unreadable, corrupt and wrong-version reports with one clear error', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tr-bad-'));
    expect(() => readReport(join(dir, 'missing.json'))).toThrow(/cannot read \(ENOENT\)/);
    writeFileSync(join(dir, 'corrupt.json'), '{"schemaVersion": 1, "records": [');
    expect(() => readReport(join(dir, 'corrupt.json'))).toThrow(ReportError);
    expect(() => readReport(join(dir, 'corrupt.json'))).toThrow(/not valid JSON/);
    writeFileSync(join(dir, 'v99.json'), JSON.stringify({ schemaVersion: 99, records: [] }));
    expect(() => readReport(join(dir, 'v99.json'))).toThrow(/schemaVersion must be one of 1, 2, got 99/);
    writeFileSync(join(dir, 'rec.json'), JSON.stringify({ schemaVersion: 1, records: [{ runId: 'x', seed: 0, backend: 'cpu', metrics: {} }] }));
    expect(() => readReport(join(dir, 'rec.json'))).toThrow(/records\[0\]\.metrics\.accuracy: must be a number or null/);
  });

  it('compare flags a planted accuracy drop and a planted slowdown, and nothing on identical reports', () => {
    const base = report([fakeRecord()]);
    expect(compareReports(base, base).regressions).toBe(0);
    const accDrop = compareReports(base, report([fakeRecord({}, 0.9)]));
    expect(accDrop.regressions).toBe(1);
    expect(accDrop.rows.find((r) => r.metric === 'accuracy')!.verdict).toBe('REGRESSION');
    const slower = compareReports(base, report([fakeRecord({}, 0.99, 13)]));
    expect(slower.rows.find((r) => r.metric.startsWith('latency'))!.verdict).toBe('REGRESSION');
    // Within the noise threshold (10% here, spread is small): not a regression.
    expect(compareReports(base, report([fakeRecord({}, 0.99, 10.5)])).regressions).toBe(0);
  });

  it('compare widens the latency threshold when measurements are noisy', () => {
    const noisy = (ms: number) => {
      const r = fakeRecord({}, 0.99, ms);
      r.metrics.latency[0] = { ...r.metrics.latency[0]!, p10Ms: ms * 0.8, p90Ms: ms * 1.2 };
      return r;
    };
    // Spread 0.4 -> threshold 1 + 3*0.4 = 2.2x: a 1.5x slowdown is noise.
    expect(compareReports(report([noisy(10)]), report([noisy(15)])).regressions).toBe(0);
    expect(compareReports(report([noisy(10)]), report([noisy(25)])).regressions).toBe(1);
  });

  it('the leaderboard is one self-contained file holding the report numbers', () => {
    const html = renderLeaderboard([{ path: 'r.json', report: report([fakeRecord()]) }]);
    expect(html).not.toMatch(/<script src=|<link /);
    expect(html).toContain('0.9900');
    expect(html).toContain('data-run-id="abc123"');
  });

  it('kernel rows say where they ran: GPU, the bf16 kernel picked, git sha', () => {
    const kr = (device: string, kernel: string, sha: string): RunRecord => {
      const r = fakeRecord({ suite: 'kernels-gpu', runId: `k-${sha}`, label: 'attention forward | dense L4096 | fused bf16 | cuda', backend: 'cuda', gitSha: sha, task: { name: 'attention-op', params: { B: 4, L: 4096 } } });
      r.fingerprint = { ...r.fingerprint, backendInfo: { device, bf16Attention: kernel } };
      r.metrics.kernel = { layout: 'dense', impl: 'fused', precision: 'bf16', pass: 'forward', density: 1, flops: 1, gflops: 1, speedupVsDense: null };
      return r;
    };
    const html = renderLeaderboard([{ path: 'k.json', report: { ...report([kr('NVIDIA H200', 'wgmma-pipe1-s4', 'aaaaaaa1'), kr('NVIDIA H100', 'mma.sync', 'bbbbbbb2')]), suite: 'kernels-gpu' } }]);
    expect(html).toContain('NVIDIA H200 wgmma-pipe1-s4 @aaaaaaa');
    expect(html).toContain('NVIDIA H100 mma.sync @bbbbbbb');
  });

  it('anchor tables (PyTorch in the same device call) render under the kernels section; bad fields are named', () => {
    const text = JSON.stringify({ device: 'NVIDIA H200', torch: '2.11.0', rows: [{ what: 'sdpa dense', dtype: 'bf16', L: 4096, B: 4, ms: 0.5894, density: 1, tflops: 466.4 }] });
    const table = parseAnchors(text, 'a.json');
    const html = renderLeaderboard([], [{ path: 'gpu/anchors-x.json', table }]);
    const section = html.slice(html.indexOf('<section id="task-attention-op"'));
    expect(section).toContain('id="anchors"');
    expect(section).toContain('<td>sdpa dense</td><td>bf16</td><td>NVIDIA H200, torch 2.11.0</td><td>anchors-x.json</td>');
    expect(section).toContain('data-v="0.5894">0.589</td><td class="n" data-v="466400">466,400.0</td>');
    expect(() => parseAnchors(JSON.stringify({ device: 'x', torch: 'y', rows: [{ what: 'w', dtype: 'bf16', L: 1, B: 1, ms: 'fast', density: 1, tflops: 1 }] }), 'b.json'))
      .toThrow(/anchors b\.json: rows\[0\]\.ms must be a finite number/);
    expect(() => parseAnchors('{"device": "x", "torch": "y"}', 'c.json')).toThrow(/anchors c\.json: rows must be an array/);
  });

  it('tabular suites get one section each, never pooled', () => {
    const tab = (suite: string, table: string, acc: number): RunRecord => {
      const r = fakeRecord({ suite, runId: `${suite}-${table}`, task: { name: 'tabular', params: { table } }, model: { name: 'logreg', size: 'logreg', params: {}, parameterCount: 0 } }, acc);
      r.metrics.tabular = { table, fold: 0, folds: 5, rocAuc: acc, logLoss: 1 - acc, nTrain: 100, nTest: 50, nFeatures: 4, nClasses: 3, seconds: 0.1, iclSafetyMaxDelta: null };
      return r;
    };
    const html = renderLeaderboard([
      { path: 'a.json', report: { ...report([tab('tabular-quick', 'iris', 0.9)]), suite: 'tabular-quick' } },
      { path: 'b.json', report: { ...report([tab('tabular-holdout', 'iris', 0.7)]), suite: 'tabular-holdout' } },
    ]);
    const section = (id: string): string => html.slice(html.indexOf(`<section id="${id}"`), html.indexOf('</section>', html.indexOf(`<section id="${id}"`)));
    expect(section('task-tabular-tabular-quick')).toContain('0.9000');
    expect(section('task-tabular-tabular-quick')).not.toContain('0.8000');
    expect(section('task-tabular-tabular-holdout')).toContain('0.7000');
    expect(html).toContain('id="tabular-aggregate-tabular-holdout"');
  });
});

describe('leaderboard: sparsity section', () => {
  const timing = (ms: number) => ({ medianMs: ms, p10Ms: ms * 0.9, p90Ms: ms * 1.1, samples: 3 });
  const sp = (method: string, budget: number, acc: number, density: number, ms: number): RunRecord => {
    const base = fakeRecord({ runId: `${method}-${budget}`, suite: 'sparsify-quick', label: `niah-L1024 | ${method} budget ${budget}`, task: { name: 'niah', params: { family: 'multikey', seqLen: 1024, numNeedles: 4 } } }, acc);
    base.metrics.sparsify = {
      checkpoint: 'niah-L1024', checkpointSha256: 'ab', method, budget, budgetMeaning: 'x', block: 64, length: 1024, blockDensity: density, pairDensity: density * 0.8,
      perHead: { blocks: [[density, density], [density, density]], pairs: [[density, density], [density, density]] }, selector: method === 'dense' ? null : timing(1),
      attention: timing(ms), prefill: timing(ms * 2), costs: [{ length: 1024, selector: method === 'dense' ? null : timing(1), attention: timing(ms), prefill: timing(ms * 2) }],
      calibrationSeconds: 0, denseAccuracy: 0.98, accuracyRatio: acc / 0.98, prefillSpeedup: 1.5, attentionSpeedup: 2, selectorShare: 0.1,
    };
    return base;
  };
  it('draws accuracy against block density per method, the per-head densities and prefill time, and lists every case', () => {
    const recs = [sp('dense', 1, 0.98, 1, 10), sp('oracle', 0.1, 0.97, 0.12, 3), sp('oracle', 0.2, 0.98, 0.21, 4), sp('a-shape', 0.1, 0.2, 0.12, 2), sp('a-shape', 0.2, 0.3, 0.21, 3)];
    const html = renderLeaderboard([{ path: 's.json', report: { ...report(recs), suite: 'sparsify-quick' } }]);
    expect(html).toContain('<section id="sparsity">');
    expect(html).toContain('href="#sparsity"');
    for (const id of ['sparsity-pareto-0', 'sparsity-heads-0', 'sparsity-prefill-0']) expect(html).toContain(id);
    expect((html.match(/<tr /g) ?? []).length).toBeGreaterThanOrEqual(5 + 4); // the cases table and the cost rows of the 4 non-dense cases
    // Sparsify records are not trained models: they stay out of the recall section.
    expect(html).not.toContain('<section id="recall">');
  });
  it('budgets at the density floor (the same layout) become one point listing their budgets', () => {
    const recs = [sp('dense', 1, 0.98, 1, 10), sp('seer', 0.05, 0.1, 0.118, 3), sp('seer', 0.1, 0.1, 0.118, 3), sp('seer', 0.2, 0.4, 0.23, 4)];
    const html = renderLeaderboard([{ path: 's.json', report: { ...report(recs), suite: 'sparsify-quick' } }]);
    expect(html).toContain('sparsity-pareto-0');
    expect(html).toContain('0.05, 0.1');
  });
});
