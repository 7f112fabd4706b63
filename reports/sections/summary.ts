/** The answers first: the best model per task, the best tabular model per suite, the fastest kernel per layout and device. */
import { howToRead, table } from '../page/page.js';
import type { RunRecord } from '../schema.js';
import { eloRatings, tabularSummary } from '../tabular.js';
import { bestRows, deviceOf } from './rows.js';
import { TABULAR_TASKS } from './tabular.js';

function bestModels(records: RunRecord[]): string {
  const rows = bestRows(records.filter((r) => !r.metrics.kernel && !r.metrics.sparsify && !r.metrics.decode && !TABULAR_TASKS.includes(r.task.name)));
  const tasks = [...new Set(rows.map((b) => b.task))];
  if (!tasks.length) return '';
  return `<h3>Best model per task</h3>${table('summary-models', [
    { header: 'task' }, { header: 'best model' }, { header: 'backend' }, { header: 'accuracy', kind: 'accuracy' }, { header: '95% CI ±', kind: 'accuracy' },
    { header: 'runner-up' }, { header: 'runner-up accuracy', kind: 'accuracy' }, { header: 'models compared', kind: 'count' },
  ], tasks.map((t) => {
    const on = rows.filter((b) => b.task === t).sort((a, b) => b.accuracy.mean - a.accuracy.mean);
    const best = on[0]!;
    const second = on.find((b) => b.model !== best.model || b.size !== best.size);
    return { cells: [t, `${best.model} ${best.size}`, best.backend, best.accuracy.mean, best.accuracy.ci95, second ? `${second.model} ${second.size}` : '', second?.accuracy.mean, new Set(on.map((b) => `${b.model} ${b.size}`)).size] };
  }))}`;
}

function bestTabular(records: RunRecord[]): string {
  const rs = records.filter((r) => r.task.name === 'tabular');
  const suites = [...new Set(rs.map((r) => r.suite))];
  const rows = suites.flatMap((suite) => {
    const s = tabularSummary(rs.filter((r) => r.suite === suite));
    const elo = eloRatings(s);
    if (elo.length < 2) return [];
    return [{ cells: [suite, elo[0]!.model, elo[0]!.elo, `${Math.round(elo[0]!.lo)} to ${Math.round(elo[0]!.hi)}`, elo[1]!.model, elo[1]!.elo, s.aggregate[elo[0]!.model]!.tables, elo.length] }];
  });
  if (!rows.length) return '';
  return `<h3>Best tabular model per suite</h3>${table('summary-tabular', [
    { header: 'suite' }, { header: 'best model (Elo)' }, { header: 'Elo', kind: 'elo' }, { header: 'Elo 95% interval' }, { header: 'runner-up' }, { header: 'runner-up Elo', kind: 'elo' },
    { header: 'tables', kind: 'count' }, { header: 'models', kind: 'count' },
  ], rows)}`;
}

function fastestKernels(records: RunRecord[]): string {
  const rs = records.filter((r) => r.metrics.kernel && !r.failure && r.metrics.kernel.pass === 'forward' && r.metrics.kernel.layout !== 'random');
  const keys = [...new Set(rs.map((r) => `${r.metrics.kernel!.layout}\u0000${deviceOf(r)}`))].sort();
  if (!keys.length) return '';
  const rows = keys.map((k) => {
    const [layout, device] = k.split('\u0000') as [string, string];
    const on = rs.filter((r) => r.metrics.kernel!.layout === layout && deviceOf(r) === device);
    const L = Math.max(...on.map((r) => Number(r.task.params.L)));
    const atL = on.filter((r) => Number(r.task.params.L) === L).sort((a, b) => a.metrics.latency[0]!.medianMs - b.metrics.latency[0]!.medianMs);
    const name = (r: RunRecord) => `${r.metrics.kernel!.impl} ${r.metrics.kernel!.precision ?? 'fp32'}${r.metrics.kernel!.variant ? ` (${r.metrics.kernel!.variant})` : ''}`;
    const [a, b] = [atL[0]!, atL.find((r) => name(r) !== name(atL[0]!))];
    return { cells: [layout, device, Number(a.task.params.B), L, name(a), a.metrics.latency[0]!.medianMs, a.metrics.kernel!.gflops, b ? name(b) : '', b?.metrics.latency[0]!.medianMs] };
  });
  return `<h3>Fastest kernel per layout (forward, longest length measured)</h3>${table('summary-kernels', [
    { header: 'layout' }, { header: 'device' }, { header: 'B', kind: 'count' }, { header: 'L', kind: 'count' }, { header: 'fastest' }, { header: 'median ms', kind: 'ms' },
    { header: 'GFLOP/s', kind: 'gflops' }, { header: 'runner-up' }, { header: 'runner-up ms', kind: 'ms' },
  ], rows)}`;
}

export function summarySection(records: RunRecord[]): string {
  const body = bestModels(records) + bestTabular(records) + fastestKernels(records);
  if (!body) return '';
  return `<section id="summary"><h2>Summary</h2>${howToRead('the best configuration of each model (best learning rate, mean over seeds) per task; the tabular winner by Elo; and per layout and device the fastest operator implementation at the longest length measured. The sections below show how these were reached.')}${body}</section>`;
}
