/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
/**
 * What every chart of a page must satisfy, checked in a real browser after Vega drew it: drawn marks
 * for its data, titled axes, no overlapping visible text, log axes titled as such with round ticks,
 * no single-x dot plot, no series hidden under an identical one. Returns one line per problem.
 */
import type { Page as BrowserPage } from 'playwright-core';

export interface ChartReport { id: string; form: string; marks: number; series: string[]; problems: string[] }

/** Before goto: the TypeScript transform (tsx, vitest) may wrap functions passed to evaluate in a __name helper the page lacks. */
export async function preparePage(page: BrowserPage): Promise<void> {
  await page.addInitScript({ content: 'window.__name = (f) => f;' });
}

export async function waitForCharts(page: BrowserPage): Promise<void> {
  await page.waitForFunction(() => document.body.dataset.charts === 'ready' || document.body.dataset.charts === 'error', null, { timeout: 60_000 });
  const state = await page.evaluate(() => [document.body.dataset.charts, document.body.dataset.chartError ?? '']);
  if (state[0] !== 'ready') throw new Error(`charts failed to draw: ${state[1]}`);
}

export async function checkCharts(page: BrowserPage): Promise<ChartReport[]> {
  return page.evaluate(() => {
    const visible = (t: Element) => {
      let e: Element | null = t;
      while (e && e.tagName.toLowerCase() !== 'svg') {
        const op = e.getAttribute('opacity') ?? e.getAttribute('fill-opacity');
        if (op !== null && Number(op) === 0) return false;
        e = e.parentElement;
      }
      const r = t.getBoundingClientRect();
      return (t.textContent ?? '').trim() !== '' && r.width > 0 && r.height > 0;
    };
    const overlap = (a: DOMRect, b: DOMRect) => Math.max(0, Math.min(a.right, b.right) - Math.max(a.left, b.left)) * Math.max(0, Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top));
    const nice = (v: number) => {
      const e = Math.floor(Math.log10(v) + 1e-9);
      const m = v / 10 ** e;
      return [1, 2, 3, 4, 5, 6, 7, 8, 9].some((k) => Math.abs(m - k) < 1e-6) || Number.isInteger(Math.log2(v));
    };
    return [...document.querySelectorAll('figure.chart')].map((fig) => {
      const meta = JSON.parse(fig.getAttribute('data-meta')!) as { form: string; series: string[]; logAxes: string[] };
      const problems: string[] = [];
      const svg = fig.querySelector('svg');
      if (!svg) return { id: fig.id, form: meta.form, marks: 0, series: meta.series, problems: ['no svg drawn'] };
      // Data marks: points of lines, bars, heatmap cells (legend symbols have role-legend-symbol).
      const marks = svg.querySelectorAll('g.mark-symbol.role-mark > path, g.mark-rect.role-mark > path').length;
      if (marks < 1) problems.push('no data marks');
      // Axis titles: every axis of the chart carries one.
      const axes = [...svg.querySelectorAll('g.role-axis[aria-roledescription="axis"]')]; // not the grid-only axes
      if (axes.length < 2) problems.push(`${axes.length} axes`);
      for (const ax of axes) {
        const title = ax.querySelector('g.role-axis-title text')?.textContent?.trim();
        if (!title && !(meta.form !== 'line' && ax.querySelector('g.role-axis-label text'))) problems.push('axis without a title');
      }
      // Log axes: "(log scale)" in the title, ticks on round numbers.
      for (const ax of axes) {
        const title = ax.querySelector('g.role-axis-title text')?.textContent ?? '';
        if (!/log scale/.test(title)) continue;
        const labels = [...ax.querySelectorAll('g.role-axis-label text')].filter(visible).map((t) => Number((t.textContent ?? '').replace(/,/g, '')));
        if (labels.length < 2) problems.push(`log axis "${title}" with ${labels.length} labels`);
        for (const v of labels) if (!(v > 0) || !nice(v)) problems.push(`log axis "${title}" has tick ${v}`);
      }
      if (meta.logAxes.length !== axes.filter((a) => /log scale/.test(a.querySelector('g.role-axis-title text')?.textContent ?? '')).length) problems.push('log axes without "(log scale)" in their title');
      // Text boxes never overlap (labels Vega hid for overlap have opacity 0).
      const texts = [...svg.querySelectorAll('text')].filter(visible).map((t) => ({ t: t.textContent!, r: t.getBoundingClientRect() }));
      for (let i = 0; i < texts.length; i++) {
        for (let j = i + 1; j < texts.length; j++) {
          if (overlap(texts[i]!.r, texts[j]!.r) > 2) problems.push(`text "${texts[i]!.t}" overlaps "${texts[j]!.t}"`);
        }
      }
      if (meta.form === 'line') {
        // A line chart has at least two x values, and no two series with the same values.
        const views = (window as unknown as { trViews: Record<string, { data(name: string): { series: string; x: number; y: number }[] }> }).trViews;
        const view = views[fig.id.replace(/^chart-/, '')];
        const rows = view ? view.data('source_0') : [];
        if (new Set(rows.map((r) => r.x)).size < 2) problems.push('line chart with fewer than two x values');
        // No series within 0.1% of another at every x (it would hide under it).
        const pts = (s: string) => rows.filter((r) => r.series === s);
        meta.series.forEach((s, i) => meta.series.slice(0, i).forEach((t) => {
          const a = pts(s), b = pts(t);
          if (a.length === b.length && a.every((p) => b.some((q) => q.x === p.x && Math.abs(q.y - p.y) <= 1e-3 * Math.max(Math.abs(p.y), Math.abs(q.y))))) problems.push(`series "${s}" hides under "${t}"`);
        }));
        const legend = svg.querySelectorAll('g.role-legend-label text').length;
        if (legend !== meta.series.length) problems.push(`legend shows ${legend} of ${meta.series.length} series`);
      }
      return { id: fig.id, form: meta.form, marks, series: meta.series, problems };
    });
  });
}

/** Figures must not overlap one another either (a flex layout, but checked). */
export async function overlappingFigures(page: BrowserPage): Promise<string[]> {
  return page.evaluate(() => {
    const figs = [...document.querySelectorAll('figure.chart')].map((f) => ({ id: f.id, r: f.getBoundingClientRect() }));
    const out: string[] = [];
    for (let i = 0; i < figs.length; i++) for (let j = i + 1; j < figs.length; j++) {
      const a = figs[i]!.r, b = figs[j]!.r;
      if (Math.min(a.right, b.right) - Math.max(a.left, b.left) > 1 && Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top) > 1) out.push(`${figs[i]!.id} overlaps ${figs[j]!.id}`);
    }
    return out;
  });
}
