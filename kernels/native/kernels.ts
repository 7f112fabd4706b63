/**
 * The kernel set of the native (and cuda) backend: tfjs semantics, C implementations. The list
 * covers forward, backward and optimizer of every tabrecall model (see tests/native-kernels.test.ts
 * for the profiled kernel list); anything else falls back to tfjs-cpu and is counted.
 */
import * as tf from '@tensorflow/tfjs-core';
import { backend_util, slice_util, type KernelConfig, type KernelFunc, type TensorInfo, type DataType, type NamedAttrMap } from '@tensorflow/tfjs-core';
import type { NativeBackend } from './backend.js';
import { broadcastShape, broadcastStrides, castInfo, code, collapse, elemSize, i32, size, upcast } from './kernel-util.js';

type Fn = (inputs: TensorInfo[], attrs: NamedAttrMap, b: NativeBackend) => TensorInfo | TensorInfo[];

const UNARY: Record<string, [op: number, intOk: boolean]> = {
  Neg: [0, true], Exp: [1, false], Log: [2, false], Sqrt: [3, false], Rsqrt: [4, false], Square: [5, true],
  Tanh: [6, false], Sigmoid: [7, false], Relu: [8, true], Abs: [9, true], Sin: [10, false], Cos: [11, false],
  Erf: [12, false], Floor: [13, false], Ceil: [14, false], Round: [15, false], Sign: [16, true], Reciprocal: [17, false],
  Log1p: [18, false], Expm1: [19, false], Step: [20, false], Elu: [21, false], Softplus: [22, false], Relu6: [23, false],
  LeakyRelu: [24, false],
};

const ARITH: Record<string, number> = {
  Add: 0, Sub: 1, Multiply: 2, RealDiv: 3, Maximum: 4, Minimum: 5, Pow: 6, SquaredDifference: 7, FloorDiv: 8, Mod: 9, Atan2: 10,
};
const COMPARE: Record<string, number> = {
  Equal: 20, NotEqual: 21, Greater: 22, GreaterEqual: 23, Less: 24, LessEqual: 25, LogicalAnd: 26, LogicalOr: 27,
};

function unary(name: string, [op, intOk]: [number, boolean]): Fn {
  return ([x], attrs, b) => {
    const dtype: DataType = intOk && x!.dtype === 'int32' ? 'int32' : 'float32';
    const xi = castInfo(b, x!, dtype);
    const out = b.makeOutput(x!.shape, dtype);
    const alpha = name === 'Step' ? Number(attrs.alpha ?? 0) : name === 'LeakyRelu' ? Number(attrs.alpha ?? 0.2) : 0;
    b.lib.tr_unary(op, code(dtype), b.buf(xi.t), b.buf(out), size(x!.shape), alpha);
    if (xi.owned) b.disposeData(xi.t.dataId);
    return out;
  };
}

function binaryInto(b: NativeBackend, op: number, dtype: DataType, x: TensorInfo, y: TensorInfo, out: TensorInfo): void {
  const shape = out.shape;
  const c = collapse(shape, [broadcastStrides(x.shape, shape), broadcastStrides(y.shape, shape)]);
  b.lib.tr_binary(op, code(dtype), b.buf(x), b.buf(y), b.buf(out), c.shape.length, i32(c.shape), i32(c.strides[0]!), i32(c.strides[1]!));
}

function binary(op: number, compare: boolean, forceFloat: boolean): Fn {
  return ([a, c], _attrs, b) => {
    let dtype = upcast(a!.dtype, c!.dtype);
    if (forceFloat) dtype = 'float32';
    if (!compare && dtype === 'bool') dtype = 'int32';
    const shape = broadcastShape(a!.shape, c!.shape);
    const ai = castInfo(b, a!, dtype);
    const ci = castInfo(b, c!, dtype);
    const out = b.makeOutput(shape, compare ? 'bool' : dtype);
    if (size(shape) > 0) binaryInto(b, op, dtype, ai.t, ci.t, out);
    if (ai.owned) b.disposeData(ai.t.dataId);
    if (ci.owned) b.disposeData(ci.t.dataId);
    return out;
  };
}

function transposeInfo(b: NativeBackend, x: TensorInfo, perm: number[]): TensorInfo {
  const out = b.makeOutput(perm.map((p) => x.shape[p]!), x.dtype);
  if (size(x.shape) > 0) b.lib.tr_transpose(elemSize(x.dtype), b.buf(x), b.buf(out), x.shape.length, i32(x.shape), i32(perm));
  return out;
}

const REDUCE: Record<string, number> = { Sum: 0, Max: 1, Min: 2, Prod: 3, Mean: 4, ArgMax: 5, ArgMin: 6, Any: 7, All: 8 };

function reduce(name: string): Fn {
  const op = REDUCE[name]!;
  return ([x], attrs, b) => {
    const rank = x!.shape.length;
    // Max names its axes `reductionIndices`; every other reduction calls them `axis`.
    const axes = tf.util.parseAxisParam((attrs.axis ?? attrs.reductionIndices) as number | number[], x!.shape);
    const sorted = [...axes].sort((p, q) => p - q);
    const contiguous = sorted.every((a, i) => i === 0 || a === sorted[i - 1]! + 1);
    if (op <= 4 && x!.dtype === 'float32' && contiguous && sorted.length && sorted[sorted.length - 1]! < rank - 1) {
      // Reduce a middle block of axes in place: no transpose.
      const outer = size(x!.shape.slice(0, sorted[0]));
      const red = size(sorted.map((a) => x!.shape[a]!));
      const inner = size(x!.shape.slice(sorted[sorted.length - 1]! + 1));
      const kept = x!.shape.map((d, i) => (axes.includes(i) ? 1 : d));
      const out = b.makeOutput(attrs.keepDims ? kept : x!.shape.filter((_, i) => !axes.includes(i)), 'float32');
      b.lib.tr_reduce_mid(op, b.buf(x!), b.buf(out), outer, red, inner);
      return out;
    }
    const perm = backend_util.getAxesPermutation(axes, rank);
    let src = x!;
    let owned = false;
    if (perm) {
      src = transposeInfo(b, x!, perm);
      owned = true;
    }
    const inner = perm ? backend_util.getInnerMostAxes(axes.length, rank) : axes;
    const [outShape, reduceShape] = backend_util.computeOutAndReduceShapes(src.shape, inner);
    let inDtype = src.dtype;
    let outDtype: DataType = src.dtype;
    if (name === 'ArgMax' || name === 'ArgMin') outDtype = 'int32';
    else if (name === 'Any' || name === 'All') outDtype = 'bool';
    else if (name === 'Mean') (inDtype = 'float32'), (outDtype = 'float32');
    else if (src.dtype === 'bool') (inDtype = 'int32'), (outDtype = 'int32');
    const si = castInfo(b, src, inDtype);
    const finalShape = attrs.keepDims ? backend_util.expandShapeToKeepDim(outShape, axes) : outShape;
    const out = b.makeOutput(finalShape, outDtype);
    b.lib.tr_reduce(op, code(inDtype), b.buf(si.t), b.buf(out), size(outShape), size(reduceShape));
    if (si.owned) b.disposeData(si.t.dataId);
    if (owned) b.disposeData(src.dataId);
    return out;
  };
}

function share(b: NativeBackend, x: TensorInfo, shape: number[]): TensorInfo {
  b.incRef(x.dataId);
  return { dataId: x.dataId, shape, dtype: x.dtype };
}

function sliceInfo(b: NativeBackend, x: TensorInfo, begin: number[], sz: number[], steps?: number[]): TensorInfo {
  const out = b.makeOutput(sz, x.dtype);
  if (size(sz) > 0) {
    b.lib.tr_slice(elemSize(x.dtype), b.buf(x), b.buf(out), x.shape.length, i32(x.shape), i32(begin), i32(sz), i32(steps ?? sz.map(() => 1)));
  }
  return out;
}

function concatInfo(b: NativeBackend, xs: TensorInfo[], axis: number): TensorInfo {
  const dtype = xs.map((x) => x.dtype).reduce(upcast);
  const shape = [...xs[0]!.shape];
  shape[axis] = xs.reduce((s, x) => s + x.shape[axis]!, 0);
  const out = b.makeOutput(shape, dtype);
  const outer = size(shape.slice(0, axis));
  const innerY = size(shape.slice(axis));
  let offset = 0;
  for (const x of xs) {
    const innerX = size(x.shape.slice(axis));
    if (innerX > 0) {
      const xi = castInfo(b, x, dtype);
      b.lib.tr_concat2d(elemSize(dtype), b.buf(xi.t), b.buf(out), outer, innerX, innerY, offset);
      if (xi.owned) b.disposeData(xi.t.dataId);
    }
    offset += innerX;
  }
  return out;
}

function fill(b: NativeBackend, shape: number[], dtype: DataType, value: number): TensorInfo {
  const out = b.makeOutput(shape, dtype);
  b.lib.tr_fill(code(dtype), b.buf(out), size(shape), value);
  return out;
}

function matmul([a, c]: TensorInfo[], attrs: NamedAttrMap, b: NativeBackend): TensorInfo {
  const ta = !!attrs.transposeA;
  const tb = !!attrs.transposeB;
  const ra = a!.shape.length;
  const rb = c!.shape.length;
  const m = ta ? a!.shape[ra - 1]! : a!.shape[ra - 2]!;
  const k = ta ? a!.shape[ra - 2]! : a!.shape[ra - 1]!;
  const n = tb ? c!.shape[rb - 2]! : c!.shape[rb - 1]!;
  const kb = tb ? c!.shape[rb - 1]! : c!.shape[rb - 2]!;
  if (k !== kb) throw new Error(`Error in matMul: inner shapes (${k}) and (${kb}) of Tensors with shapes ${a!.shape} and ${c!.shape} and transposeA=${ta} and transposeB=${tb} must match.`);
  const batchA = a!.shape.slice(0, -2);
  const batchB = c!.shape.slice(0, -2);
  const batchShape = broadcastShape(batchA, batchB);
  const nbA = size(batchA);
  const nbB = size(batchB);
  const batch = size(batchShape);
  if (!((nbA === batch || nbA === 1) && (nbB === batch || nbB === 1))) {
    return b.runFallback('BatchMatMul', { a: a!, b: c! }, attrs) as TensorInfo;
  }
  const ai = castInfo(b, a!, 'float32');
  const ci = castInfo(b, c!, 'float32');
  const out = b.makeOutput([...batchShape, m, n], 'float32');
  b.lib.tr_matmul(b.buf(ai.t), b.buf(ci.t), b.buf(out), batch, nbA, nbB, m, n, k, ta ? 1 : 0, tb ? 1 : 0);
  if (ai.owned) b.disposeData(ai.t.dataId);
  if (ci.owned) b.disposeData(ci.t.dataId);
  return out;
}

const KERNELS: Record<string, Fn> = {
  Identity: ([x], _a, b) => share(b, x!, x!.shape),
  Reshape: ([x], a, b) => share(b, x!, tf.util.inferFromImplicitShape(a.shape as number[], size(x!.shape))),
  ExpandDims: ([x], a, b) => {
    const rank = x!.shape.length;
    let dim = a.dim as number;
    if (dim < 0) dim += rank + 1;
    return share(b, x!, [...x!.shape.slice(0, dim), 1, ...x!.shape.slice(dim)]);
  },
  Range: (_i, a, b) => {
    // A creation op: values computed here, written once (tfjs semantics: start + i * step, i < count).
    const [start, stop, step] = [Number(a.start), Number(a.stop), Number(a.step)];
    const dtype = (a.dtype as DataType) ?? 'float32';
    const n = start === stop ? 0 : Math.max(0, Math.ceil(Math.abs((stop - start) / step)));
    const v = dtype === 'int32' ? new Int32Array(n) : new Float32Array(n);
    for (let i = 0; i < n; i++) v[i] = start + i * step;
    return b.fromValues(v, [n], dtype);
  },
  Cast: ([x], a, b) => {
    const dtype = a.dtype as DataType;
    if (dtype === x!.dtype) return share(b, x!, x!.shape);
    return castInfo(b, x!, dtype).t;
  },
  Fill: (_i, a, b) => fill(b, a.shape as number[], (a.dtype as DataType) ?? 'float32', Number(a.value)),
  ZerosLike: ([x], _a, b) => fill(b, x!.shape, x!.dtype, 0),
  OnesLike: ([x], _a, b) => fill(b, x!.shape, x!.dtype, 1),
  IsNan: ([x], _a, b) => {
    const out = b.makeOutput(x!.shape, 'bool');
    b.lib.tr_unary(25, 0, b.buf(x!), b.buf(out), size(x!.shape), 0);
    return out;
  },
  LogicalNot: ([x], _a, b) => {
    const out = b.makeOutput(x!.shape, 'bool');
    b.lib.tr_unary(26, 2, b.buf(x!), b.buf(out), size(x!.shape), 0);
    return out;
  },
  Select: ([cnd, t, e], _a, b) => {
    const dtype = upcast(t!.dtype, e!.dtype);
    const ti = castInfo(b, t!, dtype);
    const ei = castInfo(b, e!, dtype);
    const out = b.makeOutput(t!.shape, dtype);
    b.lib.tr_select(b.buf(cnd!), b.buf(ti.t), b.buf(ei.t), b.buf(out), size(t!.shape), elemSize(dtype));
    if (ti.owned) b.disposeData(ti.t.dataId);
    if (ei.owned) b.disposeData(ei.t.dataId);
    return out;
  },
  AddN: (xs, _a, b) => {
    const dtype = xs.map((x) => x.dtype).reduce(upcast);
    const out = fill(b, xs[0]!.shape, dtype, 0);
    for (const x of xs) {
      const xi = castInfo(b, x, dtype);
      binaryInto(b, ARITH.Add!, dtype, out, xi.t, out);
      if (xi.owned) b.disposeData(xi.t.dataId);
    }
    return out;
  },
  Transpose: ([x], a, b) => transposeInfo(b, x!, a.perm as number[]),
  Slice: ([x], a, b) => {
    const [begin, sz] = slice_util.parseSliceParams(x as unknown as tf.Tensor, a.begin as number[], a.size as number[]);
    return sliceInfo(b, x!, begin, sz);
  },
  StridedSlice: ([x], a, b) => {
    const info = slice_util.sliceInfo(x!.shape, a.begin as number[], a.end as number[], a.strides as number[], a.beginMask as number,
      a.endMask as number, a.ellipsisMask as number, a.newAxisMask as number, a.shrinkAxisMask as number);
    if (info.isIdentity) return share(b, x!, info.finalShape);
    const sz = info.begin.map((bg, i) => Math.max(0, Math.ceil((info.end[i]! - bg) / info.strides[i]!)));
    const out = sliceInfo(b, x!, info.begin, sz, info.strides);
    return { ...out, shape: info.finalShape };
  },
  Concat: (xs, a, b) => {
    const axis = tf.util.parseAxisParam(a.axis as number, xs[0]!.shape)[0]!;
    return concatInfo(b, xs.filter((x) => size(x.shape) > 0).length ? xs.filter((x) => size(x.shape) > 0) : [xs[0]!], axis);
  },
  Pack: (xs, a, b) => {
    const axis = a.axis as number;
    const rank = xs[0]!.shape.length + 1;
    const ax = axis < 0 ? axis + rank : axis;
    const expanded = xs.map((x) => ({ ...x, shape: [...x.shape.slice(0, ax), 1, ...x.shape.slice(ax)] }));
    return concatInfo(b, expanded, ax);
  },
  Unpack: ([x], a, b) => {
    const axis = tf.util.parseAxisParam(a.axis as number, x!.shape)[0]!;
    const num = x!.shape[axis]!;
    const outShape = x!.shape.filter((_, i) => i !== axis);
    const sz = [...x!.shape];
    sz[axis] = 1;
    return Array.from({ length: num }, (_, i) => {
      const begin = x!.shape.map(() => 0);
      begin[axis] = i;
      return { ...sliceInfo(b, x!, begin, sz), shape: outShape };
    });
  },
  SplitV: ([x], a, b) => {
    const axis = tf.util.parseAxisParam(a.axis as number, x!.shape)[0]!;
    const sizes = backend_util.prepareSplitSize(x as unknown as tf.Tensor, a.numOrSizeSplits as number | number[], axis);
    let offset = 0;
    return sizes.map((s) => {
      const begin = x!.shape.map(() => 0);
      begin[axis] = offset;
      offset += s;
      const sz = [...x!.shape];
      sz[axis] = s;
      return sliceInfo(b, x!, begin, sz);
    });
  },
  Tile: ([x], a, b) => {
    const reps = a.reps as number[];
    const shape = x!.shape.map((d, i) => d * reps[i]!);
    const out = b.makeOutput(shape, x!.dtype);
    if (size(shape) > 0) b.lib.tr_tile(elemSize(x!.dtype), b.buf(x!), b.buf(out), shape.length, i32(x!.shape), i32(shape));
    return out;
  },
  PadV2: ([x], a, b) => {
    const pads = a.paddings as [number, number][];
    const shape = x!.shape.map((d, i) => d + pads[i]![0] + pads[i]![1]);
    const out = b.makeOutput(shape, x!.dtype);
    b.lib.tr_pad(elemSize(x!.dtype), b.buf(x!), b.buf(out), shape.length, i32(x!.shape), i32(pads.map((p) => p[0])), i32(shape), Number(a.constantValue ?? 0), code(x!.dtype));
    return out;
  },
  GatherV2: ([x, idx], a, b) => {
    const axis = tf.util.parseAxisParam(a.axis as number, x!.shape)[0]!;
    const info = backend_util.segment_util.collectGatherOpShapeInfo(x as unknown as tf.Tensor, idx as unknown as tf.Tensor, axis, (a.batchDims as number) ?? 0);
    const ii = castInfo(b, idx!, 'int32');
    const out = b.makeOutput(info.outputShape, x!.dtype);
    const nIdx = size(idx!.shape) / info.batchSize;
    if (size(info.outputShape) > 0) {
      b.lib.tr_gather(elemSize(x!.dtype), b.buf(x!), b.buf(ii.t), b.buf(out), info.batchSize, info.outerSize, info.dimSize, info.sliceSize, nIdx);
    }
    if (ii.owned) b.disposeData(ii.t.dataId);
    return out;
  },
  UnsortedSegmentSum: ([x, seg], a, b) => {
    const n = size(seg!.shape);
    const inner = n ? size(x!.shape) / n : 0;
    const numSegments = a.numSegments as number;
    const dtype: DataType = x!.dtype === 'bool' ? 'int32' : x!.dtype;
    const xi = castInfo(b, x!, dtype);
    const out = b.makeOutput([numSegments, ...x!.shape.slice(seg!.shape.length)], dtype);
    b.lib.tr_unsorted_segment_sum(code(dtype), b.buf(xi.t), b.buf(seg!), b.buf(out), n, inner, numSegments);
    if (xi.owned) b.disposeData(xi.t.dataId);
    return out;
  },
  OneHot: ([idx], a, b) => {
    const depth = a.depth as number;
    const dtype = (a.dtype as DataType) ?? 'int32';
    const ii = castInfo(b, idx!, 'int32');
    const out = b.makeOutput([...idx!.shape, depth], dtype);
    b.lib.tr_one_hot(b.buf(ii.t), b.buf(out), code(dtype), size(idx!.shape), depth, Number(a.onValue ?? 1), Number(a.offValue ?? 0));
    if (ii.owned) b.disposeData(ii.t.dataId);
    return out;
  },
  BatchMatMul: matmul,
  Softmax: ([x], a, b) => {
    const dim = a.dim as number;
    if (dim !== -1 && dim !== x!.shape.length - 1) return b.runFallback('Softmax', { logits: x! }, a) as TensorInfo;
    const cols = x!.shape[x!.shape.length - 1]!;
    const out = b.makeOutput(x!.shape, 'float32');
    b.lib.tr_softmax(b.buf(x!), b.buf(out), size(x!.shape) / cols, cols);
    return out;
  },
  Cumsum: ([x], a, b) => {
    const axis = tf.util.parseAxisParam(a.axis as number, x!.shape)[0]!;
    const dtype: DataType = x!.dtype === 'float32' ? 'float32' : 'int32';
    const xi = castInfo(b, x!, dtype);
    const out = b.makeOutput(x!.shape, dtype);
    b.lib.tr_cumsum(code(dtype), b.buf(xi.t), b.buf(out), size(x!.shape.slice(0, axis)), x!.shape[axis]!, size(x!.shape.slice(axis + 1)), a.exclusive ? 1 : 0, a.reverse ? 1 : 0);
    if (xi.owned) b.disposeData(xi.t.dataId);
    return out;
  },
};

for (const [name, spec] of Object.entries(UNARY)) KERNELS[name] = unary(name, spec);
for (const [name, op] of Object.entries(ARITH)) KERNELS[name] = binary(op, false, name === 'RealDiv' || name === 'Atan2');
for (const [name, op] of Object.entries(COMPARE)) KERNELS[name] = binary(op, true, false);
for (const name of Object.keys(REDUCE)) KERNELS[name] = reduce(name);

/** Input names in the order tfjs kernels declare them, for kernels whose inputs are a record. */
function orderedInputs(inputs: tf.NamedTensorInfoMap | TensorInfo[]): TensorInfo[] {
  return Array.isArray(inputs) ? inputs : (Object.values(inputs) as TensorInfo[]);
}

export function nativeKernelNames(): string[] {
  return Object.keys(KERNELS);
}

export function nativeKernelConfigs(backendName: string, extra: Record<string, Fn> = {}): KernelConfig[] {
  return Object.entries({ ...KERNELS, ...extra }).map(([kernelName, fn]) => ({
    kernelName,
    backendName,
    kernelFunc: (({ inputs, attrs, backend }) => fn(orderedInputs(inputs), attrs ?? {}, backend as NativeBackend)) as KernelFunc,
  }));
}

export type { Fn as NativeKernelFn };
