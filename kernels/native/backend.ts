/**
 * `NativeBackend`: a tfjs KernelBackend over a shared library with the C ABI of kernels/native/src/api.h.
 * Data lives in host typed arrays handed to C by pointer (koffi, zero copy). Kernels the library does
 * not implement run the tfjs-cpu kernel through host copies, and every such fallback is counted.
 */
import * as tf from '@tensorflow/tfjs-core';
import { DataStorage, KernelBackend, type DataId, type BackendTimingInfo, type DataType, type TensorInfo } from '@tensorflow/tfjs-core';
import { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import type { NativeLib } from './lib.js';

type Values = Float32Array | Int32Array | Uint8Array;

interface Data {
  values: Values;
  dtype: DataType;
  refCount: number;
  /** Allocated by us (poolable), not an array the user handed to tf.tensor(). */
  owned: boolean;
}

export const DTYPE_CODE: Record<string, number> = { float32: 0, int32: 1, bool: 2 };

export function allocValues(dtype: DataType, size: number): Values {
  if (dtype === 'float32') return new Float32Array(size);
  if (dtype === 'int32') return new Int32Array(size);
  if (dtype === 'bool') return new Uint8Array(size);
  throw new Error(`native backend: dtype ${dtype} is not supported (allowed: float32, int32, bool)`);
}

export class NativeBackend extends KernelBackend {
  readonly data: DataStorage<Data>;
  private readonly fallbacks = new Map<string, number>();
  private cpu: MathBackendCPU | undefined;
  private bytes = 0;
  /** Caching allocator: freed buffers by dtype and length, reused before V8 allocates (and faults in) new ones. */
  private readonly pool = new Map<string, Values[]>();
  private pooledBytes = 0;
  static readonly POOL_LIMIT_BYTES = 2 ** 30;

  constructor(
    readonly lib: NativeLib,
    readonly backendName: string,
  ) {
    super();
    this.data = new DataStorage(this, tf.engine());
  }

  // ---- storage -------------------------------------------------------------------------------
  write(values: unknown, shape: number[], dtype: DataType): DataId {
    const dataId = { id: NativeBackend.nextId++ };
    this.put(dataId, this.toValues(values, tf.util.sizeFromShape(shape), dtype), dtype, 1);
    return dataId;
  }

  move(dataId: DataId, values: unknown, shape: number[], dtype: DataType, refCount: number): void {
    this.put(dataId, this.toValues(values, tf.util.sizeFromShape(shape), dtype), dtype, refCount);
  }

  private put(dataId: DataId, values: Values, dtype: DataType, refCount: number, owned = false): void {
    this.bytes += values.byteLength;
    this.data.set(dataId, { values, dtype, refCount, owned });
  }

  private toValues(values: unknown, size: number, dtype: DataType): Values {
    if (values == null) return allocValues(dtype, size);
    if (dtype === 'string') throw new Error('native backend: string tensors are not supported');
    const v = values as ArrayLike<number>;
    if (dtype === 'float32' && v instanceof Float32Array) return v;
    if (dtype === 'int32' && v instanceof Int32Array) return v;
    if (dtype === 'bool' && v instanceof Uint8Array) return v;
    const out = allocValues(dtype, size);
    out.set(v as ArrayLike<number>);
    return out;
  }

  /** Output tensor of a kernel, storage allocated. */
  makeOutput(shape: number[], dtype: DataType): TensorInfo {
    const dataId = { id: NativeBackend.nextId++ };
    this.put(dataId, this.alloc(dtype, tf.util.sizeFromShape(shape)), dtype, 1, true);
    return { dataId, shape, dtype };
  }

  /** Uninitialised storage (kernels write every element of their outputs). */
  private alloc(dtype: DataType, size: number): Values {
    const list = this.pool.get(`${dtype}:${size}`);
    const v = list?.pop();
    if (v) {
      this.pooledBytes -= v.byteLength;
      return v;
    }
    return allocValues(dtype, size);
  }

  private release(v: Values, dtype: DataType): void {
    if (v.byteLength < 4096 || this.pooledBytes + v.byteLength > NativeBackend.POOL_LIMIT_BYTES) return;
    const key = `${dtype}:${v.length}`;
    let list = this.pool.get(key);
    if (!list) this.pool.set(key, (list = []));
    list.push(v);
    this.pooledBytes += v.byteLength;
  }

  /** The buffer of a tensor, as the C functions take it. */
  buf(t: TensorInfo): Values {
    return this.data.get(t.dataId).values;
  }

  refCount(dataId: DataId): number {
    return this.data.has(dataId) ? this.data.get(dataId).refCount : 0;
  }

  incRef(dataId: DataId): void {
    this.data.get(dataId).refCount++;
  }

  decRef(dataId: DataId): void {
    if (this.data.has(dataId)) this.data.get(dataId).refCount--;
  }

  disposeData(dataId: DataId, force = false): boolean {
    if (!this.data.has(dataId)) return true;
    const d = this.data.get(dataId);
    d.refCount--;
    if (!force && d.refCount > 0) return false;
    this.bytes -= d.values.byteLength;
    this.data.delete(dataId);
    if (d.owned) this.release(d.values, d.dtype);
    return true;
  }

  /** A copy: the storage itself goes back to the pool when the tensor is disposed. */
  readSync(dataId: DataId): Values {
    return this.data.get(dataId).values.slice();
  }

  async read(dataId: DataId): Promise<Values> {
    return this.readSync(dataId);
  }

  numDataIds(): number {
    return this.data.numDataIds();
  }

  memory(): { unreliable: boolean; numBytes: number } {
    return { unreliable: false, numBytes: this.bytes };
  }

  timerAvailable(): boolean {
    return true;
  }

  async time(f: () => void): Promise<BackendTimingInfo> {
    const t0 = performance.now();
    f();
    return { kernelMs: performance.now() - t0 };
  }

  floatPrecision(): 32 {
    return 32;
  }

  epsilon(): number {
    return 1e-7;
  }

  dispose(): void {
    this.cpu?.dispose();
    this.pool.clear();
    this.pooledBytes = 0;
  }

  info(): Record<string, string> {
    const s = String(this.lib.tr_info());
    return Object.fromEntries(s.split(';').map((kv) => kv.split('=') as [string, string]));
  }

  // ---- fallback ------------------------------------------------------------------------------
  fallbackCounts(): Record<string, number> {
    return Object.fromEntries(this.fallbacks);
  }

  resetFallbackCounts(): void {
    this.fallbacks.clear();
  }

  /** Run tfjs-cpu's kernel on host copies of the inputs; counted per kernel name. */
  runFallback(kernelName: string, inputs: Record<string, TensorInfo>, attrs: unknown): TensorInfo | TensorInfo[] {
    this.fallbacks.set(kernelName, (this.fallbacks.get(kernelName) ?? 0) + 1);
    const k = tf.getKernel(kernelName, 'cpu');
    if (!k) throw new Error(`native backend: kernel ${kernelName} has neither a native nor a cpu implementation`);
    this.cpu ??= new MathBackendCPU();
    const cpu = this.cpu;
    const mapped: Record<string, TensorInfo> = {};
    const temp: DataId[] = [];
    for (const [name, t] of Object.entries(inputs)) {
      if (!t) continue;
      const id = cpu.write(this.readSync(t.dataId), t.shape, t.dtype);
      temp.push(id);
      mapped[name] = { dataId: id, shape: t.shape, dtype: t.dtype };
    }
    const res = k.kernelFunc({ inputs: mapped, backend: cpu, attrs: attrs as tf.NamedAttrMap });
    const list = Array.isArray(res) ? res : [res];
    const outs = list.map((o) => {
      const values = cpu.readSync(o.dataId) as Values;
      const out = { dataId: this.write(values.slice(), o.shape, o.dtype), shape: o.shape, dtype: o.dtype };
      return out;
    });
    for (const o of list) cpu.disposeData(o.dataId, true);
    for (const id of temp) cpu.disposeData(id, true);
    return Array.isArray(res) ? outs : outs[0]!;
  }

  private static nextId = 0;
}
