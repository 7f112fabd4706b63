/**
 * Tabular ICL, one part per suite (suites are never pooled: their splits, seeds and checkpoints
 * differ): Elo with bootstrap intervals, mean rank, mean accuracy with CIs, per-table results, and
 * the row-interaction width scaling.
 */
import { barChart, chooseChart, type Chart } from '../page/charts.js';
import { formatMetric } from '../page/format.js';
import { howToRead, table, type Page } from '../page/page.js';
import type { RunRecord } from '../schema.js';
import { arenaScores, eloRatings, pairedDifference, secondsPer1kRows, tabularSummary, widthSummary } from '../tabular.js';

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
    const arena = arenaScores(Object.fromEntries(s.tables.map((t) => [t, Object.fromEntries(Object.entries(s.perTable[t]!).map(([m, x]) => [m, x.accuracy]))])), s.models, true);
    const per1k = secondsPer1kRows(rs);
    const agg = table(`tabular-aggregate${idSuffix}`, [
      { header: 'model' }, { header: 'Elo', kind: 'elo' }, { header: 'Elo 95% low', kind: 'elo' }, { header: 'Elo 95% high', kind: 'elo' }, { header: 'mean accuracy', kind: 'accuracy' },
      { header: '95% CI ±', kind: 'accuracy' }, { header: 'mean ROC-AUC', kind: 'accuracy' }, { header: 'mean log-loss', kind: 'accuracy' }, { header: 'mean rank', kind: 'rank' }, { header: 'tables', kind: 'count' },
      { header: 'normalized score', kind: 'accuracy' }, { header: 'win rate', kind: 'accuracy' }, { header: 'improvability %', kind: 'ratio' }, { header: 's / 1k rows', kind: 'ms' },
    ], ranked.map((m) => {
      const a = s.aggregate[m]!;
      const e = eloOf.get(m);
      const ar = arena[m]!;
      return { cells: [m, e?.elo, e?.lo, e?.hi, a.accuracy.mean, a.accuracy.ci95, a.rocAuc.mean, a.logLoss.mean, a.meanRank, a.tables, ar.normalized, ar.winRate, ar.improvability, per1k[m]] };
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
    // The question every tabular ICL paper answers: is the lead over a simple baseline outside the noise?
    const base = s.models.find((m) => m === 'logreg');
    const paired = base ? table(`tabular-paired${idSuffix}`, [{ header: 'model' }, { header: `accuracy - ${base}`, kind: 'delta' }, { header: '95% low', kind: 'delta' }, { header: '95% high', kind: 'delta' }, { header: 'tables', kind: 'count' }],
      ranked.filter((m) => m !== base).map((m) => {
        const d = pairedDifference(s, m, base);
        return { cells: [m, d.mean, d.mean - d.ci95, d.mean + d.ci95, d.tables] };
      })) : '';
    const safety = rs.filter((r) => typeof r.metrics.tabular?.iclSafetyMaxDelta === 'number');
    const safe = safety.length ? `<p>ICL-safety probe: over ${safety.length} runs, the largest change of any other test row's probabilities when one test row was replaced: ${formatMetric('delta', Math.max(...safety.map((r) => r.metrics.tabular!.iclSafetyMaxDelta!)))}.</p>` : '';
    out += `${howToRead(HOW)}<h4>Aggregates</h4>${agg}${page.plots(charts)}${safe}${paired ? `<h4>Paired by table: accuracy difference to ${base} (95% t-interval)</h4>${paired}` : ''}${rerank(rs, s.models, idSuffix)}<h4>Per table (mean over folds and seeds)</h4>${per}`;
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

/**
 * Every split's raw result, embedded, and a table the page recomputes from them for the metric the
 * reader picks: the same arenaScores the report uses (its source is embedded, not re-written).
 */
// __name: what tsx's keepNames wraps inner functions in (absent in the minified bundle).
function rerank(rs: RunRecord[], models: string[], idSuffix: string): string {
  const splits = rs.filter((r) => r.metrics.tabular && r.metrics.accuracy !== null).map((r) => {
    const t = r.metrics.tabular!;
    return { table: t.table, fold: t.fold, seed: r.seed, model: r.model.size, accuracy: r.metrics.accuracy, rocAuc: t.rocAuc, logLoss: t.logLoss, seconds: t.seconds, rows: t.nTrain + t.nTest };
  });
  const id = `tabular-rerank${idSuffix}`;
  const data = JSON.stringify({ models, splits }).replace(/</g, '\\u003c');
  const head = table(id, [{ header: 'model' }, { header: 'mean rank', kind: 'rank' }, { header: 'normalized score', kind: 'accuracy' }, { header: 'win rate', kind: 'accuracy' }, { header: 'improvability %', kind: 'ratio' }, { header: 'tables', kind: 'count' }], []);
  return `<h4>Re-rank by another metric</h4><p>Computed in this page from the ${splits.length} per-split results embedded in it (mean over a table's folds and seeds first). Metric: <select id="${id}-metric" aria-label="metric">`
    + `<option value="accuracy">accuracy</option><option value="rocAuc">ROC-AUC</option><option value="logLoss">log-loss (lower is better)</option></select></p>${head}`
    + `<script type="application/json" id="${id}-data">${data}</script><script>(${RERANK_JS})(${JSON.stringify(id)}, (function () { var __name = function (f) { return f; }; return ${String(arenaScores)}; })());</script>`;
}

const RERANK_JS = `function (id, arenaScores) {
  const data = JSON.parse(document.getElementById(id + '-data').textContent);
  const sel = document.getElementById(id + '-metric'), body = document.getElementById(id).tBodies[0];
  const f = (d) => (x) => Number.isFinite(x) ? x.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d }) : '';
  const fmt = [null, f(2), f(4), f(4), f(2), f(0)];
  const draw = () => {
    const metric = sel.value, per = {}, n = {};
    for (const s of data.splits) {
      const t = (per[s.table] = per[s.table] || {}), c = (n[s.table] = n[s.table] || {});
      t[s.model] = (t[s.model] || 0) + s[metric]; c[s.model] = (c[s.model] || 0) + 1;
    }
    for (const t in per) for (const m in per[t]) per[t][m] /= n[t][m];
    const sc = arenaScores(per, data.models, metric !== 'logLoss');
    const rows = data.models.map((m) => [m, sc[m].meanRank, sc[m].normalized, sc[m].winRate, sc[m].improvability, sc[m].tables]).sort((a, b) => a[1] - b[1]);
    body.innerHTML = '';
    for (const r of rows) {
      const tr = body.insertRow();
      r.forEach((v, i) => { const td = tr.insertCell(); if (i === 0) td.textContent = v; else { td.className = 'n'; td.dataset.v = String(v); td.textContent = fmt[i](v); } });
    }
  };
  sel.addEventListener('change', draw);
  draw();
}`;

export function tabularSection(page: Page, records: RunRecord[]): string {
  const rs = records.filter((r) => TABULAR_TASKS.includes(r.task.name));
  const suites = [...new Set(rs.map((r) => r.suite))];
  if (!suites.length) return '';
  const parts = suites.map((suite) => part(page, rs.filter((r) => r.suite === suite), suite, suites.length > 1 ? `-${suite.replace(/[^A-Za-z0-9_-]/g, '_')}` : ''));
  return `<section id="tabular"><h2>Tabular in-context learning</h2>${parts.join('\n')}</section>`;
}
