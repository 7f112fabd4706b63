/** Speed: model inference latency per device, and the shared operator's latency, density scaling and TFLOP/s against PyTorch. */
import { barChart, chooseChart, type Bar, type Chart, type ChartPoint } from '../page/charts.js';
import { esc, howToRead, table, type Page } from '../page/page.js';
import type { AnchorTable, RunRecord } from '../schema.js';
import { deviceOf, modelTitle, taskTitle } from './rows.js';

const PASS: Record<string, string> = { forward: 'fwd', 'forward+backward': 'fwd+bwd', backward: 'bwd' };

/** One value per key: several records of one point (seeds, learning rates) give their mean. */
function meanPerKey(items: { key: string; point: ChartPoint }[]): ChartPoint[] {
  const acc = new Map<string, { point: ChartPoint; sum: number; n: number }>();
  for (const { key, point } of items) {
    const e = acc.get(key) ?? { point, sum: 0, n: 0 };
    e.sum += point.y;
    e.n += 1;
    acc.set(key, e);
  }
  return [...acc.values()].map((e) => ({ ...e.point, y: e.sum / e.n, details: { ...e.point.details, 'runs averaged': String(e.n) } }));
}

/** Inference latency of the trained models: per device, task and batch size, median ms vs length (bars when one length). */
function modelLatencyCharts(records: RunRecord[]): (Chart | null)[] {
  const rs = records.filter((r) => !r.failure && !r.metrics.kernel && !r.metrics.width && !r.metrics.sparsify && !r.metrics.decode && r.metrics.latency.length);
  const groups = [...new Set(rs.map((r) => `${deviceOf(r)}\u0000${r.task.name}`))].sort();
  const charts: (Chart | null)[] = [];
  groups.forEach((g, gi) => {
    const [dev, task] = g.split('\u0000') as [string, string];
    const on = rs.filter((r) => deviceOf(r) === dev && r.task.name === task);
    const batches = [...new Set(on.flatMap((r) => r.metrics.latency.map((l) => l.batch)))].sort((a, b) => a - b);
    for (const batch of [batches[0]!, batches[batches.length - 1]!].filter((b, i, a) => a.indexOf(b) === i)) {
      const items = on.flatMap((r) => r.metrics.latency.filter((l) => l.batch === batch).map((l) => {
        const series = modelTitle(r);
        return { key: `${series}|${l.length}`, point: { series, x: l.length, y: l.medianMs, details: { task: taskTitle(r), 'p10-p90 ms': `${l.p10Ms.toFixed(3)}-${l.p90Ms.toFixed(3)}` } } };
      }));
      charts.push(chooseChart({
        id: `latency-${gi}-b${batch}`, subject: `${task.toUpperCase()} inference latency, batch ${batch}`, context: dev,
        x: { title: 'sequence length', kind: 'count', log: true }, y: { title: 'median ms', kind: 'ms', log: true }, seriesTitle: 'model',
        points: meanPerKey(items),
      }));
    }
  });
  return charts;
}

const kernelsOf = (records: RunRecord[]) => records.filter((r) => r.metrics.kernel && !r.failure);
const precisionOf = (r: RunRecord) => r.metrics.kernel!.precision ?? 'fp32';

/** Operator latency vs length (forward, structured layouts) per device; operator latency vs density (random layouts) per device. */
function operatorCharts(records: RunRecord[]): (Chart | null)[] {
  const rs = kernelsOf(records);
  const charts: (Chart | null)[] = [];
  [...new Set(rs.map(deviceOf))].sort().forEach((dev, di) => {
    const on = rs.filter((r) => deviceOf(r) === dev);
    // Two reports of one device can time the same case (e.g. two kernel versions): each is its own series.
    const suites = new Set(on.map((r) => `${r.suite}@${r.gitSha.slice(0, 7)}`));
    const tag = (r: RunRecord) => (suites.size > 1 ? ` [${r.suite}@${r.gitSha.slice(0, 7)}]` : '');
    const fwd = on.filter((r) => r.metrics.kernel!.pass === 'forward' && r.metrics.kernel!.layout !== 'random');
    charts.push(chooseChart({
      id: `op-length-${di}`, subject: 'Operator latency (forward)', context: dev,
      x: { title: 'sequence length', kind: 'count', log: true }, y: { title: 'median ms', kind: 'ms', log: true }, seriesTitle: 'layout, kernel, precision',
      points: meanPerKey(fwd.map((r) => {
        const k = r.metrics.kernel!;
        const series = `${k.layout} ${k.impl} ${precisionOf(r)}${tag(r)}`;
        return { key: `${series}|${r.task.params.L}`, point: { series, x: Number(r.task.params.L), y: r.metrics.latency[0]!.medianMs, details: { B: String(r.task.params.B), density: k.density.toFixed(3), 'GFLOP/s': k.gflops.toFixed(1) } } };
      })),
    }));
    const random = on.filter((r) => r.metrics.kernel!.layout === 'random');
    const sweepL = Math.max(0, ...random.map((r) => Number(r.task.params.L)));
    const atSweep = on.filter((r) => Number(r.task.params.L) === sweepL && ['random', 'dense'].includes(r.metrics.kernel!.layout));
    if (random.length) {
      charts.push(chooseChart({
        id: `op-density-${di}`, subject: 'Operator latency', context: `${dev}, L=${sweepL}, random block layouts`,
        x: { title: 'density (listed / all blocks)', kind: 'density' }, y: { title: 'median ms', kind: 'ms', log: true }, seriesTitle: 'kernel, pass',
        points: meanPerKey(atSweep.map((r) => {
          const k = r.metrics.kernel!;
          const series = `${k.impl} ${precisionOf(r)} ${PASS[k.pass]}${tag(r)}`;
          return { key: `${series}|${k.density}`, point: { series, x: k.density, y: r.metrics.latency[0]!.medianMs } };
        })),
      }));
    }
  });
  return charts;
}

/** Which of our layouts an anchor row times ("sdpa dense", "flex window 256", "flex bigbird"). */
const anchorLayout = (what: string) => ['dense', 'window', 'bigbird'].find((l) => what.includes(l));

/** TFLOP/s of our fused kernels beside PyTorch's at the same shapes, on the same GPU (grouped bars, one group per shape). */
function anchorChart(records: RunRecord[], anchors: { path: string; table: AnchorTable }[]): Chart | null {
  const bars: Bar[] = [];
  for (const { table: a } of anchors) {
    const gpu = a.device.replace(/^NVIDIA /, '');
    for (const row of a.rows) {
      const layout = anchorLayout(row.what);
      if (!layout || row.what.includes('backward')) continue;
      const group = `${layout} L${row.L} B${row.B} (${gpu})`;
      bars.push({ group, label: `PyTorch ${row.what.split(' ')[0]} ${row.dtype}`, value: row.tflops, details: { what: row.what, 'median ms': row.ms.toFixed(3), torch: a.torch } });
      if (bars.some((b) => b.group === group && b.label.startsWith('tabrecall'))) continue;
      for (const r of kernelsOf(records)) {
        const k = r.metrics.kernel!;
        if (r.backend !== 'cuda' || r.fingerprint.backendInfo?.device !== a.device || k.pass !== 'forward' || k.layout !== layout || Number(r.task.params.L) !== row.L || Number(r.task.params.B) !== row.B) continue;
        bars.push({ group, label: `tabrecall ${k.impl} ${precisionOf(r)}`, value: k.gflops / 1000, details: { 'median ms': r.metrics.latency[0]!.medianMs.toFixed(3), kernel: k.variant ?? '', git: r.gitSha.slice(0, 7) } });
      }
    }
  }
  // A group where only PyTorch ran says nothing about us: keep the shapes we timed too.
  const ours = new Set(bars.filter((b) => b.label.startsWith('tabrecall')).map((b) => b.group));
  const kept = bars.filter((b) => ours.has(b.group!));
  // One bar per (group, label): the first anchor row of a kind wins (files list each shape once).
  const unique = kept.filter((b, i) => kept.findIndex((o) => o.group === b.group && o.label === b.label) === i);
  return barChart({ id: 'kernels-vs-pytorch', title: 'Forward TFLOP/s: tabrecall kernels and PyTorch, same GPU and shapes', value: { title: 'effective TFLOP/s', kind: 'tflops' }, bars: unique, labelTitle: 'implementation', groupTitle: 'layout, shape' });
}

/** Where a kernel record ran: device, the bf16 kernel the library picked, short git sha. */
function kernelWhere(r: RunRecord): string {
  const info = r.fingerprint.backendInfo ?? {};
  const dev = info.device ?? r.fingerprint.cpu;
  const k = r.metrics.kernel!;
  const ran = k.variant ?? info.bf16Attention;
  return `${dev}${k.precision === 'bf16' && ran ? ` ${ran}` : ''} @${r.gitSha.slice(0, 7)}`;
}

function kernelsTable(rs: RunRecord[]): string {
  return table('kernels', [
    { header: 'case' }, { header: 'backend' }, { header: 'device, kernel, git' }, { header: 'impl' }, { header: 'precision' }, { header: 'pass' }, { header: 'layout' },
    { header: 'B', kind: 'count' }, { header: 'L', kind: 'count' }, { header: 'density', kind: 'density' }, { header: 'median ms', kind: 'ms' }, { header: 'p10 ms', kind: 'ms' }, { header: 'p90 ms', kind: 'ms' },
    { header: 'GFLOP/s', kind: 'gflops' }, { header: 'speedup vs dense', kind: 'ratio' },
  ], rs.map((r) => {
    const k = r.metrics.kernel!;
    const l = r.metrics.latency[0]!;
    return { attrs: `data-run-id="${esc(r.runId)}"`, cells: [r.label, r.backend, kernelWhere(r), k.impl, precisionOf(r), k.pass, k.layout, Number(r.task.params.B), Number(r.task.params.L), k.density, l.medianMs, l.p10Ms, l.p90Ms, k.gflops, k.speedupVsDense] };
  }));
}

function anchorsTable(anchors: { path: string; table: AnchorTable }[]): string {
  const rows = anchors.flatMap(({ path, table: a }) => a.rows.map((r) => ({ cells: [r.what, r.dtype, `${a.device}, torch ${a.torch}`, path.split(/[\\/]/).pop()!, r.B, r.L, r.density, r.ms, r.tflops * 1000] })));
  return `<h4>Reference: PyTorch in the same device calls</h4>${table('anchors', [
    { header: 'what' }, { header: 'dtype' }, { header: 'device, library' }, { header: 'file' }, { header: 'B', kind: 'count' }, { header: 'L', kind: 'count' },
    { header: 'density', kind: 'density' }, { header: 'median ms', kind: 'ms' }, { header: 'GFLOP/s', kind: 'gflops' },
  ], rows)}`;
}

export function speedSection(page: Page, records: RunRecord[], anchors: { path: string; table: AnchorTable }[]): string {
  const latency = page.plots(modelLatencyCharts(records));
  const kernels = kernelsOf(records);
  const op = page.plots([...operatorCharts(records), anchorChart(records, anchors)]);
  if (!latency && !op && !kernels.length && !anchors.length) return '';
  const modelPart = latency
    ? `<h3>Trained models: inference latency</h3>${howToRead('median wall time of one forward pass of the trained model at each length (tinybench, warm), per device; batch 1 and the largest batch measured. Lower is faster; compare models only within one device.')}${latency}`
    : '';
  const opPart = kernels.length || anchors.length
    ? `<section id="task-attention-op"><h3>The shared block-sparse operator</h3>${howToRead('each point times one call of the attention operator every model uses (B x H x L x D inputs, block-sparse layout). '
      + 'Effective FLOP/s count only listed blocks (4·B·H·L²·D·density forward; x2.5 backward). PyTorch numbers come from the same device call (scripts/device/anchors.py).')}`
      + `${op}${kernels.length ? `<details><summary>All kernel measurements (${kernels.length})</summary>${kernelsTable(kernels)}</details>` : ''}${anchors.length ? anchorsTable(anchors) : ''}</section>`
    : '';
  return `<section id="speed"><h2>Speed</h2>${modelPart}${opPart}</section>`;
}
