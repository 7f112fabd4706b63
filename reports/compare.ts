/**
 * Regression check between two reports. Runs are matched by run id (a hash of the full configuration,
 * seed and backend included).
 * - Accuracy: a drop larger than `accTolerance` (absolute) is a regression. Same seed + backend should
 *   reproduce accuracy exactly, so the default tolerance is small.
 * - Latency, per shape: new median / base median above 1 + max(minRelative, spreadFactor x spread)
 *   is a regression, where spread is the larger relative (p90 - p10) / median of the two measurements.
 * - A run (or a measured shape, or a value) present in one report and not the other, or null in the
 *   new one, is a regression unless `allowMissing`: "no regressions" must mean every result was compared.
 * - A run that failed in the new report (RunRecord.failure) is always a regression.
 */
import type { Report, RunRecord } from './schema.js';
import { fmt, formatTable } from './table.js';

export interface CompareOptions {
  accTolerance: number;
  minRelative: number;
  spreadFactor: number;
  /** Missing, new-only and null results are reported but not counted as regressions. */
  allowMissing: boolean;
}

export const COMPARE_DEFAULTS: CompareOptions = { accTolerance: 0.005, minRelative: 0.1, spreadFactor: 3, allowMissing: false };

export interface CompareRow {
  runId: string;
  label: string;
  metric: string;
  base: number | null;
  next: number | null;
  change: string;
  threshold: string;
  /** Upper case verdicts count as regressions. */
  verdict: 'ok' | 'improved' | 'REGRESSION' | 'FAILED' | 'MISSING' | 'NEW' | 'missing (allowed)' | 'new (allowed)';
}

const COUNTS = new Set<CompareRow['verdict']>(['REGRESSION', 'FAILED', 'MISSING', 'NEW']);

export interface CompareResult {
  rows: CompareRow[];
  regressions: number;
}

export function compareReports(base: Report, next: Report, opts: Partial<CompareOptions> = {}): CompareResult {
  const o = { ...COMPARE_DEFAULTS, ...opts };
  const rows: CompareRow[] = [];
  const absent = (which: 'missing' | 'new'): CompareRow['verdict'] => (o.allowMissing ? `${which} (allowed)` : which === 'missing' ? 'MISSING' : 'NEW');
  const row = (r: RunRecord, metric: string, verdict: CompareRow['verdict'], extra: Partial<CompareRow> = {}): CompareRow =>
    ({ runId: r.runId, label: r.label, metric, base: null, next: null, change: '', threshold: '', verdict, ...extra });
  const byId = new Map(next.records.map((r) => [r.runId, r]));
  const seen = new Set<string>();
  let compared = 0;
  for (const b of base.records) {
    const n = byId.get(b.runId);
    if (!n) {
      rows.push(row(b, 'run', absent('missing'), { change: 'not in the new report' }));
      continue;
    }
    seen.add(b.runId);
    if (n.failure) {
      rows.push(row(n, 'run', 'FAILED', { change: `${n.failure.reason} at step ${n.failure.step}` }));
      continue;
    }
    if (b.failure) {
      rows.push(row(n, 'run', 'improved', { change: `failed before (${b.failure.reason}), runs now` }));
      continue;
    }
    if (b.metrics.accuracy !== null || n.metrics.accuracy !== null) {
      if (b.metrics.accuracy === null || n.metrics.accuracy === null) rows.push(row(n, 'accuracy', absent(n.metrics.accuracy === null ? 'missing' : 'new'), { base: b.metrics.accuracy, next: n.metrics.accuracy, change: 'null on one side' }));
      else {
        rows.push(accuracyRow(b, n, o));
        compared++;
      }
    }
    const lat = latencyRows(b, n, o, absent);
    rows.push(...lat);
    compared += lat.filter((x) => x.verdict === 'ok' || x.verdict === 'improved' || x.verdict === 'REGRESSION').length;
  }
  for (const n of next.records) {
    if (seen.has(n.runId)) continue;
    rows.push(n.failure ? row(n, 'run', 'FAILED', { change: `${n.failure.reason} at step ${n.failure.step}` }) : row(n, 'run', absent('new'), { change: 'not in the base report' }));
  }
  if (compared === 0 && !o.allowMissing) {
    rows.push({ runId: '', label: '(both reports)', metric: 'any', base: null, next: null, change: 'no result in common', threshold: '', verdict: 'MISSING' });
  }
  return { rows, regressions: rows.filter((r) => COUNTS.has(r.verdict)).length };
}

function accuracyRow(b: RunRecord, n: RunRecord, o: CompareOptions): CompareRow {
  const d = n.metrics.accuracy! - b.metrics.accuracy!;
  const verdict = d < -o.accTolerance ? 'REGRESSION' : d > o.accTolerance ? 'improved' : 'ok';
  return {
    runId: b.runId, label: b.label, metric: 'accuracy', base: b.metrics.accuracy, next: n.metrics.accuracy,
    change: `${d >= 0 ? '+' : ''}${d.toFixed(4)}`, threshold: `-${o.accTolerance}`, verdict,
  };
}

function latencyRows(b: RunRecord, n: RunRecord, o: CompareOptions, absent: (w: 'missing' | 'new') => CompareRow['verdict']): CompareRow[] {
  const rows: CompareRow[] = [];
  const base = { runId: b.runId, label: b.label, change: '', threshold: '' };
  const valid = (x: { medianMs: unknown } | undefined): boolean => typeof x?.medianMs === 'number' && Number.isFinite(x.medianMs) && x.medianMs > 0;
  for (const lb of b.metrics.latency) {
    const metric = `latency b${lb.batch} L${lb.length} ms`;
    const ln = n.metrics.latency.find((x) => x.batch === lb.batch && x.length === lb.length);
    if (!valid(lb) || !valid(ln)) {
      rows.push({ ...base, metric, base: lb.medianMs ?? null, next: ln?.medianMs ?? null, change: ln ? 'null median' : 'shape not measured', verdict: absent(!valid(ln) ? 'missing' : 'new') });
      continue;
    }
    const ratio = ln!.medianMs / lb.medianMs;
    const spread = Math.max((lb.p90Ms - lb.p10Ms) / lb.medianMs, (ln!.p90Ms - ln!.p10Ms) / ln!.medianMs);
    const threshold = Math.max(o.minRelative, o.spreadFactor * spread);
    const verdict = ratio > 1 + threshold ? 'REGRESSION' : ratio < 1 / (1 + threshold) ? 'improved' : 'ok';
    rows.push({ ...base, metric, base: lb.medianMs, next: ln!.medianMs, change: `x${ratio.toFixed(3)}`, threshold: `x${(1 + threshold).toFixed(3)}`, verdict });
  }
  for (const ln of n.metrics.latency) {
    if (!b.metrics.latency.some((x) => x.batch === ln.batch && x.length === ln.length)) {
      rows.push({ ...base, metric: `latency b${ln.batch} L${ln.length} ms`, base: null, next: ln.medianMs, change: 'shape not in the base report', verdict: absent('new') });
    }
  }
  return rows;
}

export function formatCompare(r: CompareResult): string {
  const table = formatTable(
    ['run', 'metric', 'base', 'new', 'change', 'limit', 'verdict'],
    r.rows.map((x) => [x.label, x.metric, fmt(x.base, 4), fmt(x.next, 4), x.change, x.threshold, x.verdict]),
  );
  return `${table}\n\n${r.regressions === 0 ? 'no regressions' : `${r.regressions} regression(s) (upper-case verdicts)`}`;
}
