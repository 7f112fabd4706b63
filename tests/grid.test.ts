/**
 * Grid and masked-denoising tasks (issue 22): the generator's invariants (frames are the first frame
 * moved by the example's motion; every evaluation mask leaves a copy of each masked content cell;
 * labels are the original tokens exactly at masked positions; text values queried are masked; seeded),
 * bad parameters named; a bidirectional transformer sees later tokens (a causal one does not); and
 * iterative unmasking commits every masked position over K steps and scores what it committed.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { useBackend } from '../kernels/backend.js';
import { BACKEND } from './under-test.js';
import { BOUNDARY, cellIndex, generateGrid, gridShape, MASK, parseGridParams, GRID_DEFAULTS } from '../datasets/grid.js';
import { IGNORE_INDEX } from '../datasets/types.js';
import { buildModel } from '../models/registry.js';
import { denoise } from '../suites/denoise.js';
import { Rng } from '../core/rng.js';
import { rowBlocks } from '../kernels/layout.js';
import { AXIS_ORDERS, axisOrder, diagonalPattern, multiDiagonalPattern, patternLayout, stripePattern, tilePattern } from '../kernels/grid-patterns.js';
import { attendPlan, gridMethod } from '../kernels/grid-methods.js';
import { gatherPerHead, invertOrders } from '../kernels/instance-layout.js';

beforeAll(async () => {
  await useBackend(BACKEND);
});

describe('grid task', () => {
  const p = parseGridParams({ frames: 3, height: 2, width: 5, jitter: 1, textPairs: 3, maskRatio: 0.6 });
  it('frames are frame 0 moved by the motion; eval masks leave a copy of every content cell; labels exact', () => {
    const b = generateGrid(p, 50, 7, 'eval');
    const { seqLen, gridLen, textStart } = gridShape(p);
    expect(b.seqLen).toBe(seqLen);
    for (let e = 0; e < b.n; e++) {
      const m = b.motion[e]!;
      expect(Math.abs(m - p.shift)).toBeLessThanOrEqual(p.jitter);
      const orig = (t: number) => (b.inputs[e * seqLen + t] === MASK ? b.labels[e * seqLen + t]! : b.inputs[e * seqLen + t]!);
      for (let t = 0; t < seqLen; t++) {
        const masked = b.inputs[e * seqLen + t] === MASK;
        expect(b.labels[e * seqLen + t] !== IGNORE_INDEX).toBe(masked);
      }
      for (let h = 0; h < p.height; h++) for (let w = 0; w < p.width; w++) {
        const copies = Array.from({ length: p.frames }, (_, f) => cellIndex(p, f, h, (((w + f * m) % p.width) + p.width) % p.width));
        expect(new Set(copies.map(orig)).size).toBe(1);
        expect(copies.some((c) => b.inputs[e * seqLen + c] !== MASK)).toBe(true);
      }
      expect(b.inputs[e * seqLen + gridLen]).toBe(BOUNDARY);
      // every query's value is masked and equals the value paired with its key
      const pairs = new Map<number, number>();
      for (let i = 0; i < p.textPairs; i++) pairs.set(b.inputs[e * seqLen + textStart + 2 * i]!, b.inputs[e * seqLen + textStart + 2 * i + 1]!);
      for (let j = 0; j < p.textPairs; j++) {
        const at = e * seqLen + textStart + 2 * p.textPairs + 2 * j;
        expect(b.inputs[at + 1]).toBe(MASK);
        expect(b.labels[at + 1]).toBe(pairs.get(b.inputs[at]!));
      }
    }
    expect(generateGrid(p, 5, 7, 'eval').inputs).toEqual(generateGrid(p, 5, 7, 'eval').inputs);
    expect(generateGrid(p, 5, 8, 'eval').inputs).not.toEqual(generateGrid(p, 5, 7, 'eval').inputs);
  });

  it('training masks vary per example (masked diffusion ratios)', () => {
    const b = generateGrid({ ...p, textPairs: 0 }, 200, 3, 'train');
    const L = b.seqLen;
    const ratios = Array.from({ length: b.n }, (_, e) => b.inputs.subarray(e * L, (e + 1) * L).filter((x) => x === MASK).length / L);
    expect(Math.min(...ratios)).toBeLessThan(0.2);
    expect(Math.max(...ratios)).toBeGreaterThan(0.8);
  });

  it('bad parameters name the field', () => {
    expect(() => parseGridParams({ frames: 1 })).toThrow(/task\.grid\.frames/);
    expect(() => parseGridParams({ frames: 0, textPairs: 0 })).toThrow(/frames/);
    expect(() => parseGridParams({ textPairs: 40, textVocab: 32 })).toThrow(/textPairs/);
    expect(() => parseGridParams({ colour: 1 })).toThrow(/colour/);
    expect(GRID_DEFAULTS.denoiseSteps).toBeGreaterThan(0);
  });
});

describe('bidirectional transformer and iterative unmasking', () => {
  const logitsAt0 = (m: ReturnType<typeof buildModel>, ids: Int32Array) =>
    tf.tidy(() => Array.from(m.head(tf.reshape(tf.slice(m.hidden(tf.tensor2d(ids, [1, ids.length], 'int32')), [0, 0, 0], [1, 1, -1]), [1, -1]) as tf.Tensor2D).dataSync()));

  it('causal: false lets the first position see a later token; the causal model does not', () => {
    const ids = Int32Array.from({ length: 32 }, (_, i) => 2 + (i % 20));
    const changed = Int32Array.from(ids);
    changed[30] = 21;
    for (const causal of [true, false]) {
      const m = buildModel('dense', { dModel: 32, nLayers: 2, nHeads: 2, causal }, { vocabSize: 40, maxLen: 32, seed: 1 });
      const same = logitsAt0(m, ids).every((x, i) => x === logitsAt0(m, changed)[i]);
      expect(same).toBe(causal);
      m.dispose();
    }
  });

  it('commits every masked position within K steps and scores the committed tokens', () => {
    const p = parseGridParams({ frames: 2, height: 2, width: 4, numTestExamples: 6 });
    const b = generateGrid(p, 6, 1, 'eval');
    const m = buildModel('dense', { dModel: 32, nLayers: 1, nHeads: 2, causal: false }, { vocabSize: gridShape(p).vocabSize, maxLen: b.seqLen, seed: 2 });
    const seen: number[] = [];
    const r = denoise(m, b, 3, 4, (s) => seen.push(s));
    expect(seen).toEqual([0, 1, 2, 0, 1, 2]);
    expect(r.masked).toBe(b.labels.filter((y) => y !== IGNORE_INDEX).length);
    expect(r.stepMs).toHaveLength(3);
    expect(Array.from(r.perExampleTotal).reduce((s, x) => s + x, 0)).toBe(r.masked);
    expect(r.accuracy).toBeCloseTo(Array.from(r.perExampleCorrect).reduce((s, x) => s + x, 0) / r.masked, 10);
    expect(() => denoise(m, b, 0)).toThrow(/denoise\.steps/);
    m.dispose();
  });
});

describe('grid head patterns and methods', () => {
  const geom = { frames: 4, height: 2, width: 4, textLen: 0 };
  const L = 32, Bk = 4, n = 8, D = 8;
  // head 0 (temporal): a token matches the same cell in every frame; head 1 (local): a token matches its own block
  const q = new Float32Array(2 * L * D);
  for (let t = 0; t < L; t++) {
    q[(0 * L + t) * D + (t % 8)] = 6;
    q[(1 * L + t) * D + Math.floor(t / Bk)] = 6;
  }
  const qt = () => tf.tensor3d(q, [2, L, D]);
  const ctx = (budget: number) => ({ geom, block: Bk, scale: 1 / Math.sqrt(D), budget });
  const rows = (l: import('../kernels/layout.js').BlockLayout, h: number) => Array.from({ length: n }, (_, i) => rowBlocks(l, h, i));

  it('patterns list exactly their definitions', () => {
    expect(diagonalPattern(L, Bk, 1).map((s) => [...s].sort((a, b) => a - b))[0]).toEqual([0, 1]);
    expect([...multiDiagonalPattern(L, Bk, 8, 0)[1]!].sort((a, b) => a - b)).toEqual([1, 3, 5, 7]);
    expect([...stripePattern(L, Bk, [0, 5])[2]!].sort((a, b) => a - b)).toEqual([0, 2, 5]);
    const tile = tilePattern({ ...geom, textLen: 4 }, Bk, [0]);
    expect([...tile[4]!].sort((a, b) => a - b)).toEqual([0, 1, 4, 5, 8]); // frame 2 + frame 0 + text
    expect(tile[8]!.size).toBe(9); // text sees everything
  });

  it('axis orders are permutations; permuted attention at full density equals dense attention', () => {
    for (const o of AXIS_ORDERS) expect([...axisOrder({ ...geom, textLen: 3 }, o)].sort((a, b) => a - b)).toEqual(Array.from({ length: L + 3 }, (_, i) => i));
    expect(Array.from(axisOrder(geom, 'hwf').subarray(0, 4))).toEqual([0, 8, 16, 24]); // one cell of every frame, together
    const r = new Rng(3);
    const x = () => tf.tensor4d(Float32Array.from({ length: 2 * L * D }, () => r.normal()), [1, 2, L, D]);
    const [a, b, c] = [x(), x(), x()];
    const order = new Int32Array(2 * L);
    order.set(axisOrder(geom, 'hwf'), 0);
    order.set(axisOrder(geom, 'wfh'), L);
    expect(Array.from(gatherPerHead(gatherPerHead(a, order), invertOrders(order, L)).dataSync())).toEqual(Array.from(a.dataSync()));
    const full = patternLayout(L, Bk, [0, 1].map(() => Array.from({ length: n }, () => new Set(Array.from({ length: n }, (_, j) => j)))));
    const want = attendPlan(a, b, c, null, 0.3).dataSync(), got = attendPlan(a, b, c, { layout: full, order }, 0.3).dataSync();
    for (let i = 0; i < want.length; i++) expect(Math.abs(got[i]! - want[i]!)).toBeLessThan(1e-5);
  });

  it('every method at full density equals dense attention', () => {
    const r = new Rng(4);
    const x = () => tf.tensor4d(Float32Array.from({ length: 2 * L * D }, () => r.normal()), [1, 2, L, D]);
    const [a, b, c] = [x(), x(), x()];
    const want = attendPlan(a, b, c, null, 0.35).dataSync();
    const inp = { q: tf.reshape(a, [2, L, D]) as tf.Tensor3D, k: tf.reshape(b, [2, L, D]) as tf.Tensor3D, layer: 0 };
    for (const name of ['sparsed', 'adaspa', 'paro', 'mminference'] as const) {
      const m = gridMethod(name), cx = { ...ctx(1), scale: 0.35 };
      const state = m.calibrate?.([[inp]], cx);
      const memo = new Map();
      for (const step of [0, 1, 2]) {
        const got = attendPlan(a, b, c, m.plan(inp, step, cx, state, memo), 0.35).dataSync();
        for (let i = 0; i < want.length; i++) expect(Math.abs(got[i]! - want[i]!)).toBeLessThan(1e-5);
      }
    }
    const tile = gridMethod('efficient-vdit').plan(inp, 0, { ...ctx(1), geom: { ...geom } }, undefined, new Map());
    expect(tile!.layout.colIdx.length).toBeLessThan(2 * n * n); // the tile is sparse by construction
  });

  it('SparseD: full attention for the first step, then the pattern saved there; AdaSpa: searched at step 0, own blocks kept, density at the budget', () => {
    const inp = { q: qt(), k: qt(), layer: 0 };
    const sd = gridMethod('sparsed'), memo = new Map();
    expect(sd.plan(inp, 0, ctx(0.25), undefined, memo)).toBeNull();
    const p1 = sd.plan(inp, 1, ctx(0.25), undefined, memo)!;
    expect(sd.plan(inp, 2, ctx(0.25), undefined, memo)).toBe(p1);
    for (const h of [0, 1]) for (let i = 0; i < n; i++) expect(rowBlocks(p1.layout, h, i)).toContain(i);
    // the temporal head's row 0 keeps blocks of the same cells in other frames (0, 2, 4, 6 hold cells 0-3)
    expect(rowBlocks(p1.layout, 0, 0)).toEqual([0, 2]);
    const ad = gridMethod('adaspa'), m2 = new Map();
    const a0 = ad.plan(inp, 0, ctx(0.5), undefined, m2)!;
    expect(ad.plan(inp, 3, ctx(0.5), undefined, m2)).toBe(a0);
    expect(a0.layout.colIdx.length).toBe(2 * Math.round(0.5 * n * n));
    for (const h of [0, 1]) for (let i = 0; i < n; i++) expect(rowBlocks(a0.layout, h, i)).toContain(i);
  });

  it('offline searches: Sparse-vDiT picks multi-diagonal for the temporal head and a cheap local pattern for the local one; PARO reorders the temporal head frames-innermost; MMInference keeps text dense', () => {
    const inp = { q: qt(), k: qt(), layer: 0 };
    const vd = gridMethod('sparse-vdit');
    const sv = vd.calibrate!([[inp]], ctx(0.25));
    const kinds = (sv.heads[0] as { kind: string }[]).map((p) => p.kind);
    expect(kinds[0]).toBe('multi-diagonal'); // the only candidate keeping the temporal head's mass
    expect(['diagonal', 'stripe']).toContain(kinds[1]); // both keep the own block at a quarter of multi-diagonal's blocks
    const pr = gridMethod('paro');
    const ps = pr.calibrate!([[inp]], ctx(0.25));
    const orders = (ps.heads[0] as { order: string }[]).map((h) => h.order);
    expect(orders[0]!.endsWith('f')).toBe(true);
    const plan = pr.plan(inp, 0, ctx(0.25), ps, new Map())!;
    expect(plan.order).toHaveLength(2 * L);
    const g2 = { ...geom, textLen: 4 };
    const q2 = tf.concat([qt(), tf.ones([2, 4, D])], 1) as tf.Tensor3D;
    const mm = gridMethod('mminference'), inp2 = { q: q2, k: q2, layer: 0 };
    const st = mm.calibrate!([[inp2]], { ...ctx(0.25), geom: g2 });
    const p2 = mm.plan(inp2, 0, { ...ctx(0.25), geom: g2 }, st, new Map())!;
    for (const h of [0, 1]) {
      expect(rowBlocks(p2.layout, h, 8)).toEqual(Array.from({ length: 9 }, (_, j) => j)); // the text block sees everything
      for (let i = 0; i < 8; i++) expect(rowBlocks(p2.layout, h, i)).toContain(8); // everything sees the text
    }
    expect(() => gridMethod('nope')).toThrow(/grid\.method.*allowed: sparsed/);
    void rows;
  });
});
