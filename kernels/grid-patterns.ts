/**
 * Bidirectional block patterns over token grids (frames x height x width, flattened frame-major,
 * optionally followed by a text segment), the vocabulary of the seed papers' head patterns:
 * diagonals (local), multi-diagonals (the same neighbourhood one or more frames away), vertical
 * stripes (key blocks every query sees), frame tiles (each frame with itself and a few main frames),
 * and per-head axis permutations (PAROAttention, MMInference) that turn dispersed patterns into
 * blocks. Layouts are non-causal; a head's pattern is a set of key blocks per query block.
 */
import { fromBlockSets, nBlocks, type BlockLayout } from './layout.js';
import { ParamError } from '../core/params.js';

export interface GridGeom {
  frames: number;
  height: number;
  width: number;
  /** Tokens after the grid (the text segment with its boundary token); 0 = none. */
  textLen: number;
}

export const gridTokens = (g: GridGeom): number => g.frames * g.height * g.width;
export const seqLength = (g: GridGeom): number => gridTokens(g) + g.textLen;

/** Per query block, a set of key blocks (one head). */
export type HeadPattern = Set<number>[];

const span = (a: number, b: number, n: number): number[] => {
  const out: number[] = [];
  for (let j = Math.max(0, a); j <= Math.min(n - 1, b); j++) out.push(j);
  return out;
};

/** Key blocks within `band` blocks of the own block. */
export function diagonalPattern(L: number, B: number, band: number): HeadPattern {
  const n = nBlocks(L, B);
  return Array.from({ length: n }, (_, i) => new Set(span(i - band, i + band, n)));
}

/** The diagonal repeated at every multiple of `period` tokens (a frame: height x width): the same place in every frame. */
export function multiDiagonalPattern(L: number, B: number, period: number, band: number): HeadPattern {
  const n = nBlocks(L, B);
  return Array.from({ length: n }, (_, i) => {
    const s = new Set<number>();
    for (let m = -Math.ceil(L / period); m <= Math.ceil(L / period); m++) {
      const c = Math.floor((i * B + m * period) / B);
      for (const j of span(c - band, c + band, n)) s.add(j);
    }
    return s;
  });
}

/** The own block plus key blocks `cols` every query sees (vertical stripes). */
export function stripePattern(L: number, B: number, cols: number[]): HeadPattern {
  const n = nBlocks(L, B);
  return Array.from({ length: n }, (_, i) => new Set([i, ...cols.filter((j) => j >= 0 && j < n)]));
}

/**
 * Efficient-vDiT's tile: every query block of frame f sees all of frame f and the `mainFrames`;
 * text blocks see everything and are seen by everything. Frames must be whole blocks.
 */
export function tilePattern(g: GridGeom, B: number, mainFrames: number[]): HeadPattern {
  const HW = g.height * g.width, L = seqLength(g), n = nBlocks(L, B);
  if (HW % B !== 0) throw new ParamError('grid.block', `a frame (${HW} tokens) must be a whole number of blocks of ${B}`);
  const per = HW / B, gridBlocks = g.frames * per;
  const text = span(gridBlocks, n - 1, n);
  return Array.from({ length: n }, (_, i) => {
    if (i >= gridBlocks) return new Set(span(0, n - 1, n));
    const f = Math.floor(i / per);
    const s = new Set<number>([...span(f * per, (f + 1) * per - 1, n), ...text]);
    for (const m of mainFrames) if (m >= 0 && m < g.frames) for (const j of span(m * per, (m + 1) * per - 1, n)) s.add(j);
    return s;
  });
}

/** One non-causal layout from per-head patterns. */
export function patternLayout(L: number, B: number, heads: HeadPattern[]): BlockLayout {
  const b = Math.min(B, L);
  return fromBlockSets({ Lq: L, Lk: L, Bq: b, Bk: b, causal: false }, heads);
}

export const AXIS_ORDERS = ['fhw', 'fwh', 'hfw', 'hwf', 'wfh', 'whf'] as const;
export type AxisOrder = (typeof AXIS_ORDERS)[number];

/**
 * The token order of a grid read with its axes in `order` (outermost first): order[t] = the original
 * index at position t. 'fhw' is the identity; 'hwf' puts the frames innermost, so the same cell of
 * every frame sits together (a temporal multi-diagonal becomes a diagonal). Text tokens stay last, in
 * place: the modality boundary is kept (MMInference).
 */
export function axisOrder(g: GridGeom, order: AxisOrder): Int32Array {
  const dims: Record<string, number> = { f: g.frames, h: g.height, w: g.width };
  const out = new Int32Array(seqLength(g));
  const [a, b, c] = order.split('') as ('f' | 'h' | 'w')[];
  let t = 0;
  for (let x = 0; x < dims[a!]!; x++) for (let y = 0; y < dims[b!]!; y++) for (let z = 0; z < dims[c!]!; z++) {
    const idx: Record<string, number> = { [a!]: x, [b!]: y, [c!]: z };
    out[t++] = (idx.f! * g.height + idx.h!) * g.width + idx.w!;
  }
  for (let i = gridTokens(g); i < out.length; i++) out[t++] = i;
  return out;
}
