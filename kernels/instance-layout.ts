/**
 * Content-dependent layouts for the trainable-sparsity models (Routing Transformer, Dynamic Mask
 * Attention, Sparsifiner): a layout differs per input as well as per head. The operator takes one
 * layout per head, so the batch is folded into the head axis ([B, H, L, D] -> [1, B*H, L, D]) and
 * the layout lists B*H heads. The token sets are exact: the listed blocks carry token bits, so a
 * query attends to precisely the keys its method chose and the block list only decides what the
 * kernel skips.
 */
import * as tf from '@tensorflow/tfjs-core';
import { nBlocks, type BlockLayout } from './layout.js';

/** [B, H, L, D] -> [1, B*H, L, D]: per-input layouts become per-head layouts of one batch. */
export function foldHeads(x: tf.Tensor4D): tf.Tensor4D {
  const [B, H, L, D] = x.shape;
  return tf.reshape(x, [1, B * H, L, D]);
}

/** [1, B*H, L, D] -> [B, H, L, D]. */
export function unfoldHeads(x: tf.Tensor4D, B: number, H: number): tf.Tensor4D {
  return tf.reshape(x, [B, H, x.shape[2], x.shape[3]]);
}

/**
 * One input at a time: for each b of the batch, attend(b, q, k, v as [1, H, L, D], q and k as
 * [H, L, D]) -> [1, H, L, Dv], concatenated back into the batch. The mixers of the per-input methods
 * (prefill selectors, grid methods) share this loop.
 */
export function perInput(q: tf.Tensor4D, k: tf.Tensor4D, v: tf.Tensor4D,
  attend: (b: number, x: { q: tf.Tensor4D; k: tf.Tensor4D; v: tf.Tensor4D; q3: tf.Tensor3D; k3: tf.Tensor3D }) => tf.Tensor4D): tf.Tensor4D {
  const [B, H, L, D] = q.shape;
  const outs: tf.Tensor4D[] = [];
  for (let b = 0; b < B; b++) {
    const one = (x: tf.Tensor4D) => tf.slice(x, [b, 0, 0, 0], [1, H, L, x.shape[3]]);
    const qb = one(q), kb = one(k), vb = one(v);
    const q3 = tf.reshape(qb, [H, L, D]) as tf.Tensor3D, k3 = tf.reshape(kb, [H, L, D]) as tf.Tensor3D;
    outs.push(attend(b, { q: qb, k: kb, v: vb, q3, k3 }));
    tf.dispose([qb, kb, vb, q3, k3]);
  }
  return (B === 1 ? outs[0]! : tf.concat(outs, 0)) as tf.Tensor4D;
}

/** Rows of x [1, G, L, D] in a per-head order: out[g, t] = x[g, order[g*L + t]]. Differentiable (gather). */
export function gatherPerHead(x: tf.Tensor4D, order: Int32Array): tf.Tensor4D {
  return tf.tidy(() => gatherRows(x, tf.tensor1d(flatOrder(order, x.shape[2]), 'int32')));
}

/** x [1, G, L, D] with its G*L rows taken at flat indices `idx`. */
function gatherRows(x: tf.Tensor4D, idx: tf.Tensor1D): tf.Tensor4D {
  const [, G, L, D] = x.shape;
  return tf.tidy(() => tf.reshape(tf.gather(tf.reshape(x, [G * L, D]), idx), [1, G, L, D]) as tf.Tensor4D);
}

/** order[g*L + t] as an index into the [G*L] rows: g*L + order. */
function flatOrder(order: Int32Array, L: number): Int32Array {
  const flat = new Int32Array(order.length);
  for (let g = 0, t = 0; t < order.length; g++) for (let e = t + L; t < e; t++) flat[t] = g * L + order[t]!;
  return flat;
}

/**
 * gatherPerHead for static orders used again and again without gradients (a grid method's plan is
 * reused at every step): the device index tensors, and the inverse orders, are built once per order
 * array. Kept for the most recent orders only (disposed when evicted); never use under autodiff,
 * where the gather's saved index tensor could be disposed before the backward pass.
 */
const STATIC_ORDERS = 32;
const staticIdx = new Map<Int32Array, { L: number; fwd: tf.Tensor1D; inv: tf.Tensor1D; invOrder: Int32Array }>();
function staticIndex(order: Int32Array, L: number) {
  let e = staticIdx.get(order);
  if (e && e.L === L) {
    staticIdx.delete(order); // most recent last
    staticIdx.set(order, e);
    return e;
  }
  if (e) tf.dispose([e.fwd, e.inv]);
  const invOrder = invertOrders(order, L);
  e = { L, invOrder, fwd: tf.keep(tf.tensor1d(flatOrder(order, L), 'int32')), inv: tf.keep(tf.tensor1d(flatOrder(invOrder, L), 'int32')) };
  staticIdx.set(order, e);
  if (staticIdx.size > STATIC_ORDERS) {
    const [k, old] = staticIdx.entries().next().value as [Int32Array, { fwd: tf.Tensor1D; inv: tf.Tensor1D }];
    staticIdx.delete(k);
    tf.dispose([old.fwd, old.inv]);
  }
  return e;
}

/** x [1, G, L, D] in each head's static order (`inverse`: put back from that order). No gradients. */
export function gatherStaticOrder(x: tf.Tensor4D, order: Int32Array, inverse = false): tf.Tensor4D {
  const e = staticIndex(order, x.shape[2]);
  return gatherRows(x, inverse ? e.inv : e.fwd);
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
  const row = a instanceof Float32Array ? a.subarray(off, off + n) : Float32Array.from({ length: n }, (_, i) => a[off + i]!);
  const sorted = row.slice().sort();
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
 * The layout of exact token sets: bits[(g * L + i) * L + j] = 1 when query i of head g attends key j.
 * Lists the tiles holding any bit (full when every pair is set), each with its Bq x Bk bits: one pass
 * over the bitmap, the cost of reading it (the generic fromPredicate calls a closure per pair).
 */
export function fromKeyBits(G: number, L: number, block: number, bits: Uint8Array): BlockLayout {
  const B = Math.min(block, L), nQ = nBlocks(L, B), T = B * B;
  const rowPtr = new Int32Array(G * (nQ + 1));
  const cols: number[] = [], full: number[] = [];
  const tiles: Uint8Array[] = [];
  const tile = new Uint8Array(nQ * T);
  const count = new Int32Array(nQ);
  for (let g = 0; g < G; g++) {
    rowPtr[g * (nQ + 1)] = cols.length;
    for (let I = 0; I < nQ; I++) {
      tile.fill(0);
      count.fill(0);
      for (let r = 0; r < B; r++) {
        const i = I * B + r;
        if (i >= L) break;
        const row = (g * L + i) * L;
        for (let j = 0; j < L; j++) {
          if (bits[row + j]) {
            const J = (j / B) | 0;
            tile[J * T + r * B + (j - J * B)] = 1;
            count[J]!++;
          }
        }
      }
      for (let J = 0; J < nQ; J++) {
        if (count[J] === 0) continue;
        cols.push(J);
        full.push(count[J] === T ? 1 : 0);
        tiles.push(tile.slice(J * T, (J + 1) * T));
      }
      rowPtr[g * (nQ + 1) + I + 1] = cols.length;
    }
  }
  const mask = new Uint8Array(tiles.length * T);
  tiles.forEach((t, p) => mask.set(t, p * T));
  return { Lq: L, Lk: L, Bq: B, Bk: B, H: G, rowPtr, colIdx: Int32Array.from(cols), full: Uint8Array.from(full), causal: false, window: Infinity, mask };
}

/**
 * Causal layout over G heads where query block I sees its own block (causal) and, of the earlier
 * keys, exactly those marked in keep[(g * nQ + I) * L + key] (Dynamic Mask Attention's top-k keys).
 */
export function ownBlockPlusKeysLayout(G: number, L: number, block: number, keep: Uint8Array): BlockLayout {
  const B = Math.min(block, L), nQ = nBlocks(L, B);
  const bits = new Uint8Array(G * L * L);
  for (let g = 0; g < G; g++) {
    for (let i = 0; i < L; i++) {
      const I = (i / B) | 0, row = (g * L + i) * L, k = (g * nQ + I) * L;
      bits.set(keep.subarray(k, k + I * B), row);
      bits.fill(1, row + I * B, row + i + 1);
    }
  }
  return fromKeyBits(G, L, block, bits);
}
