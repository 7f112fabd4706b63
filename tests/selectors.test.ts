/**
 * Layout selectors (kernels/selectors): each estimate against a plain loop over the same inputs
 * (pooling, pooled probabilities, last-query attention and line scores, true block mass: within 1e-4
 * absolute + 1e-4 relative, float32 with other summation orders), selection helpers exactly, every
 * method's layout valid and causal, the oracle's mass the highest of any layout with the diagonal and as many
 * blocks per row (brute force on a small case, and against random, static and gate-selected layouts), and attention through a
 * selection (PBS-Attn's permuted keys included) equal to masked softmax attention in the original key
 * order (2e-4 absolute + 2e-4 relative).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { useBackend } from '../kernels/backend.js';
import { Rng } from '../core/rng.js';
import { BACKEND } from './under-test.js';
import { keptMass, lastQueryProbs, lineScores, poolBlocks, pooledBlockProbs, trueBlockMass } from '../kernels/selectors/primitives.js';
import { blocksPerRow, causalDensities, causalSelection, cumulativeSelect, topK } from '../kernels/selectors/select.js';
import { getSelector, SELECTOR_NAMES } from '../kernels/selectors/index.js';
import { attendSelected } from '../kernels/selectors/attend.js';
import { pairAllowed, rowBlocks, validateLayout, nBlocks, type BlockLayout } from '../kernels/layout.js';
import type { CalibrationState, HeadInputs } from '../kernels/selectors/types.js';
import { disposeLayout, isDeviceLayout, readLayout, type AnyLayout } from '../kernels/device-layout.js';
import { hostSelectBlocks, selectBlocks, SELECT_KERNEL, type BlockRule } from '../kernels/selectors/select-blocks.js';
import { hasKernel } from '../kernels/backend.js';

const close = (a: ArrayLike<number>, b: ArrayLike<number>, tol = 1e-4) => {
  expect(a.length).toBe(b.length);
  for (let i = 0; i < a.length; i++) if (!(Math.abs(a[i]! - b[i]!) <= tol + tol * Math.abs(b[i]!))) throw new Error(`index ${i}: ${a[i]} vs ${b[i]}`);
};

function inputs(H: number, L: number, D: number, seed: number, sharp = 2): { q: Float32Array; k: Float32Array; v: Float32Array } {
  const r = new Rng(seed);
  const f = (n: number, s: number) => Float32Array.from({ length: n }, () => r.normal() * s);
  return { q: f(H * L * D, sharp), k: f(H * L * D, sharp), v: f(H * L * D, 1) };
}

/** Plain causal softmax probabilities [H, L, L]. */
function probs(q: Float32Array, k: Float32Array, H: number, L: number, D: number, scale: number): Float64Array {
  const p = new Float64Array(H * L * L);
  for (let h = 0; h < H; h++) {
    for (let i = 0; i < L; i++) {
      let m = -Infinity;
      const s = new Float64Array(i + 1);
      for (let j = 0; j <= i; j++) {
        let d = 0;
        for (let c = 0; c < D; c++) d += q[(h * L + i) * D + c]! * k[(h * L + j) * D + c]!;
        s[j] = d * scale;
        m = Math.max(m, s[j]!);
      }
      let z = 0;
      for (let j = 0; j <= i; j++) z += Math.exp(s[j]! - m);
      for (let j = 0; j <= i; j++) p[(h * L + i) * L + j] = Math.exp(s[j]! - m) / z;
    }
  }
  return p;
}

beforeAll(async () => {
  await useBackend(BACKEND);
});

describe('selector estimates against plain loops', () => {
  const H = 2, L = 80, D = 8, B = 16, scale = 1 / Math.sqrt(D);
  const x = inputs(H, L, D, 1, 1);
  const t = () => ({ q: tf.tensor3d(x.q, [H, L, D]), k: tf.tensor3d(x.k, [H, L, D]) });
  it('block pooling (mean, max, min) with a partial last block', () => {
    const nB = nBlocks(L, B);
    for (const how of ['mean', 'max', 'min'] as const) {
      const want = new Float32Array(H * nB * D);
      for (let h = 0; h < H; h++) for (let b = 0; b < nB; b++) for (let c = 0; c < D; c++) {
        const vals: number[] = [];
        for (let r = b * B; r < Math.min(L, (b + 1) * B); r++) vals.push(x.q[(h * L + r) * D + c]!);
        want[(h * nB + b) * D + c] = how === 'mean' ? vals.reduce((s, v) => s + v, 0) / vals.length : how === 'max' ? Math.max(...vals) : Math.min(...vals);
      }
      const { q } = t();
      close(poolBlocks(q, B, how).dataSync(), want);
    }
  });
  it('pooled block probabilities are a causal softmax of pooled scores', () => {
    const { q, k } = t();
    const qp = poolBlocks(q, B), kp = poolBlocks(k, B);
    const got = pooledBlockProbs(qp, kp, scale).dataSync();
    const a = qp.dataSync(), b = kp.dataSync(), nB = nBlocks(L, B);
    for (let h = 0; h < H; h++) for (let i = 0; i < nB; i++) {
      const s = Array.from({ length: i + 1 }, (_, j) => {
        let d = 0;
        for (let c = 0; c < D; c++) d += a[(h * nB + i) * D + c]! * b[(h * nB + j) * D + c]!;
        return d * scale;
      });
      const m = Math.max(...s), z = s.reduce((acc, v) => acc + Math.exp(v - m), 0);
      const want = Array.from({ length: nB }, (_, j) => (j <= i ? Math.exp(s[j]! - m) / z : 0));
      close(got.subarray((h * nB + i) * nB, (h * nB + i + 1) * nB), want);
    }
  });
  it('last-query attention, line scores and true block mass', () => {
    const { q, k } = t();
    const P = probs(x.q, x.k, H, L, D, scale);
    const m = 16;
    const lp = lastQueryProbs(q, k, m, scale).dataSync() as Float32Array;
    const want = new Float32Array(H * m * L);
    for (let h = 0; h < H; h++) for (let r = 0; r < m; r++) want.set(P.subarray((h * L + L - m + r) * L, (h * L + L - m + r + 1) * L), (h * m + r) * L);
    close(lp, want);
    const { vertical, slash } = lineScores(lp, H, m, L);
    const v = new Float64Array(H * L), s = new Float64Array(H * L);
    for (let h = 0; h < H; h++) for (let r = 0; r < m; r++) for (let j = 0; j < L; j++) {
      const qi = L - m + r;
      if (j > qi) continue;
      v[h * L + j] += P[(h * L + qi) * L + j]! / m;
      s[h * L + qi - j] += P[(h * L + qi) * L + j]! / m;
    }
    close(vertical, v);
    close(slash, s);
    const nB = nBlocks(L, B);
    const mass = trueBlockMass(q, k, B, scale);
    const wm = new Float64Array(H * nB * nB);
    for (let h = 0; h < H; h++) for (let i = 0; i < L; i++) for (let j = 0; j <= i; j++) wm[(h * nB + Math.floor(i / B)) * nB + Math.floor(j / B)] += P[(h * L + i) * L + j]!;
    close(mass, wm);
  });
});

describe('true block mass, bidirectional', () => {
  it('matches full softmax mass summed per block, with padded keys masked (L not a multiple of B)', () => {
    const H = 2, L = 72, D = 8, B = 16, scale = 1 / Math.sqrt(D);
    const x = inputs(H, L, D, 11);
    const mass = trueBlockMass(tf.tensor3d(x.q, [H, L, D]), tf.tensor3d(x.k, [H, L, D]), B, scale, false);
    const nB = nBlocks(L, B);
    const want = new Float64Array(H * nB * nB);
    for (let h = 0; h < H; h++) for (let i = 0; i < L; i++) {
      const s = Array.from({ length: L }, (_, j) => {
        let d = 0;
        for (let c = 0; c < D; c++) d += x.q[(h * L + i) * D + c]! * x.k[(h * L + j) * D + c]!;
        return d * scale;
      });
      const m = Math.max(...s), z = s.reduce((a, v) => a + Math.exp(v - m), 0);
      s.forEach((v, j) => (want[(h * nB + Math.floor(i / B)) * nB + Math.floor(j / B)] += Math.exp(v - m) / z));
    }
    close(mass, want);
  });
});

describe('selection helpers', () => {
  it('top-k, cumulative threshold, blocks per row', () => {
    expect(topK([3, 1, 4, 1, 5], 0, 5, 2)).toEqual([2, 4]);
    expect(topK([1, 1, 1], 0, 3, 2)).toEqual([0, 1]); // ties to the lower index
    expect(cumulativeSelect([0.5, 0.1, 0.3, 0.1], 0, 4, 0.75)).toEqual([0, 2]);
    expect(cumulativeSelect([0.5, 0.1, 0.3, 0.1], 0, 4, 0.01)).toEqual([0]);
    expect(blocksPerRow(4, 1)).toBe(4);
    expect(blocksPerRow(4, 0.7)).toBe(2); // 1+2+2+2 = 7 of 10
  });
  it('causal assembly: full below the diagonal, partial on it, nothing above', () => {
    const l = causalSelection(64, 16, 1, (_h, i) => ({ cols: [i + 1, i, 0] }));
    validateLayout(l);
    expect(Array.from({ length: 4 }, (_, i) => rowBlocks(l, 0, i))).toEqual([[0], [0, 1], [0, 2], [0, 3]]);
    expect(Array.from(l.full)).toEqual([0, 1, 0, 1, 0, 1, 0]);
    expect(causalDensities(l).blocks[0]).toBeCloseTo(7 / 10);
  });
  it('budgets outside (0, 1] and unknown methods are named errors', () => {
    expect(() => getSelector('magic')).toThrow(/^method: unknown method "magic"; allowed: oracle, a-shape/);
  });
});

describe('every method', () => {
  const H = 2, L = 256, D = 16, B = 32, scale = 1 / Math.sqrt(D);
  const ctx = { block: B, scale };
  const mk = (seed: number): HeadInputs => {
    const x = inputs(H, L, D, seed);
    return { q: tf.tensor3d(x.q, [H, L, D]), k: tf.tensor3d(x.k, [H, L, D]), layer: 0 };
  };
  const states = new Map<string, CalibrationState | undefined>();
  beforeAll(() => {
    const calib = [[mk(11), mk(12)]];
    for (const name of SELECTOR_NAMES) {
      const s = getSelector(name);
      states.set(name, s.calibrate?.(calib, 0.25, ctx));
    }
  });
  for (const name of SELECTOR_NAMES) {
    it(`${name}: valid causal layouts, density grows with the budget, attention equals the masked reference`, () => {
      const s = getSelector(name);
      const x = mk(3);
      const dens: number[] = [];
      for (const budget of [0.15, 0.5, 1]) {
        const sel = s.select(x, budget, ctx, states.get(name));
        const host = readLayout(sel.layout); // device layouts (selector kernels) come back for checking
        validateLayout(host);
        expect(host.H).toBe(H);
        // Causality in the original order, for every allowed pair (permuted keys mapped back).
        checkCausal(host, sel.keyOrder);
        dens.push(causalDensities(host).blocks.reduce((a, b) => a + b, 0) / H);
        // Attention through the layout as the selector returned it (on the device where it was written).
        if (budget === 0.5) compareAttention(x, sel.layout, sel.keyOrder);
        disposeLayout(sel.layout);
      }
      expect(dens[0]!).toBeLessThanOrEqual(dens[2]! + 1e-9);
      expect(dens[0]!).toBeGreaterThan(0);
    });
  }
  it('budget 1 keeps all the mass for the block selectors', () => {
    const x = mk(4);
    for (const name of ['oracle', 'a-shape', 'window', 'seer', 'pbs'] as const) {
      const sel = getSelector(name).select(x, 1, ctx, states.get(name));
      for (const m of keptMass(x.q, x.k, readLayout(sel.layout), scale, sel.keyOrder)) expect(m).toBeCloseTo(1, 4);
    }
  });
  it('the oracle keeps the most mass of any layout with the diagonal and as many blocks per row', () => {
    const x = mk(5);
    const nQ = nBlocks(L, B);
    for (const budget of [0.1, 0.3]) {
      const o = readLayout(getSelector('oracle').select(x, budget, ctx).layout);
      const om = keptMass(x.q, x.k, o, scale);
      const n = blocksPerRow(nQ, budget);
      const rng = new Rng(Math.round(budget * 100));
      for (let trial = 0; trial < 20; trial++) {
        const pick = (_h: number, i: number) => {
          const c = Array.from({ length: i }, (_, j) => j);
          for (let t = c.length - 1; t > 0; t--) {
            const u = rng.int(0, t + 1);
            [c[t], c[u]] = [c[u]!, c[t]!];
          }
          return { cols: [i, ...c.slice(0, n - 1)] };
        };
        keptMass(x.q, x.k, causalSelection(L, B, H, pick), scale).forEach((m, h) => expect(om[h]!).toBeGreaterThanOrEqual(m - 1e-6));
      }
      // The per-row block selectors at the same budget spend the same count per row.
      for (const other of ['a-shape', 'window', 'seer']) {
        const l = readLayout(getSelector(other).select(x, budget, ctx, states.get(other)).layout);
        keptMass(x.q, x.k, l, scale).forEach((m, h) => expect(om[h]!).toBeGreaterThanOrEqual(m - 1e-6));
      }
    }
  });
  it('the oracle equals the brute-force best layout with the diagonal and n blocks per row on a small case', () => {
    const h = 1, l = 64, b = 16, d = 4, nQ = 4;
    const y = inputs(h, l, d, 9, 3);
    const q = tf.tensor3d(y.q, [h, l, d]), k = tf.tensor3d(y.k, [h, l, d]);
    const sc = 1 / Math.sqrt(d);
    for (const budget of [0.4, 0.7]) {
      const n = blocksPerRow(nQ, budget);
      // Rows are independent: the best layout is the best subset of each row.
      const subsets = (i: number): number[][] => {
        const out: number[][] = [];
        for (let m = 0; m < 1 << (i + 1); m++) {
          const s = Array.from({ length: i + 1 }, (_, j) => j).filter((j) => m & (1 << j));
          if (s.length === Math.min(n, i + 1) && s.includes(i)) out.push(s);
        }
        return out;
      };
      let best = 0;
      for (let i = 0; i < nQ; i++) {
        let rowBest = 0;
        for (const s of subsets(i)) {
          const lay = causalSelection(l, b, 1, (_h, r) => ({ cols: r === i ? s : [] }));
          rowBest = Math.max(rowBest, keptMass(q, k, lay, sc)[0]!);
        }
        best += rowBest;
      }
      const o = readLayout(getSelector('oracle').select({ q, k, layer: 0 }, budget, { block: b, scale: sc }).layout);
      expect(keptMass(q, k, o, sc)[0]!).toBeCloseTo(best, 6);
    }
  });
});

function checkCausal(l: BlockLayout, keyOrder?: Int32Array): void {
  const nQ = nBlocks(l.Lq, l.Bq);
  for (let h = 0; h < l.H; h++) {
    for (let i = 0; i < nQ; i++) {
      for (let p = l.rowPtr[h * (nQ + 1) + i]!; p < l.rowPtr[h * (nQ + 1) + i + 1]!; p++) {
        for (let r = 0; r < l.Bq; r++) {
          const qi = i * l.Bq + r;
          for (let c = 0; c < l.Bk; c++) {
            const kj = l.colIdx[p]! * l.Bk + c;
            if (qi >= l.Lq || kj >= l.Lk || !pairAllowed(l, p, qi, kj)) continue;
            const orig = keyOrder ? keyOrder[h * l.Lk + kj]! : kj;
            if (orig > qi) throw new Error(`head ${h}: query ${qi} sees later key ${orig}`);
          }
        }
      }
    }
  }
}

/** attendSelected against a plain masked softmax over the original key order. */
function compareAttention(x: HeadInputs, given: AnyLayout, keyOrder?: Int32Array): void {
  const [H, L, D] = x.q.shape;
  const scale = 1 / Math.sqrt(D);
  const v = tf.randomNormal([H, L, D], 0, 1, 'float32', 7) as tf.Tensor3D;
  const out = attendSelected(tf.expandDims(x.q, 0) as tf.Tensor4D, tf.expandDims(x.k, 0) as tf.Tensor4D, tf.expandDims(v, 0) as tf.Tensor4D, { layout: given, keyOrder }, { scale }).dataSync();
  const l = readLayout(given);
  const qa = x.q.dataSync(), ka = x.k.dataSync(), va = v.dataSync();
  const allowed = new Uint8Array(H * L * L);
  const nQ = nBlocks(L, l.Bq);
  for (let h = 0; h < H; h++) for (let i = 0; i < nQ; i++) for (let p = l.rowPtr[h * (nQ + 1) + i]!; p < l.rowPtr[h * (nQ + 1) + i + 1]!; p++) {
    for (let r = 0; r < l.Bq; r++) for (let c = 0; c < l.Bk; c++) {
      const qi = i * l.Bq + r, kj = l.colIdx[p]! * l.Bk + c;
      if (qi < L && kj < L && pairAllowed(l, p, qi, kj)) allowed[(h * L + qi) * L + (keyOrder ? keyOrder[h * L + kj]! : kj)] = 1;
    }
  }
  const want = new Float32Array(H * L * D);
  for (let h = 0; h < H; h++) for (let i = 0; i < L; i++) {
    const s: number[] = [], js: number[] = [];
    for (let j = 0; j < L; j++) {
      if (!allowed[(h * L + i) * L + j]) continue;
      let d = 0;
      for (let c = 0; c < D; c++) d += qa[(h * L + i) * D + c]! * ka[(h * L + j) * D + c]!;
      s.push(d * scale);
      js.push(j);
    }
    if (!s.length) continue;
    const m = Math.max(...s), z = s.reduce((a, b) => a + Math.exp(b - m), 0);
    js.forEach((j, t) => {
      const w = Math.exp(s[t]! - m) / z;
      for (let c = 0; c < D; c++) want[(h * L + i) * D + c] += w * va[(h * L + j) * D + c]!;
    });
  }
  close(out, want, 2e-4);
}

// The selector kernels (TrSelectBlocks on native and cuda) against the host reference: identical
// layouts (integers: exact), on random scores, on scores with many ties, on rows with negative and zero
// scores, and at lengths that are not a multiple of the block.
describe('block selection on the device equals the host reference', () => {
  const cases: { H: number; L: number; B: number; rule: BlockRule; ties: boolean }[] = [
    { H: 2, L: 1000, B: 64, rule: { perRow: 3 }, ties: false },
    { H: 3, L: 512, B: 16, rule: { perRow: 7 }, ties: true },
    { H: 2, L: 1000, B: 64, rule: { share: 0.9 }, ties: false },
    { H: 2, L: 700, B: 32, rule: { share: 0.5 }, ties: true },
    { H: 1, L: 64, B: 64, rule: { share: 0.3 }, ties: false },
    { H: 4, L: 4096, B: 64, rule: { perRow: 1 }, ties: false },
  ];
  for (const c of cases) {
    it(`${JSON.stringify(c.rule)} H=${c.H} L=${c.L} B=${c.B}${c.ties ? ' with ties' : ''}`, () => {
      const nQ = nBlocks(c.L, c.B);
      const r = new Rng(c.L + c.B);
      // Softmax-like rows (share) or raw gate logits with negatives (perRow); ties from coarse rounding.
      const s = Float32Array.from({ length: c.H * nQ * nQ }, () => {
        const u = 'share' in c.rule ? Math.exp(r.normal() * 2) - 0.05 : r.normal();
        return c.ties ? Math.round(u * 2) / 2 : u;
      });
      const want = hostSelectBlocks(s, c.H, c.L, c.B, c.rule);
      const scores = tf.tensor3d(s, [c.H, nQ, nQ]);
      const got = selectBlocks(scores, c.L, c.B, c.rule);
      expect(isDeviceLayout(got)).toBe(hasKernel(SELECT_KERNEL));
      const host = readLayout(got);
      expect(Array.from(host.rowPtr)).toEqual(Array.from(want.rowPtr));
      expect(Array.from(host.colIdx)).toEqual(Array.from(want.colIdx));
      expect(Array.from(host.full)).toEqual(Array.from(want.full));
      disposeLayout(got);
      scores.dispose();
    });
  }
  it('bad rules name the field', () => {
    const t = tf.zeros([1, 2, 2]) as tf.Tensor3D;
    expect(() => selectBlocks(t, 128, 64, { perRow: 0 })).toThrow(/selectBlocks.perRow: must be an integer >= 1/);
    expect(() => selectBlocks(t, 128, 64, { share: 1.5 })).toThrow(/selectBlocks.share: must be in \(0, 1\]/);
    expect(() => selectBlocks(t, 300, 64, { share: 0.5 })).toThrow(/selectBlocks.scores: must be \[H, nQ, nQ\] with nQ = ceil\(300\/64\) = 5/);
    t.dispose();
  });
});
