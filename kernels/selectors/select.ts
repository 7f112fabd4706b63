/**
 * From scores to a layout: top-k and cumulative-threshold selection over a row of scores, and the
 * causal BSR assembly of per-(head, query block) key-block lists with optional per-block token bits.
 */
import { ParamError } from '../../core/params.js';
import { nBlocks, type BlockLayout } from '../layout.js';

/** Indices of the k largest of a[off .. off+n), ties to the lower index; ascending index order. */
export function topK(a: ArrayLike<number>, off: number, n: number, k: number): number[] {
  const idx = Array.from({ length: n }, (_, i) => i);
  idx.sort((x, y) => (a[off + y]! - a[off + x]!) || x - y);
  return idx.slice(0, Math.max(0, Math.min(k, n))).sort((x, y) => x - y);
}

/**
 * The fewest indices of a[off .. off+n) (largest first) whose values sum to at least gamma of the
 * row's total; ascending index order. At least one index when the row is non-empty.
 */
export function cumulativeSelect(a: ArrayLike<number>, off: number, n: number, gamma: number): number[] {
  const idx = Array.from({ length: n }, (_, i) => i);
  idx.sort((x, y) => (a[off + y]! - a[off + x]!) || x - y);
  let total = 0;
  for (let i = 0; i < n; i++) total += Math.max(0, a[off + i]!);
  const out: number[] = [];
  let s = 0;
  for (const i of idx) {
    if (out.length > 0 && s >= gamma * total) break;
    out.push(i);
    s += Math.max(0, a[off + i]!);
  }
  return out.sort((x, y) => x - y);
}

/** A budget: a number in (0, 1]. */
export function checkBudget(where: string, budget: number): void {
  if (!(typeof budget === 'number' && budget > 0 && budget <= 1)) throw new ParamError(where, `must be a number in (0, 1], got ${JSON.stringify(budget)}`);
}

/** Blocks of a causal layout of L tokens in blocks of B: nQ(nQ+1)/2. */
export const causalBlocks = (L: number, B: number): number => {
  const n = nBlocks(L, B);
  return (n * (n + 1)) / 2;
};

export interface RowPick {
  /** Key blocks j <= i (any order, no repeats). */
  cols: number[];
  /** Optional token bits per listed block (Bq*Bk, row-major), same order as cols; undefined = the whole block. */
  bits?: (Uint8Array | undefined)[];
}

/**
 * A causal layout (Lq = Lk = L, Bq = Bk = B, token rule causal) from each (head, query block)'s pick.
 * Blocks below the diagonal without bits are full; the diagonal, padded and bit-masked blocks are
 * partial. Blocks above the diagonal or with no bit set are dropped. causal = false (permuted keys,
 * PBS-Attn): no token rule; the bits alone say what is allowed, so causality is the caller's.
 */
export function causalSelection(L: number, B: number, H: number, pick: (h: number, i: number) => RowPick, causal = true): BlockLayout {
  const nQ = nBlocks(L, B);
  const rowPtr = new Int32Array(H * (nQ + 1));
  const cols: number[] = [];
  const full: number[] = [];
  const bitsList: (Uint8Array | undefined)[] = [];
  let anyBits = false;
  for (let h = 0; h < H; h++) {
    rowPtr[h * (nQ + 1)] = cols.length;
    for (let i = 0; i < nQ; i++) {
      const p = pick(h, i);
      const order = p.cols.map((j, t) => [j, t] as const).filter(([j]) => j >= 0 && j < nQ && (!causal || j <= i)).sort((a, b) => a[0] - b[0]);
      let last = -1;
      for (const [j, t] of order) {
        if (j === last) continue;
        const bits = p.bits?.[t];
        if (bits && !bits.some((x) => x)) continue;
        last = j;
        cols.push(j);
        const complete = (i + 1) * B <= L && (j + 1) * B <= L;
        full.push((causal ? j < i : true) && complete && !bits ? 1 : 0);
        bitsList.push(bits);
        if (bits) anyBits = true;
      }
      rowPtr[h * (nQ + 1) + i + 1] = cols.length;
    }
  }
  const layout: BlockLayout = { Lq: L, Lk: L, Bq: B, Bk: B, H, rowPtr, colIdx: Int32Array.from(cols), full: Uint8Array.from(full), causal, window: Infinity };
  if (anyBits) {
    const mask = new Uint8Array(cols.length * B * B);
    bitsList.forEach((b, p) => (b ? mask.set(b, p * B * B) : mask.fill(1, p * B * B, (p + 1) * B * B)));
    layout.mask = mask;
  }
  return layout;
}

/**
 * Key-column bits for a query block: keys listed in `keys` (absolute indices) grouped by key block,
 * every row of the block seeing them (the causal rule trims the diagonal). Stripe granularity.
 */
export function stripeBits(keys: Iterable<number>, B: number): Map<number, Uint8Array> {
  const m = new Map<number, Uint8Array>();
  for (const c of keys) {
    const j = Math.floor(c / B);
    let b = m.get(j);
    if (!b) m.set(j, (b = new Uint8Array(B * B)));
    for (let r = 0; r < B; r++) b[r * B + (c % B)] = 1;
  }
  return m;
}

/** Allowed (query, key) pairs of a layout per head, counted exactly (token rule and bits); for densities. */
export function allowedPairs(l: BlockLayout, h: number): number {
  const nQ = nBlocks(l.Lq, l.Bq);
  let n = 0;
  for (let i = 0; i < nQ; i++) {
    for (let p = l.rowPtr[h * (nQ + 1) + i]!; p < l.rowPtr[h * (nQ + 1) + i + 1]!; p++) {
      const j = l.colIdx[p]!;
      if (l.full[p]) {
        n += l.Bq * l.Bk;
        continue;
      }
      for (let r = 0; r < l.Bq; r++) {
        const qi = i * l.Bq + r;
        if (qi >= l.Lq) break;
        for (let c = 0; c < l.Bk; c++) {
          const kj = j * l.Bk + c;
          if (kj >= l.Lk || (l.causal && kj > qi)) continue;
          if (l.mask && !l.mask[p * l.Bq * l.Bk + r * l.Bk + c]) continue;
          n++;
        }
      }
    }
  }
  return n;
}

/** Per head: listed blocks / causal blocks, and allowed pairs / causal pairs. */
export function causalDensities(l: BlockLayout): { blocks: number[]; pairs: number[] } {
  const nQ = nBlocks(l.Lq, l.Bq);
  const cb = causalBlocks(l.Lq, l.Bq);
  const cp = (l.Lq * (l.Lq + 1)) / 2;
  const blocks: number[] = [], pairs: number[] = [];
  for (let h = 0; h < l.H; h++) {
    blocks.push((l.rowPtr[h * (nQ + 1) + nQ]! - l.rowPtr[h * (nQ + 1)]!) / cb);
    pairs.push(allowedPairs(l, h) / cp);
  }
  return { blocks, pairs };
}

/**
 * Blocks per query row that spend `budget` of the causal blocks when every row keeps the same count
 * (capped by the row's causal blocks i+1): the smallest n with sum_i min(i+1, n) >= budget * total.
 */
export function blocksPerRow(nQ: number, budget: number): number {
  const target = budget * ((nQ * (nQ + 1)) / 2);
  for (let n = 1; n <= nQ; n++) {
    let s = 0;
    for (let i = 0; i < nQ; i++) s += Math.min(i + 1, n);
    if (s >= target - 1e-9) return n;
  }
  return nQ;
}
