/** Held-out evaluation of a sequence model: argmax at every labelled position. */
import * as tf from '@tensorflow/tfjs-core';
import type { SequenceModel } from '../models/types.js';
import { IGNORE_INDEX, type TokenBatch } from '../datasets/types.js';

export interface LabelledPositions {
  /** Flat indices (row * L + t) of labelled positions. */
  index: Int32Array;
  targets: Int32Array;
  /** Row of each labelled position. */
  row: Int32Array;
}

export function labelledPositions(b: TokenBatch): LabelledPositions {
  const idx: number[] = [];
  for (let i = 0; i < b.labels.length; i++) if (b.labels[i] !== IGNORE_INDEX) idx.push(i);
  const index = Int32Array.from(idx);
  return {
    index,
    targets: index.map((i) => b.labels[i]!),
    row: index.map((i) => Math.floor(i / b.seqLen)),
  };
}

export interface EvalResult {
  correct: number;
  total: number;
  accuracy: number;
  /** Examples whose every labelled position is right. */
  exactMatch: number;
  examples: number;
  /** Per example: 1 when all its labelled positions are right. */
  perExample: Uint8Array;
  /** Per example: labelled positions right, and labelled positions (for paired comparisons). */
  perExampleCorrect: Uint16Array;
  perExampleTotal: Uint16Array;
}

/** Predictions at labelled positions, in batches of `batchSize` rows. */
export function evaluate(model: SequenceModel, data: TokenBatch, batchSize: number): EvalResult {
  const L = data.seqLen;
  const perExampleWrong = new Uint8Array(data.n);
  const hasLabel = new Uint8Array(data.n);
  const perExampleCorrect = new Uint16Array(data.n);
  const perExampleTotal = new Uint16Array(data.n);
  let correct = 0;
  let total = 0;
  for (let start = 0; start < data.n; start += batchSize) {
    const n = Math.min(batchSize, data.n - start);
    const sub: TokenBatch = {
      inputs: data.inputs.subarray(start * L, (start + n) * L),
      labels: data.labels.subarray(start * L, (start + n) * L),
      n,
      seqLen: L,
    };
    const pos = labelledPositions(sub);
    if (pos.index.length === 0) continue;
    const pred = tf.tidy(() => {
      const ids = tf.tensor2d(sub.inputs, [n, L], 'int32');
      const h = tf.reshape(model.hidden(ids), [n * L, -1]) as tf.Tensor2D;
      const rows = tf.gather(h, tf.tensor1d(pos.index, 'int32'));
      return tf.argMax(model.head(rows as tf.Tensor2D), -1);
    });
    const p = pred.dataSync();
    pred.dispose();
    for (let i = 0; i < pos.index.length; i++) {
      const r = start + pos.row[i]!;
      hasLabel[r] = 1;
      perExampleTotal[r]++;
      if (p[i] === pos.targets[i]) {
        correct++;
        perExampleCorrect[r]++;
      } else perExampleWrong[r] = 1;
      total++;
    }
  }
  const perExample = new Uint8Array(data.n);
  let exact = 0;
  let examples = 0;
  for (let r = 0; r < data.n; r++) {
    if (!hasLabel[r]) continue;
    examples++;
    if (!perExampleWrong[r]) {
      perExample[r] = 1;
      exact++;
    }
  }
  return { correct, total, accuracy: total ? correct / total : 0, exactMatch: examples ? exact / examples : 0, examples, perExample, perExampleCorrect, perExampleTotal };
}
