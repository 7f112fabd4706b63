/**
 * Block-sparse attention layouts in BSR form (see ../shared/spec/kernels.md): per head h and query
 * block i, the sorted key blocks colIdx[rowPtr[h*(nQ+1)+i] .. rowPtr[h*(nQ+1)+i+1]). Each listed block
 * is full (every pair allowed, no masking work) or partial (the token rule decides inside it).
 * Token rule = causal (key <= query + (Lk - Lq)) AND window (|query - key| <= window, when set).
 */
import { Rng } from '../core/rng.js';
import { ParamError } from '../core/params.js';

export interface BlockLayout {
  Lq: number;
  Lk: number;
  Bq: number;
  Bk: number;
  /** Heads the layout differs over; 1 = shared by all heads. */
  H: number;
  /** [H * (nQ + 1)] CSR offsets into colIdx (absolute). */
  rowPtr: Int32Array;
  /** Sorted key-block indices per (head, query block). */
  colIdx: Int32Array;
  /** Per listed block: 1 = full, 0 = partial (token rule applies). */
  full: Uint8Array;
  causal: boolean;
  /** Token-level window |i - j| <= window (Infinity = none). */
  window: number;
  /**
   * Optional explicit token masks of the listed blocks, Bq*Bk bits (row-major) per listed block:
   * inside partial blocks a pair is allowed when the token rule AND its bit allow it. For patterns
   * no interval rule expresses (Combiner's "summaries of earlier segments only").
   */
  mask?: Uint8Array;
}

export const nBlocks = (L: number, B: number): number => Math.ceil(L / B);

/** Token rule of a layout: may query i see key j (ignoring the block list)? */
export function tokenAllowed(l: Pick<BlockLayout, 'Lq' | 'Lk' | 'causal' | 'window'>, i: number, j: number): boolean {
  if (i >= l.Lq || j >= l.Lk) return false;
  const qi = i + (l.Lk - l.Lq); // queries aligned to the end of the keys
  if (l.causal && j > qi) return false;
  return Math.abs(qi - j) <= l.window;
}

interface Shape {
  Lq: number;
  Lk: number;
  Bq: number;
  Bk: number;
  causal?: boolean;
  window?: number;
}

/** How a candidate block turns out: dropped, full, or partial (with its token bit mask if it has one). */
type BlockClass = { kind: 'empty' } | { kind: 'full' | 'partial'; bits?: Uint8Array };

/** The CSR assembly shared by the builders: sorted candidate blocks per (head, query block), classified. */
function assemble(Lq: number, Bq: number, sets: Set<number>[][], classify: (h: number, i: number, j: number) => BlockClass) {
  const nQ = nBlocks(Lq, Bq);
  const rowPtr = new Int32Array(sets.length * (nQ + 1));
  const cols: number[] = [];
  const full: number[] = [];
  const masks: Uint8Array[] = [];
  sets.forEach((perHead, h) => {
    rowPtr[h * (nQ + 1)] = cols.length;
    for (let i = 0; i < nQ; i++) {
      for (const j of [...(perHead[i] ?? [])].sort((x, y) => x - y)) {
        const c = classify(h, i, j);
        if (c.kind === 'empty') continue;
        cols.push(j);
        full.push(c.kind === 'full' ? 1 : 0);
        if (c.bits) masks.push(c.bits);
      }
      rowPtr[h * (nQ + 1) + i + 1] = cols.length;
    }
  });
  return { H: sets.length, rowPtr, colIdx: Int32Array.from(cols), full: Uint8Array.from(full), masks };
}

/** Build a layout from per-(head, query block) key-block sets; computes full flags and drops blocks the token rule empties. */
export function fromBlockSets(s: Shape, sets: Set<number>[][]): BlockLayout {
  const base = { Lq: s.Lq, Lk: s.Lk, Bq: s.Bq, Bk: s.Bk, causal: !!s.causal, window: s.window ?? Infinity };
  const { H, rowPtr, colIdx, full } = assemble(s.Lq, s.Bq, sets, (_h, i, j) => ({ kind: blockKind(base, i, j) }));
  const layout = { ...base, H, rowPtr, colIdx, full };
  validateLayout(layout);
  return layout;
}

/** Keys query row i may see under the token rule: one interval [lo, hi] (empty when lo > hi). */
function rowInterval(l: Pick<BlockLayout, 'Lq' | 'Lk' | 'causal' | 'window'>, i: number): [number, number] {
  const qi = i + (l.Lk - l.Lq);
  const lo = Number.isFinite(l.window) ? Math.max(0, qi - l.window) : 0;
  let hi = l.causal ? qi : l.Lk - 1;
  if (Number.isFinite(l.window)) hi = Math.min(hi, qi + l.window);
  return [lo, Math.min(hi, l.Lk - 1)];
}

function blockKind(l: Pick<BlockLayout, 'Lq' | 'Lk' | 'Bq' | 'Bk' | 'causal' | 'window'>, i: number, j: number): 'full' | 'partial' | 'empty' {
  const i0 = i * l.Bq, i1 = Math.min(l.Lq, i0 + l.Bq) - 1;
  const j0 = j * l.Bk, j1 = Math.min(l.Lk, j0 + l.Bk) - 1;
  let all = i1 - i0 + 1 === l.Bq && j1 - j0 + 1 === l.Bk; // padded blocks always need masking
  let any = false;
  for (let r = i0; r <= i1; r++) {
    const [lo, hi] = rowInterval(l, r);
    if (lo <= j1 && hi >= j0 && lo <= hi) any = true;
    if (!(lo <= j0 && hi >= j1)) all = false;
  }
  if (!any) return 'empty';
  return all ? 'full' : 'partial';
}

/** May query i see key j inside listed block p (token rule, and the block's bit mask if any)? */
export function pairAllowed(l: BlockLayout, p: number, i: number, j: number): boolean {
  if (!tokenAllowed(l, i, j)) return false;
  if (!l.mask || l.full[p]) return true;
  return l.mask[p * l.Bq * l.Bk + (i % l.Bq) * l.Bk + (j % l.Bk)] === 1;
}

/**
 * A layout from candidate blocks and a token predicate (h, i, j): blocks where the predicate allows
 * nothing are dropped, blocks where it allows everything are full, the rest carry a bit mask.
 */
export function fromPredicate(s: Omit<Shape, 'causal' | 'window'>, sets: Set<number>[][], allowed: (h: number, i: number, j: number) => boolean): BlockLayout {
  const { masks, ...csr } = assemble(s.Lq, s.Bq, sets, (h, i, j) => {
    const bits = new Uint8Array(s.Bq * s.Bk);
    let n = 0;
    for (let r = 0; r < s.Bq; r++) {
      for (let c = 0; c < s.Bk; c++) {
        const qi = i * s.Bq + r, kj = j * s.Bk + c;
        if (qi < s.Lq && kj < s.Lk && allowed(h, qi, kj)) {
          bits[r * s.Bk + c] = 1;
          n++;
        }
      }
    }
    return n === 0 ? { kind: 'empty' } : { kind: n === s.Bq * s.Bk ? 'full' : 'partial', bits };
  });
  const mask = new Uint8Array(masks.length * s.Bq * s.Bk);
  masks.forEach((m, p) => mask.set(m, p * s.Bq * s.Bk));
  const layout: BlockLayout = { ...s, causal: false, window: Infinity, ...csr, mask };
  validateLayout(layout);
  return layout;
}

export function validateLayout(l: BlockLayout): void {
  const nQ = nBlocks(l.Lq, l.Bq);
  const nK = nBlocks(l.Lk, l.Bk);
  for (const [f, v] of [['Lq', l.Lq], ['Lk', l.Lk], ['Bq', l.Bq], ['Bk', l.Bk], ['H', l.H]] as const) {
    if (!Number.isInteger(v) || v < 1) throw new ParamError(`layout.${f}`, `must be a positive integer, got ${v}`);
  }
  if (l.rowPtr.length !== l.H * (nQ + 1)) {
    throw new ParamError('layout.rowPtr', `must have H*(ceil(Lq/Bq)+1) = ${l.H * (nQ + 1)} entries, got ${l.rowPtr.length}`);
  }
  if (l.full.length !== l.colIdx.length) throw new ParamError('layout.full', `must have one flag per listed block (${l.colIdx.length}), got ${l.full.length}`);
  if (l.mask && l.mask.length !== l.colIdx.length * l.Bq * l.Bk) {
    throw new ParamError('layout.mask', `must have Bq*Bk bits per listed block (${l.colIdx.length * l.Bq * l.Bk}), got ${l.mask.length}`);
  }
  for (let h = 0; h < l.H; h++) {
    for (let i = 0; i < nQ; i++) {
      const a = l.rowPtr[h * (nQ + 1) + i]!, b = l.rowPtr[h * (nQ + 1) + i + 1]!;
      if (b < a || a < 0 || b > l.colIdx.length) throw new ParamError('layout.rowPtr', `offsets must be non-decreasing within [0, ${l.colIdx.length}] (head ${h}, block ${i})`);
      for (let p = a; p < b; p++) {
        const j = l.colIdx[p]!;
        if (j < 0 || j >= nK) throw new ParamError('layout.colIdx', `key block ${j} out of range [0, ${nK}) (head ${h}, query block ${i})`);
        if (p > a && j <= l.colIdx[p - 1]!) throw new ParamError('layout.colIdx', `must be sorted ascending without repeats (head ${h}, query block ${i})`);
      }
    }
  }
}

/** Listed blocks / all blocks, averaged over heads. */
export function density(l: BlockLayout): number {
  return l.colIdx.length / (l.H * nBlocks(l.Lq, l.Bq) * nBlocks(l.Lk, l.Bk));
}

/** A layout's blocks by key block (CSC): what a backward pass parallel over key blocks walks. */
export interface TransposedLayout {
  /** [H * (nK + 1)] offsets into rowIdx/srcIdx. */
  colPtr: Int32Array;
  /** Query blocks that list the key block, ascending. */
  rowIdx: Int32Array;
  /** Index of the same block in colIdx/full/mask. */
  srcIdx: Int32Array;
}

const transposed = new WeakMap<BlockLayout, TransposedLayout>();

/** The CSC form of a layout (computed once per layout object). */
export function transposeLayout(l: BlockLayout): TransposedLayout {
  const hit = transposed.get(l);
  if (hit) return hit;
  const nQ = nBlocks(l.Lq, l.Bq), nK = nBlocks(l.Lk, l.Bk);
  const colPtr = new Int32Array(l.H * (nK + 1));
  const rowIdx = new Int32Array(l.colIdx.length);
  const srcIdx = new Int32Array(l.colIdx.length);
  for (let h = 0; h < l.H; h++) {
    const base = h * (nK + 1);
    const counts = new Int32Array(nK);
    const r0 = l.rowPtr[h * (nQ + 1)]!, r1 = l.rowPtr[h * (nQ + 1) + nQ]!;
    for (let p = r0; p < r1; p++) counts[l.colIdx[p]!]!++;
    colPtr[base] = r0;
    for (let j = 0; j < nK; j++) colPtr[base + j + 1] = colPtr[base + j]! + counts[j]!;
    const next = colPtr.slice(base, base + nK);
    for (let i = 0; i < nQ; i++) {
      for (let p = l.rowPtr[h * (nQ + 1) + i]!; p < l.rowPtr[h * (nQ + 1) + i + 1]!; p++) {
        const t = next[l.colIdx[p]!]!++;
        rowIdx[t] = i;
        srcIdx[t] = p;
      }
    }
  }
  const out = { colPtr, rowIdx, srcIdx };
  transposed.set(l, out);
  return out;
}

/** The listed key blocks of (head, query block). */
export function rowBlocks(l: BlockLayout, h: number, i: number): number[] {
  const nQ = nBlocks(l.Lq, l.Bq);
  const hh = l.H === 1 ? 0 : h;
  return Array.from(l.colIdx.subarray(l.rowPtr[hh * (nQ + 1) + i]!, l.rowPtr[hh * (nQ + 1) + i + 1]!));
}

function grid(s: Shape, H: number, f: (h: number, i: number, nK: number) => Iterable<number>): Set<number>[][] {
  const nQ = nBlocks(s.Lq, s.Bq), nK = nBlocks(s.Lk, s.Bk);
  return Array.from({ length: H }, (_, h) => Array.from({ length: nQ }, (_, i) => new Set([...f(h, i, nK)].filter((j) => j >= 0 && j < nK))));
}

const range = (a: number, b: number): number[] => Array.from({ length: Math.max(0, b - a) }, (_, k) => a + k);

/** Every block (the token rule still applies: causal makes it the causal layout). */
export function denseLayout(s: Shape): BlockLayout {
  return fromBlockSets(s, grid(s, 1, (_h, _i, nK) => range(0, nK)));
}

export function causalLayout(s: Omit<Shape, 'causal'>): BlockLayout {
  return denseLayout({ ...s, causal: true });
}

/** Token-level sliding window |i - j| <= w (causal: 0 <= i - j <= w). */
export function slidingWindowLayout(s: Omit<Shape, 'window'>, w: number): BlockLayout {
  const off = s.Lk - s.Lq;
  return fromBlockSets({ ...s, window: w }, grid(s, 1, (_h, i) => {
    const lo = Math.floor(Math.max(0, i * s.Bq + off - w) / s.Bk);
    const hi = Math.floor((Math.min(s.Lq - 1, (i + 1) * s.Bq - 1) + off + (s.causal ? 0 : w)) / s.Bk);
    return range(lo, hi + 1);
  }));
}

/** Strided/dilated block pattern: key blocks j with (i - j) % stride == 0, plus the own block. */
export function stridedLayout(s: Shape, stride: number): BlockLayout {
  return fromBlockSets(s, grid(s, 1, (_h, i, nK) => range(0, nK).filter((j) => (i - j) % stride === 0 || j === i)));
}

/**
 * Attention sink + local blocks (LongGen's sparse layers, StreamingLLM's pattern): every query block
 * sees the first `sinks` key blocks and the `local` key blocks before its own, and its own (causal).
 */
export function sinkWindowLayout(s: Shape, sinks: number, local: number): BlockLayout {
  return fromBlockSets(s, grid(s, 1, (_h, i) => [...range(0, Math.min(sinks, i + 1)), ...range(Math.max(0, i - local), i + 1)]));
}

/** The first `g` key blocks for every query block, and every key block for the first `g` query blocks. */
export function globalLayout(s: Shape, g: number): BlockLayout {
  return fromBlockSets(s, grid(s, 1, (_h, i, nK) => (i < g ? range(0, nK) : range(0, g))));
}

/** `r` random key blocks per query block (seeded; causal layouts draw from blocks <= the diagonal). */
export function randomLayout(s: Shape, r: number, seed: number, heads = 1): BlockLayout {
  const rng = new Rng(Rng.derive(seed, 'layout/random'));
  const off = s.Lk - s.Lq;
  return fromBlockSets(s, grid(s, heads, (_h, i, nK) => {
    const hi = s.causal ? Math.min(nK, Math.floor((Math.min(s.Lq - 1, (i + 1) * s.Bq - 1) + off) / s.Bk) + 1) : nK;
    return rng.sampleDistinct(0, hi, Math.min(r, hi));
  }));
}

function combine(a: BlockLayout, b: BlockLayout, op: 'union' | 'intersection'): BlockLayout {
  if (a.mask || b.mask) throw new ParamError('layout.mask', `${op} of layouts with bit masks is not supported; build the combined predicate with fromPredicate`);
  for (const f of ['Lq', 'Lk', 'Bq', 'Bk', ...(op === 'union' ? (['causal'] as const) : [])] as const) {
    if (a[f] !== b[f]) throw new ParamError(`layout.${f}`, `${op} needs equal ${f}, got ${a[f]} and ${b[f]}`);
  }
  // Intersection ANDs the token rules: causal if either is.
  const causal = a.causal || b.causal;
  const H = Math.max(a.H, b.H);
  const nQ = nBlocks(a.Lq, a.Bq);
  const window = op === 'union' ? (a.window === b.window ? a.window : Infinity) : Math.min(a.window, b.window);
  if (op === 'union' && a.window !== b.window && (Number.isFinite(a.window) || Number.isFinite(b.window))) {
    // A union of different token windows is not expressible as one window rule: coarsen to blocks.
    return unionCoarse(a, b);
  }
  const sets = Array.from({ length: H }, (_, h) => Array.from({ length: nQ }, (_, i) => {
    const x = new Set(rowBlocks(a, h, i));
    const y = new Set(rowBlocks(b, h, i));
    return new Set(op === 'union' ? [...x, ...y] : [...x].filter((j) => y.has(j)));
  }));
  return fromBlockSets({ ...a, causal, window }, sets);
}

/** Union where the parts have different token windows: keep every block of both, windowed blocks become whole blocks. */
function unionCoarse(a: BlockLayout, b: BlockLayout): BlockLayout {
  const H = Math.max(a.H, b.H);
  const nQ = nBlocks(a.Lq, a.Bq);
  const sets = Array.from({ length: H }, (_, h) => Array.from({ length: nQ }, (_, i) => new Set([...rowBlocks(a, h, i), ...rowBlocks(b, h, i)])));
  return fromBlockSets({ ...a, window: Infinity }, sets);
}

export const unionLayout = (a: BlockLayout, b: BlockLayout): BlockLayout => combine(a, b, 'union');
export const intersectLayout = (a: BlockLayout, b: BlockLayout): BlockLayout => combine(a, b, 'intersection');

/**
 * BigBird: sliding window (in blocks: own block +- `windowBlocks`), `globalBlocks` global blocks,
 * `randomBlocks` random blocks per row (seeded). All as whole blocks, as BigBird's block version does.
 */
export function bigBirdLayout(s: Omit<Shape, 'window'>, o: { windowBlocks: number; globalBlocks: number; randomBlocks: number; seed: number }): BlockLayout {
  const win = fromBlockSets(s, grid(s, 1, (_h, i) => range(i - o.windowBlocks, i + o.windowBlocks + 1)));
  return unionLayout(unionLayout(win, globalLayout(s, o.globalBlocks)), randomLayout(s, o.randomBlocks, o.seed));
}

/** Coarsen a token mask [Lq, Lk] (row-major, 1 = allowed) into blocks: a block is listed if any pair is allowed. */
export function fromTokenMask(s: Omit<Shape, 'causal' | 'window'>, mask: Uint8Array): BlockLayout {
  if (mask.length !== s.Lq * s.Lk) throw new ParamError('layout.mask', `must have Lq*Lk = ${s.Lq * s.Lk} entries, got ${mask.length}`);
  return fromBlockSets(s, grid(s, 1, (_h, i, nK) => range(0, nK).filter((j) => {
    for (let a = i * s.Bq; a < Math.min(s.Lq, (i + 1) * s.Bq); a++) for (let b = j * s.Bk; b < Math.min(s.Lk, (j + 1) * s.Bk); b++) if (mask[a * s.Lk + b]) return true;
    return false;
  })));
}

/** The layout as a token mask for head h (1 = allowed): what the reference implementation uses. */
export function tokenMask(l: BlockLayout, h = 0): Uint8Array {
  const m = new Uint8Array(l.Lq * l.Lk);
  const nQ = nBlocks(l.Lq, l.Bq);
  const hh = l.H === 1 ? 0 : h;
  for (let i = 0; i < nQ; i++) {
    for (let p = l.rowPtr[hh * (nQ + 1) + i]!; p < l.rowPtr[hh * (nQ + 1) + i + 1]!; p++) {
      const j = l.colIdx[p]!;
      for (let a = i * l.Bq; a < Math.min(l.Lq, (i + 1) * l.Bq); a++) {
        for (let b = j * l.Bk; b < Math.min(l.Lk, (j + 1) * l.Bk); b++) if (pairAllowed(l, p, a, b)) m[a * l.Lk + b] = 1;
      }
    }
  }
  return m;
}

/** Per-head layouts stacked into one layout with H heads. */
export function stackHeads(layouts: BlockLayout[]): BlockLayout {
  const a = layouts[0]!;
  if (layouts.some((l) => l.mask)) throw new ParamError('layout.mask', 'stacking layouts with bit masks is not supported; use fromPredicate with a per-head predicate');
  const nQ = nBlocks(a.Lq, a.Bq);
  const sets = layouts.flatMap((l) => Array.from({ length: l.H }, (_, h) => Array.from({ length: nQ }, (_, i) => new Set(rowBlocks(l, h, i)))));
  for (const l of layouts) {
    if (l.causal !== a.causal || l.window !== a.window || l.Lq !== a.Lq || l.Lk !== a.Lk || l.Bq !== a.Bq || l.Bk !== a.Bk) {
      throw new ParamError('layout', 'stacked heads need the same Lq, Lk, Bq, Bk, causal flag and window');
    }
  }
  return fromBlockSets(a, sets);
}

/** Combiner's segment length for a sequence: the largest power of two <= sqrt(L) (divides L when L is a power of two). */
export function combinerSegLen(L: number): number {
  return 2 ** Math.floor(Math.log2(Math.sqrt(L)));
}

/**
 * Combiner-Fixed's summary attention: query i (one pooled query per segment) over key block i (its
 * own segment). Lq = L / segLen, Lk = L.
 */
export function segmentSummaryLayout(L: number, segLen: number): BlockLayout {
  if (L % segLen !== 0) throw new ParamError('combiner.segLen', `must divide the sequence length ${L}, got ${segLen}`);
  const nseg = L / segLen;
  return fromBlockSets({ Lq: nseg, Lk: L, Bq: 1, Bk: segLen }, [Array.from({ length: nseg }, (_, i) => new Set([i]))]);
}

/**
 * Combiner-Fixed's main layout over keys = L tokens ++ L/segLen segment summaries: each query sees
 * its own segment directly (causal inside it when causal) and the summaries of the other segments
 * (causal: strictly earlier ones), all in one softmax. Lq = L, Lk = L + L/segLen, blocks of segLen.
 */
export function combinerFixedLayout(L: number, segLen: number, causal: boolean): BlockLayout {
  if (L % segLen !== 0) throw new ParamError('combiner.segLen', `must divide the sequence length ${L}, got ${segLen}`);
  const nseg = L / segLen;
  const summaryBlocks = Math.ceil(nseg / segLen);
  const sets = [Array.from({ length: nseg }, (_, i) => {
    const set = new Set([i]);
    for (let b = 0; b < summaryBlocks; b++) set.add(nseg + b);
    return set;
  })];
  return fromPredicate({ Lq: L, Lk: L + nseg, Bq: segLen, Bk: segLen }, sets, (_h, t, key) => {
    const seg = Math.floor(t / segLen);
    if (key < L) return Math.floor(key / segLen) === seg && (!causal || key <= t);
    const m = key - L;
    return causal ? m < seg : m !== seg;
  });
}

/**
 * Combiner-Axial, step 1, over the column-major order of an nrow x ncol grid: position (r, c) attends
 * to its column's other rows: strictly earlier ones when causal, all others when not.
 */
export function axialColumnLayout(nrow: number, ncol: number, causal: boolean): BlockLayout {
  const L = nrow * ncol;
  const sets = [Array.from({ length: ncol }, (_, c) => new Set([c]))];
  return fromPredicate({ Lq: L, Lk: L, Bq: nrow, Bk: nrow }, sets, (_h, i, j) => {
    const r = i % nrow, rj = j % nrow;
    return causal ? rj < r : rj !== r;
  });
}

/**
 * Combiner-Axial, step 2: queries (row-major) over keys = L tokens ++ L column summaries (row-major,
 * summary (r, c) = column c over the rows step 1 let (r, c) see). A query sees its row directly
 * (causal: up to itself) and its row's column summaries, in one softmax. Lq = L, Lk = 2L, blocks = rows.
 */
export function combinerAxialLayout(L: number, ncol: number, causal: boolean): BlockLayout {
  if (L % ncol !== 0) throw new ParamError('combiner.segLen', `must divide the sequence length ${L}, got ${ncol}`);
  const nrow = L / ncol;
  const sets = [Array.from({ length: nrow }, (_, r) => new Set([r, nrow + r]))];
  return fromPredicate({ Lq: L, Lk: 2 * L, Bq: ncol, Bk: ncol }, sets, (_h, i, j) => {
    const r = Math.floor(i / ncol);
    if (j < L) return Math.floor(j / ncol) === r && (!causal || j <= i);
    // A summary exists when its column has rows to summarise for this row.
    return Math.floor((j - L) / ncol) === r && (causal ? r > 0 : nrow > 1);
  });
}
