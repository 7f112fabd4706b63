/**
 * The leaderboard in a real headless Chromium (Debian's `chromium` + playwright-core): the tables hold
 * the report's numbers, sorting works, the plots render; a screenshot is saved for humans.
 */
import { describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium } from 'playwright-core';
import { renderLeaderboard } from '../reports/html.js';
import { SCHEMA_VERSION, type Report } from '../reports/schema.js';
import { fakeRecord } from './reports.test.js';
import { readReport } from '../reports/read.js';
import { parseAnchors } from '../reports/anchors.js';
import { readFileSync } from 'node:fs';
import { checkCharts, overlappingFigures, preparePage, waitForCharts } from './browser/page-checks.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
/** No network, no GPU, no sandbox (CI runs as root). */
const LAUNCH = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

describe('leaderboard in headless Chromium', () => {
  it('shows the report numbers, sorts columns, draws plots', async () => {
    if (!existsSync(CHROMIUM)) throw new Error(`Chromium not found at ${CHROMIUM}: run "apt-get install chromium" (as .ci/run does) or set CHROMIUM_PATH`);
    const records = [
      fakeRecord({ runId: 'r1', model: { name: 'dense', size: 'd64', params: { dModel: 64 }, parameterCount: 111 } }, 0.991),
      fakeRecord({ runId: 'r2', model: { name: 'dense', size: 'd128', params: { dModel: 128 }, parameterCount: 222 } }, 0.5),
      fakeRecord({
        runId: 'r3', label: 'niah multikey L256 | dense d64 | lr 0.003 | seed 0',
        task: { name: 'niah', params: { family: 'multikey', haystack: 'random', seqLen: 256, numNeedles: 4 } },
      }, 0.97),
    ];
    // Tabular: two models on two tables, and two widths of the width-scaling benchmark.
    const tab = (id: string, table: string, model: string, acc: number) => {
      const r = fakeRecord({ runId: id, label: `tabular ${table} fold 0 | ${model} | seed 0`, task: { name: 'tabular', params: { table } }, model: { name: model, size: model, params: {}, parameterCount: 0 } }, acc);
      r.metrics.tabular = { table, fold: 0, folds: 5, rocAuc: model === 'orion-msp' ? 0.99 : acc, logLoss: 1 - acc, nTrain: 100, nTest: 50, nFeatures: 4, nClasses: 3, seconds: 0.1, iclSafetyMaxDelta: model === 'orion-msp' ? 0 : null };
      return r;
    };
    records.push(tab('t1', 'iris', 'orion-msp', 0.96), tab('t2', 'iris', 'logreg', 0.94), tab('t3', 'wine', 'orion-msp', 0.9), tab('t4', 'wine', 'logreg', 0.97));
    for (const [f, a, ms] of [[8, 'sparse', 2], [8, 'dense', 2], [2048, 'sparse', 260], [2048, 'dense', 2260]] as const) {
      const r = fakeRecord({ runId: `w${f}${a}`, task: { name: 'width-scaling', params: { features: f, rows: 32 } } }, 0);
      r.metrics.accuracy = null;
      r.metrics.latency = [{ batch: 32, length: f, medianMs: ms, p10Ms: ms, p90Ms: ms, samples: 3, tokensPerSec: 1 }];
      r.metrics.width = { features: f, rows: 32, rowAttention: a, peakBytes: f * 1e5, density: a === 'sparse' && f > 8 ? 0.05 : 1 };
      records.push(r);
    }
    records[2]!.metrics.niahGrid = [64, 128, 256].flatMap((length) => [0, 0.5, 1].map((depth) => ({ length, depth, score: depth === 1 ? 0.9 : 1, examples: 16 })));
    const report: Report = { schemaVersion: SCHEMA_VERSION, suite: 'quick', createdAt: new Date().toISOString(), fingerprint: records[0]!.fingerprint, records };
    const dir = mkdtempSync(join(tmpdir(), 'tr-lb-'));
    const file = join(dir, 'leaderboard.html');
    // PyTorch's reference numbers (an anchors file), shown in their own sortable table
    const anchors = { device: 'NVIDIA H200', torch: '2.11.0', rows: [
      { what: 'sdpa dense', dtype: 'bf16', L: 4096, B: 4, ms: 0.59, density: 1, tflops: 466.4 },
      { what: 'flex window 256', dtype: 'bf16', L: 4096, B: 4, ms: 0.16, density: 0.15, tflops: 254.8 },
    ] };
    writeFileSync(file, renderLeaderboard([{ path: 'report.json', report }], [{ path: 'anchors.json', table: anchors }]));
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: LAUNCH,
    });
    try {
      const page = await browser.newPage();
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(e.message));
      await preparePage(page);
      await page.goto(`file://${file}`);
      await waitForCharts(page);
      const accCells = await page.locator('#runs-mqar tbody tr').evaluateAll((rows) => rows.map((r) => [r.getAttribute('data-run-id'), r.children[3]!.textContent]));
      expect(accCells).toEqual([['r1', '0.9910'], ['r2', '0.5000']]);
      // Sort by accuracy (ascending, then descending) in the best-per-model table.
      const header = page.locator('#best-mqar th', { hasText: /^accuracy$/ });
      await header.click();
      const asc = await page.locator('#best-mqar tbody tr td:nth-child(7)').allTextContents();
      expect(asc).toEqual(['0.5000', '0.9910']);
      await header.click();
      expect(await page.locator('#best-mqar tbody tr td:nth-child(7)').allTextContents()).toEqual(['0.9910', '0.5000']);
      // dense at two d_model values: a line with both points; the NIAH grid: one cell per (depth, length).
      const charts = await checkCharts(page);
      expect(charts.find((c) => c.id === 'chart-mqar-vs-0-0')).toMatchObject({ form: 'line', marks: 2, problems: [] });
      expect(charts.find((c) => c.id === 'chart-niah-grid-0')).toMatchObject({ form: 'heatmap', marks: 9, problems: [] });
      expect(charts.flatMap((c) => c.problems)).toEqual([]);
      expect(await page.locator('#environment details summary').first().textContent()).toContain('suite quick');
      // Tabular section: aggregates (mean over tables, mean rank), per-table accuracies, bar and width plots.
      const agg = await page.locator('#tabular-aggregate tbody tr').evaluateAll((rows) => rows.map((r) => [r.children[0]!.textContent]));
      // ranked by Elo: one table each, a draw in ratings (both 1,000 +- the bootstrap)
      expect(agg.map((r) => r[0]).sort()).toEqual(['logreg', 'orion-msp']);
      expect(await page.locator('#tabular-aggregate tbody tr td:nth-child(9)').allTextContents()).toEqual(['1.50', '1.50']);
      expect(await page.locator('#tabular-aggregate tbody tr td:nth-child(2)').allTextContents()).toEqual(['1,000', '1,000']);
      expect(await page.locator('#tabular-tables tbody tr').count()).toBe(2);
      // TabArena's normalized score, win rate and improvability beside Elo; one win each: 0.5 and 0.5
      expect(await page.locator('#tabular-aggregate tbody tr td:nth-child(11)').allTextContents()).toEqual(['0.5000', '0.5000']);
      expect(await page.locator('#tabular-aggregate tbody tr td:nth-child(12)').allTextContents()).toEqual(['0.5000', '0.5000']);
      // Paired by table against logreg: +0.02 on iris, -0.07 on wine
      expect(await page.locator('#tabular-paired tbody tr td:nth-child(2)').allTextContents()).toEqual(['-0.0250']);
      // Re-ranking in the page from the embedded per-split results: by accuracy a tie; by ROC-AUC orion-msp wins both tables
      const rerank = () => page.locator('#tabular-rerank tbody tr').evaluateAll((rows) => rows.map((r) => [...r.children].map((c) => c.textContent)));
      expect((await rerank()).map((r) => r[1])).toEqual(['1.50', '1.50']);
      await page.selectOption('#tabular-rerank-metric', 'rocAuc');
      expect(await rerank()).toEqual([['orion-msp', '1.00', '1.0000', '1.0000', '0.00', '2'], ['logreg', '2.00', '0.0000', '0.0000', (100 * (0.06 / 0.06 - 0.01 / 0.06) / 2 + 100 * (0.03 - 0.01) / 0.03 / 2).toFixed(2), '2']]);
      await page.selectOption('#tabular-rerank-metric', 'logLoss');
      expect((await rerank()).map((r) => r[1])).toEqual(['1.50', '1.50']);
      expect(charts.find((c) => c.id === 'chart-tabular-rank')).toMatchObject({ form: 'bar', marks: 2 });
      expect(await page.locator('#width-scaling tbody tr td:nth-child(4)').allTextContents()).toEqual(['1.00', '8.69']);
      expect(errors).toEqual([]);
      const gflops = page.locator('#anchors th', { hasText: /^GFLOP\/s$/ });
      await gflops.click();
      expect(await page.locator('#anchors tbody tr td:nth-child(1)').allTextContents()).toEqual(['flex window 256', 'sdpa dense']);
      const shots = resolve('results', 'screenshots');
      mkdirSync(shots, { recursive: true });
      await page.screenshot({ path: join(shots, 'leaderboard.png'), fullPage: true });
      expect(existsSync(join(shots, 'leaderboard.png'))).toBe(true);
    } finally {
      await browser.close();
    }
  });
});

describe('history page in headless Chromium', () => {
  it('plots each run across commits and lists them, from npm run history', async () => {
    const { spawnSync } = await import('node:child_process');
    const root = mkdtempSync(join(tmpdir(), 'tr-hist-'));
    // Three commits' reports: the same two runs, accuracy and latency moving.
    [['aaa1111', 0.90, 10], ['bbb2222', 0.95, 9], ['ccc3333', 0.97, 12]].forEach(([sha, acc, ms], i) => {
      const records = [fakeRecord({ runId: 'r1', gitSha: sha as string }, acc as number, ms as number), fakeRecord({ runId: 'r2', label: 'other run', gitSha: sha as string }, (acc as number) - 0.1, (ms as number) * 2)];
      const report: Report = { schemaVersion: SCHEMA_VERSION, suite: 'quick', createdAt: `2026-12-0${i + 1}T00:00:00Z`, fingerprint: { ...records[0]!.fingerprint, gitSha: sha as string }, records };
      mkdirSync(join(root, `ci-${i}`));
      writeFileSync(join(root, `ci-${i}`, 'report.json'), JSON.stringify(report));
    });
    const out = join(root, 'history.html');
    const r = spawnSync(join('node_modules', '.bin', 'tsx'), [join('scripts', 'history.ts'), root, '--out', out], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/3 reports/);
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: LAUNCH,
    });
    try {
      const page = await browser.newPage();
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(e.message));
      await preparePage(page);
      await page.goto(`file://${out}`);
      await waitForCharts(page);
      const charts = await checkCharts(page);
      expect(charts.map((c) => [c.id, c.form, c.marks, c.problems])).toEqual([['chart-history-accuracy', 'line', 6, []], ['chart-history-latency', 'line', 6, []]]);
      const shas = await page.locator('#history-commits tbody tr td:nth-child(2)').allTextContents();
      expect(shas).toEqual(['aaa1111', 'bbb2222', 'ccc3333']);
      const r1 = await page.locator('#history-runs tbody tr[data-run-id="r1"] td:nth-child(4)').allTextContents();
      expect(r1).toEqual(['0.9000', '0.9500', '0.9700']);
      expect(errors).toEqual([]);
      const shots = resolve('results', 'screenshots');
      mkdirSync(shots, { recursive: true });
      await page.screenshot({ path: join(shots, 'history.png'), fullPage: true });
    } finally {
      await browser.close();
    }
  });
});

const CURRENT = join('reports', 'results', 'current');

/**
 * The committed reports' pages, as a user gets them: the quick suites' page (what `npm run bench`
 * writes) and the default `npm run leaderboard` page (every current report and anchor table).
 * Every chart passes the page checks: data marks drawn, axes titled, no overlapping text, log axes
 * titled "(log scale)" with round ticks, no line chart at one x, no series hidden under another.
 */
describe('leaderboards of the committed reports in headless Chromium', () => {
  const pages: [string, string[], string[]][] = [
    ['quick suites', ['quick-2core.json', 'tabular-quick-2core.json'], []],
    ['all current reports', ['quick-2core.json', 'tabular-quick-2core.json', 'baselines-quick-2core.json', 'baselines-quick-niah-2core.json', 'standard-cell-2core.json', 'kernels-cpu-2core.json', 'tabular-holdout-2core.json',
      'gpu/kernels-gpu-h200.json', 'gpu/large-cells-h200.json', 'gpu/mqar-main-cell-models-h100.json', 'gpu/mqar-lr0.001-models-h200.json', 'sparsify-quick-2core.json', 'gpu/sparsify-gpu-h100.json', 'decode-quick-2core.json', 'gpu/decode-gpu-h100.json', 'trainable-quick-2core.json', 'trainable-sweep-2core.json', 'grid-quick-2core.json', 'gpu/trainable-gpu-h100.json', 'gpu/grid-gpu-h100.json'], ['gpu/anchors-pytorch-h200.json']],
  ];
  for (const [name, files, anchorFiles] of pages) {
    it(`${name}: every chart is drawn and readable`, async () => {
      const reports = files.map((f) => ({ path: f, report: readReport(join(CURRENT, f)) }));
      const anchors = anchorFiles.map((f) => ({ path: f, table: parseAnchors(readFileSync(join(CURRENT, f), 'utf8'), f) }));
      const file = join(mkdtempSync(join(tmpdir(), 'tr-lb-current-')), 'leaderboard.html');
      writeFileSync(file, renderLeaderboard(reports, anchors));
      const browser = await chromium.launch({ executablePath: CHROMIUM, args: LAUNCH });
      try {
        const page = await browser.newPage({ viewport: { width: 1360, height: 900 } });
        const errors: string[] = [];
        page.on('pageerror', (e) => errors.push(e.message));
        await preparePage(page);
        await page.goto(`file://${file}`);
        await waitForCharts(page);
        const charts = await checkCharts(page);
        expect(charts.length).toBeGreaterThanOrEqual(name === 'quick suites' ? 6 : 20);
        expect(charts.filter((c) => c.problems.length).map((c) => `${c.id}: ${c.problems.join('; ')}`)).toEqual([]);
        expect(charts.every((c) => c.marks >= 2)).toBe(true);
        expect(await overlappingFigures(page)).toEqual([]);
        expect(errors).toEqual([]);
        // The quick page's MQAR cell (three models at one configuration) is a bar per model.
        if (name === 'quick suites') expect(charts.find((c) => c.id.startsWith('chart-mqar-by-model'))).toMatchObject({ form: 'bar', marks: 3 });
        // The trainable-sparsity reports: accuracy against training-step time, a point per model (8 at the d64 cell).
        if (name === 'all current reports') expect(charts.filter((c) => c.id.startsWith('chart-mqar-cost')).map((c) => c.form)).toContain('scatter');
        const shots = resolve('results', 'screenshots');
        mkdirSync(shots, { recursive: true });
        await page.screenshot({ path: join(shots, `leaderboard-${name.replace(/ /g, '-')}.png`), fullPage: true });
      } finally {
        await browser.close();
      }
    }, 120_000);
  }
});
