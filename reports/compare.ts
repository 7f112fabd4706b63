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
  /** An accuracy drop past the tolerance counts only if the paired test gives p < 0.05 (where records carry per-example results). */
  significant: boolean;
}

export const COMPARE_DEFAULTS: CompareOptions = { accTolerance: 0.005, minRelative: 0.1, spreadFactor: 3, allowMissing: false, significant: false };

export interface CompareRow {
  runId: string;
  label: string;
  metric: string;
  base: number | null;
  next: number | null;
  change: string;
  threshold: string;
  /** Accuracy rows with per-example results on both sides: the paired test's p-value and the smallest detectable change. */
  pValue?: number;
  detectable?: number;
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

const u16 = (s: string): Uint16Array => {
  const b = Buffer.from(s, 'base64');
  return new Uint16Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
};

/** Standard normal upper tail (Abramowitz-Stegun 7.1.26 erfc; |error| < 1.5e-7). */
function normalTail(z: number): number {
  const x = Math.abs(z) / Math.SQRT2;
  const t = 1 / (1 + 0.3275911 * x);
  const erfc = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429)))) * Math.exp(-x * x);
  return z >= 0 ? erfc / 2 : 1 - erfc / 2;
}

export interface PairedTest {
  /** Two-sided p-value of the accuracy change, paired over the same test examples (normal approximation). */
  p: number;
  /** Smallest accuracy change this test set detects (alpha 0.05 two-sided, power 0.8): 2.8 standard errors. */
  detectable: number;
  examples: number;
}

/**
 * Paired test on the same examples: per example the change in labelled positions right, d_i; the
 * accuracy change is sum(d) / sum(total), its standard error sqrt(n var(d)) / sum(total). The
 * detectable change uses var(d) if the runs differ, else twice the base's per-example variance
 * (what two independent evaluations would show). Null when the two runs did not score the same examples.
 */
export function pairedAccuracyTest(b: RunRecord, n: RunRecord): PairedTest | null {
  const pb = b.metrics.perExample;
  const pn = n.metrics.perExample;
  if (!pb || !pn || pb.total !== pn.total) return null;
  const cb = u16(pb.correct);
  const cn = u16(pn.correct);
  const tot = u16(pb.total);
  const N = tot.length;
  if (cb.length !== N || cn.length !== N || N < 2) return null;
  const T = tot.reduce((s, x) => s + x, 0);
  const mean = (f: (i: number) => number) => { let s = 0; for (let i = 0; i < N; i++) s += f(i); return s / N; };
  const variance = (f: (i: number) => number) => { const m = mean(f); return mean((i) => (f(i) - m) ** 2) * (N / (N - 1)); };
  const vd = variance((i) => cn[i]! - cb[i]!);
  const dSum = mean((i) => cn[i]! - cb[i]!) * N;
  const se = Math.sqrt(N * vd) / T;
  const p = vd === 0 ? (dSum === 0 ? 1 : 0) : 2 * normalTail(Math.abs(dSum / T) / se);
  const seRef = vd > 0 ? se : Math.sqrt(N * 2 * variance((i) => cb[i]!)) / T;
  return { p, detectable: 2.8 * seRef, examples: N };
}

function accuracyRow(b: RunRecord, n: RunRecord, o: CompareOptions): CompareRow {
  const d = n.metrics.accuracy! - b.metrics.accuracy!;
  const paired = pairedAccuracyTest(b, n);
  // With --significant, a drop past the tolerance must also be unlikely under the paired test's noise.
  const drop = d < -o.accTolerance && (!o.significant || !paired || paired.p < 0.05);
  const verdict = drop ? 'REGRESSION' : d > o.accTolerance ? 'improved' : 'ok';
  return {
    runId: b.runId, label: b.label, metric: 'accuracy', base: b.metrics.accuracy, next: n.metrics.accuracy,
    change: `${d >= 0 ? '+' : ''}${d.toFixed(4)}`, threshold: `-${o.accTolerance}`, verdict,
    ...(paired ? { pValue: paired.p, detectable: paired.detectable } : {}),
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
    ['run', 'metric', 'base', 'new', 'change', 'limit', 'p (paired)', 'detectable', 'verdict'],
    r.rows.map((x) => [x.label, x.metric, fmt(x.base, 4), fmt(x.next, 4), x.change, x.threshold, x.pValue === undefined ? '' : fmt(x.pValue, 3), x.detectable === undefined ? '' : `±${fmt(x.detectable, 4)}`, x.verdict]),
  );
  return `${table}\n\n${r.regressions === 0 ? 'no regressions' : `${r.regressions} regression(s) (upper-case verdicts)`}`;
}
