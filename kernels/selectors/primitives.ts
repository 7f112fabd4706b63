/**
 * The estimates selectors are built from, as tensor programs on the current backend (native, cuda or
 * any tfjs backend): block pooling, pooled-score products, the last queries' attention, and the true
 * block attention mass (the oracle's and calibration's ground truth). Only the small results (block
 * scores [H, nQ, nK], line scores [H, L]) are read back; the selection itself is select.ts.
 */
import * as tf from '@tensorflow/tfjs-core';
import { nBlocks, pairAllowed, type BlockLayout } from '../layout.js';

const NEG = -1e30;

/** x [H, L, D] -> per-block mean, max or min over tokens [H, nB, D] (the last block's real tokens only). */
export function poolBlocks(x: tf.Tensor3D, B: number, how: 'mean' | 'max' | 'min' = 'mean'): tf.Tensor3D {
  return tf.tidy(() => {
    const [H, L, D] = x.shape;
    const nB = nBlocks(L, B);
    const pad = nB * B - L;
    const fill = how === 'max' ? NEG : how === 'min' ? -NEG : 0;
    const xp = pad ? tf.pad(x, [[0, 0], [0, pad], [0, 0]], fill) : x;
    const r = tf.reshape(xp, [H, nB, B, D]);
    if (how === 'max') return tf.max(r, 2) as tf.Tensor3D;
    if (how === 'min') return tf.min(r, 2) as tf.Tensor3D;
    const counts = new Float32Array(nB).fill(B);
    counts[nB - 1] = L - (nB - 1) * B;
    return tf.div(tf.sum(r, 2), tf.reshape(tf.tensor1d(counts), [1, nB, 1])) as tf.Tensor3D;
  });
}

/**
 * Causal bias [nQ, nK] for block scores: 0 where key block j <= query block i, NEG after. Kept per
 * backend and shape (an upload per selection would count in every selector's time).
 */
const biasCache = new Map<string, tf.Tensor2D>();
export function blockCausalBias(nQ: number, nK: number): tf.Tensor2D {
  const key = `${tf.getBackend()}:${nQ}x${nK}`;
  let t = biasCache.get(key);
  if (!t || t.isDisposed) {
    const b = new Float32Array(nQ * nK);
    for (let i = 0; i < nQ; i++) for (let j = i + 1; j < nK; j++) b[i * nK + j] = NEG;
    t = tf.keep(tf.tensor2d(b, [nQ, nK]));
    biasCache.set(key, t);
  }
  return t;
}

/** Softmax over causal key blocks of pooled scores qp [H, nQ, d] . kp [H, nK, d]^T * scale -> [H, nQ, nK]. */
export function pooledBlockProbs(qp: tf.Tensor3D, kp: tf.Tensor3D, scale: number): tf.Tensor3D {
  return tf.tidy(() => tf.softmax(tf.add(tf.mul(tf.matMul(qp, kp, false, true), scale), blockCausalBias(qp.shape[1], kp.shape[1]))) as tf.Tensor3D);
}

/** Causal attention probabilities of the last n queries against all keys: [H, n, L]. */
export function lastQueryProbs(q: tf.Tensor3D, k: tf.Tensor3D, n: number, scale: number): tf.Tensor3D {
  return tf.tidy(() => {
    const [H, L, D] = q.shape;
    const m = Math.min(n, L);
    const ql = tf.slice(q, [0, L - m, 0], [H, m, D]);
    const bias = new Float32Array(m * L);
    for (let r = 0; r < m; r++) for (let j = L - m + r + 1; j < L; j++) bias[r * L + j] = NEG;
    return tf.softmax(tf.add(tf.mul(tf.matMul(ql, k, false, true), scale), tf.tensor2d(bias, [m, L]))) as tf.Tensor3D;
  });
}

/**
 * Per head, from the last queries' probabilities p [H, m, L]: vertical scores (attention each key
 * column receives, summed over the m queries) and slash scores (attention on each diagonal offset
 * o = query - key), both [H, L] and normalised to sum to 1 per head.
 */
export function lineScores(p: Float32Array, H: number, m: number, L: number): { vertical: Float32Array; slash: Float32Array } {
  const vertical = new Float32Array(H * L);
  const slash = new Float32Array(H * L);
  for (let h = 0; h < H; h++) {
    for (let r = 0; r < m; r++) {
      const qi = L - m + r;
      const row = (h * m + r) * L;
      for (let j = 0; j <= qi; j++) {
        const v = p[row + j]!;
        vertical[h * L + j] += v;
        slash[h * L + (qi - j)] += v;
      }
    }
    for (const a of [vertical, slash]) {
      let s = 0;
      for (let j = 0; j < L; j++) s += a[h * L + j]!;
      if (s > 0) for (let j = 0; j < L; j++) a[h * L + j] /= s;
    }
  }
  return { vertical, slash };
}

/**
 * The true causal attention mass of every block [H, nQ, nK]: softmax over keys per query row, summed
 * over the block's rows and columns (each row holds mass 1). Computed in chunks of query blocks so the
 * score matrix never exceeds ~64M entries. The oracle's ground truth; O(L^2) work.
 */
export function trueBlockMass(q: tf.Tensor3D, k: tf.Tensor3D, B: number, scale: number, causal = true): Float32Array {
  const [H, L, D] = q.shape;
  const nQ = nBlocks(L, B), nK = nBlocks(L, B);
  const out = new Float32Array(H * nQ * nK);
  const padK = nK * B - L;
  const chunk = Math.max(1, Math.floor((64 << 20) / (H * B * nK * B)));
  for (let i0 = 0; i0 < nQ; i0 += chunk) {
    const c = Math.min(chunk, nQ - i0);
    const part = tf.tidy(() => {
      const r0 = i0 * B, rows = Math.min(c * B, L - r0);
      const qc = tf.slice(q, [0, r0, 0], [H, rows, D]);
      const kp = padK ? tf.pad(k, [[0, 0], [0, padK], [0, 0]]) : k;
      let s = tf.mul(tf.matMul(qc, kp, false, true), scale);
      if (causal) {
        const bias = new Float32Array(c * B * nK * B).fill(NEG);
        for (let r = 0; r < rows; r++) for (let j = 0; j <= r0 + r; j++) bias[r * nK * B + j] = 0;
        s = tf.add(s, tf.slice(tf.tensor2d(bias, [c * B, nK * B]), [0, 0], [rows, nK * B]));
      } else if (padK) {
        // Bidirectional: only the padded keys are masked, the same for every row (broadcast, not
        // an [L, L] host array: at 16k tokens that was a gigabyte built and uploaded per call).
        s = tf.add(s, tf.tensor2d(Float32Array.from({ length: nK * B }, (_, j) => (j < L ? 0 : NEG)), [1, nK * B]));
      }
      let p = tf.softmax(s);
      if (rows < c * B) p = tf.pad(p, [[0, 0], [0, c * B - rows], [0, 0]]);
      s = p as tf.Tensor3D;
      return tf.sum(tf.reshape(s, [H, c, B, nK, B]), [2, 4]); // [H, c, nK]
    });
    const v = part.dataSync();
    part.dispose();
    for (let h = 0; h < H; h++) for (let i = 0; i < c; i++) out.set(v.subarray((h * c + i) * nK, (h * c + i + 1) * nK), (h * nQ + i0 + i) * nK);
  }
  return out;
}

/** Read a tensor to the host and dispose it. */
export function take(t: tf.Tensor): Float32Array {
  const v = t.dataSync() as Float32Array;
  t.dispose();
  return v;
}

/**
 * Attention mass a layout keeps, per head: the true causal softmax probabilities (over all keys) of the
 * pairs the layout allows, summed over rows and divided by L (1 = everything kept). Chunked over query
 * blocks; for calibration and tests. keyOrder (PBS-Attn) maps permuted key positions to original keys.
 */
export function keptMass(q: tf.Tensor3D, k: tf.Tensor3D, l: BlockLayout, scale: number, keyOrder?: Int32Array): number[] {
  const [H, L, D] = q.shape;
  const B = l.Bq, nQ = nBlocks(L, B);
  const kept = new Array<number>(H).fill(0);
  const chunk = Math.max(1, Math.floor((32 << 20) / (H * B * L)));
  for (let i0 = 0; i0 < nQ; i0 += chunk) {
    const c = Math.min(chunk, nQ - i0);
    const r0 = i0 * B, rows = Math.min(c * B, L - r0);
    const p = take(tf.tidy(() => {
      const bias = new Float32Array(rows * L).fill(NEG);
      for (let r = 0; r < rows; r++) bias.fill(0, r * L, r * L + r0 + r + 1);
      return tf.softmax(tf.add(tf.mul(tf.matMul(tf.slice(q, [0, r0, 0], [H, rows, D]), k, false, true), scale), tf.tensor2d(bias, [rows, L])));
    }));
    for (let h = 0; h < H; h++) {
      const lh = l.H === 1 ? 0 : h;
      for (let i = i0; i < i0 + c; i++) {
        for (let t = l.rowPtr[lh * (nQ + 1) + i]!; t < l.rowPtr[lh * (nQ + 1) + i + 1]!; t++) {
          const j = l.colIdx[t]!;
          for (let r = 0; r < B; r++) {
            const qi = i * B + r;
            if (qi >= L) break;
            for (let cc = 0; cc < B; cc++) {
              const kj = j * B + cc;
              if (kj >= L || !pairAllowed(l, t, qi, kj)) continue;
              const orig = keyOrder ? keyOrder[h * L + kj]! : kj;
              kept[h] += p[(h * rows + qi - r0) * L + orig]!;
            }
          }
        }
      }
    }
  }
  return kept.map((x) => x / L);
}
