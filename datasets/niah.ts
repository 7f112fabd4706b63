/**
 * Token-level needle-in-a-haystack in RULER's families (single, multi-key, multi-value, multi-query)
 * with RULER's two haystack kinds (uniform random filler, or a fixed "essay" token sequence), sized for
 * small models trained from scratch. See ../shared/spec/tasks.md.
 *
 * Vocabulary: 0 unused, 1 = query marker, then keys, values and filler tokens in disjoint ranges.
 * A needle is `key value`. The tail is `Q key v1 .. vm` (or `Q k1 v1 Q k2 v2 ..` for multi-query);
 * only answer tokens are scored, and an example counts as correct only if every answer is right
 * (exact match; teacher-forced argmax equals greedy decoding when all answers are right).
 */
import { Rng } from '../core/rng.js';
import { IGNORE_INDEX, type SequenceTask, type TokenBatch } from './types.js';
import { ParamError, enumParam, intParam, rejectUnknown } from '../core/params.js';

export const NIAH_FAMILIES = ['single', 'multikey', 'multivalue', 'multiquery'] as const;
export type NiahFamily = (typeof NIAH_FAMILIES)[number];
export const HAYSTACKS = ['random', 'essay'] as const;
export type Haystack = (typeof HAYSTACKS)[number];

export interface NiahParams {
  family: NiahFamily;
  haystack: Haystack;
  /** Longest training length; training samples lengths from evalLengths <= seqLen. */
  seqLen: number;
  /** Needles in the haystack (multikey: 1 queried + distractors; multivalue: values of the one key). */
  numNeedles: number;
  /** Keys queried (multiquery only). */
  numQueries: number;
  numKeys: number;
  numValues: number;
  numFiller: number;
  evalLengths: number[];
  numDepths: number;
  examplesPerCell: number;
}

export const NIAH_DEFAULTS: NiahParams = {
  family: 'multikey',
  haystack: 'random',
  seqLen: 256,
  numNeedles: 4,
  numQueries: 2,
  numKeys: 64,
  numValues: 64,
  numFiller: 126,
  evalLengths: [64, 128, 256],
  numDepths: 11,
  examplesPerCell: 16,
};

const QUERY = 1;

export function parseNiahParams(given: Record<string, unknown>): NiahParams {
  const w = 'task.niah';
  rejectUnknown(w, given, Object.keys(NIAH_DEFAULTS));
  const g = { ...NIAH_DEFAULTS, ...given };
  const p: NiahParams = {
    family: enumParam(w, 'family', g.family, NIAH_FAMILIES),
    haystack: enumParam(w, 'haystack', g.haystack, HAYSTACKS),
    seqLen: intParam(w, 'seqLen', g.seqLen, 8),
    numNeedles: intParam(w, 'numNeedles', g.numNeedles, 1),
    numQueries: intParam(w, 'numQueries', g.numQueries, 1),
    numKeys: intParam(w, 'numKeys', g.numKeys, 1),
    numValues: intParam(w, 'numValues', g.numValues, 1),
    numFiller: intParam(w, 'numFiller', g.numFiller, 1),
    evalLengths: Array.isArray(g.evalLengths) ? g.evalLengths.map((x) => intParam(w, 'evalLengths[]', x, 8)) : [],
    numDepths: intParam(w, 'numDepths', g.numDepths, 1),
    examplesPerCell: intParam(w, 'examplesPerCell', g.examplesPerCell, 1),
  };
  if (p.evalLengths.length === 0) throw new ParamError(`${w}.evalLengths`, 'must be a non-empty array of lengths');
  if (!p.evalLengths.some((l) => l <= p.seqLen)) throw new ParamError(`${w}.evalLengths`, `needs at least one length <= seqLen (${p.seqLen})`);
  if (p.family === 'single' && p.numNeedles !== 1) throw new ParamError(`${w}.numNeedles`, 'must be 1 for family "single"');
  if (p.family === 'multiquery' && p.numQueries > p.numNeedles) {
    throw new ParamError(`${w}.numQueries`, `must be <= numNeedles (${p.numNeedles})`);
  }
  const distinctKeys = p.family === 'multivalue' ? 1 : p.numNeedles;
  if (distinctKeys > p.numKeys) throw new ParamError(`${w}.numKeys`, `must be >= ${distinctKeys} (distinct needle keys)`);
  if (p.family === 'multivalue' && p.numNeedles > p.numValues) throw new ParamError(`${w}.numValues`, `must be >= numNeedles (${p.numNeedles})`);
  for (const L of [...p.evalLengths, p.seqLen]) {
    const need = tailLength(p) + 2 * p.numNeedles;
    if (L < need + 1) throw new ParamError(`${w}.evalLengths`, `length ${L} cannot hold ${p.numNeedles} needles and the query (needs >= ${need + 1})`);
  }
  return p;
}

export function niahVocabSize(p: NiahParams): number {
  return 2 + p.numKeys + p.numValues + p.numFiller;
}

/** Tokens after the haystack: query markers, queried keys and answers. */
function tailLength(p: NiahParams): number {
  switch (p.family) {
    case 'multiquery':
      return 3 * p.numQueries;
    case 'multivalue':
      return 2 + p.numNeedles;
    default:
      return 3;
  }
}

/** Depths of the evaluation grid: numDepths points evenly spread over [0, 1]. */
export function niahDepths(p: NiahParams): number[] {
  if (p.numDepths === 1) return [0.5];
  return Array.from({ length: p.numDepths }, (_, i) => Math.round((i / (p.numDepths - 1)) * 1000) / 1000);
}

/**
 * One batch of `n` examples of input length L, the target needle at `depth` (or a random depth per
 * example when depth is undefined).
 */
export function generateNiah(p: NiahParams, n: number, L: number, depth: number | undefined, seed: number): TokenBatch {
  const rng = new Rng(seed);
  const keyBase = 2;
  const valBase = keyBase + p.numKeys;
  const fillBase = valBase + p.numValues;
  const essay = p.haystack === 'essay' ? essayTokens(p, L + 1) : undefined;
  const inputs = new Int32Array(n * L);
  const labels = new Int32Array(n * L).fill(IGNORE_INDEX);
  const seq = new Int32Array(L + 1);
  const scored = new Uint8Array(L + 1);
  const tail = tailLength(p);
  const H = L + 1 - tail;
  for (let e = 0; e < n; e++) {
    scored.fill(0);
    for (let t = 0; t < H; t++) seq[t] = essay ? essay[t]! : fillBase + rng.int(0, p.numFiller);
    const distinct = p.family === 'multivalue' ? 1 : p.numNeedles;
    const keys = rng.sampleDistinct(keyBase, keyBase + p.numKeys, distinct);
    const values = p.family === 'multivalue'
      ? rng.sampleDistinct(valBase, valBase + p.numValues, p.numNeedles)
      : Array.from({ length: p.numNeedles }, () => valBase + rng.int(0, p.numValues));
    // Needle slots: the target needle (index 0) at the requested depth, the others anywhere free.
    const slots = H - 1;
    const occupied = new Uint8Array(H);
    const pos: number[] = [];
    const d = depth ?? rng.float();
    const first = Math.min(slots - 1, Math.round(d * (slots - 1)));
    pos.push(first);
    occupied[first] = 1;
    occupied[first + 1] = 1;
    for (let i = 1; i < p.numNeedles; i++) {
      let s: number;
      do s = rng.int(0, slots);
      while (occupied[s] || occupied[s + 1]);
      occupied[s] = 1;
      occupied[s + 1] = 1;
      pos.push(s);
    }
    for (let i = 0; i < p.numNeedles; i++) {
      seq[pos[i]!] = keys[p.family === 'multivalue' ? 0 : i]!;
      seq[pos[i]! + 1] = values[i]!;
    }
    let t = H;
    if (p.family === 'multiquery') {
      // Query the target and numQueries-1 other needles, in random order.
      const others = rng.sampleDistinct(1, p.numNeedles, p.numQueries - 1);
      const asked = [0, ...others];
      rng.shuffle(asked);
      for (const i of asked) {
        seq[t++] = QUERY;
        seq[t++] = keys[i]!;
        scored[t] = 1;
        seq[t++] = values[i]!;
      }
    } else {
      seq[t++] = QUERY;
      seq[t++] = keys[0]!;
      // multivalue answers in order of appearance in the haystack.
      const answerOrder = p.family === 'multivalue'
        ? pos.map((s, i) => [s, i] as const).sort((a, b) => a[0] - b[0]).map(([, i]) => values[i]!)
        : [values[0]!];
      for (const v of answerOrder) {
        scored[t] = 1;
        seq[t++] = v;
      }
    }
    const row = e * L;
    for (let i = 0; i < L; i++) {
      inputs[row + i] = seq[i]!;
      if (scored[i + 1]) labels[row + i] = seq[i + 1]!;
    }
  }
  return { inputs, labels, n, seqLen: L };
}

/** RULER's repeated-essay haystack: one fixed filler sequence for the whole task. */
function essayTokens(p: NiahParams, len: number): Int32Array {
  const rng = new Rng(Rng.derive(0, 'niah/essay'));
  const fillBase = 2 + p.numKeys + p.numValues;
  return Int32Array.from({ length: len }, () => fillBase + rng.int(0, p.numFiller));
}

export interface NiahCell {
  length: number;
  depth: number;
  batch: TokenBatch;
}

export class NiahTask implements SequenceTask {
  readonly name = 'niah';
  readonly vocabSize: number;
  readonly seqLen: number;
  readonly params: Record<string, unknown>;
  private readonly trainLengths: number[];

  constructor(
    readonly p: NiahParams,
    readonly seed: number,
  ) {
    this.vocabSize = niahVocabSize(p);
    this.seqLen = p.seqLen;
    this.params = { ...p };
    // Train on every grid length up to seqLen so that the query position is seen at each length.
    this.trainLengths = [...new Set(p.evalLengths.filter((l) => l <= p.seqLen))].sort((a, b) => a - b);
    if (!this.trainLengths.includes(p.seqLen)) this.trainLengths.push(p.seqLen);
  }

  /**
   * A batch at a random training length. `batchSize` counts sequences of length seqLen: shorter
   * sequences come proportionally more per batch (a constant token budget), so every step carries
   * about the same compute and the short lengths give denser supervision.
   */
  trainBatch(step: number, batchSize: number): TokenBatch {
    const rng = new Rng(Rng.derive(this.seed, `niah/train-len/${step}`));
    const L = this.trainLengths[rng.int(0, this.trainLengths.length)]!;
    const n = Math.max(1, Math.floor((batchSize * this.seqLen) / L));
    return generateNiah(this.p, n, L, undefined, Rng.derive(this.seed, `niah/train/${step}`));
  }

  validSet(n: number): TokenBatch {
    return generateNiah(this.p, n, this.p.seqLen, undefined, Rng.derive(this.seed, 'niah/valid'));
  }

  /** The depth x length grid; lengths above seqLen are the extrapolation axis. */
  grid(): NiahCell[] {
    const cells: NiahCell[] = [];
    for (const length of this.p.evalLengths) {
      for (const depth of niahDepths(this.p)) {
        const seed = Rng.derive(this.seed, `niah/test/${length}/${depth}`);
        cells.push({ length, depth, batch: generateNiah(this.p, this.p.examplesPerCell, length, depth, seed) });
      }
    }
    return cells;
  }
}
