/**
 * Offline calibration of the decode methods on validation prompts (never test examples), from the
 * queries and keys of a dense forward:
 *   LServe's streaming heads: per layer, the half of the heads whose decode-position queries (the last
 *     `queries` positions of each prompt) put the most attention mass on sink + local tokens;
 *   Double Sparsity's label channels: per head, the r channels with the largest mean |q_c| |k_c|.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Transformer } from '../models/transformer.js';
import { attention } from '../kernels/attention.js';
import type { DecodeCalibration } from '../kernels/decode/methods.js';

interface Captured {
  q: Float32Array;
  k: Float32Array;
  H: number;
  L: number;
  D: number;
}

/** q and k [H, L, D] of every layer for one prompt [L]. */
export function captureQK(model: Transformer, ids: Int32Array): Captured[] {
  const got: Captured[] = [];
  const L = ids.length;
  tf.tidy(() => {
    model.forwardFrom(tf.tensor2d(ids, [1, L], 'int32'), 0, (q, k, v) => {
      const [, H, , D] = q.shape;
      got.push({ q: q.dataSync() as Float32Array, k: k.dataSync() as Float32Array, H, L, D });
      return attention(q, k, v, model.layoutSpec);
    });
  });
  return got;
}

/** Mean attention mass of the last `queries` positions on [0, sink) and the `local` tokens before each. */
export function streamingMass(c: Captured, h: number, sink: number, local: number, queries: number): number {
  const { q, k, L, D } = c;
  const scale = 1 / Math.sqrt(D);
  let mass = 0, n = 0;
  for (let i = Math.max(0, L - queries); i < L; i++) {
    const s = new Float64Array(i + 1);
    let m = -Infinity;
    for (let j = 0; j <= i; j++) {
      let d = 0;
      for (let x = 0; x < D; x++) d += q[(h * L + i) * D + x]! * k[(h * L + j) * D + x]!;
      s[j] = d * scale;
      m = Math.max(m, s[j]!);
    }
    let z = 0, kept = 0;
    for (let j = 0; j <= i; j++) {
      const e = Math.exp(s[j]! - m);
      z += e;
      if (j < sink || j > i - local) kept += e;
    }
    mass += kept / z;
    n++;
  }
  return n ? mass / n : 0;
}

export function calibrateDecode(model: Transformer, prompts: Int32Array[], o: { sink: number; local: number; labelChannels: number; queries?: number }): DecodeCalibration & { streamingMass: number[][] } {
  const perPrompt = prompts.map((p) => captureQK(model, p));
  const layers = perPrompt[0]!.length, H = perPrompt[0]![0]!.H, D = perPrompt[0]![0]!.D;
  const streamingMassOut: number[][] = [], streamingHeads: boolean[][] = [], labelChannels: number[][][] = [];
  for (let l = 0; l < layers; l++) {
    const mass = Array.from({ length: H }, (_, h) => perPrompt.reduce((s, x) => s + streamingMass(x[l]!, h, o.sink, o.local, o.queries ?? 16), 0) / perPrompt.length);
    const order = mass.map((m, h) => [m, h] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]);
    const chosen = new Set(order.slice(0, Math.floor(H / 2)).map(([, h]) => h));
    streamingMassOut.push(mass);
    streamingHeads.push(Array.from({ length: H }, (_, h) => chosen.has(h)));
    labelChannels.push(Array.from({ length: H }, (_, h) => {
      const imp = new Float64Array(D);
      for (const x of perPrompt) {
        const c = x[l]!;
        for (let t = 0; t < c.L; t++) for (let d = 0; d < D; d++) imp[d] += Math.abs(c.q[(h * c.L + t) * D + d]! * c.k[(h * c.L + t) * D + d]!);
      }
      return Array.from(imp, (v, d) => [v, d] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]).slice(0, o.labelChannels).map(([, d]) => d).sort((a, b) => a - b);
    }));
  }
  return { streamingHeads, labelChannels, streamingMass: streamingMassOut };
}
