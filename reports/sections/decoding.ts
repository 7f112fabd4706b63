/**
 * Decoding: what decode-time methods keep of a trained checkpoint's accuracy at the share of the KV
 * cache a step reads (answers generated through the cache), what a decode step costs against
 * context length at batch 1 and 16, and how close the decode kernels come to the device's copy
 * bandwidth.
 */
import { chooseChart, type Chart } from '../page/charts.js';
import { esc, howToRead, table, type Page } from '../page/page.js';
import type { RunRecord } from '../schema.js';
import { deviceOf, taskTitle } from './rows.js';

const dm = (r: RunRecord) => r.metrics.decode!;
const budgetText = (r: RunRecord) => (dm(r).method === 'dense' ? '' : dm(r).method === 'mustafar' ? ` sparsity ${dm(r).budget}` : ` @${dm(r).budget}`);

export function decodingSection(page: Page, records: RunRecord[]): string {
  const rs = records.filter((r) => r.metrics.decode && !r.failure);
  if (!rs.length) return '';
  const methods = rs.filter((r) => dm(r).case === 'method');
  const kernels = rs.filter((r) => dm(r).case === 'bandwidth');
  const charts: (Chart | null)[] = [];
  const groups = [...new Set(methods.map((r) => `${dm(r).checkpoint}\u0000${deviceOf(r)}`))].sort();
  groups.forEach((g, gi) => {
    const [ck, dev] = g.split('\u0000') as [string, string];
    const on = methods.filter((r) => dm(r).checkpoint === ck && deviceOf(r) === dev);
    charts.push(chooseChart({
      id: `decode-accuracy-${gi}`, subject: `${ck} generated exact match`, context: `${taskTitle(on[0]!)}, L=${dm(on[0]!).length}, ${dev}`,
      x: { title: 'KV bytes read per step / dense', kind: 'density', log: true }, y: { title: 'exact match (generated)', kind: 'accuracy', domain: [0, 1] }, seriesTitle: 'method',
      points: on.map((r) => ({
        series: dm(r).method, x: dm(r).bytesReadFraction ?? NaN, y: dm(r).generatedExactMatch ?? NaN,
        details: { budget: String(dm(r).budget), 'teacher-forced': dm(r).teacherExactMatch?.toFixed(3) ?? '-', 'KV MB': (dm(r).kvBytes / 1e6).toFixed(2) },
      })),
    }));
    for (const batch of [...new Set(on.flatMap((r) => dm(r).latency.map((l) => l.batch)))].sort((a, b) => a - b)) {
      const ms = on.flatMap((r) => dm(r).latency.filter((l) => l.batch === batch).map((l) => l.step.medianMs));
      charts.push(chooseChart({
        id: `decode-latency-${gi}-b${batch}`, subject: 'Decode step latency', context: `${ck}, batch ${batch}, next token on the host, ${dev}`,
        // a log axis only where the times span a decade (a launch-bound small model's steps do not)
        x: { title: 'context length', kind: 'count', log: true }, y: { title: 'median ms per step', kind: 'ms', log: Math.max(...ms) >= 10 * Math.min(...ms) }, seriesTitle: 'method',
        points: on.flatMap((r) => dm(r).latency.filter((l) => l.batch === batch).map((l) => ({
          series: `${dm(r).method}${budgetText(r)}`, x: l.length, y: l.step.medianMs, lo: l.step.p10Ms, hi: l.step.p90Ms,
          details: { 'tokens/s': l.tokensPerSec.toFixed(0), 'KV MB': (l.kvBytes / 1e6).toFixed(1) },
        }))),
      }));
    }
  });
  const kdevs = [...new Set(kernels.map(deviceOf))].sort();
  kdevs.forEach((dev, di) => {
    const on = kernels.filter((r) => deviceOf(r) === dev);
    charts.push(chooseChart({
      id: `decode-bandwidth-${di}`, subject: 'Decode kernel bandwidth', context: `${dm(on[0]!).bandwidth!.heads} heads x ${dm(on[0]!).bandwidth!.headDim}, copy ${dm(on[0]!).bandwidth!.copyGbPerSec.toFixed(0)} GB/s, ${dev}`,
      x: { title: 'context length', kind: 'count', log: true }, y: { title: 'fraction of copy bandwidth', kind: 'ratio' }, seriesTitle: 'kernel',
      points: on.map((r) => ({
        series: `${dm(r).method} ${dm(r).format} b${dm(r).bandwidth!.batch}`, x: dm(r).length, y: dm(r).bandwidth!.fractionOfCopy,
        details: { 'GB/s': dm(r).bandwidth!.gbPerSec.toFixed(0), 'median ms': dm(r).bandwidth!.time.medianMs.toFixed(3) },
      })),
    }));
  });
  const rows = [...methods].sort((a, b) => deviceOf(a).localeCompare(deviceOf(b)) || dm(a).method.localeCompare(dm(b).method) || dm(a).budget - dm(b).budget);
  const lat = [...new Map(methods.flatMap((r) => dm(r).latency.map((l) => [`${l.length}/${l.batch}`, l] as const))).values()].sort((a, b) => a.batch - b.batch || a.length - b.length);
  // TTFT is mostly the (dense) prefill, nearly equal across methods: table columns, not a plot of overlapping lines
  const ttftLens = [...new Set(methods.flatMap((r) => (dm(r).ttftByLength ?? []).map((t) => t.length)))].sort((a, b) => a - b);
  return `<section id="decoding"><h2>Decoding</h2>
${howToRead('each checkpoint decodes through a decode-time method: the haystack is prefilled into the KV cache, the question and the answers run token by token through the method, and an example counts when every generated answer token is right (teacher-forced: the true answers fed back through the same cache). '
    + 'The x axis is the bytes of K and V (and the method\'s own statistics: page bounds, label cache) one step reads, over what dense decoding reads. Step latencies include the whole model step and the next token reaching the host; '
    + 'the kernel plot puts the decode attention kernel alone against the device\'s copy bandwidth (read + write bytes per second of one large copy).')}
${page.plots(charts)}
${table('decode-table', [
    { header: 'checkpoint' }, { header: 'device' }, { header: 'method' }, { header: 'budget', kind: 'density' }, { header: 'generated', kind: 'accuracy' }, { header: 'teacher-forced', kind: 'accuracy' },
    { header: 'vs dense', kind: 'ratio' }, { header: 'KV MB', kind: 'mb' }, { header: 'read / dense', kind: 'density' }, { header: 'TTFT ms', kind: 'ms' },
    ...ttftLens.map((n) => ({ header: `TTFT ms L${n}`, kind: 'ms' as const })),
    ...lat.map((l) => ({ header: `step ms L${l.length} b${l.batch}`, kind: 'ms' as const })),
  ], rows.map((r) => ({
    cells: [dm(r).checkpoint ?? '', deviceOf(r), dm(r).method, dm(r).budget, dm(r).generatedExactMatch, dm(r).teacherExactMatch, dm(r).accuracyRatio, dm(r).kvBytes / 1e6, dm(r).bytesReadFraction, dm(r).ttft?.medianMs ?? null,
      ...ttftLens.map((n) => (dm(r).ttftByLength ?? []).find((t) => t.length === n)?.ttft.medianMs ?? null),
      ...lat.map((l) => dm(r).latency.find((x) => x.length === l.length && x.batch === l.batch)?.step.medianMs ?? null)],
  })))}
${kernels.length ? `<h3>Decode kernels</h3>${table('decode-kernels', [
    { header: 'device' }, { header: 'kernel' }, { header: 'format' }, { header: 'batch', kind: 'count' }, { header: 'context', kind: 'count' }, { header: 'median ms', kind: 'ms' },
    { header: 'MB read', kind: 'mb' }, { header: 'GB/s', kind: 'count' }, { header: 'copy GB/s', kind: 'count' }, { header: 'of copy', kind: 'ratio' },
  ], kernels.map((r) => {
    const b = dm(r).bandwidth!;
    return { cells: [deviceOf(r), dm(r).method, dm(r).format, b.batch, dm(r).length, b.time.medianMs, b.bytesRead / 1e6, b.gbPerSec, b.copyGbPerSec, b.fractionOfCopy] };
  }))}` : ''}
<p class="note">${esc('Budgets: tokens read per head per step (streaming, Quest, LServe, Double Sparsity), the pruned fraction of every K and V row (Mustafar). Latency caches hold seeded random keys and values (a step costs the same whatever they hold).')}</p>
</section>`;
}
