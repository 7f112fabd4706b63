/**
 * Regression check between two reports. Runs are matched by run id (a hash of the full configuration,
 * seed and backend included).
 * - Accuracy: a drop larger than `accTolerance` (absolute) is a regression. Same seed + backend should
 *   reproduce accuracy exactly, so the default tolerance is small.
 * - Latency, per shape: new median / base median above 1 + max(minRelative, spreadFactor x spread)
 *   is a regression, where spread is the larger relative (p90 - p10) / median of the two measurements.
 */
import type { Report, RunRecord } from './schema.js';
import { fmt, formatTable } from './table.js';

export interface CompareOptions {
  accTolerance: number;
  minRelative: number;
  spreadFactor: number;
}

export const COMPARE_DEFAULTS: CompareOptions = { accTolerance: 0.005, minRelative: 0.1, spreadFactor: 3 };

export interface CompareRow {
  runId: string;
  label: string;
  metric: string;
  base: number | null;
  next: number | null;
  change: string;
  threshold: string;
  verdict: 'ok' | 'REGRESSION' | 'improved' | 'missing' | 'new';
}

export interface CompareResult {
  rows: CompareRow[];
  regressions: number;
}

export function compareReports(base: Report, next: Report, o: CompareOptions = COMPARE_DEFAULTS): CompareResult {
  const rows: CompareRow[] = [];
  const byId = new Map(next.records.map((r) => [r.runId, r]));
  const seen = new Set<string>();
  for (const b of base.records) {
    const n = byId.get(b.runId);
    if (!n) {
      rows.push({ runId: b.runId, label: b.label, metric: 'run', base: null, next: null, change: '', threshold: '', verdict: 'missing' });
      continue;
    }
    seen.add(b.runId);
    if (b.metrics.accuracy !== null && n.metrics.accuracy !== null) rows.push(accuracyRow(b, n, o));
    rows.push(...latencyRows(b, n, o));
  }
  for (const n of next.records) {
    if (!seen.has(n.runId)) rows.push({ runId: n.runId, label: n.label, metric: 'run', base: null, next: null, change: '', threshold: '', verdict: 'new' });
  }
  return { rows, regressions: rows.filter((r) => r.verdict === 'REGRESSION').length };
}

function accuracyRow(b: RunRecord, n: RunRecord, o: CompareOptions): CompareRow {
  const d = n.metrics.accuracy! - b.metrics.accuracy!;
  const verdict = d < -o.accTolerance ? 'REGRESSION' : d > o.accTolerance ? 'improved' : 'ok';
  return {
    runId: b.runId, label: b.label, metric: 'accuracy', base: b.metrics.accuracy, next: n.metrics.accuracy,
    change: `${d >= 0 ? '+' : ''}${d.toFixed(4)}`, threshold: `-${o.accTolerance}`, verdict,
  };
}

function latencyRows(b: RunRecord, n: RunRecord, o: CompareOptions): CompareRow[] {
  const rows: CompareRow[] = [];
  for (const lb of b.metrics.latency) {
    const ln = n.metrics.latency.find((x) => x.batch === lb.batch && x.length === lb.length);
    if (!ln) continue;
    const ratio = ln.medianMs / lb.medianMs;
    const spread = Math.max((lb.p90Ms - lb.p10Ms) / lb.medianMs, (ln.p90Ms - ln.p10Ms) / ln.medianMs);
    const threshold = Math.max(o.minRelative, o.spreadFactor * spread);
    const verdict = ratio > 1 + threshold ? 'REGRESSION' : ratio < 1 / (1 + threshold) ? 'improved' : 'ok';
    rows.push({
      runId: b.runId, label: b.label, metric: `latency b${lb.batch} L${lb.length} ms`, base: lb.medianMs, next: ln.medianMs,
      change: `x${ratio.toFixed(3)}`, threshold: `x${(1 + threshold).toFixed(3)}`, verdict,
    });
  }
  return rows;
}

export function formatCompare(r: CompareResult): string {
  const table = formatTable(
    ['run', 'metric', 'base', 'new', 'change', 'limit', 'verdict'],
    r.rows.map((x) => [x.label, x.metric, fmt(x.base, 4), fmt(x.next, 4), x.change, x.threshold, x.verdict]),
  );
  return `${table}\n\n${r.regressions === 0 ? 'no regressions' : `${r.regressions} regression(s)`}`;
}
