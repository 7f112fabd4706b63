/**
 * Tabular ICL, one part per suite (suites are never pooled: their splits, seeds and checkpoints
 * differ): Elo with bootstrap intervals, mean rank, mean accuracy with CIs, per-table results, and
 * the row-interaction width scaling.
 */
import { barChart, chooseChart, type Chart } from '../page/charts.js';
import { formatMetric } from '../page/format.js';
import { howToRead, table, type Page } from '../page/page.js';
import type { RunRecord } from '../schema.js';
import { eloRatings, tabularSummary, widthSummary } from '../tabular.js';

export const TABULAR_TASKS = ['tabular', 'width-scaling'];

const HOW = 'every model is fitted and scored on each table\'s folds and seeds; per table the mean over them counts. Elo (as TabArena computes it): each pair of models '
  + '"battles" on every table, the higher accuracy wins; a Bradley-Terry fit puts the ratings on the Elo scale (400 points = 10:1 odds of winning a table), random-forest = 1000 '
  + 'when it ran. Intervals: Elo 95% bootstrap over tables; accuracy 95% t-interval over tables. Mean rank: 1 = best accuracy on every table.';

function part(page: Page, rs: RunRecord[], suite: string, idSuffix: string): string {
  const s = tabularSummary(rs);
  const w = widthSummary(rs);
  let out = '';
  if (s.models.length) {
    const elo = eloRatings(s);
    const eloOf = new Map(elo.map((e) => [e.model, e]));
    const ranked = elo.length ? elo.map((e) => e.model) : [...s.models].sort((a, b) => s.aggregate[a]!.meanRank - s.aggregate[b]!.meanRank);
    const agg = table(`tabular-aggregate${idSuffix}`, [
      { header: 'model' }, { header: 'Elo', kind: 'elo' }, { header: 'Elo 95% low', kind: 'elo' }, { header: 'Elo 95% high', kind: 'elo' }, { header: 'mean accuracy', kind: 'accuracy' },
      { header: '95% CI ±', kind: 'accuracy' }, { header: 'mean ROC-AUC', kind: 'accuracy' }, { header: 'mean log-loss', kind: 'accuracy' }, { header: 'mean rank', kind: 'rank' }, { header: 'tables', kind: 'count' },
    ], ranked.map((m) => {
      const a = s.aggregate[m]!;
      const e = eloOf.get(m);
      return { cells: [m, e?.elo, e?.lo, e?.hi, a.accuracy.mean, a.accuracy.ci95, a.rocAuc.mean, a.logLoss.mean, a.meanRank, a.tables] };
    }));
    const per = table(`tabular-tables${idSuffix}`, [
      { header: 'table' }, { header: 'features', kind: 'count' }, { header: 'classes', kind: 'count' }, { header: 'train rows', kind: 'count' }, ...ranked.map((m) => ({ header: `${m} acc`, kind: 'accuracy' as const })),
    ], s.tables.map((t) => {
      const any = rs.find((r) => r.metrics.tabular?.table === t)!.metrics.tabular!;
      return { cells: [t, any.nFeatures, any.nClasses, any.nTrain, ...ranked.map((m) => s.perTable[t]![m]?.accuracy)] };
    }));
    const charts: (Chart | null)[] = [
      elo.length ? barChart({ id: `tabular-elo${idSuffix}`, title: `Elo over ${s.aggregate[ranked[0]!]!.tables} tables (95% bootstrap interval)`, value: { title: 'Elo', kind: 'elo' }, labelTitle: 'model', startAtData: true,
        bars: elo.map((e) => ({ label: e.model, value: e.elo, lo: e.lo, hi: e.hi })) }) : null,
      barChart({ id: `tabular-rank${idSuffix}`, title: 'Mean rank over tables (1 = best accuracy)', value: { title: 'mean rank', kind: 'rank' }, labelTitle: 'model',
        bars: ranked.map((m) => ({ label: m, value: s.aggregate[m]!.meanRank })) }),
      barChart({ id: `tabular-accuracy${idSuffix}`, title: 'Mean accuracy over tables (95% CI)', value: { title: 'accuracy', kind: 'accuracy', domain: [0, 1] }, labelTitle: 'model',
        bars: ranked.map((m) => {
          const a = s.aggregate[m]!.accuracy;
          return { label: m, value: a.mean, ...(Number.isFinite(a.ci95) ? { lo: a.mean - a.ci95, hi: a.mean + a.ci95 } : {}) };
        }) }),
    ];
    const safety = rs.filter((r) => typeof r.metrics.tabular?.iclSafetyMaxDelta === 'number');
    const safe = safety.length ? `<p>ICL-safety probe: over ${safety.length} runs, the largest change of any other test row's probabilities when one test row was replaced: ${formatMetric('delta', Math.max(...safety.map((r) => r.metrics.tabular!.iclSafetyMaxDelta!)))}.</p>` : '';
    out += `${howToRead(HOW)}<h4>Aggregates</h4>${agg}${page.plots(charts)}${safe}<h4>Per table (mean over folds and seeds)</h4>${per}`;
  }
  if (w.length) {
    const line = (id: string, subject: string, yTitle: string, kind: 'ms' | 'mb', sparse: (r: (typeof w)[number]) => number, dense: (r: (typeof w)[number]) => number) => chooseChart({
      id: `${id}${idSuffix}`, subject, x: { title: 'features', kind: 'count', log: true }, y: { title: yTitle, kind, log: true }, seriesTitle: 'row attention',
      points: [...w.map((r) => ({ series: 'block-sparse multi-scale', x: r.features, y: sparse(r) })), ...w.map((r) => ({ series: 'dense', x: r.features, y: dense(r) }))],
    });
    const charts = [
      line('width-latency', 'Row-interaction latency', 'median ms', 'ms', (r) => r.sparseMs, (r) => r.denseMs),
      line('width-memory', 'Row-interaction peak tensor memory', 'MB', 'mb', (r) => r.sparseBytes / 1e6, (r) => r.denseBytes / 1e6),
    ];
    const wt = table(`width-scaling${idSuffix}`, [
      { header: 'features', kind: 'count' }, { header: 'sparse ms', kind: 'ms' }, { header: 'dense ms', kind: 'ms' }, { header: 'dense / sparse', kind: 'ratio' },
      { header: 'sparse peak MB', kind: 'mb' }, { header: 'dense peak MB', kind: 'mb' }, { header: 'sparse layout density', kind: 'density' },
    ], w.map((r) => ({ cells: [r.features, r.sparseMs, r.denseMs, r.denseMs / r.sparseMs, r.sparseBytes / 1e6, r.denseBytes / 1e6, r.sparseDensity] })));
    out += `<h4>Width scaling</h4>${howToRead('one forward of the row-interaction stage at each feature count: block-sparse multi-scale row attention against dense attention over the same features.')}${page.plots(charts)}${wt}`;
  }
  return `<section id="task-tabular${idSuffix}"><h3>Suite ${suite}</h3>${out}</section>`;
}

export function tabularSection(page: Page, records: RunRecord[]): string {
  const rs = records.filter((r) => TABULAR_TASKS.includes(r.task.name));
  const suites = [...new Set(rs.map((r) => r.suite))];
  if (!suites.length) return '';
  const parts = suites.map((suite) => part(page, rs.filter((r) => r.suite === suite), suite, suites.length > 1 ? `-${suite.replace(/[^A-Za-z0-9_-]/g, '_')}` : ''));
  return `<section id="tabular"><h2>Tabular in-context learning</h2>${parts.join('\n')}</section>`;
}
