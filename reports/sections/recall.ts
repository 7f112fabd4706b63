/** Recall: MQAR and NIAH accuracy per model, against the sweep axes the reports hold, and NIAH's depth x length grids. */
import { chooseChart, heatmapChart, type Chart, type ChartPoint } from '../page/charts.js';
import { esc, howToRead, table, type Page } from '../page/page.js';
import type { RunRecord } from '../schema.js';
import { bestRows, interval, taskTitle, type BestRow } from './rows.js';

interface SweepAxis {
  title: string;
  of: (r: RunRecord) => number;
}

const D_MODEL: SweepAxis = { title: 'd_model', of: (r) => Number(r.model.params.dModel ?? NaN) };

const TASKS: Record<string, { subject: string; axes: SweepAxis[]; fixed: (r: RunRecord) => string; how: string }> = {
  mqar: {
    subject: 'MQAR accuracy',
    axes: [D_MODEL, { title: 'kv pairs', of: (r) => Number(r.task.params.numKvPairs) }, { title: 'sequence length', of: (r) => Number(r.task.params.inputSeqLen) }],
    fixed: (r) => `V${r.task.params.vocabSize}`,
    how: 'accuracy is the fraction of queried keys whose value the model predicts on held-out examples (Zoology\'s MQAR metric; 1 = perfect recall). '
      + 'Each bar or point is the best learning rate\'s mean over seeds, with a 95% interval over seeds where there are several. Exact match counts examples with every query right.',
  },
  niah: {
    subject: 'NIAH score',
    axes: [D_MODEL, { title: 'training length', of: (r) => Number(r.task.params.seqLen) }],
    fixed: (r) => `${r.task.params.family} ${r.task.params.numNeedles} ${r.task.params.haystack} ${r.task.params.numQueries ?? ''}`,
    how: 'the score is the exact-match rate of the retrieved value, averaged over the depth x length grid. In each heatmap, rows are the needle\'s depth '
      + '(0 = start of the context), columns the context length; columns past the training length test extrapolation. Green = 1.',
  },
};

/** Context of a group: the task without the swept axis (e.g. "L=256, kv=16, V=1024"). */
function contextOf(r: RunRecord, task: string, except: SweepAxis | null): string {
  const p = r.task.params;
  const parts = task === 'mqar'
    ? [['sequence length', `L=${p.inputSeqLen}`], ['kv pairs', `kv=${p.numKvPairs}`], ['', `V=${p.vocabSize}`], ['d_model', `d=${r.model.params.dModel}`]]
    : [['training length', `L=${p.seqLen}`], ['d_model', `d=${r.model.params.dModel}`]];
  const head = task === 'niah' ? [taskTitle(r).replace(/ L\d+/, '')] : [];
  return [...head, ...parts.filter(([t]) => t !== except?.title).map(([, v]) => v)].join(', ');
}

/** The point of a best row: mean accuracy with its interval; the tooltip names the configuration behind it. */
const pointOf = (b: BestRow, series: string, x: number): ChartPoint => ({
  series, x, y: b.accuracy.mean, ...interval(b.accuracy),
  details: { model: `${b.model} ${b.size}`, 'best lr': String(b.lr), seeds: String(b.seeds), backend: b.backend },
});

/** Per point, the best row when several configurations of one model land on it (e.g. two window sizes). */
function bestPerPoint(rows: BestRow[], x: (b: BestRow) => number, series: (b: BestRow) => string): ChartPoint[] {
  const best = new Map<string, BestRow>();
  for (const b of rows) {
    const k = `${series(b)}\u0000${x(b)}`;
    if (!best.has(k) || b.accuracy.mean > best.get(k)!.accuracy.mean) best.set(k, b);
  }
  return [...best.values()].map((b) => pointOf(b, series(b), x(b)));
}

/**
 * A model's line: its name, plus the variant its size label names after the width ("d64 2:4" is
 * dense with 2:4 weights, "d64 all-sparse" LongGen's control), so variants never share a line.
 */
function seriesName(b: BestRow): string {
  const variant = b.size.split(' ').slice(1).join(' ');
  return variant ? `${b.model} ${variant}` : b.model;
}

/** Mean training-step time (ms) over a row's records; NaN where a record has none or shared its device with other runs. */
function stepMs(b: BestRow): number {
  const xs = b.records.map((r) => ((r.metrics.trainStep?.concurrentRuns ?? 1) > 1 ? NaN : r.metrics.trainStep?.medianMs ?? NaN));
  return xs.reduce((s, x) => s + x, 0) / xs.length;
}

/** Accuracy against training-step time per configuration (Zoology's quality vs cost), one chart per task setting and d_model. */
function costCharts(task: string, rows: BestRow[]): (Chart | null)[] {
  const spec = TASKS[task]!;
  const rec = (b: BestRow) => b.records[0]!;
  const groups = new Map<string, BestRow[]>();
  for (const b of rows.filter((x) => Number.isFinite(stepMs(x)))) {
    const k = `${spec.fixed(rec(b))}|${contextOf(rec(b), task, null)}|${b.backend}`;
    if (!groups.has(k)) groups.set(k, []);
    groups.get(k)!.push(b);
  }
  let gi = 0;
  return [...groups.values()].filter((g) => g.length >= 2).map((g) => chooseChart({
    id: `${task}-cost-${gi++}`, subject: spec.subject, context: `${contextOf(rec(g[0]!), task, null)}, ${g[0]!.backend}`, scatter: true,
    x: { title: 'training step ms', kind: 'ms', log: true }, y: { title: 'accuracy', kind: 'accuracy', domain: [0, 1] }, seriesTitle: 'model',
    points: g.map((b) => ({ ...pointOf(b, seriesName(b), stepMs(b)), details: { ...pointOf(b, '', 0).details, 'step batch': String(rec(b).metrics.trainStep?.batch) } })),
  }));
}

/** Lines along every axis that the rows sweep; rows no line covers get bars per model of their configuration. */
function sweepCharts(task: string, rows: BestRow[]): (Chart | null)[] {
  const spec = TASKS[task]!;
  const rec = (b: BestRow) => b.records[0]!;
  const backends = new Set(rows.map((b) => b.backend));
  const series = (b: BestRow) => `${seriesName(b)}${backends.size > 1 ? ` (${b.backend})` : ''}`;
  const charts: (Chart | null)[] = [];
  const covered = new Set<BestRow>();
  spec.axes.forEach((axis, ai) => {
    const others = spec.axes.filter((a) => a !== axis);
    const groups = new Map<string, BestRow[]>();
    for (const b of rows) {
      if (!Number.isFinite(axis.of(rec(b)))) continue;
      const k = [spec.fixed(rec(b)), ...others.map((a) => a.of(rec(b)))].join('|');
      if (!groups.has(k)) groups.set(k, []);
      groups.get(k)!.push(b);
    }
    let gi = 0;
    for (const g of groups.values()) {
      const points = bestPerPoint(g, (b) => axis.of(rec(b)), series);
      // A sweep is a line only where some model ran at two or more of its values.
      const lines = new Set(points.filter((p) => points.some((q) => q.series === p.series && q.x !== p.x)).map((p) => p.series));
      if (lines.size === 0) continue;
      g.forEach((b) => covered.add(b));
      charts.push(chooseChart({
        id: `${task}-vs-${ai}-${gi++}`, subject: spec.subject, context: contextOf(rec(g[0]!), task, axis),
        x: { title: axis.title, kind: 'count', log: true }, y: { title: 'accuracy', kind: 'accuracy', domain: [0, 1] }, seriesTitle: 'model', points,
      }));
    }
  });
  const rest = new Map<string, BestRow[]>();
  for (const b of rows.filter((r) => !covered.has(r))) {
    const k = `${b.task}|${D_MODEL.of(rec(b))}`;
    if (!rest.has(k)) rest.set(k, []);
    rest.get(k)!.push(b);
  }
  let ri = 0;
  for (const g of rest.values()) {
    const r0 = rec(g[0]!);
    charts.push(chooseChart({
      id: `${task}-by-model-${ri++}`, subject: 'Accuracy', context: taskTitle(r0),
      x: { title: 'd_model', kind: 'count' }, y: { title: 'accuracy', kind: 'accuracy', domain: [0, 1] }, seriesTitle: 'model',
      points: bestPerPoint(g, (b) => D_MODEL.of(rec(b)), (b) => `${series(b)}${g.filter((o) => o.model === b.model && o.backend === b.backend).length > 1 ? ` ${b.size}` : ''}`),
    }));
  }
  return charts;
}

/** One heatmap per model of a NIAH configuration: the grid averaged over the best learning rate's seeds. */
function niahHeatmaps(rows: BestRow[]): (Chart | null)[] {
  return rows.filter((b) => b.records.every((r) => r.metrics.niahGrid?.length)).map((b, i) => {
    const cells = new Map<string, { row: number; col: number; sum: number; n: number; examples: number }>();
    for (const r of b.records) {
      for (const c of r.metrics.niahGrid!) {
        const k = `${c.depth}|${c.length}`;
        const e = cells.get(k) ?? { row: c.depth, col: c.length, sum: 0, n: 0, examples: 0 };
        e.sum += c.score;
        e.n += 1;
        e.examples += c.examples;
        cells.set(k, e);
      }
    }
    const seeds = b.seeds > 1 ? `, mean of ${b.seeds} seeds` : '';
    return heatmapChart({
      id: `niah-grid-${i}`, title: `${b.model} ${b.size} (${b.backend}${seeds}): score ${b.accuracy.mean.toFixed(4)}`, subtitle: b.task,
      rowTitle: 'needle depth', colTitle: 'context length',
      cells: [...cells.values()].map((c) => ({ row: c.row, col: c.col, value: c.sum / c.n, examples: c.examples })),
    });
  });
}

function bestTable(id: string, rows: BestRow[]): string {
  return table(id, [
    { header: 'task' }, { header: 'model' }, { header: 'size' }, { header: 'backend' }, { header: 'params', kind: 'count' }, { header: 'best lr' },
    { header: 'accuracy', kind: 'accuracy' }, { header: '95% CI ±', kind: 'accuracy' }, { header: 'exact match', kind: 'accuracy' }, { header: 'seeds', kind: 'count' }, { header: 'latency b1 ms', kind: 'ms' },
  ], rows.map((b) => ({ cells: [b.task, b.model, b.size, b.backend, b.params, String(b.lr), b.accuracy.mean, b.accuracy.ci95, b.exactMatch, b.seeds, b.latencyMs] })));
}

function runsTable(id: string, rs: RunRecord[]): string {
  return table(id, [
    { header: 'run' }, { header: 'seed', kind: 'count' }, { header: 'backend' }, { header: 'accuracy', kind: 'accuracy' }, { header: 'denominator', kind: 'count' },
    { header: 'exact match', kind: 'accuracy' }, { header: 'generated', kind: 'accuracy' }, { header: 'steps', kind: 'count' }, { header: 'train tok/s', kind: 'count' }, { header: 'wall s', kind: 'seconds' }, { header: 'fallbacks', kind: 'count' },
  ], rs.map((r) => ({
    attrs: `data-run-id="${esc(r.runId)}"`,
    cells: [r.label, r.seed, r.backend, r.failure ? `FAILED: ${r.failure.reason} at step ${r.failure.step}` : r.metrics.accuracy, r.metrics.accuracyDenominator, r.metrics.exactMatch, r.metrics.generatedExactMatch ?? null, r.metrics.trainSteps, r.metrics.trainTokensPerSec, r.wallTimeSeconds, r.fallbackKernels.total],
  })));
}

const TITLES: Record<string, string> = { mqar: 'MQAR: multi-query associative recall', niah: 'NIAH: needle in a haystack' };

/** The recall section: one part per trained task (MQAR, NIAH, ...). */
export function recallSection(page: Page, records: RunRecord[]): string {
  const tasks = [...new Set(records.map((r) => r.task.name))].sort();
  if (!tasks.length) return '';
  const parts = tasks.map((t) => {
    const rs = records.filter((r) => r.task.name === t);
    const rows = bestRows(rs);
    const charts = TASKS[t] ? [...sweepCharts(t, rows), ...costCharts(t, rows), ...(t === 'niah' ? niahHeatmaps(rows) : [])] : [];
    return `<section id="task-${esc(t)}"><h3>${esc(TITLES[t] ?? t)}</h3>${TASKS[t] ? howToRead(TASKS[t]!.how) : ''}${page.plots(charts)}`
      + `<h4>Best per model and size</h4>${bestTable(`best-${t}`, rows)}<details><summary>All runs (${rs.length})</summary>${runsTable(`runs-${t}`, rs)}</details></section>`;
  });
  return `<section id="recall"><h2>Recall</h2>${parts.join('\n')}</section>`;
}
