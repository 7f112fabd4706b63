/**
 * `NativeBackend`: a tfjs KernelBackend over a shared library with the C ABI of kernels/native/src/api.h.
 * Storage is the one thing that differs between our two backends: `native` keeps tensors in host typed
 * arrays handed to C by pointer (koffi, zero copy); `cuda` keeps device pointers and copies only on
 * read/write. Kernels see neither: they pass `buf(t)` through. Kernels the library does not implement
 * run the tfjs-cpu kernel through host copies, and every such fallback is counted.
 */
import * as tf from '@tensorflow/tfjs-core';
import { DataStorage, KernelBackend, type DataId, type BackendTimingInfo, type DataType, type TensorInfo } from '@tensorflow/tfjs-core';
import { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import type { CudaLib, NativeLib, Pointer } from './lib.js';
import type { TensorCoreCaps } from '../precision.js';

type Values = Float32Array | Int32Array | Uint8Array;

interface Data {
  /** A typed array (native) or a device pointer (cuda). */
  handle: Pointer;
  size: number;
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

const bytesOf = (dtype: DataType, size: number): number => (dtype === 'bool' ? size : 4 * size);

function toValues(values: unknown, size: number, dtype: DataType): Values {
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

/** Where tensor data lives. */
export interface Storage {
  readonly device: boolean;
  /** Storage for `size` elements, contents undefined (kernels write every element of their outputs). */
  alloc(dtype: DataType, size: number): Pointer;
  /** Storage holding these values (host storage may keep the array itself). */
  fromHost(values: Values, dtype: DataType): Pointer;
  toHost(handle: Pointer, dtype: DataType, size: number): Values;
  free(handle: Pointer, dtype: DataType, size: number): void;
  /** A read-only array (layout indices) as the library takes it; cached for the array's lifetime. */
  constant(arr: Int32Array | Uint8Array): Pointer;
  sync(): void;
  dispose(): void;
}

/** Host typed arrays with a caching pool: freed buffers by dtype and length are reused before V8 allocates (and faults in) new ones. */
export class HostStorage implements Storage {
  readonly device = false;
  private readonly pool = new Map<string, Values[]>();
  private pooledBytes = 0;
  static readonly POOL_LIMIT_BYTES = 2 ** 30;

  alloc(dtype: DataType, size: number): Values {
    const v = this.pool.get(`${dtype}:${size}`)?.pop();
    if (v) {
      this.pooledBytes -= v.byteLength;
      return v;
    }
    return allocValues(dtype, size);
  }

  fromHost(values: Values): Values {
    return values;
  }

  toHost(handle: Pointer): Values {
    return (handle as Values).slice();
  }

  free(handle: Pointer, dtype: DataType): void {
    const v = handle as Values;
    if (v.byteLength < 4096 || this.pooledBytes + v.byteLength > HostStorage.POOL_LIMIT_BYTES) return;
    const key = `${dtype}:${v.length}`;
    let list = this.pool.get(key);
    if (!list) this.pool.set(key, (list = []));
    list.push(v);
    this.pooledBytes += v.byteLength;
  }

  constant(arr: Int32Array | Uint8Array): Pointer {
    return arr;
  }

  sync(): void {}

  dispose(): void {
    this.pool.clear();
    this.pooledBytes = 0;
  }
}

/**
 * GPU memory through the cuda library (CUDA's stream-ordered caching pool). CUDA errors are kept by
 * the library (first one wins) and thrown here at the next synchronization with the call that failed.
 */
export class DeviceStorage implements Storage {
  readonly device = true;
  private readonly constants = new WeakMap<object, Pointer>();
  private readonly finalizer = new FinalizationRegistry<object>((ptr) => this.lib.tr_free(ptr));

  constructor(private readonly lib: CudaLib) {}

  check(): void {
    const e = String(this.lib.tr_error());
    if (e) throw new Error(`cuda backend: ${e}`);
  }

  alloc(dtype: DataType, size: number): Pointer {
    const bytes = bytesOf(dtype, size);
    if (bytes === 0) return null;
    const p = this.lib.tr_malloc(bytes);
    if (!p) {
      this.check();
      throw new Error(`cuda backend: could not allocate ${bytes} bytes`);
    }
    return p;
  }

  fromHost(values: Values, dtype: DataType): Pointer {
    const p = this.alloc(dtype, values.length);
    if (p) this.lib.tr_h2d(p, values, values.byteLength);
    return p;
  }

  toHost(handle: Pointer, dtype: DataType, size: number): Values {
    const out = allocValues(dtype, size);
    if (size > 0) this.lib.tr_d2h(out, handle, out.byteLength);
    this.check();
    return out;
  }

  free(handle: Pointer): void {
    if (handle) this.lib.tr_free(handle);
  }

  constant(arr: Int32Array | Uint8Array): Pointer {
    let p = this.constants.get(arr);
    if (p === undefined) {
      p = this.fromHost(arr, arr instanceof Uint8Array ? 'bool' : 'int32');
      this.constants.set(arr, p);
      if (p) this.finalizer.register(arr, p);
    }
    return p;
  }

  sync(): void {
    this.lib.tr_sync();
    this.check();
  }

  dispose(): void {}
}

export class NativeBackend extends KernelBackend {
  readonly data: DataStorage<Data>;
  readonly storage: Storage;
  private readonly fallbacks = new Map<string, number>();
  private cpu: MathBackendCPU | undefined;
  private bytes = 0;

  constructor(
    readonly lib: NativeLib,
    readonly backendName: string,
  ) {
    super();
    this.data = new DataStorage(this, tf.engine());
    this.storage = lib.kind === 'cuda' ? new DeviceStorage(lib as CudaLib) : new HostStorage();
  }

  // ---- storage -------------------------------------------------------------------------------
  write(values: unknown, shape: number[], dtype: DataType): DataId {
    const dataId = { id: NativeBackend.nextId++ };
    this.move(dataId, values, shape, dtype, 1);
    return dataId;
  }

  move(dataId: DataId, values: unknown, shape: number[], dtype: DataType, refCount: number): void {
    const size = tf.util.sizeFromShape(shape);
    // No values means zeros (tfjs' contract), so both storages start from a host array here.
    const handle = this.storage.fromHost(toValues(values, size, dtype), dtype);
    this.put(dataId, handle, size, dtype, refCount, this.storage.device);
  }

  private put(dataId: DataId, handle: Pointer, size: number, dtype: DataType, refCount: number, owned: boolean): void {
    this.bytes += bytesOf(dtype, size);
    this.data.set(dataId, { handle, size, dtype, refCount, owned });
  }

  /** Output tensor of a kernel, storage allocated. */
  makeOutput(shape: number[], dtype: DataType): TensorInfo {
    const dataId = { id: NativeBackend.nextId++ };
    const size = tf.util.sizeFromShape(shape);
    this.put(dataId, this.storage.alloc(dtype, size), size, dtype, 1, true);
    return { dataId, shape, dtype };
  }

  /** A tensor holding values computed on the host (creation ops such as Range). */
  fromValues(values: Values, shape: number[], dtype: DataType): TensorInfo {
    return { dataId: this.write(values, shape, dtype), shape, dtype };
  }

  /** The buffer of a tensor, as the C functions take it. */
  buf(t: TensorInfo): Pointer {
    return this.data.get(t.dataId).handle;
  }

  /** Whether the fused attention kernels take these head dims and block sizes (cuda: shared-memory tiles). */
  fusedAttentionFits(D: number, Dv: number, Bq: number, Bk: number): boolean {
    return this.lib.kind !== 'cuda' || !!(this.lib as CudaLib).tr_bsa_fits(D, Dv, Bq, Bk);
  }

  /** What the tensor-core attention kernels can do for this shape; undefined where there are none (native). */
  tensorCoreCaps(D: number, Dv: number, Bq: number, Bk: number): TensorCoreCaps | undefined {
    if (this.lib.kind !== 'cuda') return undefined;
    const lib = this.lib as CudaLib;
    // the TF32 switch and the GPU's wgmma support are fixed for the process: asked once, not per call
    this.device ??= { tf32ByDefault: !!lib.tr_tf32_enabled(), bf16Backward: !!lib.tr_bsa_wgmma_available() };
    return { shape: !!lib.tr_bsa_bf16_supported(D, Dv, Bq, Bk), ...this.device };
  }
  private device?: Omit<TensorCoreCaps, 'shape'>;

  /** A layout array as the C functions take it (uploaded once per array on cuda). */
  constant(arr: Int32Array | Uint8Array): Pointer {
    return this.storage.constant(arr);
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
    this.bytes -= bytesOf(d.dtype, d.size);
    this.data.delete(dataId);
    if (d.owned) this.storage.free(d.handle, d.dtype, d.size);
    return true;
  }

  /** A copy: the storage itself goes back to the pool when the tensor is disposed. */
  readSync(dataId: DataId): Values {
    const d = this.data.get(dataId);
    return this.storage.toHost(d.handle, d.dtype, d.size);
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
    this.storage.sync();
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
    this.storage.dispose();
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
