/**
 * Scoring by iterative unmasking, as masked diffusion language models generate: every masked
 * position starts unknown; each of K steps predicts all still-masked positions and commits the most
 * confident ones (ceil(remaining / steps left) per example), writing the predictions into the input
 * the next step sees. Accuracy is over the originally masked positions. `beforeStep` lets a method
 * change how the model attends per step (SparseD: full attention first, then the saved patterns).
 */
import * as tf from '@tensorflow/tfjs-core';
import { IGNORE_INDEX, type TokenBatch } from '../datasets/types.js';
import type { SequenceModel } from '../models/types.js';
import { ParamError } from '../core/params.js';

export interface DenoiseResult {
  accuracy: number;
  exactMatch: number;
  examples: number;
  /** Masked positions scored. */
  masked: number;
  /** Wall time of each denoising step (forward + selection), summed over the batches, ms. */
  stepMs: number[];
  /** Per example: masked positions recovered and masked positions (compare's paired test). */
  perExampleCorrect: Uint16Array;
  perExampleTotal: Uint16Array;
}

export function denoise(model: SequenceModel, b: TokenBatch, steps: number, batch = 64, beforeStep?: (step: number) => void): DenoiseResult {
  if (!Number.isInteger(steps) || steps < 1) throw new ParamError('denoise.steps', `must be an integer >= 1, got ${steps}`);
  const L = b.seqLen;
  const stepMs = new Array<number>(steps).fill(0);
  let right = 0, masked = 0, exact = 0;
  const perExampleCorrect = new Uint16Array(b.n), perExampleTotal = new Uint16Array(b.n);
  for (let e0 = 0; e0 < b.n; e0 += batch) {
    const n = Math.min(batch, b.n - e0);
    const cur = Int32Array.from(b.inputs.subarray(e0 * L, (e0 + n) * L));
    const labels = b.labels.subarray(e0 * L, (e0 + n) * L);
    const open: number[][] = Array.from({ length: n }, (_, e) => {
      const p: number[] = [];
      for (let t = 0; t < L; t++) if (labels[e * L + t] !== IGNORE_INDEX) p.push(t);
      return p;
    });
    const pred = new Int32Array(n * L).fill(-1);
    for (let s = 0; s < steps; s++) {
      const t0 = performance.now();
      beforeStep?.(s);
      const rows = open.flatMap((p, e) => p.map((t) => e * L + t));
      if (rows.length) {
        const [conf, arg] = tf.tidy(() => {
          const h = tf.reshape(model.hidden(tf.tensor2d(cur, [n, L], 'int32')), [n * L, -1]) as tf.Tensor2D;
          const logits = model.head(tf.gather(h, tf.tensor1d(Int32Array.from(rows), 'int32')) as tf.Tensor2D);
          return [tf.max(tf.softmax(logits), -1), tf.argMax(logits, -1)];
        });
        const c = conf.dataSync(), a = arg.dataSync();
        tf.dispose([conf, arg]);
        let r = 0;
        open.forEach((p, e) => {
          const scored = p.map((t, i) => ({ t, c: c[r + i]!, a: a[r + i]! }));
          r += p.length;
          const take = Math.ceil(p.length / (steps - s));
          scored.sort((x, y) => y.c - x.c || x.t - y.t);
          for (const x of scored.slice(0, take)) {
            pred[e * L + x.t] = x.a;
            cur[e * L + x.t] = x.a;
          }
          open[e] = scored.slice(take).map((x) => x.t).sort((x, y) => x - y);
        });
      }
      stepMs[s]! += performance.now() - t0;
    }
    for (let e = 0; e < n; e++) {
      let ok = true;
      for (let t = 0; t < L; t++) {
        const y = labels[e * L + t]!;
        if (y === IGNORE_INDEX) continue;
        masked++;
        perExampleTotal[e0 + e]!++;
        if (pred[e * L + t] === y) {
          right++;
          perExampleCorrect[e0 + e]!++;
        } else ok = false;
      }
      if (ok) exact++;
    }
  }
  return { accuracy: masked ? right / masked : NaN, exactMatch: exact / b.n, examples: b.n, masked, stepMs, perExampleCorrect, perExampleTotal };
}
