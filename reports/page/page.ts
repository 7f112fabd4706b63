/**
 * One self-contained HTML page: inline CSS, sortable tables, and charts drawn in the browser by
 * Vega (inlined once per page, so the file opens offline). Vega-Lite specs are compiled to Vega
 * here, at build time, so the page carries the Vega runtime and vega-embed (tooltips) but not the
 * Vega-Lite compiler.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { compile } from 'vega-lite';
import type { Chart } from './charts.js';
import { formatMetric, type MetricKind } from './format.js';

export function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

export interface Column {
  header: string;
  /** How the column's numbers are written; absent = text. */
  kind?: MetricKind;
}

export type Cell = string | number | null | undefined;

/** A sortable table; numeric cells keep their exact value in data-v (sorting, tests), their text in the column's format. */
export function table(id: string, columns: Column[], rows: { cells: Cell[]; attrs?: string }[]): string {
  const th = columns.map((c, i) => `<th data-col="${i}"${c.kind ? ' class="n"' : ''}>${esc(c.header)}</th>`).join('');
  const body = rows
    .map((r) => `<tr ${r.attrs ?? ''}>${r.cells.map((c, i) => {
      const kind = columns[i]?.kind;
      if (kind && (typeof c === 'number' || c === null || c === undefined)) {
        const v = typeof c === 'number' && Number.isFinite(c) ? c : '';
        return `<td class="n" data-v="${v}">${formatMetric(kind, typeof c === 'number' ? c : null)}</td>`;
      }
      return `<td>${esc(String(c ?? ''))}</td>`;
    }).join('')}</tr>`)
    .join('\n');
  return `<table class="sortable" id="${id}"><thead><tr>${th}</tr></thead><tbody>\n${body}\n</tbody></table>`;
}

export const SORT_JS = `
document.querySelectorAll('table.sortable th').forEach(th => th.addEventListener('click', () => {
  const table = th.closest('table'), body = table.tBodies[0], col = +th.dataset.col;
  const dir = th.dataset.dir === 'asc' ? 'desc' : 'asc';
  table.querySelectorAll('th').forEach(h => delete h.dataset.dir); th.dataset.dir = dir;
  const key = td => td.dataset.v !== undefined ? (td.dataset.v === '' ? -Infinity : parseFloat(td.dataset.v)) : td.textContent;
  const rows = [...body.rows].sort((a, b) => {
    const x = key(a.cells[col]), y = key(b.cells[col]);
    const c = typeof x === 'number' && typeof y === 'number' ? x - y : String(x).localeCompare(String(y));
    return dir === 'asc' ? c : -c;
  });
  rows.forEach(r => body.appendChild(r));
}));`;

/** Draws every chart of the page; body[data-charts] says when all are drawn (or that one failed). */
const EMBED_JS = `
const specs = JSON.parse(document.getElementById('tr-specs').textContent);
window.trViews = {};
Promise.all(specs.map(s => vegaEmbed('#' + s.el, s.spec, { mode: 'vega', renderer: 'svg', actions: false })
  .then(r => { window.trViews[s.id] = r.view; })))
  .then(() => { document.body.dataset.charts = 'ready'; },
        e => { document.body.dataset.charts = 'error'; document.body.dataset.chartError = String(e); console.error(e); });`;

export const CSS = `body{font:14px system-ui,sans-serif;margin:24px auto;max-width:1320px;padding:0 16px;color:#222}
table{border-collapse:collapse;margin:8px 0 20px}th,td{border:1px solid #ccc;padding:3px 8px}
th{background:#f3f3f3;cursor:pointer;user-select:none}th[data-dir=asc]::after{content:' \\25B2'}th[data-dir=desc]::after{content:' \\25BC'}
td.n{text-align:right;font-variant-numeric:tabular-nums}th.n{text-align:right}
.plots{display:flex;flex-wrap:wrap;gap:16px 24px;align-items:flex-start}figure.chart{margin:0;padding:8px;border:1px solid #e4e4e4;border-radius:4px}
figure.chart .note{font-size:12px;color:#555;max-width:560px;margin:4px 0 0}p.how{color:#444;background:#f7f7f7;border-left:3px solid #bbb;padding:6px 10px;max-width:980px}
nav.toc a{margin-right:14px}section{margin-top:28px}h2{border-bottom:1px solid #ddd;padding-bottom:4px}details summary{cursor:pointer}`;

/** Chart appearance shared by every plot (fonts, sizes), applied when compiling. */
const CHART_CONFIG = {
  font: 'system-ui, sans-serif',
  title: { fontSize: 13, anchor: 'start', subtitleFontSize: 11, subtitleColor: '#555' },
  axis: { labelFontSize: 11, titleFontSize: 11, titleFontWeight: 'normal', labelOverlap: true, labelSeparation: 4, labelFlush: true },
  legend: { labelFontSize: 11, titleFontSize: 11, titleFontWeight: 'normal' },
  view: { stroke: '#ddd' },
};

let runtime: string | undefined;
/** Vega and vega-embed as shipped by their packages (minified UMD builds), read once per process. */
function chartRuntime(): string {
  if (runtime === undefined) {
    const req = createRequire(import.meta.url);
    const file = (pkg: string, name: string) => readFileSync(join(dirname(req.resolve(pkg)), name), 'utf8');
    // Both packages keep their builds in build/, next to the package.json.
    const version = (pkg: string) => (JSON.parse(file(pkg, '../package.json')) as { version: string }).version;
    runtime = `<!-- vega ${version('vega')} and vega-embed ${version('vega-embed')} (BSD-3-Clause, https://vega.github.io) -->\n`
      + `<script>${file('vega', 'vega.min.js')}</script>\n<script>${file('vega-embed', 'vega-embed.min.js')}</script>`;
  }
  return runtime;
}

/** A page under construction: charts register their spec here and get a placeholder element. */
export class Page {
  private specs: { id: string; el: string; spec: unknown }[] = [];

  /** The figure of a chart (empty for none: a chart with nothing to say is left out). */
  figure(chart: Chart | null): string {
    if (!chart) return '';
    const el = `vg-${chart.id.replace(/[^A-Za-z0-9_-]/g, '_')}-${this.specs.length}`;
    const vega = compile({ ...chart.spec, config: CHART_CONFIG } as Parameters<typeof compile>[0]).spec;
    this.specs.push({ id: chart.id, el, spec: vega });
    const meta = { form: chart.form, series: chart.series, logAxes: chart.logAxes };
    const notes = chart.notes.map((n) => `<p class="note">${esc(n)}</p>`).join('');
    return `<figure class="chart" id="chart-${esc(chart.id)}" data-form="${chart.form}" data-meta="${esc(JSON.stringify(meta))}" aria-label="${esc(chart.title)}"><div id="${el}"></div>${notes}</figure>`;
  }

  /** Figures side by side (nothing when all are empty). */
  plots(charts: (Chart | null)[]): string {
    const figs = charts.map((c) => this.figure(c)).filter((f) => f);
    return figs.length ? `<div class="plots">${figs.join('')}</div>` : '';
  }

  render(title: string, body: string): string {
    // JSON inside a script element: no "</script>" or "<!--" may appear in it.
    const specs = JSON.stringify(this.specs).replace(/</g, '\\u003c');
    const charts = this.specs.length ? `${chartRuntime()}\n<script type="application/json" id="tr-specs">${specs}</script>\n<script>${EMBED_JS}</script>` : '';
    return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title><style>${CSS}</style></head><body${this.specs.length ? '' : ' data-charts="ready"'}>
${body}
<script>${SORT_JS}</script>
${charts}
</body></html>`;
  }
}

/** The "how to read this" line of a section. */
export const howToRead = (text: string) => `<p class="how"><b>How to read this:</b> ${text}</p>`;
