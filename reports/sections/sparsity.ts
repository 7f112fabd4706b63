/**
 * Sparsity: what each layout selector keeps of a trained checkpoint's accuracy at the density it
 * computes (a Pareto plot per checkpoint and device, the oracle as the bound), what it costs against
 * length, and how its density spreads over layers and heads.
 */
import { chooseChart, heatmapChart, type Chart } from '../page/charts.js';
import { esc, howToRead, table, type Page } from '../page/page.js';
import type { RunRecord } from '../schema.js';
import { deviceOf, taskTitle } from './rows.js';

const sp = (r: RunRecord) => r.metrics.sparsify!;

/**
 * One point per method and block density: budgets below the floor (every row's diagonal block) give
 * the same layout, so one point stands for them all, listing their budgets; the best accuracy among
 * them is shown (equal layouts score equally unless the method's choice varies within the density).
 */
function atDistinctDensities(on: RunRecord[]): { r: RunRecord; budgets: number[] }[] {
  const groups = new Map<string, RunRecord[]>();
  for (const r of on) {
    const key = `${sp(r).method}\u0000${sp(r).blockDensity.toPrecision(12)}`;
    groups.set(key, [...(groups.get(key) ?? []), r]);
  }
  return [...groups.values()].map((g) => ({
    r: g.reduce((a, b) => ((b.metrics.accuracy ?? -1) > (a.metrics.accuracy ?? -1) ? b : a)),
    budgets: g.map((r) => sp(r).budget).sort((a, b) => a - b),
  }));
}

export function sparsitySection(page: Page, records: RunRecord[]): string {
  const rs = records.filter((r) => r.metrics.sparsify && !r.failure);
  if (!rs.length) return '';
  const groups = [...new Set(rs.map((r) => `${sp(r).checkpoint}\u0000${deviceOf(r)}`))].sort();
  const charts: (Chart | null)[] = [];
  groups.forEach((g, gi) => {
    const [ck, dev] = g.split('\u0000') as [string, string];
    const on = rs.filter((r) => sp(r).checkpoint === ck && deviceOf(r) === dev);
    const task = taskTitle(on[0]!);
    charts.push(chooseChart({
      id: `sparsity-pareto-${gi}`, subject: `${ck} accuracy`, context: `${task}, L=${sp(on[0]!).length}, ${dev}`,
      x: { title: 'block density (fraction of causal blocks computed)', kind: 'density' }, y: { title: 'accuracy', kind: 'accuracy', domain: [0, 1] }, seriesTitle: 'method',
      points: atDistinctDensities(on).map(({ r, budgets }) => ({
        series: sp(r).method, x: sp(r).blockDensity, y: r.metrics.accuracy ?? NaN,
        details: { budget: budgets.join(', '), 'pair density': sp(r).pairDensity.toFixed(3), 'vs dense': sp(r).accuracyRatio === null ? '-' : sp(r).accuracyRatio!.toFixed(3) },
      })),
    }));
    // Per-head block density at the lowest budget: rows = methods, columns = layer.head.
    const low = Math.min(...on.filter((r) => sp(r).method !== 'dense').map((r) => sp(r).budget));
    const atLow = on.filter((r) => sp(r).budget === low && sp(r).method !== 'dense').sort((a, b) => sp(a).method.localeCompare(sp(b).method));
    const methods = atLow.map((r) => sp(r).method);
    charts.push(heatmapChart({
      id: `sparsity-heads-${gi}`, title: `${ck}: block density per layer and head at budget ${low}`, subtitle: `rows: ${methods.map((m, i) => `${i} = ${m}`).join(', ')}; ${dev}`,
      rowTitle: 'method', colTitle: 'layer.head (index = layer * heads + head)',
      cells: atLow.flatMap((r, mi) => sp(r).perHead.blocks.flatMap((heads, l) => heads.map((v, h) => ({ row: mi, col: l * heads.length + h, value: v })))),
    }));
  });
  // Prefill time against length per method (one budget per method: the one nearest 0.1).
  const byDev = [...new Set(rs.map(deviceOf))].sort();
  byDev.forEach((dev, di) => {
    const on = rs.filter((r) => deviceOf(r) === dev);
    const nearest = new Map<string, number>();
    for (const r of on) {
      const m = sp(r).method, b = sp(r).budget;
      if (!nearest.has(m) || Math.abs(b - 0.1) < Math.abs(nearest.get(m)! - 0.1)) nearest.set(m, b);
    }
    charts.push(chooseChart({
      id: `sparsity-prefill-${di}`, subject: 'Prefill time (selection included)', context: `batch 1, budget nearest 0.1, ${dev}`,
      x: { title: 'sequence length', kind: 'count', log: true }, y: { title: 'median ms', kind: 'ms', log: true }, seriesTitle: 'method',
      points: on.filter((r) => sp(r).budget === nearest.get(sp(r).method)).flatMap((r) => (sp(r).costs ?? []).map((c) => ({
        series: `${sp(r).method}${sp(r).method === 'dense' ? '' : ` @${sp(r).budget}`} (${sp(r).checkpoint})`, x: c.length, y: c.prefill.medianMs,
        lo: c.prefill.p10Ms, hi: c.prefill.p90Ms,
        details: { 'selector ms': c.selector ? c.selector.medianMs.toFixed(3) : '-', 'attention ms': c.attention.medianMs.toFixed(3) },
      }))),
    }));
  });
  const rows = [...rs].sort((a, b) => deviceOf(a).localeCompare(deviceOf(b)) || sp(a).checkpoint.localeCompare(sp(b).checkpoint) || sp(a).method.localeCompare(sp(b).method) || sp(a).budget - sp(b).budget);
  return `<section id="sparsity"><h2>Sparsity</h2>
${howToRead('each trained checkpoint attends through a layout selector at a budget; the Pareto plot puts its test accuracy against the fraction of causal blocks '
    + 'the operator actually computed (pair density, what the method keeps inside those blocks, is in the tooltip and table). The oracle keeps the blocks with the most true attention '
    + 'mass, so no block selector with that many blocks keeps more; dense is the point at density 1. Times are one input at the checkpoint\'s length: selector (estimates and '
    + 'layout building), attention (the operator on the chosen layouts, all layers) and the whole prefill with selection.')}
${page.plots(charts)}
${table('sparsity-table', [
    { header: 'checkpoint' }, { header: 'task' }, { header: 'device' }, { header: 'method' }, { header: 'budget', kind: 'density' }, { header: 'accuracy', kind: 'accuracy' },
    { header: 'vs dense', kind: 'ratio' }, { header: 'block density', kind: 'density' }, { header: 'pair density', kind: 'density' }, { header: 'selector ms', kind: 'ms' },
    { header: 'attention ms', kind: 'ms' }, { header: 'prefill ms', kind: 'ms' }, { header: 'prefill speedup', kind: 'ratio' }, { header: 'selector / dense attention', kind: 'ratio' },
  ], rows.map((r) => {
    const s = sp(r);
    return { cells: [s.checkpoint, taskTitle(r), deviceOf(r), s.method, s.budget, r.metrics.accuracy, s.accuracyRatio, s.blockDensity, s.pairDensity, s.selector?.medianMs ?? null, s.attention.medianMs, s.prefill.medianMs, s.prefillSpeedup, s.selectorShare] };
  }))}
${costTable(rs)}
<p class="note">${esc('Budget meanings differ by method (FlexPrefill: cumulative attention share gamma; stripe methods: keys per query block); the achieved densities are what to compare.')}</p>
</section>`;
}

/** Costs per timing length against the same checkpoint's dense case: the selector's share of dense attention, and speedups. */
function costTable(rs: RunRecord[]): string {
  const rows: { cells: (string | number | null)[] }[] = [];
  for (const r of rs) {
    const s = sp(r);
    if (s.method === 'dense') continue;
    const dense = rs.find((d) => sp(d).method === 'dense' && sp(d).checkpointSha256 === s.checkpointSha256 && deviceOf(d) === deviceOf(r));
    for (const c of s.costs ?? []) {
      const dc = dense && (sp(dense).costs ?? []).find((x) => x.length === c.length);
      rows.push({ cells: [s.checkpoint, deviceOf(r), s.method, s.budget, c.length, c.selector?.medianMs ?? null, c.attention.medianMs, dc?.attention.medianMs ?? null,
        dc && c.selector ? c.selector.medianMs / dc.attention.medianMs : null, dc ? dc.attention.medianMs / c.attention.medianMs : null,
        dc ? dc.prefill.medianMs / c.prefill.medianMs : null] });
    }
  }
  if (!rows.length) return '';
  return `<h3>Costs by length</h3>${table('sparsity-costs', [
    { header: 'checkpoint' }, { header: 'device' }, { header: 'method' }, { header: 'budget', kind: 'density' }, { header: 'length', kind: 'count' },
    { header: 'selector ms', kind: 'ms' }, { header: 'attention ms', kind: 'ms' }, { header: 'dense attention ms', kind: 'ms' }, { header: 'selector / dense attention', kind: 'ratio' },
    { header: 'attention speedup', kind: 'ratio' }, { header: 'prefill speedup (selection included)', kind: 'ratio' },
  ], rows)}`;
}
