/**
 * Plain loops (float64) with the decode kernels' semantics, on host arrays: what tests compare the
 * native and cuda kernels with, and the statement of what each method selects.
 */

export interface HostSelection {
  page: number;
  maxp: number;
  /** [rows * maxp] */
  pages: Int32Array;
  /** [rows] */
  counts: Int32Array;
  /** [H] */
  tailFrom: Int32Array;
}

/** The cache positions row r reads (ascending, no repeats). */
export function rowTokens(r: number, H: number, len: number, sel?: HostSelection): number[] {
  if (!sel) return Array.from({ length: len }, (_, t) => t);
  const tail = sel.tailFrom[r % H]!;
  const out = new Set<number>();
  for (let j = 0; j < sel.counts[r]!; j++) {
    const p = sel.pages[r * sel.maxp + j]!;
    for (let t = p * sel.page; t < (p + 1) * sel.page; t++) if (t < tail && t < len) out.add(t);
  }
  for (let t = Math.max(0, tail); t < len; t++) out.add(t);
  return [...out].sort((a, b) => a - b);
}

/** Softmax attention of q [rows, D] over the listed rows of K, V [rows, cap, D]. */
export function refDecode(q: ArrayLike<number>, K: ArrayLike<number>, V: ArrayLike<number>, rows: number, H: number, D: number, cap: number, len: number, scale: number, sel?: HostSelection): Float64Array {
  const out = new Float64Array(rows * D);
  for (let r = 0; r < rows; r++) {
    const toks = rowTokens(r, H, len, sel);
    if (toks.length === 0) continue;
    const s = toks.map((t) => {
      let d = 0;
      for (let c = 0; c < D; c++) d += q[r * D + c]! * K[(r * cap + t) * D + c]!;
      return d * scale;
    });
    const m = Math.max(...s);
    let z = 0;
    const e = s.map((x) => ((z += Math.exp(x - m)), Math.exp(x - m)));
    toks.forEach((t, i) => {
      for (let c = 0; c < D; c++) out[r * D + c] += (e[i]! / z) * V[(r * cap + t) * D + c]!;
    });
  }
  return out;
}

/** The k largest of each row (ties to the lower index; -inf / NaN never), ascending. */
export function refTopk(scores: ArrayLike<number>, rows: number, n: number, k: number): { idx: Int32Array; counts: Int32Array } {
  const idx = new Int32Array(rows * k).fill(-1), counts = new Int32Array(rows);
  for (let r = 0; r < rows; r++) {
    const cand = Array.from({ length: n }, (_, j) => j).filter((j) => scores[r * n + j]! > -Infinity);
    cand.sort((a, b) => scores[r * n + b]! - scores[r * n + a]! || a - b);
    const pick = cand.slice(0, k).sort((a, b) => a - b);
    counts[r] = pick.length;
    idx.set(pick, r * k);
  }
  return { idx, counts };
}

/** Per page, per channel min and max of the keys [rows, cap, D] below len: [rows, capPages, D] each. */
export function refPageMinMax(K: ArrayLike<number>, rows: number, D: number, cap: number, page: number, len: number): { kmin: Float64Array; kmax: Float64Array } {
  const capPages = Math.ceil(cap / page), nP = Math.ceil(len / page);
  const kmin = new Float64Array(rows * capPages * D), kmax = new Float64Array(rows * capPages * D);
  for (let r = 0; r < rows; r++) {
    for (let p = 0; p < nP; p++) {
      for (let c = 0; c < D; c++) {
        let mn = Infinity, mx = -Infinity;
        for (let t = p * page; t < Math.min(len, (p + 1) * page); t++) {
          mn = Math.min(mn, K[(r * cap + t) * D + c]!);
          mx = Math.max(mx, K[(r * cap + t) * D + c]!);
        }
        kmin[(r * capPages + p) * D + c] = mn;
        kmax[(r * capPages + p) * D + c] = mx;
      }
    }
  }
  return { kmin, kmax };
}

/** Quest's bound of every page: an upper bound of q . k over the page's keys. */
export function refQuestBound(q: ArrayLike<number>, kmin: ArrayLike<number>, kmax: ArrayLike<number>, r: number, p: number, D: number, capPages: number): number {
  let s = 0;
  for (let c = 0; c < D; c++) s += Math.max(q[r * D + c]! * kmin[(r * capPages + p) * D + c]!, q[r * D + c]! * kmax[(r * capPages + p) * D + c]!);
  return s;
}

/** Per-token magnitude pruning: the rows [n, D] with all but the `keep` largest |x| zeroed (ties to the lower channel). */
export function refPrune(x: ArrayLike<number>, n: number, D: number, keep: number): Float32Array {
  const out = new Float32Array(n * D);
  for (let t = 0; t < n; t++) {
    const ch = Array.from({ length: D }, (_, c) => c).sort((a, b) => Math.abs(x[t * D + b]!) - Math.abs(x[t * D + a]!) || a - b).slice(0, keep);
    for (const c of ch) out[t * D + c] = x[t * D + c]!;
  }
  return out;
}
