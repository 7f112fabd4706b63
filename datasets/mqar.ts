/**
 * MQAR, multi-query associative recall, generated as Zoology's `multiquery_ar` does (Arora, Eyuboglu
 * et al. 2023): same algorithm and parameters, our own seeded RNG. See ../shared/spec/tasks.md.
 */
import { EpochBatches } from './epochs.js';
import { Rng } from '../core/rng.js';
import { IGNORE_INDEX, type SequenceTask, type TokenBatch } from './types.js';
import { ParamError, boolParam, intParam, numParam, rejectUnknown } from '../core/params.js';

export interface MqarParams {
  vocabSize: number;
  inputSeqLen: number;
  numKvPairs: number;
  powerA: number;
  numPasses: number;
  randomNonQueries: boolean;
  numTrainExamples: number;
  numTestExamples: number;
}

export const MQAR_DEFAULTS: MqarParams = {
  vocabSize: 8192,
  inputSeqLen: 64,
  numKvPairs: 8,
  powerA: 0.01,
  numPasses: 1,
  randomNonQueries: true,
  numTrainExamples: 100_000,
  numTestExamples: 3_000,
};

export function parseMqarParams(given: Record<string, unknown>): MqarParams {
  rejectUnknown('task.mqar', given, Object.keys(MQAR_DEFAULTS));
  const g = { ...MQAR_DEFAULTS, ...given };
  const w = 'task.mqar';
  const p: MqarParams = {
    vocabSize: intParam(w, 'vocabSize', g.vocabSize, 4),
    inputSeqLen: intParam(w, 'inputSeqLen', g.inputSeqLen, 4),
    numKvPairs: intParam(w, 'numKvPairs', g.numKvPairs, 1),
    powerA: numParam(w, 'powerA', g.powerA, 1e-9, 1),
    numPasses: intParam(w, 'numPasses', g.numPasses, 1),
    randomNonQueries: boolParam(w, 'randomNonQueries', g.randomNonQueries),
    numTrainExamples: intParam(w, 'numTrainExamples', g.numTrainExamples, 1),
    numTestExamples: intParam(w, 'numTestExamples', g.numTestExamples, 1),
  };
  validateMqar(p);
  return p;
}

/** The generator's preconditions, as Zoology asserts them. */
export function validateMqar(p: Pick<MqarParams, 'vocabSize' | 'inputSeqLen' | 'numKvPairs' | 'numPasses'>): void {
  if (p.inputSeqLen % 2 !== 0) throw new ParamError('task.mqar.inputSeqLen', `must be even, got ${p.inputSeqLen}`);
  if (p.vocabSize <= p.inputSeqLen) {
    throw new ParamError('task.mqar.vocabSize', `must be greater than inputSeqLen (${p.inputSeqLen}), got ${p.vocabSize}`);
  }
  const needed = p.numKvPairs * 2 * p.numPasses + p.numKvPairs * 2;
  if (needed > p.inputSeqLen) {
    throw new ParamError(
      'task.mqar.numKvPairs',
      `numKvPairs*2*numPasses + numKvPairs*2 = ${needed} must be <= inputSeqLen (${p.inputSeqLen})`,
    );
  }
  if (p.numKvPairs > Math.floor(p.vocabSize / 2) - 1) {
    throw new ParamError('task.mqar.numKvPairs', `must be <= vocabSize/2 - 1 = ${Math.floor(p.vocabSize / 2) - 1} (distinct keys)`);
  }
}

/** Query-gap probabilities p(g) ∝ a * g^(a-1), g = 1..space (index i is gap i). */
export function powerLawGapProbs(space: number, powerA: number): Float64Array {
  const p = new Float64Array(space);
  let s = 0;
  for (let g = 1; g <= space; g++) {
    p[g - 1] = powerA * Math.pow(g, powerA - 1);
    s += p[g - 1]!;
  }
  for (let i = 0; i < space; i++) p[i]! /= s;
  return p;
}

/** `numExamples` MQAR examples from `seed`: inputs [n, inputSeqLen], labels [n, inputSeqLen]. */
export function generateMqar(
  p: Pick<MqarParams, 'vocabSize' | 'inputSeqLen' | 'numKvPairs' | 'powerA' | 'numPasses' | 'randomNonQueries'>,
  numExamples: number,
  seed: number,
): TokenBatch {
  validateMqar(p);
  const rng = new Rng(seed);
  const L = p.inputSeqLen;
  const pairs = p.numKvPairs;
  const context = 2 * pairs * p.numPasses;
  const space = Math.floor((L - context) / 2);
  const gapProbs = powerLawGapProbs(space, p.powerA);
  const keyVocab = Math.floor(p.vocabSize / 2);
  const inputs = new Int32Array(numExamples * L);
  const labels = new Int32Array(numExamples * L).fill(IGNORE_INDEX);
  // The full sequence has L + 1 tokens; inputs drop the last one, labels drop the first one.
  const seq = new Int32Array(L + 1);
  const full = new Int32Array(L + 1);
  for (let e = 0; e < numExamples; e++) {
    seq.fill(0);
    full.fill(IGNORE_INDEX);
    const keys = rng.sampleDistinct(1, keyVocab, pairs);
    const values = rng.sampleDistinct(keyVocab, p.vocabSize, pairs);
    for (let pass = 0; pass < p.numPasses; pass++) {
      for (let i = 0; i < pairs; i++) {
        seq[pass * 2 * pairs + 2 * i] = keys[i]!;
        seq[pass * 2 * pairs + 2 * i + 1] = values[i]!;
      }
    }
    const gaps = rng.weightedDistinct(gapProbs, pairs);
    for (let i = 0; i < pairs; i++) {
      seq[context + 2 * gaps[i]!] = keys[i]!;
      full[context + 2 * gaps[i]! + 1] = values[i]!;
    }
    const row = e * L;
    for (let t = 0; t < L; t++) {
      inputs[row + t] = seq[t]!;
      labels[row + t] = full[t + 1]!;
    }
    if (p.randomNonQueries) {
      // Every still-empty input slot becomes a uniform token over the whole vocabulary, as in Zoology.
      for (let t = 0; t < L; t++) if (inputs[row + t] === 0) inputs[row + t] = rng.int(0, p.vocabSize);
    }
  }
  return { inputs, labels, n: numExamples, seqLen: L };
}

/** Distinct seeds for train, validation (early stopping) and test splits, derived from the run seed. */
export function splitSeed(seed: number, split: 'train' | 'valid' | 'test'): number {
  return Rng.derive(seed, `mqar/${split}`);
}

export class MqarTask implements SequenceTask {
  readonly name = 'mqar';
  readonly vocabSize: number;
  readonly seqLen: number;
  readonly params: Record<string, unknown>;
  private readonly batches: EpochBatches;

  constructor(
    readonly p: MqarParams,
    readonly seed: number,
  ) {
    this.vocabSize = p.vocabSize;
    this.seqLen = p.inputSeqLen;
    this.params = { ...p };
    this.batches = new EpochBatches(seed, 'mqar', () => generateMqar(p, p.numTrainExamples, splitSeed(seed, 'train')));
  }

  /** A fixed training set iterated in seeded shuffled epochs, as Zoology trains. */
  trainBatch(step: number, batchSize: number): TokenBatch {
    return this.batches.batch(step, batchSize);
  }

  validSet(n: number): TokenBatch {
    return generateMqar(this.p, n, splitSeed(this.seed, 'valid'));
  }

  testSet(): TokenBatch {
    return generateMqar(this.p, this.p.numTestExamples, splitSeed(this.seed, 'test'));
  }
}
