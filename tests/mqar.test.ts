import { describe, expect, it } from 'vitest';
import { generateMqar, parseMqarParams, powerLawGapProbs, MqarTask } from '../datasets/mqar.js';
import { IGNORE_INDEX } from '../datasets/types.js';

const base = { vocabSize: 256, inputSeqLen: 64, numKvPairs: 8, powerA: 0.01, numPasses: 1, randomNonQueries: true };

describe('MQAR generator (Zoology multiquery_ar)', () => {
  it('keeps every invariant of the reference generator on many seeds', () => {
    for (let seed = 0; seed < 50; seed++) {
      const p = { ...base, numPasses: 1 + (seed % 2), randomNonQueries: seed % 3 !== 0 };
      const b = generateMqar(p, 20, seed);
      const L = p.inputSeqLen;
      const half = p.vocabSize / 2;
      const context = 2 * p.numKvPairs * p.numPasses;
      for (let e = 0; e < b.n; e++) {
        const x = b.inputs.subarray(e * L, (e + 1) * L);
        const y = b.labels.subarray(e * L, (e + 1) * L);
        const keys = Array.from({ length: p.numKvPairs }, (_, i) => x[2 * i]!);
        const values = Array.from({ length: p.numKvPairs }, (_, i) => x[2 * i + 1]!);
        expect(new Set(keys).size).toBe(p.numKvPairs);
        expect(new Set(values).size).toBe(p.numKvPairs);
        for (const k of keys) expect(k >= 1 && k < half).toBe(true);
        for (const v of values) expect(v >= half && v < p.vocabSize).toBe(true);
        // Later passes repeat the same pair list.
        for (let t = 2 * p.numKvPairs; t < context; t++) expect(x[t]).toBe(x[t % (2 * p.numKvPairs)]);
        const labelled = [...y.keys()].filter((t) => y[t] !== IGNORE_INDEX);
        expect(labelled.length).toBe(p.numKvPairs);
        for (const t of labelled) {
          // The labelled position holds the key's second occurrence; its label is that key's value.
          expect(t).toBeGreaterThanOrEqual(context);
          expect((t - context) % 2).toBe(0);
          const i = keys.indexOf(x[t]!);
          expect(i).toBeGreaterThanOrEqual(0);
          expect(y[t]).toBe(values[i]);
        }
        if (!p.randomNonQueries) {
          for (let t = context; t < L; t++) if (!labelled.includes(t)) expect(x[t]).toBe(0);
        }
      }
    }
  });

  it('draws query gaps from the power law p(g) ∝ a g^(a-1) (chi-square, p > 0.001)', () => {
    const p = { ...base, vocabSize: 8192, inputSeqLen: 128, numKvPairs: 1, randomNonQueries: false };
    const n = 20000;
    const b = generateMqar(p, n, 7);
    const context = 2;
    const space = (p.inputSeqLen - context) / 2;
    const counts = new Array(space).fill(0);
    for (let e = 0; e < n; e++) {
      for (let t = context; t < p.inputSeqLen; t++) {
        if (b.labels[e * p.inputSeqLen + t] !== IGNORE_INDEX) counts[(t - context) / 2]++;
      }
    }
    const probs = powerLawGapProbs(space, p.powerA);
    // Pool the tail so that every expected count is >= 5.
    let chi = 0;
    let dof = -1;
    let obs = 0;
    let exp = 0;
    for (let g = 0; g < space; g++) {
      obs += counts[g];
      exp += probs[g]! * n;
      if (exp >= 5 || g === space - 1) {
        chi += (obs - exp) ** 2 / exp;
        dof++;
        obs = 0;
        exp = 0;
      }
    }
    // Critical value of chi-square at p = 0.001 (Wilson-Hilferty approximation).
    const z = 3.09;
    const crit = dof * (1 - 2 / (9 * dof) + z * Math.sqrt(2 / (9 * dof))) ** 3;
    expect(chi).toBeLessThan(crit);
    // The law is steep: the smallest gap is by far the most likely.
    expect(counts[0]).toBeGreaterThan(counts[space - 1] * 10);
  });

  it('is deterministic per seed and differs across seeds; train and test splits differ', () => {
    const a = generateMqar(base, 10, 3);
    const b = generateMqar(base, 10, 3);
    const c = generateMqar(base, 10, 4);
    expect(Array.from(a.inputs)).toEqual(Array.from(b.inputs));
    expect(Array.from(a.labels)).toEqual(Array.from(b.labels));
    expect(Array.from(a.inputs)).not.toEqual(Array.from(c.inputs));
    const task = new MqarTask(parseMqarParams({ ...base, numTrainExamples: 200, numTestExamples: 200 }), 0);
    const train = task.trainBatch(0, 200);
    const test = task.testSet();
    const rows = (x: Int32Array) => new Set(Array.from({ length: x.length / 64 }, (_, i) => x.subarray(i * 64, (i + 1) * 64).join(',')));
    const overlap = [...rows(test.inputs)].filter((r) => rows(train.inputs).has(r));
    expect(overlap.length).toBe(0);
  });

  it('rejects invalid parameter combinations with the field name', () => {
    expect(() => parseMqarParams({ inputSeqLen: 63, vocabSize: 256 })).toThrow(/task\.mqar\.inputSeqLen: must be even/);
    expect(() => parseMqarParams({ inputSeqLen: 64, vocabSize: 64 })).toThrow(/task\.mqar\.vocabSize: must be greater than inputSeqLen/);
    expect(() => parseMqarParams({ inputSeqLen: 64, vocabSize: 256, numKvPairs: 17 })).toThrow(/task\.mqar\.numKvPairs/);
    expect(() => parseMqarParams({ inputSeqLen: 64, vocabSize: 256, numKvPairs: 8, numPasses: 4 })).toThrow(/<= inputSeqLen/);
    expect(() => parseMqarParams({ powerA: 0 })).toThrow(/task\.mqar\.powerA/);
    expect(() => parseMqarParams({ seqLen: 64 })).toThrow(/task\.mqar\.seqLen: unknown parameter; allowed: vocabSize/);
  });
});
