/**
 * Grid patterns (issue 22): what each bidirectional head-pattern method keeps of a trained grid
 * checkpoint's masked-token accuracy at the density it computes, how much faster a whole generation
 * (K denoising steps) runs than dense at each timed grid, and a picture of each method's per-head
 * block layout.
 */
import { barChart, chooseChart, heatmapChart, type Chart } from '../page/charts.js';
import { howToRead, table, type Page } from '../page/page.js';
import type { RunRecord } from '../schema.js';
import { deviceOf, taskTitle } from './rows.js';

const gm = (r: RunRecord) => r.metrics.grid!;
const name = (r: RunRecord) => `${gm(r).method}${gm(r).budget === null ? '' : ` @${gm(r).budget}`}`;

/**
 * One point per method and density: budgets that gave the same plans (Sparse-vDiT keeping every head
 * dense at both) are one point listing their budgets, with the best accuracy among them.
 */
function atDistinctDensities(on: RunRecord[]): { r: RunRecord; budgets: number[] }[] {
  const groups = new Map<string, RunRecord[]>();
  for (const r of on) {
    const key = `${gm(r).method}\u0000${gm(r).density.toPrecision(12)}`;
    groups.set(key, [...(groups.get(key) ?? []), r]);
  }
  return [...groups.values()].map((g) => ({
    r: g.reduce((a, b) => ((b.metrics.accuracy ?? -1) > (a.metrics.accuracy ?? -1) ? b : a)),
    budgets: g.flatMap((r) => (gm(r).budget === null ? [] : [gm(r).budget!])).sort((a, b) => a - b),
  }));
}

export function patternsSection(page: Page, records: RunRecord[]): string {
  const rs = records.filter((r) => r.metrics.grid && !r.failure);
  if (!rs.length) return '';
  const charts: (Chart | null)[] = [];
  const groups = [...new Set(rs.map((r) => `${gm(r).checkpoint}\u0000${deviceOf(r)}`))].sort();
  groups.forEach((g, gi) => {
    const [ck, dev] = g.split('\u0000') as [string, string];
    const on = rs.filter((r) => gm(r).checkpoint === ck && deviceOf(r) === dev);
    charts.push(chooseChart({
      id: `grid-pareto-${gi}`, subject: `${ck} masked-token accuracy`, context: `${taskTitle(on[0]!)}, ${gm(on[0]!).steps} denoising steps, ${dev}`,
      x: { title: 'block density (fraction of blocks computed, over steps)', kind: 'density' }, y: { title: 'accuracy', kind: 'accuracy', domain: [0, 1] }, seriesTitle: 'method',
      points: atDistinctDensities(on).map(({ r, budgets }) => ({ series: gm(r).method, x: gm(r).density, y: r.metrics.accuracy ?? NaN, details: { budget: budgets.join(', ') || '-', 'vs dense': gm(r).accuracyRatio === null ? '-' : gm(r).accuracyRatio!.toFixed(3) } })),
    }));
    const largest = Math.max(...on.flatMap((r) => gm(r).timings.map((t) => t.tokens)));
    charts.push(barChart({
      id: `grid-speedup-${gi}`, title: `Generation speed-up over dense at ${largest} tokens`, subtitle: `${ck}, one input, ${gm(on[0]!).steps} steps, plans included; ${dev}`,
      value: { title: 'dense time / method time', kind: 'ratio' }, labelTitle: 'method',
      bars: on.filter((r) => gm(r).method !== 'dense').map((r) => {
        const t = gm(r).timings.find((x) => x.tokens === largest);
        return { label: name(r), value: t?.speedup ?? NaN, details: { 'generation ms': t ? t.generation.medianMs.toFixed(2) : '-' } };
      }),
    }));
    // Layouts: layer 0 of every method at its lowest budget, heads side by side.
    const shown = new Map<string, RunRecord>();
    for (const r of on.filter((x) => gm(x).picture)) {
      const prev = shown.get(gm(r).method);
      if (!prev || (gm(r).budget ?? 1) < (gm(prev).budget ?? 1)) shown.set(gm(r).method, r);
    }
    [...shown.values()].forEach((r, mi) => {
      const p = gm(r).picture!;
      const n = p.blocks;
      const heads = p.layers[0] ?? [];
      charts.push(heatmapChart({
        id: `grid-layout-${gi}-${mi}`, title: `${name(r)}: layer 0 block layout, heads side by side`, subtitle: `${ck}; ${n} x ${n} blocks per head, 1 = computed`,
        rowTitle: 'query block', colTitle: 'head * blocks + key block',
        cells: heads.flatMap((cells, h) => {
          const set = new Set(cells);
          return Array.from({ length: n * n }, (_, t) => ({ row: Math.floor(t / n), col: h * n + (t % n), value: set.has(t) ? 1 : 0 }));
        }),
      }));
    });
  });
  const sizes = [...new Set(rs.flatMap((r) => gm(r).timings.map((t) => t.tokens)))].sort((a, b) => a - b);
  const rows = [...rs].sort((a, b) => deviceOf(a).localeCompare(deviceOf(b)) || gm(a).method.localeCompare(gm(b).method) || (gm(a).budget ?? 0) - (gm(b).budget ?? 0));
  return `<section id="grid-patterns"><h2>Grid patterns</h2>
${howToRead('a bidirectional transformer trained on the grid task (masked cells recovered from their copies in other frames, plus a text segment) denoises in K steps '
    + 'with every layer attending through a head-pattern method. Accuracy is the share of masked tokens recovered; density is the fraction of blocks the operator computed, '
    + 'averaged over inputs, layers and steps (SparseD\'s full-attention steps count as 1). Speed-up is dense generation time / the method\'s, on one input, with plan building included. '
    + 'The layout pictures show which key blocks (columns) each query block (rows) computes, per head.')}
${page.plots(charts)}
${table('grid-cases', [
    { header: 'device' }, { header: 'checkpoint' }, { header: 'method' }, { header: 'budget' }, { header: 'accuracy', kind: 'accuracy' }, { header: 'vs dense', kind: 'ratio' }, { header: 'density', kind: 'density' },
    ...sizes.flatMap((n) => [{ header: `gen ms @${n}`, kind: 'ms' as const }, { header: `speed-up @${n}`, kind: 'ratio' as const }]),
  ], rows.map((r) => ({
    cells: [deviceOf(r), gm(r).checkpoint, gm(r).method, gm(r).budget === null ? '-' : String(gm(r).budget), r.metrics.accuracy, gm(r).accuracyRatio, gm(r).density,
      ...sizes.flatMap((n) => {
        const t = gm(r).timings.find((x) => x.tokens === n);
        return [t ? t.generation.medianMs : null, t?.speedup ?? null];
      })],
  })))}
</section>`;
}
