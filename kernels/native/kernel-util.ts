/** Shape helpers shared by the native kernels. */
import type { DataType, TensorInfo } from '@tensorflow/tfjs-core';
import type { NativeBackend } from './backend.js';
import { DTYPE_CODE } from './backend.js';

export const code = (dtype: DataType): number => {
  const c = DTYPE_CODE[dtype];
  if (c === undefined) throw new Error(`native backend: dtype ${dtype} is not supported (allowed: float32, int32, bool)`);
  return c;
};

export const elemSize = (dtype: DataType): number => (dtype === 'bool' ? 1 : 4);
export const size = (shape: number[]): number => shape.reduce((a, b) => a * b, 1);

/** tfjs' broadcast of two shapes, right-aligned. */
export function broadcastShape(a: number[], b: number[]): number[] {
  const rank = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < rank; i++) {
    const x = a[a.length - rank + i] ?? 1;
    const y = b[b.length - rank + i] ?? 1;
    if (x !== y && x !== 1 && y !== 1) throw new Error(`Operands could not be broadcast together with shapes ${a} and ${b}.`);
    out.push(x === 1 ? y : x);
  }
  return out;
}

/** Element strides of `shape` seen in the coordinates of `out` (0 on broadcast axes). */
export function broadcastStrides(shape: number[], out: number[]): number[] {
  const rank = out.length;
  const strides = new Array<number>(rank).fill(0);
  let s = 1;
  for (let i = rank - 1; i >= 0; i--) {
    const dim = shape[shape.length - rank + i] ?? 1;
    strides[i] = dim === 1 ? 0 : s;
    s *= dim;
  }
  return strides;
}

/**
 * Merge adjacent axes that are contiguous for every operand: a [B,L,d] + [d] add becomes a 2-D
 * loop, so the C inner loop runs long.
 */
export function collapse(out: number[], strides: number[][]): { shape: number[]; strides: number[][] } {
  const shape: number[] = [];
  const st: number[][] = strides.map(() => []);
  for (let i = 0; i < out.length; i++) {
    if (out[i] === 1) continue;
    const n = shape.length;
    const mergeable = n > 0 && strides.every((s, k) => st[k]![n - 1] === s[i]! * out[i]! || (st[k]![n - 1] === 0 && s[i] === 0));
    if (mergeable) {
      shape[n - 1] = shape[n - 1]! * out[i]!;
      strides.forEach((s, k) => (st[k]![n - 1] = s[i]!));
    } else {
      shape.push(out[i]!);
      strides.forEach((s, k) => st[k]!.push(s[i]!));
    }
  }
  return { shape, strides: st };
}

export function upcast(a: DataType, b: DataType): DataType {
  if (a === 'float32' || b === 'float32') return 'float32';
  if (a === 'int32' || b === 'int32') return 'int32';
  return 'bool';
}

/** `t` as `dtype`, allocating only when the dtype differs; `owned` says whether to dispose it. */
export function castInfo(b: NativeBackend, t: TensorInfo, dtype: DataType): { t: TensorInfo; owned: boolean } {
  if (t.dtype === dtype) return { t, owned: false };
  const out = b.makeOutput(t.shape, dtype);
  b.lib.tr_cast(code(t.dtype), code(dtype), b.buf(t), b.buf(out), size(t.shape));
  return { t: out, owned: true };
}

export const i32 = (xs: number[]): Int32Array => Int32Array.from(xs);
