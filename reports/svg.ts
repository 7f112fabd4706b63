/** Small dependency-free SVG charts for the self-contained leaderboard. */
export interface Series {
  name: string;
  points: [number, number][];
}

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf', '#7f7f7f', '#bcbd22'];

export function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function ticks(lo: number, hi: number, n: number): number[] {
  if (hi <= lo) return [lo];
  return Array.from({ length: n + 1 }, (_, i) => lo + ((hi - lo) * i) / n);
}

function short(x: number): string {
  if (Math.abs(x) >= 1000) return `${+(x / 1000).toPrecision(3)}k`;
  return `${+x.toPrecision(3)}`;
}

export function linePlot(o: { title: string; xLabel: string; yLabel: string; series: Series[]; logX?: boolean; logY?: boolean; yMin?: number; yMax?: number }): string {
  const W = 560, H = 300, L = 60, R = 200, T = 30, B = 45;
  const all = o.series.flatMap((s) => s.points);
  if (all.length === 0) return '';
  const fx = (x: number) => (o.logX ? Math.log2(x) : x);
  const fy = (y: number) => (o.logY ? Math.log10(Math.max(y, 1e-12)) : y);
  const xs = all.map((p) => fx(p[0]));
  const ys = all.map((p) => fy(p[1]));
  let [x0, x1] = [Math.min(...xs), Math.max(...xs)];
  let [y0, y1] = [o.yMin !== undefined ? fy(o.yMin) : Math.min(...ys), o.yMax !== undefined ? fy(o.yMax) : Math.max(...ys)];
  if (x0 === x1) { x0 -= 1; x1 += 1; }
  if (y0 === y1) { y0 -= 1; y1 += 1; }
  const px = (x: number) => L + ((fx(x) - x0) / (x1 - x0)) * (W - L - R);
  const py = (y: number) => T + (1 - (fy(y) - y0) / (y1 - y0)) * (H - T - B);
  const parts: string[] = [];
  parts.push(`<text x="${W / 2 - R / 2}" y="18" text-anchor="middle" class="t">${esc(o.title)}</text>`);
  parts.push(`<line x1="${L}" y1="${H - B}" x2="${W - R}" y2="${H - B}" class="ax"/><line x1="${L}" y1="${T}" x2="${L}" y2="${H - B}" class="ax"/>`);
  const xt = o.logX ? [...new Set(all.map((p) => p[0]))].sort((a, b) => a - b) : ticks(x0, x1, 4);
  for (const x of xt) parts.push(`<text x="${px(x)}" y="${H - B + 14}" text-anchor="middle" class="k">${short(x)}</text>`);
  for (const t of ticks(y0, y1, 4)) {
    const y = o.logY ? Math.pow(10, t) : t;
    parts.push(`<text x="${L - 5}" y="${py(y) + 3}" text-anchor="end" class="k">${short(y)}</text><line x1="${L}" y1="${py(y)}" x2="${W - R}" y2="${py(y)}" class="g"/>`);
  }
  parts.push(`<text x="${(L + W - R) / 2}" y="${H - 8}" text-anchor="middle" class="k">${esc(o.xLabel)}</text>`);
  parts.push(`<text x="14" y="${(T + H - B) / 2}" text-anchor="middle" class="k" transform="rotate(-90 14 ${(T + H - B) / 2})">${esc(o.yLabel)}</text>`);
  o.series.forEach((s, i) => {
    const c = COLORS[i % COLORS.length];
    const pts = [...s.points].sort((a, b) => a[0] - b[0]);
    parts.push(`<polyline fill="none" stroke="${c}" stroke-width="2" points="${pts.map((p) => `${px(p[0]).toFixed(1)},${py(p[1]).toFixed(1)}`).join(' ')}"/>`);
    for (const p of pts) parts.push(`<circle cx="${px(p[0]).toFixed(1)}" cy="${py(p[1]).toFixed(1)}" r="3" fill="${c}"><title>${esc(s.name)}: (${p[0]}, ${p[1]})</title></circle>`);
    parts.push(`<rect x="${W - R + 10}" y="${T + i * 16 - 8}" width="10" height="10" fill="${c}"/><text x="${W - R + 24}" y="${T + i * 16 + 1}" class="k">${esc(s.name)}</text>`);
  });
  return `<svg class="plot" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" role="img" aria-label="${esc(o.title)}">${parts.join('')}</svg>`;
}

/** Heatmap of values in [0, 1]: rows and columns labelled, red (0) to green (1). */
export function heatmap(o: { title: string; rows: number[]; cols: number[]; value: (r: number, c: number) => number | undefined; rowLabel: string; colLabel: string }): string {
  const cw = 30, ch = 22, L = 70, T = 40;
  const W = Math.max(L + o.cols.length * cw + 20, 8 * o.title.length + L);
  const H = T + o.rows.length * ch + 40;
  const parts: string[] = [`<text x="${L}" y="16" class="t">${esc(o.title)}</text>`];
  o.cols.forEach((c, j) => parts.push(`<text x="${L + j * cw + cw / 2}" y="${T - 6}" text-anchor="middle" class="k">${short(c)}</text>`));
  o.rows.forEach((r, i) => {
    parts.push(`<text x="${L - 6}" y="${T + i * ch + ch / 2 + 4}" text-anchor="end" class="k">${short(r)}</text>`);
    o.cols.forEach((c, j) => {
      const v = o.value(r, c);
      const fill = v === undefined ? '#eee' : `hsl(${Math.round(120 * v)}, 70%, 45%)`;
      parts.push(`<rect x="${L + j * cw}" y="${T + i * ch}" width="${cw - 1}" height="${ch - 1}" fill="${fill}"><title>${esc(o.rowLabel)} ${r}, ${esc(o.colLabel)} ${c}: ${v === undefined ? 'n/a' : v.toFixed(3)}</title></rect>`);
    });
  });
  parts.push(`<text x="${L}" y="${H - 12}" class="k">${esc(o.colLabel)} (columns) x ${esc(o.rowLabel)} (rows); green = 1</text>`);
  return `<svg class="plot" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" role="img" aria-label="${esc(o.title)}">${parts.join('')}</svg>`;
}

/** Horizontal bars with optional error whiskers (e.g. mean rank, mean accuracy +- CI). */
export function barChart(o: { title: string; xLabel: string; bars: { name: string; value: number; err?: number }[]; xMax?: number }): string {
  if (o.bars.length === 0) return '';
  const L = 190, R = 30, T = 30, rowH = 22, B = 40;
  const W = 560;
  const H = T + B + rowH * o.bars.length;
  const max = o.xMax ?? Math.max(...o.bars.map((b) => b.value + (b.err ?? 0))) * 1.05;
  const sx = (x: number) => L + ((W - L - R) * Math.max(0, x)) / max;
  const bars = o.bars
    .map((b, i) => {
      const y = T + i * rowH;
      const whisker = b.err !== undefined && Number.isFinite(b.err) ? `<line class="ax" x1="${sx(b.value - b.err)}" x2="${sx(b.value + b.err)}" y1="${y + rowH / 2}" y2="${y + rowH / 2}"/>` : '';
      return `<text class="k" x="${L - 6}" y="${y + rowH / 2 + 4}" text-anchor="end">${esc(b.name)}</text><rect x="${L}" y="${y + 3}" width="${sx(b.value) - L}" height="${rowH - 6}" fill="${COLORS[i % COLORS.length]}"/>${whisker}<text class="k" x="${sx(b.value) + 4}" y="${y + rowH / 2 + 4}">${short(b.value)}</text>`;
    })
    .join('');
  return `<svg class="plot" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}"><text class="t" x="${L}" y="18">${esc(o.title)}</text>${bars}<line class="ax" x1="${L}" x2="${W - R}" y1="${H - B}" y2="${H - B}"/><text class="k" x="${(L + W - R) / 2}" y="${H - 12}" text-anchor="middle">${esc(o.xLabel)}</text></svg>`;
}
