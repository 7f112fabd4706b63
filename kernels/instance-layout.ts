/**
 * Content-dependent layouts for the trainable-sparsity models (Routing Transformer, Dynamic Mask
 * Attention, Sparsifiner): a layout differs per input as well as per head. The operator takes one
 * layout per head, so the batch is folded into the head axis ([B, H, L, D] -> [1, B*H, L, D]) and
 * the layout lists B*H heads. The token sets are exact: the listed blocks carry token bits, so a
 * query attends to precisely the keys its method chose and the block list only decides what the
 * kernel skips.
 */
import * as tf from '@tensorflow/tfjs-core';
import { fromPredicate, nBlocks, type BlockLayout } from './layout.js';

/** [B, H, L, D] -> [1, B*H, L, D]: per-input layouts become per-head layouts of one batch. */
export function foldHeads(x: tf.Tensor4D): tf.Tensor4D {
  const [B, H, L, D] = x.shape;
  return tf.reshape(x, [1, B * H, L, D]);
}

/** [1, B*H, L, D] -> [B, H, L, D]. */
export function unfoldHeads(x: tf.Tensor4D, B: number, H: number): tf.Tensor4D {
  return tf.reshape(x, [B, H, x.shape[2], x.shape[3]]);
}

/** Rows of x [1, G, L, D] in a per-head order: out[g, t] = x[g, order[g*L + t]]. Differentiable (gather). */
export function gatherPerHead(x: tf.Tensor4D, order: Int32Array): tf.Tensor4D {
  return tf.tidy(() => {
    const [, G, L, D] = x.shape;
    const flat = Int32Array.from(order, (o, t) => Math.floor(t / L) * L + o);
    return tf.reshape(tf.gather(tf.reshape(x, [G * L, D]), tf.tensor1d(flat, 'int32')), [1, G, L, D]) as tf.Tensor4D;
  });
}

/** The inverse of per-head orders (order[g*L + t] = original index): inv[g*L + original] = t. */
export function invertOrders(order: Int32Array, L: number): Int32Array {
  const inv = new Int32Array(order.length);
  for (let t = 0; t < order.length; t++) inv[Math.floor(t / L) * L + order[t]!] = t % L;
  return inv;
}

/**
 * Indices of the k largest of a[off .. off+n), ties to the higher index (the more recent key);
 * ascending index order. A sorted copy gives the threshold, so a row costs one native typed sort.
 */
export function topKRecent(a: ArrayLike<number>, off: number, n: number, k: number): number[] {
  if (k <= 0 || n <= 0) return [];
  if (k >= n) return Array.from({ length: n }, (_, i) => i);
  const row = Float32Array.from({ length: n }, (_, i) => a[off + i]!);
  const sorted = Float32Array.from(row).sort();
  const thr = sorted[n - k]!;
  let above = 0;
  for (let i = 0; i < n; i++) if (row[i]! > thr) above++;
  let ties = k - above;
  const out: number[] = [];
  for (let i = n - 1; i >= 0; i--) {
    if (row[i]! > thr) out.push(i);
    else if (row[i] === thr && ties > 0) {
      out.push(i);
      ties--;
    }
  }
  return out.reverse();
}

/**
 * Causal layout over G heads where query block I sees its own block (causal) and, of the earlier
 * keys, exactly those marked in keep[(g * nQ + I) * L + key] (Dynamic Mask Attention's top-k keys).
 */
export function ownBlockPlusKeysLayout(G: number, L: number, block: number, keep: Uint8Array): BlockLayout {
  const B = Math.min(block, L), nQ = nBlocks(L, B);
  const sets = Array.from({ length: G }, (_, g) => Array.from({ length: nQ }, (_, I) => {
    const s = new Set<number>([I]);
    const base = (g * nQ + I) * L;
    for (let j = 0; j < I * B; j++) if (keep[base + j]) s.add(Math.floor(j / B));
    return s;
  }));
  return fromPredicate({ Lq: L, Lk: L, Bq: B, Bk: B }, sets, (g, i, j) => {
    if (j > i) return false;
    const I = Math.floor(i / B);
    return Math.floor(j / B) === I || keep[(g * nQ + I) * L + j] === 1;
  });
}

/** Layout over G heads where query i sees exactly the keys marked in keep[(g * L + i) * L + key] (Sparsifiner's per-query top-k). */
export function rowKeysLayout(G: number, L: number, block: number, keep: Uint8Array): BlockLayout {
  const B = Math.min(block, L), nQ = nBlocks(L, B);
  const sets = Array.from({ length: G }, (_, g) => Array.from({ length: nQ }, (_, I) => {
    const s = new Set<number>();
    for (let i = I * B; i < Math.min(L, (I + 1) * B); i++) {
      const base = (g * L + i) * L;
      for (let j = 0; j <= i; j++) if (keep[base + j]) s.add(Math.floor(j / B));
    }
    return s;
  }));
  return fromPredicate({ Lq: L, Lk: L, Bq: B, Bk: B }, sets, (g, i, j) => keep[(g * L + i) * L + j] === 1);
}
