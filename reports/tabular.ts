/**
 * Tabular aggregates from records (by model label, knowing nothing of models): per-table mean over
 * folds and seeds; per model the mean over tables with a 95% t-interval, and the mean rank over
 * tables (rank 1 = best accuracy; ties share the average rank; only tables every model ran on).
 */
import { Rng } from '../core/rng.js';
import type { RunRecord } from './schema.js';

const T95 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.16, 2.145, 2.131, 2.12, 2.11, 2.101, 2.093, 2.086, 2.08, 2.074, 2.069, 2.064, 2.06, 2.056, 2.052, 2.048, 2.045, 2.042];

export interface Stat { mean: number; ci95: number }

export function meanCi(xs: number[]): Stat {
  const n = xs.length;
  const mean = xs.reduce((s, x) => s + x, 0) / n;
  if (n < 2) return { mean, ci95: NaN };
  const sd = Math.sqrt(xs.reduce((s, x) => s + (x - mean) ** 2, 0) / (n - 1));
  return { mean, ci95: (T95[Math.min(n - 2, T95.length - 1)] ?? 1.96) * (sd / Math.sqrt(n)) };
}

/** Average ranks (1 = largest value), ties averaged. */
export function ranks(values: number[]): number[] {
  const idx = values.map((v, i) => [v, i] as const).sort((a, b) => b[0] - a[0]);
  const r = new Array<number>(values.length);
  for (let i = 0; i < idx.length; ) {
    let j = i;
    while (j + 1 < idx.length && idx[j + 1]![0] === idx[i]![0]) j++;
    for (let k = i; k <= j; k++) r[idx[k]![1]] = (i + j) / 2 + 1;
    i = j + 1;
  }
  return r;
}

export interface TabularSummary {
  models: string[];
  tables: string[];
  perTable: Record<string, Record<string, { accuracy: number; rocAuc: number; logLoss: number; n: number }>>;
  aggregate: Record<string, { accuracy: Stat; rocAuc: Stat; logLoss: Stat; meanRank: number; tables: number }>;
}

export function tabularSummary(records: RunRecord[]): TabularSummary {
  const rs = records.filter((r) => r.metrics.tabular && r.metrics.accuracy !== null);
  const models = [...new Set(rs.map((r) => r.model.size))];
  const tables = [...new Set(rs.map((r) => r.metrics.tabular!.table))];
  const perTable: TabularSummary['perTable'] = {};
  for (const t of tables) {
    perTable[t] = {};
    for (const m of models) {
      const xs = rs.filter((r) => r.metrics.tabular!.table === t && r.model.size === m);
      if (!xs.length) continue;
      const mean = (f: (r: RunRecord) => number): number => xs.reduce((s, r) => s + f(r), 0) / xs.length;
      perTable[t]![m] = { accuracy: mean((r) => r.metrics.accuracy!), rocAuc: mean((r) => r.metrics.tabular!.rocAuc), logLoss: mean((r) => r.metrics.tabular!.logLoss), n: xs.length };
    }
  }
  const complete = tables.filter((t) => models.every((m) => perTable[t]![m]));
  const rankSum: Record<string, number> = Object.fromEntries(models.map((m) => [m, 0]));
  for (const t of complete) ranks(models.map((m) => perTable[t]![m]!.accuracy)).forEach((r, i) => (rankSum[models[i]!]! += r));
  const aggregate: TabularSummary['aggregate'] = {};
  for (const m of models) {
    const ts = complete.map((t) => perTable[t]![m]!);
    aggregate[m] = {
      accuracy: meanCi(ts.map((x) => x.accuracy)), rocAuc: meanCi(ts.map((x) => x.rocAuc)), logLoss: meanCi(ts.map((x) => x.logLoss)),
      meanRank: rankSum[m]! / Math.max(1, complete.length), tables: complete.length,
    };
  }
  return { models, tables, perTable, aggregate };
}

export interface WidthRow { features: number; sparseMs: number; denseMs: number; sparseBytes: number; denseBytes: number; sparseDensity: number }

export function widthSummary(records: RunRecord[]): WidthRow[] {
  const rs = records.filter((r) => r.metrics.width);
  const fs = [...new Set(rs.map((r) => r.metrics.width!.features))].sort((a, b) => a - b);
  return fs.map((f) => {
    const get = (a: string): RunRecord | undefined => rs.find((r) => r.metrics.width!.features === f && r.metrics.width!.rowAttention === a);
    const s = get('sparse');
    const d = get('dense');
    return { features: f, sparseMs: s?.metrics.latency[0]?.medianMs ?? NaN, denseMs: d?.metrics.latency[0]?.medianMs ?? NaN, sparseBytes: s?.metrics.width!.peakBytes ?? NaN, denseBytes: d?.metrics.width!.peakBytes ?? NaN, sparseDensity: s?.metrics.width!.density ?? NaN };
  });
}

export interface EloRating { model: string; elo: number; lo: number; hi: number }

/**
 * Elo ratings as TabArena computes them: every pair of models "battles" on every table (the higher
 * mean accuracy wins, equal is a draw), a Bradley-Terry model is fitted to the battles, and its log
 * strengths are put on the Elo scale (400 points = 10:1 odds). The anchor model is pinned at 1000
 * (the random forest, any tree count, when present; else the mean is 1000). Intervals: 2.5th and 97.5th percentiles over
 * `rounds` bootstrap resamples of the tables, from a seeded generator (same input, same numbers).
 */
export function eloRatings(s: TabularSummary, o: { anchor?: string; rounds?: number; seed?: number } = {}): EloRating[] {
  const models = s.models;
  const tables = s.tables.filter((t) => models.every((m) => s.perTable[t]![m]));
  if (models.length < 2 || tables.length === 0) return [];
  const anchor = o.anchor ?? models.find((m) => m === 'random-forest' || m.startsWith('random-forest ')); // labels carry the tree count
  const fit = (ts: string[]) => toElo(bradleyTerry(models, ts.map((t) => models.map((m) => s.perTable[t]![m]!.accuracy))), models, anchor);
  const point = fit(tables);
  const rng = new Rng(o.seed ?? 0);
  const boots = Array.from({ length: o.rounds ?? 200 }, () => fit(Array.from({ length: tables.length }, () => tables[rng.int(0, tables.length)]!)));
  return models.map((m, i) => {
    const xs = boots.map((b) => b[i]!).sort((a, b) => a - b);
    return { model: m, elo: point[i]!, lo: quantile(xs, 0.025), hi: quantile(xs, 0.975) };
  }).sort((a, b) => b.elo - a.elo);
}

/**
 * Bradley-Terry strengths from per-table scores (rows: tables, columns: models), by the MM algorithm
 * (Hunter 2004). Draws count half a win each way; every pair also gets one virtual draw, so a model
 * that wins every battle keeps a finite strength.
 */
function bradleyTerry(models: string[], scores: number[][]): number[] {
  const n = models.length;
  const wins = new Array<number>(n).fill(0);
  const games = Array.from({ length: n }, () => new Array<number>(n).fill(1));
  for (let i = 0; i < n; i++) wins[i] = (n - 1) * 0.5;
  for (const row of scores) {
    for (let i = 0; i < n; i++) {
      for (let j = i + 1; j < n; j++) {
        const w = row[i]! > row[j]! ? 1 : row[i]! < row[j]! ? 0 : 0.5;
        wins[i]! += w;
        wins[j]! += 1 - w;
        games[i]![j]! += 1;
        games[j]![i]! += 1;
      }
    }
  }
  let p = new Array<number>(n).fill(1);
  for (let it = 0; it < 1000; it++) {
    const next = p.map((pi, i) => wins[i]! / games[i]!.reduce((s, g, j) => (j === i ? s : s + g / (pi + p[j]!)), 0));
    const norm = next.reduce((s, x) => s + Math.log(x), 0) / n;
    const scaled = next.map((x) => x / Math.exp(norm));
    const delta = Math.max(...scaled.map((x, i) => Math.abs(Math.log(x / p[i]!))));
    p = scaled;
    if (delta < 1e-10) break;
  }
  return p;
}

function toElo(strengths: number[], models: string[], anchor: string | undefined): number[] {
  const elo = strengths.map((x) => (400 * Math.log(x)) / Math.LN10);
  const shift = anchor !== undefined ? 1000 - elo[models.indexOf(anchor)]! : 1000 - elo.reduce((s, x) => s + x, 0) / elo.length;
  return elo.map((x) => x + shift);
}

function quantile(sorted: number[], q: number): number {
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  return sorted[lo]! + (sorted[Math.min(lo + 1, sorted.length - 1)]! - sorted[lo]!) * (pos - lo);
}

export interface ArenaScore { meanRank: number; normalized: number; winRate: number; improvability: number; tables: number }

/**
 * TabArena's per-table summaries of one metric, over the tables every model ran on:
 * - mean rank (1 = best; ties share the average rank);
 * - normalized score: per table (v - worst) / (best - worst), 1 = best, 0 = worst (all tied: 1);
 * - win rate: share of (table, opponent) pairs won, a tie counting half;
 * - improvability: per table (err - best err) / err, in percent, averaged (err = 1 - accuracy or
 *   1 - ROC-AUC, or the log-loss itself): how much lower the error could be with the best model.
 * Self-contained on purpose: the leaderboard embeds this very function (String(arenaScores)) to
 * re-rank its per-split results in the browser by another metric.
 */
export function arenaScores(per: Record<string, Record<string, number>>, models: string[], higherBetter: boolean): Record<string, ArenaScore> {
  const tables = Object.keys(per).filter((t) => models.every((m) => typeof per[t]![m] === 'number' && !Number.isNaN(per[t]![m])));
  const out: Record<string, ArenaScore> = {};
  for (const m of models) out[m] = { meanRank: 0, normalized: 0, winRate: 0, improvability: 0, tables: tables.length };
  const better = (a: number, b: number) => (higherBetter ? a > b : a < b);
  const err = (v: number) => (higherBetter ? 1 - v : v);
  for (const t of tables) {
    const v = models.map((m) => per[t]![m]!);
    const best = v.reduce((a, b) => (better(b, a) ? b : a)), worst = v.reduce((a, b) => (better(a, b) ? b : a));
    models.forEach((m, i) => {
      let above = 0, ties = 0;
      for (let j = 0; j < v.length; j++) if (j !== i) {
        if (better(v[j]!, v[i]!)) above++;
        else if (v[j] === v[i]) ties++;
      }
      const o = out[m]!;
      o.meanRank += 1 + above + ties / 2;
      o.winRate += v.length > 1 ? (v.length - 1 - above - ties + ties / 2) / (v.length - 1) : 1;
      o.normalized += best === worst ? 1 : (v[i]! - worst) / (best - worst);
      const e = err(v[i]!), eb = err(best);
      o.improvability += e > 0 ? (100 * (e - eb)) / e : 0;
    });
  }
  for (const m of models) {
    const o = out[m]!;
    const n = Math.max(1, tables.length);
    o.meanRank /= n;
    o.normalized /= n;
    o.winRate /= n;
    o.improvability /= n;
  }
  return out;
}

/** Fit + predict seconds per 1000 rows (train + test) per model: the median over its splits. */
export function secondsPer1kRows(records: RunRecord[]): Record<string, number> {
  const by = new Map<string, number[]>();
  for (const r of records) {
    const t = r.metrics.tabular;
    if (!t || r.metrics.accuracy === null) continue;
    (by.get(r.model.size) ?? by.set(r.model.size, []).get(r.model.size)!).push((1000 * t.seconds) / (t.nTrain + t.nTest));
  }
  return Object.fromEntries([...by].map(([m, xs]) => [m, quantile(xs.sort((a, b) => a - b), 0.5)]));
}

/** Mean per-table accuracy difference a - b over the tables both ran on, with a 95% t-interval (paired by table). */
export function pairedDifference(s: TabularSummary, a: string, b: string): Stat & { tables: number } {
  const d = s.tables.filter((t) => s.perTable[t]![a] && s.perTable[t]![b]).map((t) => s.perTable[t]![a]!.accuracy - s.perTable[t]![b]!.accuracy);
  return { ...meanCi(d), tables: d.length };
}
