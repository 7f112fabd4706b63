/**
 * Charts that choose their form from the data, as Vega-Lite specs (compiled to Vega and drawn by the
 * inlined runtime, see page.ts). The rules, so that every plot on a page says something:
 *  - fewer than two values: no chart (the table says it all);
 *  - one x value: a bar per series, not a column of dots hiding each other;
 *  - series with identical values: drawn once, under all their names, with a note;
 *  - a log axis only where the values span a factor of 4 or more, with its ticks on round numbers
 *    (the x values themselves, or powers of ten) and "(log scale)" in its title;
 *  - intervals as bands (lines) or error bars (bars), value labels past the bar's interval.
 */
import { d3Format, formatMetric, type MetricKind } from './format.js';

export interface ChartPoint {
  series: string;
  x: number;
  y: number;
  /** Interval of y (e.g. a 95% CI), both or neither. */
  lo?: number;
  hi?: number;
  /** Extra tooltip lines. */
  details?: Record<string, string>;
}

export interface ChartAxis {
  title: string;
  kind: MetricKind;
  /** Log scale wanted (used only where the values allow it). */
  log?: boolean;
  /** Fixed domain of a linear axis (e.g. [0, 1] for accuracies). */
  domain?: [number, number];
}

export interface ChartInput {
  id: string;
  /** What is plotted, e.g. "MQAR accuracy"; the title adds "vs <x>" or "by <series>". */
  subject: string;
  /** Context appended to the title, e.g. "L=256, 16 kv pairs". */
  context?: string;
  x: ChartAxis;
  y: ChartAxis;
  seriesTitle: string;
  points: ChartPoint[];
  /** Points only, one per configuration (accuracy against cost): never joined, never turned into bars. */
  scatter?: boolean;
}

export type ChartForm = 'line' | 'bar' | 'grouped-bar' | 'heatmap' | 'scatter';

export interface Chart {
  id: string;
  title: string;
  form: ChartForm;
  /** Said under the chart: merged series, left-out values. */
  notes: string[];
  /** Series names as drawn (after merging identical ones). */
  series: string[];
  /** Axes drawn on a log scale. */
  logAxes: ('x' | 'y')[];
  spec: Record<string, unknown>;
}

const WIDTH = 380;
const HEIGHT = 220;

const finite = (p: ChartPoint) => Number.isFinite(p.x) && Number.isFinite(p.y) && (p.lo === undefined || (Number.isFinite(p.lo) && Number.isFinite(p.hi!)));

/** Merge series whose points are identical; returns the points under merged names and the notes. */
export function mergeIdenticalSeries(points: ChartPoint[]): { points: ChartPoint[]; notes: string[]; series: string[] } {
  const bySeries = new Map<string, ChartPoint[]>();
  for (const p of points) {
    if (!bySeries.has(p.series)) bySeries.set(p.series, []);
    const ps = bySeries.get(p.series)!;
    // Two values at one x of one series would draw a zigzag: the caller must aggregate first.
    if (ps.some((q) => q.x === p.x)) throw new Error(`chart: series "${p.series}" has two values at x=${p.x}`);
    ps.push(p);
  }
  // Identical to within 0.1% of each value: at any plot size one line would hide the other.
  const same = (a: ChartPoint[], b: ChartPoint[]) => a.length === b.length && a.every((p) => {
    const q = b.find((o) => o.x === p.x);
    const close = (u: number | undefined, v: number | undefined) => (u === undefined ? v === undefined : v !== undefined && Math.abs(u - v) <= 1e-3 * Math.max(Math.abs(u), Math.abs(v)));
    return q !== undefined && close(p.y, q.y) && close(p.lo, q.lo) && close(p.hi, q.hi);
  });
  const bySignature = new Map<string, string[]>();
  for (const [name, ps] of bySeries) {
    const twin = [...bySignature.keys()].find((k) => same(bySeries.get(k)!, ps));
    if (twin === undefined) bySignature.set(name, [name]);
    else bySignature.get(twin)!.push(name);
  }
  const notes: string[] = [];
  const rename = new Map<string, string>();
  const drawn = new Set<string>();
  for (const names of bySignature.values()) {
    for (const n of names) rename.set(n, names.join(' = '));
    drawn.add(names[0]!);
    if (names.length > 1) notes.push(`${names.map((n) => `"${n}"`).join(' and ')} have the same values (to 0.1%): drawn as one series.`);
  }
  const out = points.filter((p) => drawn.has(p.series)).map((p) => ({ ...p, series: rename.get(p.series)! }));
  return { points: out, notes, series: [...new Set(out.map((p) => p.series))] };
}

/** Round tick values of a log axis: the values themselves when few, else powers of ten (1-2-5 when the span is short). */
export function logTicks(values: number[], preferValues: boolean): number[] {
  const distinct = [...new Set(values)].sort((a, b) => a - b);
  if (preferValues && distinct.length <= 10) return distinct;
  const lo = Math.min(...distinct);
  const hi = Math.max(...distinct);
  const pow = (mults: number[]) => {
    const out: number[] = [];
    for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) for (const m of mults) out.push(+(m * 10 ** e).toPrecision(12));
    return out.filter((v) => v >= lo * 0.999 && v <= hi * 1.001);
  };
  for (const mults of [[1], [1, 3], [1, 2, 5]]) if (pow(mults).length >= 3) return pow(mults);
  return pow([1, 2, 3, 4, 5, 6, 7, 8, 9]).filter((_, i, a) => a.length <= 4 || i % 2 === 0);
}

const wantsLog = (axis: ChartAxis, values: number[]) => !!axis.log && values.every((v) => v > 0) && Math.max(...values) / Math.min(...values) >= 4;

function tooltip(input: ChartInput, withInterval: boolean, withDetails: string[]): Record<string, unknown>[] {
  const t: Record<string, unknown>[] = [
    { field: 'series', type: 'nominal', title: input.seriesTitle },
    { field: 'x', type: 'quantitative', title: input.x.title, format: d3Format(input.x.kind) },
    { field: 'y', type: 'quantitative', title: input.y.title, format: d3Format(input.y.kind) },
  ];
  if (withInterval) t.push({ field: 'interval', type: 'nominal', title: '95% interval' });
  for (const d of withDetails) t.push({ field: `d_${d}`, type: 'nominal', title: d });
  return t;
}

function rows(input: ChartInput, points: ChartPoint[]): Record<string, unknown>[] {
  return points.map((p) => ({
    series: p.series, x: p.x, y: p.y,
    ...(p.lo !== undefined ? { lo: p.lo, hi: p.hi, interval: `${formatMetric(input.y.kind, p.lo)} to ${formatMetric(input.y.kind, p.hi!)}` } : {}),
    ...Object.fromEntries(Object.entries(p.details ?? {}).map(([k, v]) => [`d_${k}`, v])),
  }));
}

const colorScale = (n: number) => ({ scheme: n > 10 ? 'tableau20' : 'tableau10' });

/** A chart of y against x per series, in the form the data calls for; null when it would say nothing. */
export function chooseChart(input: ChartInput): Chart | null {
  const kept = input.points.filter(finite);
  const notes: string[] = [];
  if (kept.length < input.points.length) notes.push(`${input.points.length - kept.length} value(s) without a measurement left out (see the table).`);
  if (kept.length < 2) return null;
  const xs = [...new Set(kept.map((p) => p.x))];
  const perSeries = new Map<string, number>();
  for (const p of kept) perSeries.set(p.series, (perSeries.get(p.series) ?? 0) + 1);
  // Bars never hide one another: only lines (two or more points per series) are merged.
  const merged = !input.scatter && xs.length > 1 && [...perSeries.values()].some((n) => n > 1) ? mergeIdenticalSeries(kept) : { points: kept, notes: [], series: [...perSeries.keys()] };
  notes.push(...merged.notes);
  if (!input.scatter && xs.length > 1 && [...perSeries.values()].every((n) => n === 1)) {
    // Every series at its own single x: no line to draw, so a bar per series naming its x.
    return barChart({
      id: input.id, title: `${input.subject} by ${input.seriesTitle}`, subtitle: input.context, value: input.y, labelTitle: input.seriesTitle,
      bars: merged.points.sort((a, b) => a.x - b.x).map((p) => ({ label: `${p.series} (${input.x.title} ${formatMetric(input.x.kind, p.x)})`, value: p.y, lo: p.lo, hi: p.hi, details: p.details })),
    }, notes);
  }
  if (xs.length === 1) {
    if (merged.series.length < 2) return null;
    return barChart({
      id: input.id, title: `${input.subject} by ${input.seriesTitle}`, subtitle: `${input.context ? `${input.context}, ` : ''}${input.x.title} = ${formatMetric(input.x.kind, xs[0]!)}`,
      value: input.y, bars: merged.points.map((p) => ({ label: p.series, value: p.y, lo: p.lo, hi: p.hi, details: p.details })), labelTitle: input.seriesTitle,
    }, notes);
  }
  const logX = wantsLog(input.x, xs);
  const logY = wantsLog(input.y, merged.points.flatMap((p) => [p.y, p.lo ?? p.y, p.hi ?? p.y]));
  const interval = merged.points.some((p) => p.lo !== undefined);
  const details = [...new Set(merged.points.flatMap((p) => Object.keys(p.details ?? {})))];
  const axis = (a: ChartAxis, log: boolean, values: number[], preferValues: boolean) => ({
    title: log ? `${a.title} (log scale)` : a.title,
    ...(log ? { values: logTicks(values, preferValues), format: ',~g' } : { format: d3Format(a.kind), tickCount: 5 }),
    labelOverlap: true,
  });
  const scale = (a: ChartAxis, log: boolean) => (log ? { type: 'log', base: 10 } : { zero: false, ...(a.domain ? { domain: a.domain } : {}) });
  const x = { field: 'x', type: 'quantitative', scale: scale(input.x, logX), axis: axis(input.x, logX, xs, true) };
  const y = { field: 'y', type: 'quantitative', scale: scale(input.y, logY), axis: axis(input.y, logY, merged.points.map((p) => p.y), false) };
  const color = { field: 'series', type: 'nominal', title: input.seriesTitle, scale: colorScale(merged.series.length), legend: { orient: 'right', labelLimit: 320, symbolLimit: 0 } };
  const layers: Record<string, unknown>[] = [];
  if (interval) layers.push({ mark: { type: 'errorband', opacity: 0.18 }, encoding: { x, y: { field: 'lo', type: 'quantitative', scale: y.scale, title: y.axis.title }, y2: { field: 'hi' }, color } });
  layers.push({
    mark: input.scatter ? { type: 'point', filled: true, size: 90 } : { type: 'line', point: { filled: true, size: 50 }, strokeWidth: 2 },
    encoding: {
      x, y, color,
      opacity: { condition: { param: 'pick', value: 1 }, value: 0.15 },
      tooltip: tooltip(input, interval, details),
    },
    params: [{ name: 'pick', select: { type: 'point', fields: ['series'] }, bind: 'legend' }],
  });
  const title = `${input.subject} vs ${input.x.title}`;
  return {
    id: input.id, title: input.context ? `${title}: ${input.context}` : title, form: input.scatter ? 'scatter' : 'line', notes, series: merged.series, logAxes: [...(logX ? ['x' as const] : []), ...(logY ? ['y' as const] : [])],
    spec: { title: input.context ? { text: title, subtitle: input.context } : title, width: WIDTH, height: HEIGHT, data: { values: rows(input, merged.points) }, layer: layers },
  };
}

export interface Bar {
  label: string;
  value: number;
  lo?: number;
  hi?: number;
  /** Grouped bars: the group (one row band per group, one bar per label in it). */
  group?: string;
  details?: Record<string, string>;
}

/**
 * Horizontal bars (labels read without rotation), one per label, or grouped (one band per group,
 * colour = label). Value labels sit past the end of the bar's interval so the two never collide.
 */
export function barChart(o: { id: string; title: string; subtitle?: string; value: ChartAxis; bars: Bar[]; labelTitle: string; groupTitle?: string; startAtData?: boolean }, notes: string[] = []): Chart | null {
  const bars = o.bars.filter((b) => Number.isFinite(b.value));
  if (bars.length < 2) return null;
  const grouped = bars.some((b) => b.group !== undefined);
  const interval = bars.some((b) => b.lo !== undefined && Number.isFinite(b.lo) && Number.isFinite(b.hi!));
  const labels = [...new Set(bars.map((b) => b.label))];
  const details = [...new Set(bars.flatMap((b) => Object.keys(b.details ?? {})))];
  const values = bars.map((b) => ({
    label: b.label, group: b.group ?? '', value: b.value, end: Math.max(b.value, b.hi ?? b.value), text: formatMetric(o.value.kind, b.value),
    ...(interval && b.lo !== undefined ? { lo: b.lo, hi: b.hi, interval: `${formatMetric(o.value.kind, b.lo)} to ${formatMetric(o.value.kind, b.hi!)}` } : {}),
    ...Object.fromEntries(Object.entries(b.details ?? {}).map(([k, v]) => [`d_${k}`, v])),
  }));
  const maxEnd = Math.max(...values.map((v) => v.end));
  // Room past the longest bar for its label: the domain ends a fifth beyond it (or at the fixed end).
  // startAtData: ratings such as Elo, whose zero means nothing, start just below the lowest interval.
  const minStart = Math.min(...values.map((v) => Math.min(v.value, v.lo ?? v.value)));
  const start = o.startAtData ? minStart - 0.15 * (maxEnd - minStart || Math.abs(minStart) || 1) : o.value.domain?.[0] ?? 0;
  // The axis ends at the fixed domain or a round number past the longest bar; value labels may run
  // past the plot's edge (the view grows to hold them), so they never sit on a bar or whisker.
  const scale = o.value.domain && maxEnd <= o.value.domain[1] ? { domain: [start, o.value.domain[1]], nice: false } : { domain: [start, maxEnd], nice: true, zero: !o.startAtData };
  const x = { field: 'value', type: 'quantitative', title: o.value.title, scale, axis: { format: d3Format(o.value.kind), tickCount: 5, labelOverlap: true } };
  // Every band keeps its label (one per row, nothing to thin out).
  const bandAxis = { labelLimit: 320, labelOverlap: false };
  const band = grouped ? { field: 'group', type: 'nominal', title: o.groupTitle ?? null, sort: null, axis: bandAxis } : { field: 'label', type: 'nominal', title: null, sort: null, axis: bandAxis };
  const offset = grouped ? { yOffset: { field: 'label', type: 'nominal', sort: labels } } : {};
  const color = { field: 'label', type: 'nominal', title: o.labelTitle, sort: labels, scale: colorScale(labels.length), legend: grouped ? { orient: 'right', labelLimit: 320 } : null };
  const tip = [
    ...(grouped ? [{ field: 'group', type: 'nominal', title: o.groupTitle ?? 'group' }] : []),
    { field: 'label', type: 'nominal', title: o.labelTitle },
    { field: 'value', type: 'quantitative', title: o.value.title, format: d3Format(o.value.kind) },
    ...(interval ? [{ field: 'interval', type: 'nominal', title: '95% interval' }] : []),
    ...details.map((d) => ({ field: `d_${d}`, type: 'nominal', title: d })),
  ];
  const layers: Record<string, unknown>[] = [{ mark: { type: 'bar', height: { band: 0.8 }, clip: true }, encoding: { x, y: band, ...offset, color, tooltip: tip } }];
  if (interval) layers.push({ mark: { type: 'rule', color: '#222' }, encoding: { x: { field: 'lo', type: 'quantitative' }, x2: { field: 'hi' }, y: band, ...offset } });
  layers.push({ mark: { type: 'text', align: 'left', dx: 4, fontSize: 10, color: '#222' }, encoding: { x: { field: 'end', type: 'quantitative' }, y: band, ...offset, text: { field: 'text' } } });
  const rowsPerBand = grouped ? labels.length : 1;
  const step = grouped ? 14 : 20;
  const groups = grouped ? new Set(values.map((v) => v.group)).size : values.length;
  return {
    id: o.id, title: o.subtitle ? `${o.title}: ${o.subtitle}` : o.title, form: grouped ? 'grouped-bar' : 'bar', notes, series: labels, logAxes: [],
    spec: { title: o.subtitle ? { text: o.title, subtitle: o.subtitle } : o.title, width: WIDTH, height: groups * rowsPerBand * step + (grouped ? groups * 6 : 0), data: { values }, layer: layers },
  };
}

/** A [0, 1] score per (row, column) cell, the score written in each cell. */
export function heatmapChart(o: { id: string; title: string; subtitle?: string; rowTitle: string; colTitle: string; cells: { row: number; col: number; value: number; examples?: number }[] }): Chart | null {
  const cells = o.cells.filter((c) => Number.isFinite(c.value));
  if (cells.length < 2) return null;
  const sortNum = (a: number, b: number) => a - b;
  const rowsSorted = [...new Set(cells.map((c) => c.row))].sort(sortNum).map(String);
  const colsSorted = [...new Set(cells.map((c) => c.col))].sort(sortNum).map(String);
  const values = cells.map((c) => ({ row: String(c.row), col: String(c.col), value: c.value, text: c.value.toFixed(2), examples: c.examples ?? null }));
  const enc = {
    x: { field: 'col', type: 'ordinal', title: o.colTitle, sort: colsSorted, axis: { labelAngle: 0 } },
    y: { field: 'row', type: 'ordinal', title: o.rowTitle, sort: rowsSorted },
  };
  return {
    id: o.id, title: o.subtitle ? `${o.title}: ${o.subtitle}` : o.title, form: 'heatmap', notes: [], series: [], logAxes: [],
    spec: {
      title: o.subtitle ? { text: o.title, subtitle: o.subtitle } : o.title, width: { step: 40 }, height: { step: 20 }, data: { values },
      layer: [
        { mark: 'rect', encoding: { ...enc, color: { field: 'value', type: 'quantitative', title: 'score', scale: { domain: [0, 1], scheme: 'redyellowgreen' }, legend: { orient: 'right', gradientLength: 120 } },
          tooltip: [{ field: 'row', title: o.rowTitle }, { field: 'col', title: o.colTitle }, { field: 'value', type: 'quantitative', title: 'score', format: '.4f' }, { field: 'examples', title: 'examples' }] } },
        { mark: { type: 'text', fontSize: 9 }, encoding: { ...enc, text: { field: 'text' }, color: { condition: { test: 'datum.value < 0.25 || datum.value > 0.8', value: '#fff' }, value: '#111' } } },
      ],
    },
  };
}
