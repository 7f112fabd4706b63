/**
 * Inference latency at fixed shapes with tinybench: warm-up iterations excluded, every sample waits
 * for the result on the host (so asynchronous backends are timed honestly).
 * What is timed: the forward pass over the whole sequence plus the head at the last position (prefill).
 */
import * as tf from '@tensorflow/tfjs-core';
import { Bench } from 'tinybench';
import type { SequenceModel } from '../models/types.js';
import { Rng } from '../core/rng.js';
import type { LatencyRecord } from '../reports/schema.js';

export interface LatencyConfig {
  batches: number[];
  lengths: number[];
  /** Time budget per shape in ms (tinybench `time`). */
  timeMs: number;
  minSamples: number;
  warmupIterations: number;
}

/** One measured shape; the report schema's type, so records carry it unchanged. */
export type LatencySample = LatencyRecord;

export function quantile(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return NaN;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

export async function measureLatency(model: SequenceModel, vocabSize: number, c: LatencyConfig, seed: number): Promise<LatencySample[]> {
  const out: LatencySample[] = [];
  const rng = new Rng(Rng.derive(seed, 'latency'));
  for (const length of c.lengths) {
    // Suites check lengths against the task when expanded; a model built shorter is a bug, not a skip.
    if (length > model.maxLen) throw new Error(`latency: length ${length} exceeds the model's maximum ${model.maxLen}`);
    for (const batch of c.batches) {
      const ids = tf.tensor2d(Int32Array.from({ length: batch * length }, () => rng.int(0, vocabSize)), [batch, length], 'int32');
      const forward = (): void => {
        const r = tf.tidy(() => {
          const h = model.hidden(ids as tf.Tensor2D);
          const last = tf.reshape(tf.slice(h, [0, length - 1, 0], [batch, 1, -1]), [batch, -1]);
          return model.head(last as tf.Tensor2D);
        });
        r.dataSync();
        r.dispose();
      };
      const bench = new Bench({
        time: c.timeMs,
        iterations: c.minSamples,
        warmup: true,
        warmupIterations: c.warmupIterations,
        warmupTime: 0,
        retainSamples: true,
      });
      bench.add(`b${batch}xL${length}`, forward);
      await bench.run();
      ids.dispose();
      const r = bench.tasks[0]!.result as { latency?: { samples?: number[]; p50: number } };
      const samples = [...(r.latency?.samples ?? [])].sort((a, b) => a - b);
      if (samples.length === 0) throw new Error(`latency: no samples for batch ${batch}, length ${length}`);
      const median = quantile(samples, 0.5);
      out.push({
        batch,
        length,
        medianMs: median,
        p10Ms: quantile(samples, 0.1),
        p90Ms: quantile(samples, 0.9),
        samples: samples.length,
        tokensPerSec: (batch * length) / (median / 1000),
      });
    }
  }
  return out;
}
