/** The leaderboard: ONE self-contained HTML file (inline CSS, JS and SVG) from one or more reports. */
import type { AnchorTable, Report, RunRecord } from './schema.js';
import { barChart, esc, heatmap, linePlot, type Series } from './svg.js';
import { tabularSummary, widthSummary } from './tabular.js';

/** Integers as integers, large values to 0.1, the rest to 4 decimals (accuracies, ratios). */
const num = (x: number | null | undefined) => {
  if (x === null || x === undefined || Number.isNaN(x)) return '';
  if (Number.isInteger(x)) return String(x);
  return Math.abs(x) >= 1000 ? x.toFixed(1) : x.toFixed(4);
};

/** Task configuration without the knobs a leaderboard aggregates over. */
function taskKey(r: RunRecord): string {
  const p = r.task.params;
  if (r.task.name === 'mqar') return `mqar L=${p.inputSeqLen} kv=${p.numKvPairs} V=${p.vocabSize}`;
  if (r.task.name === 'niah') return `niah ${p.family} ${p.haystack} L=${p.seqLen} needles=${p.numNeedles}`;
  return r.task.name;
}

interface BestRow {
  task: string;
  model: string;
  size: string;
  backend: string;
  params: number;
  lr: number;
  accuracy: number;
  exactMatch: number;
  seeds: number;
  latencyMs: number | null;
  records: RunRecord[];
}

/** Per task config, model, size and backend: the learning rate with the best mean accuracy over seeds. */
export function bestRows(records: RunRecord[]): BestRow[] {
  const groups = new Map<string, Map<number, RunRecord[]>>();
  for (const r of records) {
    if (r.failure) continue; // listed under "Failed runs", never averaged in
    const k = [taskKey(r), r.model.name, r.model.size, r.backend].join('\u0000');
    const lr = Number(r.optimizer.lr);
    if (!groups.has(k)) groups.set(k, new Map());
    const g = groups.get(k)!;
    if (!g.has(lr)) g.set(lr, []);
    g.get(lr)!.push(r);
  }
  const out: BestRow[] = [];
  for (const [k, byLr] of groups) {
    const [task, model, size, backend] = k.split('\u0000') as [string, string, string, string];
    let best: BestRow | undefined;
    for (const [lr, rs] of byLr) {
      const mean = (f: (r: RunRecord) => number) => rs.reduce((s, r) => s + f(r), 0) / rs.length;
      const lat = rs[0]!.metrics.latency.find((l) => l.batch === 1);
      const row: BestRow = {
        task, model, size, backend, lr, params: rs[0]!.model.parameterCount, seeds: rs.length, records: rs,
        accuracy: mean((r) => r.metrics.accuracy ?? NaN), exactMatch: mean((r) => r.metrics.exactMatch),
        latencyMs: lat ? mean((r) => r.metrics.latency.find((l) => l.batch === 1 && l.length === lat.length)?.medianMs ?? NaN) : null,
      };
      if (!best || row.accuracy > best.accuracy) best = row;
    }
    out.push(best!);
  }
  return out.sort((a, b) => a.task.localeCompare(b.task) || b.accuracy - a.accuracy);
}

function table(id: string, headers: string[], rows: { cells: (string | number | null | undefined)[]; attrs?: string }[]): string {
  const th = headers.map((h, i) => `<th data-col="${i}">${esc(h)}</th>`).join('');
  const body = rows
    // null: a number JSON could not hold (NaN), shown empty.
    .map((r) => `<tr ${r.attrs ?? ''}>${r.cells.map((c) => (c === null || c === undefined ? '<td class="n" data-v=""></td>' : typeof c === 'number' ? `<td class="n" data-v="${c}">${num(c)}</td>` : `<td>${esc(c)}</td>`)).join('')}</tr>`)
    .join('\n');
  return `<table class="sortable" id="${id}"><thead><tr>${th}</tr></thead><tbody>\n${body}\n</tbody></table>`;
}

function mqarPlots(records: RunRecord[]): string {
  const mq = records.filter((r) => r.task.name === 'mqar');
  if (mq.length === 0) return '';
  const plots: string[] = [];
  // Accuracy vs d_model, one line per model and sequence length (best lr per point).
  const byD = new Map<string, Map<number, number>>();
  const byL = new Map<string, Map<number, number>>();
  for (const r of mq) {
    const d = Number(r.model.params.dModel ?? NaN);
    const L = Number(r.task.params.inputSeqLen);
    const kd = `${r.model.name} L${L} kv${r.task.params.numKvPairs}`;
    const kl = `${r.model.name} d${d} kv${r.task.params.numKvPairs}`;
    if (!Number.isNaN(d)) {
      if (!byD.has(kd)) byD.set(kd, new Map());
      byD.get(kd)!.set(d, Math.max(byD.get(kd)!.get(d) ?? 0, r.metrics.accuracy ?? 0));
    }
    if (!byL.has(kl)) byL.set(kl, new Map());
    byL.get(kl)!.set(L, Math.max(byL.get(kl)!.get(L) ?? 0, r.metrics.accuracy ?? 0));
  }
  const toSeries = (m: Map<string, Map<number, number>>): Series[] => [...m].map(([name, pts]) => ({ name, points: [...pts] }));
  plots.push(linePlot({ title: 'MQAR accuracy vs d_model', xLabel: 'd_model', yLabel: 'accuracy', series: toSeries(byD), logX: true, yMin: 0, yMax: 1 }));
  plots.push(linePlot({ title: 'MQAR accuracy vs sequence length', xLabel: 'sequence length', yLabel: 'accuracy', series: toSeries(byL), logX: true, yMin: 0, yMax: 1 }));
  return `<div class="plots">${plots.join('')}</div>`;
}

function niahPlots(records: RunRecord[]): string {
  const ni = records.filter((r) => r.task.name === 'niah' && r.metrics.niahGrid?.length);
  return `<div class="plots">${ni
    .map((r) => {
      const grid = r.metrics.niahGrid!;
      const depths = [...new Set(grid.map((c) => c.depth))].sort((a, b) => a - b);
      const lengths = [...new Set(grid.map((c) => c.length))].sort((a, b) => a - b);
      return heatmap({
        title: `${r.model.name} ${r.model.size} (seed ${r.seed}, ${r.backend}): score ${(r.metrics.accuracy ?? NaN).toFixed(3)}`,
        rows: depths, cols: lengths, rowLabel: 'depth', colLabel: 'length',
        value: (d, l) => grid.find((c) => c.depth === d && c.length === l)?.score,
      });
    })
    .join('')}</div>`;
}

function latencyPlots(records: RunRecord[]): string {
  const series = new Map<string, Map<number, number>>();
  for (const r of records) {
    for (const l of r.metrics.latency) {
      const k = `${r.model.name} ${r.model.size} b${l.batch} ${r.backend}`;
      if (!series.has(k)) series.set(k, new Map());
      series.get(k)!.set(l.length, l.medianMs);
    }
  }
  const s = [...series].map(([name, pts]) => ({ name, points: [...pts] as [number, number][] }));
  if (s.length === 0) return '';
  return `<div class="plots">${linePlot({ title: 'Inference latency vs length (median)', xLabel: 'sequence length', yLabel: 'ms', series: s, logX: true, logY: true })}</div>`;
}

function fingerprints(reports: { path: string; report: Report }[]): string {
  return reports
    .map(({ path, report }) => {
      const f = report.fingerprint;
      const rows = Object.entries({ ...f, backendInfo: JSON.stringify(f.backendInfo) }).map(([k, v]) => ({ cells: [k, String(v)] }));
      return `<details open><summary>${esc(path)}: suite ${esc(report.suite)}, ${report.records.length} runs, ${esc(report.createdAt)}</summary>${table(`fp-${esc(report.suite)}`, ['field', 'value'], rows)}</details>`;
    })
    .join('\n');
}

export const SORT_JS = `
document.querySelectorAll('table.sortable th').forEach(th => th.addEventListener('click', () => {
  const table = th.closest('table'), body = table.tBodies[0], col = +th.dataset.col;
  const dir = th.dataset.dir === 'asc' ? 'desc' : 'asc';
  table.querySelectorAll('th').forEach(h => delete h.dataset.dir); th.dataset.dir = dir;
  const key = td => td.dataset.v !== undefined ? parseFloat(td.dataset.v) : td.textContent;
  const rows = [...body.rows].sort((a, b) => {
    const x = key(a.cells[col]), y = key(b.cells[col]);
    const c = typeof x === 'number' && typeof y === 'number' ? x - y : String(x).localeCompare(String(y));
    return dir === 'asc' ? c : -c;
  });
  rows.forEach(r => body.appendChild(r));
}));`;

export const CSS = `body{font:14px system-ui,sans-serif;margin:24px;color:#222}table{border-collapse:collapse;margin:8px 0 20px}
th,td{border:1px solid #ccc;padding:3px 8px}th{background:#f3f3f3;cursor:pointer;user-select:none}th[data-dir=asc]::after{content:' ▲'}
th[data-dir=desc]::after{content:' ▼'}td.n{text-align:right;font-variant-numeric:tabular-nums}.plots{display:flex;flex-wrap:wrap;gap:12px}
.plot .t{font-weight:600;font-size:13px}.plot .k{font-size:11px}.plot .ax{stroke:#333}.plot .g{stroke:#eee}h2{margin-top:32px}`;

/** Where a kernel record ran: the GPU (and, for bf16, the kernel the library picked) or the CPU; short git sha. */
function kernelWhere(r: RunRecord): string {
  const info = r.fingerprint.backendInfo ?? {};
  const dev = info.device ?? r.fingerprint.cpu;
  const k = r.metrics.kernel;
  const ran = k?.variant ?? info.bf16Attention;  // per record where the report has it
  const bf16 = k?.precision === 'bf16' && ran ? ` ${ran}` : '';
  return `${dev}${bf16} @${r.gitSha.slice(0, 7)}`;
}

/** Plot series of GPU records carry the GPU and git sha: one line per machine and kernel version. */
function gpuTag(r: RunRecord): string {
  const dev = r.fingerprint.backendInfo?.device;
  return r.backend === 'cuda' && dev ? ` ${dev.replace(/^NVIDIA /, '')}@${r.gitSha.slice(0, 7)}` : '';
}

/** The kernels suite: operator latency tables and plots. */
function kernelsSection(rs: RunRecord[], anchors: { path: string; table: AnchorTable }[]): string {
  const head = '<section id="task-attention-op"><h2>kernels: the shared block-sparse operator</h2>';
  const reference = anchors.length ? anchorsSection(anchors) : '';
  const rows = rs.filter((r) => r.metrics.kernel);
  if (rows.length === 0) return `${head}${reference}</section>`;
  // Reports from different machines and kernel versions share case labels: each row says where it ran.
  const tableHtml = table('kernels', ['case', 'backend', 'device, kernel, git', 'impl', 'precision', 'pass', 'layout', 'B', 'L', 'density', 'median ms', 'p10 ms', 'p90 ms', 'GFLOP/s', 'speedup vs dense'],
    rows.map((r) => {
      const k = r.metrics.kernel!;
      const l = r.metrics.latency[0]!;
      return { attrs: `data-run-id="${r.runId}"`, cells: [r.label, r.backend, kernelWhere(r), k.impl, k.precision ?? 'fp32', k.pass, k.layout, Number(r.task.params.B), Number(r.task.params.L), k.density, l.medianMs, l.p10Ms, l.p90Ms, k.gflops, k.speedupVsDense ?? NaN] };
    }));
  const byKey = (f: (r: RunRecord) => string, x: (r: RunRecord) => number) => {
    const m = new Map<string, [number, number][]>();
    for (const r of rows) {
      const key = f(r);
      if (!m.has(key)) m.set(key, []);
      m.get(key)!.push([x(r), r.metrics.latency[0]!.medianMs]);
    }
    return [...m].map(([name, points]) => ({ name, points }));
  };
  const sweepL = Math.max(...rows.filter((r) => r.metrics.kernel!.layout === 'random').map((r) => Number(r.task.params.L)), 0);
  // The sweep: random block layouts plus the dense layout (density 1) at the sweep length.
  const atSweep = rows.filter((r) => Number(r.task.params.L) === sweepL && ['random', 'dense'].includes(r.metrics.kernel!.layout));
  const densityPlot = atSweep.length
    ? linePlot({
        title: `Operator latency vs density (L=${sweepL})`, xLabel: 'density (listed / all blocks)', yLabel: 'ms',
        series: byKey((r) => `${r.metrics.kernel!.impl} ${({ forward: 'fwd', 'forward+backward': 'fwd+bwd', backward: 'bwd' } as const)[r.metrics.kernel!.pass]} ${r.backend}${gpuTag(r)}`, (r) => r.metrics.kernel!.density)
          .map((s) => ({ ...s, points: s.points.filter((p) => atSweep.some((r) => r.metrics.kernel!.density === p[0] && r.metrics.latency[0]!.medianMs === p[1])) })),
        logY: true,
      })
    : '';
  const lengthPlot = linePlot({
    title: 'Operator latency vs length (forward)', xLabel: 'sequence length', yLabel: 'ms',
    series: byKey((r) => `${r.metrics.kernel!.layout} ${r.metrics.kernel!.impl}${r.metrics.kernel!.precision ? ` ${r.metrics.kernel!.precision}` : ''} ${r.backend}${gpuTag(r)}`, (r) => Number(r.task.params.L))
      .filter((s) => !s.name.startsWith('random'))
      .map((s) => ({ ...s, points: s.points.filter((p) => rows.some((r) => r.metrics.kernel!.pass === 'forward' && r.metrics.latency[0]!.medianMs === p[1])) })),
    logX: true, logY: true,
  });
  return `${head}<div class="plots">${densityPlot}${lengthPlot}</div>${tableHtml}${reference}</section>`;
}

/** Other libraries' numbers at the kernels suite's shapes, each file timed in the same call as a kernels report. */
function anchorsSection(anchors: { path: string; table: AnchorTable }[]): string {
  const rows = anchors.flatMap(({ path, table: a }) => a.rows.map((r) => ({ cells: [r.what, r.dtype, `${a.device}, torch ${a.torch}`, path.split(/[\\/]/).pop()!, r.B, r.L, r.density, r.ms, r.tflops * 1000] })));
  return `<h3>Reference: PyTorch in the same device calls</h3>${table('anchors', ['what', 'dtype', 'device, library', 'file', 'B', 'L', 'density', 'median ms', 'GFLOP/s'], rows)}`;
}

/**
 * One tabular suite: per-table accuracy, aggregates with CIs, mean-rank plot, width scaling. Suites
 * are never pooled (their splits, seeds and checkpoints differ); with several, element ids carry
 * the suite's name.
 */
function tabularSection(rs: RunRecord[], suite: string, idSuffix: string): string {
  const s = tabularSummary(rs);
  const w = widthSummary(rs);
  let out = '';
  if (s.models.length) {
    const per = table(`tabular-tables${idSuffix}`, ['table', 'features', 'classes', 'train rows', ...s.models.map((m) => `${m} acc`)], s.tables.map((t) => {
      const any = rs.find((r) => r.metrics.tabular?.table === t)!.metrics.tabular!;
      return { cells: [t, any.nFeatures, any.nClasses, any.nTrain, ...s.models.map((m) => s.perTable[t]![m]?.accuracy ?? NaN)] };
    }));
    const agg = table(`tabular-aggregate${idSuffix}`, ['model', 'mean accuracy', '95% CI +-', 'mean ROC-AUC', 'mean log-loss', 'mean rank', 'tables'], s.models.map((m) => {
      const a = s.aggregate[m]!;
      return { cells: [m, a.accuracy.mean, a.accuracy.ci95, a.rocAuc.mean, a.logLoss.mean, a.meanRank, a.tables] };
    }));
    const ranked = [...s.models].sort((a, b) => s.aggregate[a]!.meanRank - s.aggregate[b]!.meanRank);
    const plots = barChart({ title: 'Mean rank over tables (1 = best accuracy)', xLabel: 'mean rank', bars: ranked.map((m) => ({ name: m, value: s.aggregate[m]!.meanRank })) })
      + barChart({ title: 'Mean accuracy over tables (95% CI)', xLabel: 'accuracy', xMax: 1, bars: ranked.map((m) => ({ name: m, value: s.aggregate[m]!.accuracy.mean, err: s.aggregate[m]!.accuracy.ci95 })) });
    const safety = rs.filter((r) => r.metrics.tabular?.iclSafetyMaxDelta !== null && r.metrics.tabular?.iclSafetyMaxDelta !== undefined);
    const safe = safety.length ? `<p>ICL-safety probe: over ${safety.length} runs, the largest change of any other test row's probabilities when one test row was replaced: ${num(Math.max(...safety.map((r) => r.metrics.tabular!.iclSafetyMaxDelta!)))}.</p>` : '';
    out += `<h3>Aggregates</h3>${agg}<div class="plots">${plots}</div>${safe}<h3>Per table (mean over folds and seeds)</h3>${per}`;
  }
  if (w.length) {
    const lat = linePlot({ title: 'Row interaction latency vs features', xLabel: 'features', yLabel: 'ms', logX: true, logY: true,
      series: [{ name: 'block-sparse multi-scale', points: w.map((r) => [r.features, r.sparseMs] as [number, number]) }, { name: 'dense', points: w.map((r) => [r.features, r.denseMs] as [number, number]) }] });
    const mem = linePlot({ title: 'Row interaction peak tensor memory vs features', xLabel: 'features', yLabel: 'MB', logX: true, logY: true,
      series: [{ name: 'block-sparse multi-scale', points: w.map((r) => [r.features, r.sparseBytes / 1e6] as [number, number]) }, { name: 'dense', points: w.map((r) => [r.features, r.denseBytes / 1e6] as [number, number]) }] });
    const wt = table(`width-scaling${idSuffix}`, ['features', 'sparse ms', 'dense ms', 'dense / sparse', 'sparse peak MB', 'dense peak MB', 'sparse layout density'], w.map((r) => ({ cells: [r.features, r.sparseMs, r.denseMs, r.denseMs / r.sparseMs, r.sparseBytes / 1e6, r.denseBytes / 1e6, r.sparseDensity] })));
    out += `<h3>Width scaling</h3><div class="plots">${lat}${mem}</div>${wt}`;
  }
  return `<section id="task-tabular${idSuffix}"><h2>tabular in-context learning: suite ${esc(suite)}</h2>${out}</section>`;
}

/** Runs that produced no result (e.g. a non-finite loss): first on the page, never averaged into a table. */
function failedSection(records: RunRecord[]): string {
  const failed = records.filter((r) => r.failure);
  if (!failed.length) return '';
  return `<section id="failed"><h2>Failed runs (${failed.length})</h2>${table('failed-runs', ['run', 'run id', 'reason', 'step', 'message'],
    failed.map((r) => ({ attrs: `data-run-id="${r.runId}"`, cells: [r.label, r.runId, r.failure!.reason, r.failure!.step, r.failure!.message] })))}</section>`;
}

/** anchors: reference tables (scripts/device/anchors.py), shown under the kernels section. */
export function renderLeaderboard(reports: { path: string; report: Report }[], anchors: { path: string; table: AnchorTable }[] = []): string {
  const records = reports.flatMap((r) => r.report.records);
  const TABULAR = ['tabular', 'width-scaling'];
  const tasks = [...new Set(records.map((r) => r.task.name))].filter((t) => t !== 'attention-op' && !TABULAR.includes(t)).sort();
  const tabularRecords = records.filter((r) => TABULAR.includes(r.task.name));
  const tabularSuites = [...new Set(tabularRecords.map((r) => r.suite))];
  const kernelRecords = records.filter((r) => r.task.name === 'attention-op');
  const sections = tasks.map((t) => {
    const rs = records.filter((r) => r.task.name === t);
    const best = bestRows(rs);
    const bestTable = table(`best-${t}`, ['task', 'model', 'size', 'backend', 'params', 'best lr', 'accuracy', 'exact match', 'seeds', 'latency b1 ms'],
      best.map((b) => ({ cells: [b.task, b.model, b.size, b.backend, b.params, String(b.lr), b.accuracy, b.exactMatch, b.seeds, b.latencyMs ?? NaN] })));
    const runs = table(`runs-${t}`, ['run', 'seed', 'backend', 'accuracy', 'denominator', 'exact match', 'steps', 'train tok/s', 'wall s', 'fallbacks'],
      rs.map((r) => ({
        attrs: `data-run-id="${r.runId}"`,
        cells: [r.label, r.seed, r.backend, r.failure ? `FAILED: ${r.failure.reason} at step ${r.failure.step}` : r.metrics.accuracy ?? NaN, r.metrics.accuracyDenominator, r.metrics.exactMatch, r.metrics.trainSteps, r.metrics.trainTokensPerSec, r.wallTimeSeconds, r.fallbackKernels.total],
      })));
    const ok = rs.filter((r) => !r.failure);
    const plots = t === 'mqar' ? mqarPlots(ok) : t === 'niah' ? niahPlots(ok) : '';
    return `<section id="task-${t}"><h2>${esc(t)}</h2><h3>Best per model and size</h3>${bestTable}${plots}${latencyPlots(ok)}<h3>All runs</h3>${runs}</section>`;
  });
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>tabrecall leaderboard</title><style>${CSS}</style></head><body>
<h1>tabrecall leaderboard</h1><p>${records.length} runs from ${reports.length} report(s). Click a column header to sort.</p>
${failedSection(records)}
${sections.join('\n')}
${tabularSuites.map((suite) => tabularSection(tabularRecords.filter((r) => r.suite === suite), suite, tabularSuites.length > 1 ? `-${suite.replace(/[^A-Za-z0-9_-]/g, '_')}` : '')).join('\n')}
${kernelRecords.length || anchors.length ? kernelsSection(kernelRecords, anchors) : ''}
<h2>Environment</h2>${fingerprints(reports)}
<script>${SORT_JS}</script></body></html>`;
}
