/**
 * Preprocessing fitted on train rows only (as TabPFN/TabICL do): numeric columns robustly
 * standardised (median, IQR/1.349, falling back to the standard deviation, then 1) and clipped at
 * |z| = 4 (Orion-MSP's outlier clip); categorical columns ordinal-encoded by train frequency
 * (categories unseen in train count as missing) and then standardised the same way; missing cells
 * become 0, the train median.
 */
import type { FeatureColumn, RawTable } from './types.js';

export const CLIP_Z = 4;

interface ColumnFit {
  center: number;
  scale: number;
  /** Categorical: code -> ordinal rank by train frequency (-1 = unseen). */
  rank?: Int32Array;
}

export interface Preprocessor {
  fits: ColumnFit[];
}

function rawValue(f: FeatureColumn, i: number, fit?: ColumnFit): number {
  if (f.kind === 'numeric') return f.values[i]!;
  const c = f.codes[i]!;
  if (c < 0) return NaN;
  const r = fit?.rank ? fit.rank[c]! : c;
  return r < 0 ? NaN : r;
}

function quantileSorted(a: number[], q: number): number {
  if (a.length === 0) return 0;
  const p = (a.length - 1) * q;
  const lo = Math.floor(p);
  const hi = Math.ceil(p);
  return a[lo]! + (a[hi]! - a[lo]!) * (p - lo);
}

export function fitPreprocessor(t: RawTable, trainRows: ArrayLike<number>): Preprocessor {
  return {
    fits: t.features.map((f) => {
      let rank: Int32Array | undefined;
      if (f.kind === 'categorical') {
        const counts = new Array<number>(f.categories.length).fill(0);
        for (let k = 0; k < trainRows.length; k++) {
          const c = f.codes[trainRows[k]!]!;
          if (c >= 0) counts[c]!++;
        }
        rank = new Int32Array(f.categories.length).fill(-1);
        counts.map((n, c) => [n, c] as const).filter(([n]) => n > 0).sort((a, b) => b[0] - a[0] || a[1] - b[1]).forEach(([, c], r) => (rank![c] = r));
      }
      const fitSoFar: ColumnFit = { center: 0, scale: 1, rank };
      const xs: number[] = [];
      for (let k = 0; k < trainRows.length; k++) {
        const x = rawValue(f, trainRows[k]!, fitSoFar);
        if (!Number.isNaN(x)) xs.push(x);
      }
      xs.sort((a, b) => a - b);
      const center = quantileSorted(xs, 0.5);
      let scale = (quantileSorted(xs, 0.75) - quantileSorted(xs, 0.25)) / 1.349;
      if (!(scale > 1e-12)) {
        const mean = xs.reduce((s, x) => s + x, 0) / Math.max(1, xs.length);
        scale = Math.sqrt(xs.reduce((s, x) => s + (x - mean) ** 2, 0) / Math.max(1, xs.length));
      }
      if (!(scale > 1e-12)) scale = 1;
      return { center, scale, rank };
    }),
  };
}

/** Rows -> row-major float32 [rows.length, F], finite everywhere. */
export function transformRows(t: RawTable, p: Preprocessor, rows: ArrayLike<number>): Float32Array {
  const F = t.features.length;
  const out = new Float32Array(rows.length * F);
  t.features.forEach((f, j) => {
    const fit = p.fits[j]!;
    for (let k = 0; k < rows.length; k++) {
      const x = rawValue(f, rows[k]!, fit);
      out[k * F + j] = Number.isNaN(x) ? 0 : Math.max(-CLIP_Z, Math.min(CLIP_Z, (x - fit.center) / fit.scale));
    }
  });
  return out;
}
