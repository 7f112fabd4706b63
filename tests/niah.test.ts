import { describe, expect, it } from 'vitest';
import { NiahTask, generateNiah, niahDepths, parseNiahParams, type NiahFamily } from '../datasets/niah.js';
import { IGNORE_INDEX } from '../datasets/types.js';

const QUERY = 1;

function answers(inputs: Int32Array, labels: Int32Array): { pos: number; value: number }[] {
  return [...labels.keys()].filter((t) => labels[t] !== IGNORE_INDEX).map((t) => ({ pos: t, value: labels[t]! }));
}

describe('needle in a haystack', () => {
  for (const family of ['single', 'multikey', 'multivalue', 'multiquery'] as NiahFamily[]) {
    it(`${family}: every answer is the value of a needle whose key was queried`, () => {
      const p = parseNiahParams({ family, numNeedles: family === 'single' ? 1 : 4, numQueries: 2, seqLen: 128, evalLengths: [128] });
      const b = generateNiah(p, 30, 128, undefined, 11);
      const keyLo = 2, keyHi = 2 + p.numKeys;
      for (let e = 0; e < b.n; e++) {
        const x = b.inputs.subarray(e * 128, (e + 1) * 128);
        const y = b.labels.subarray(e * 128, (e + 1) * 128);
        const ans = answers(x, y);
        const expected = family === 'multivalue' ? p.numNeedles : family === 'multiquery' ? p.numQueries : 1;
        expect(ans.length).toBe(expected);
        // Needles: key tokens in the haystack (before the first query marker), each followed by its value.
        const firstQ = x.indexOf(QUERY);
        const needles = [...x.subarray(0, firstQ).keys()].filter((t) => x[t]! >= keyLo && x[t]! < keyHi).map((t) => ({ key: x[t]!, value: x[t + 1]! }));
        expect(needles.length).toBe(p.numNeedles);
        if (family === 'multivalue') {
          expect(ans.map((a) => a.value)).toEqual(needles.map((n) => n.value));
        } else {
          for (const a of ans) {
            // Queried key sits right before the first answer (or right before each answer for multiquery).
            const key = family === 'multiquery' ? x[a.pos]! : x[firstQ + 1]!;
            expect(x[a.pos - (family === 'multiquery' ? 1 : 0)] === QUERY || family !== 'multiquery').toBe(true);
            expect(needles.find((n) => n.key === key)?.value).toBe(a.value);
          }
        }
      }
    });
  }

  it('places the target needle at the requested depth', () => {
    const p = parseNiahParams({ family: 'single', numNeedles: 1, seqLen: 256, evalLengths: [256] });
    for (const depth of [0, 0.5, 1]) {
      const b = generateNiah(p, 1, 256, depth, 1);
      const keyPos = [...b.inputs.keys()].find((t) => b.inputs[t]! >= 2 && b.inputs[t]! < 2 + p.numKeys)!;
      const haystack = 256 + 1 - 3;
      expect(Math.abs(keyPos - depth * (haystack - 2))).toBeLessThanOrEqual(1);
    }
  });

  it('builds the depth x length grid, deterministically', () => {
    const p = parseNiahParams({ seqLen: 128, evalLengths: [64, 128, 256], numDepths: 11, examplesPerCell: 2 });
    const g1 = new NiahTask(p, 5).grid();
    const g2 = new NiahTask(p, 5).grid();
    expect(g1.length).toBe(33);
    expect(niahDepths(p)).toEqual([0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1]);
    expect(Array.from(g1[7]!.batch.inputs)).toEqual(Array.from(g2[7]!.batch.inputs));
  });

  it('the essay haystack repeats one fixed filler sequence', () => {
    const p = parseNiahParams({ haystack: 'essay', family: 'single', numNeedles: 1, seqLen: 64, evalLengths: [64] });
    const a = generateNiah(p, 2, 64, 0.9, 1);
    expect(Array.from(a.inputs.subarray(0, 20))).toEqual(Array.from(a.inputs.subarray(64, 84)));
  });

  it('rejects bad parameters naming the field', () => {
    expect(() => parseNiahParams({ family: 'needle' })).toThrow(/task\.niah\.family: must be one of single, multikey, multivalue, multiquery/);
    expect(() => parseNiahParams({ family: 'single', numNeedles: 3 })).toThrow(/task\.niah\.numNeedles/);
    expect(() => parseNiahParams({ family: 'multiquery', numNeedles: 2, numQueries: 3 })).toThrow(/task\.niah\.numQueries/);
    expect(() => parseNiahParams({ seqLen: 64, evalLengths: [] })).toThrow(/task\.niah\.evalLengths/);
  });
});
