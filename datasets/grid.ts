/**
 * Bidirectional denoising tasks on token grids (issue 22): masked-token recovery where the signal is
 * spread the way video and diffusion attention is, so that diagonal, multi-diagonal, stripe and tile
 * patterns carry it.
 *
 * A grid is frames x height x width tokens, flattened frame-major (f, h, w). Frame 0 is random
 * content; frame f is frame 0 moved along the width by f * (shift + jitter) cells (wrapping), where
 * `shift` is fixed and `jitter` is drawn per example from [-jitter, jitter]. A masked cell is
 * recovered from the same content in other frames: the same cell when the motion is 0 (a diagonal at
 * offsets of height x width tokens), a neighbouring cell otherwise (multi-diagonals), and with jitter
 * the motion must first be read off the unmasked neighbours. After the grid, an optional text
 * segment (`textPairs` > 0; modality boundary token, then MQAR-style key-value pairs and queries whose
 * values are masked) makes a mixed input; `frames = 0` leaves the text alone, the masked-diffusion
 * MQAR variant.
 *
 * Tokens: 0 = MASK, 1 = the modality boundary, grid content 2 .. 2+gridVocab, text keys and values
 * above. Training masks each example at a ratio t ~ U(0, 1] (masked diffusion training, MDLM) and
 * always masks the text queries' values; test and validation sets mask `maskRatio` of the grid cells
 * but never every copy of one content cell (so each masked cell is recoverable), and every query value.
 * Labels are the original tokens at masked positions, IGNORE elsewhere.
 */
import { Rng } from '../core/rng.js';
import { intParam, numParam, rejectUnknown, ParamError } from '../core/params.js';
import { IGNORE_INDEX, type SequenceTask, type TokenBatch } from './types.js';
import { EpochBatches } from './epochs.js';

export const MASK = 0;
export const BOUNDARY = 1;

export interface GridParams {
  frames: number;
  height: number;
  width: number;
  /** Distinct grid content tokens. */
  gridVocab: number;
  /** Cells per frame the content moves along the width. */
  shift: number;
  /** Per-example extra motion, drawn from [-jitter, jitter]. */
  jitter: number;
  /** Fraction of grid cells masked in test and validation sets. */
  maskRatio: number;
  /** Text segment: key-value pairs (0 = grid only); each key is queried once after the pairs. */
  textPairs: number;
  /** Distinct text keys and values (each). */
  textVocab: number;
  numTrainExamples: number;
  numTestExamples: number;
  /** Denoising steps K of the scoring by iterative unmasking (suites/denoise.ts). */
  denoiseSteps: number;
}

export const GRID_DEFAULTS: GridParams = {
  frames: 4, height: 4, width: 8, gridVocab: 32, shift: 1, jitter: 0, maskRatio: 0.3, textPairs: 0, textVocab: 32,
  numTrainExamples: 20000, numTestExamples: 500, denoiseSteps: 4,
};

export function parseGridParams(given: Record<string, unknown>): GridParams {
  rejectUnknown('task.grid', given, Object.keys(GRID_DEFAULTS));
  const g = { ...GRID_DEFAULTS, ...given };
  const w = 'task.grid';
  const p: GridParams = {
    frames: intParam(w, 'frames', g.frames, 0, 4096),
    height: intParam(w, 'height', g.height, 1, 4096),
    width: intParam(w, 'width', g.width, 1, 4096),
    gridVocab: intParam(w, 'gridVocab', g.gridVocab, 2, 1 << 16),
    shift: intParam(w, 'shift', g.shift, 0, 4096),
    jitter: intParam(w, 'jitter', g.jitter, 0, 64),
    maskRatio: numParam(w, 'maskRatio', g.maskRatio, 0, 1),
    textPairs: intParam(w, 'textPairs', g.textPairs, 0, 4096),
    textVocab: intParam(w, 'textVocab', g.textVocab, 2, 1 << 16),
    numTrainExamples: intParam(w, 'numTrainExamples', g.numTrainExamples, 1),
    numTestExamples: intParam(w, 'numTestExamples', g.numTestExamples, 1),
    denoiseSteps: intParam(w, 'denoiseSteps', g.denoiseSteps, 1, 4096),
  };
  if (p.frames === 0 && p.textPairs === 0) throw new ParamError(`${w}.frames`, 'frames and textPairs are both 0: the input would be empty');
  if (p.frames === 1) throw new ParamError(`${w}.frames`, 'must be 0 (text only) or >= 2 (a masked cell is recovered from other frames), got 1');
  if (p.textPairs > p.textVocab) throw new ParamError(`${w}.textPairs`, `must be <= textVocab (${p.textVocab}) so that keys are distinct, got ${p.textPairs}`);
  return p;
}

/** Layout of one input: grid tokens, then (when there is text) the boundary, the pairs and the queries with their values. */
export function gridShape(p: GridParams): { gridLen: number; textStart: number; seqLen: number; vocabSize: number } {
  const gridLen = p.frames * p.height * p.width;
  const textLen = p.textPairs > 0 ? 1 + 4 * p.textPairs : 0;
  return { gridLen, textStart: gridLen + (p.textPairs > 0 ? 1 : 0), seqLen: gridLen + textLen, vocabSize: 2 + p.gridVocab + 2 * p.textVocab };
}

/** The flattened index of grid cell (f, h, w). */
export const cellIndex = (p: Pick<GridParams, 'height' | 'width'>, f: number, h: number, w: number): number => (f * p.height + h) * p.width + w;

export type MaskMode = 'train' | 'eval';

/** n examples; `mode` decides the masking (training: a ratio per example; eval: maskRatio, every cell recoverable). */
export function generateGrid(p: GridParams, n: number, seed: number, mode: MaskMode): TokenBatch & { motion: Int32Array } {
  const { gridLen, textStart, seqLen: L } = gridShape(p);
  const rng = new Rng(seed);
  const inputs = new Int32Array(n * L);
  const labels = new Int32Array(n * L).fill(IGNORE_INDEX);
  const motion = new Int32Array(n);
  const keyBase = 2 + p.gridVocab, valBase = keyBase + p.textVocab;
  const HW = p.height * p.width;
  for (let e = 0; e < n; e++) {
    const row = e * L;
    const ratio = mode === 'train' ? 1 - rng.float() : p.maskRatio; // (0, 1] when training
    const mask = (pos: number, tok: number) => {
      labels[row + pos] = tok;
      inputs[row + pos] = MASK;
    };
    if (p.frames > 0) {
      const m = p.shift + (p.jitter > 0 ? rng.int(-p.jitter, p.jitter + 1) : 0);
      motion[e] = m;
      const content = Int32Array.from({ length: HW }, () => 2 + rng.int(0, p.gridVocab));
      for (let f = 0; f < p.frames; f++) {
        for (let h = 0; h < p.height; h++) {
          for (let w = 0; w < p.width; w++) {
            const src = (((w - f * m) % p.width) + p.width) % p.width;
            inputs[row + cellIndex(p, f, h, w)] = content[h * p.width + src]!;
          }
        }
      }
      // Mask per copy; at evaluation never every copy of one content cell.
      for (let c = 0; c < HW; c++) {
        const h = Math.floor(c / p.width), w0 = c % p.width;
        const copies = Array.from({ length: p.frames }, (_, f) => cellIndex(p, f, h, (((w0 + f * m) % p.width) + p.width) % p.width));
        const masked = copies.filter(() => rng.float() < ratio);
        if (mode === 'eval' && masked.length === copies.length) masked.splice(rng.int(0, masked.length), 1);
        for (const pos of masked) mask(pos, inputs[row + pos]!);
      }
    }
    if (p.textPairs > 0) {
      inputs[row + gridLen] = BOUNDARY;
      const keys = rng.sampleDistinct(0, p.textVocab, p.textPairs);
      const vals = keys.map(() => rng.int(0, p.textVocab));
      const order = Array.from({ length: p.textPairs }, (_, i) => i);
      rng.shuffle(order);
      keys.forEach((k, i) => {
        inputs[row + textStart + 2 * i] = keyBase + k;
        inputs[row + textStart + 2 * i + 1] = valBase + vals[i]!;
      });
      order.forEach((i, j) => {
        const at = textStart + 2 * p.textPairs + 2 * j;
        inputs[row + at] = keyBase + keys[i]!;
        mask(at + 1, valBase + vals[i]!);
      });
      // Masked diffusion training also corrupts the pairs themselves.
      if (mode === 'train') for (let t = textStart; t < textStart + 2 * p.textPairs; t++) if (rng.float() < ratio * 0.5) mask(t, inputs[row + t]!);
    }
  }
  return { inputs, labels, n, seqLen: L, motion };
}

export class GridTask implements SequenceTask {
  readonly name = 'grid';
  readonly vocabSize: number;
  readonly seqLen: number;
  readonly params: Record<string, unknown>;
  private readonly batches: EpochBatches;

  constructor(
    readonly p: GridParams,
    readonly seed: number,
  ) {
    const s = gridShape(p);
    this.vocabSize = s.vocabSize;
    this.seqLen = s.seqLen;
    this.params = { ...p };
    this.batches = new EpochBatches(seed, 'grid', () => generateGrid(p, p.numTrainExamples, Rng.derive(seed, 'grid/train'), 'train'));
  }

  trainBatch(step: number, batchSize: number): TokenBatch {
    return this.batches.batch(step, batchSize);
  }

  validSet(n: number): TokenBatch {
    return generateGrid(this.p, n, Rng.derive(this.seed, 'grid/valid'), 'eval');
  }

  testSet(): TokenBatch {
    return generateGrid(this.p, this.p.numTestExamples, Rng.derive(this.seed, 'grid/test'), 'eval');
  }
}
