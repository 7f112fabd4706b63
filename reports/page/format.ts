/**
 * How the pages write numbers: one format per kind of metric, the same in tables, tooltips and axes
 * (an accuracy is always 4 decimals, "1.0000" beside "0.9980"; counts get thousands separators).
 * Each kind has a JS formatter (tables) and the d3-format string Vega uses (tooltips, axis labels).
 */
export type MetricKind = 'accuracy' | 'count' | 'ms' | 'seconds' | 'gflops' | 'tflops' | 'ratio' | 'density' | 'rank' | 'elo' | 'mb' | 'delta';

const fixed = (digits: number) => new Intl.NumberFormat('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits, useGrouping: true });

const SPEC: Record<MetricKind, { intl: Intl.NumberFormat; d3: string }> = {
  accuracy: { intl: fixed(4), d3: '.4f' },
  count: { intl: fixed(0), d3: ',d' },
  ms: { intl: fixed(3), d3: ',.3f' },
  seconds: { intl: fixed(1), d3: ',.1f' },
  gflops: { intl: fixed(1), d3: ',.1f' },
  tflops: { intl: fixed(1), d3: ',.1f' },
  ratio: { intl: fixed(2), d3: ',.2f' },
  density: { intl: fixed(3), d3: '.3f' },
  rank: { intl: fixed(2), d3: '.2f' },
  elo: { intl: fixed(0), d3: ',d' },
  mb: { intl: fixed(1), d3: ',.1f' },
  delta: { intl: fixed(4), d3: '.4f' },
};

export const METRIC_KINDS = Object.keys(SPEC) as MetricKind[];

/** The table text of a value; empty for a missing or non-finite one (never "NaN"). */
export function formatMetric(kind: MetricKind, x: number | null | undefined): string {
  if (x === null || x === undefined || !Number.isFinite(x)) return '';
  return SPEC[kind].intl.format(kind === 'count' || kind === 'elo' ? Math.round(x) : x);
}

/** The d3-format string of a kind (Vega tooltips and linear axes). */
export function d3Format(kind: MetricKind): string {
  return SPEC[kind].d3;
}
