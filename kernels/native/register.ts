/**
 * Registers our own backends with tfjs: `native` (C++ on the CPU) and, when its library is built,
 * `cuda`. Both use NativeBackend over a library with the same C ABI. Every tfjs-cpu kernel we do not
 * implement is registered as a counted host-copy fallback, so models never hit a missing kernel.
 */
import * as tf from '@tensorflow/tfjs-core';
import { NativeBackend } from './backend.js';
import { loadLibrary } from './lib.js';
import { nativeKernelConfigs } from './kernels.js';
import { FUSED_KERNELS } from './fused-kernels.js';

const registered = new Set<string>();

export async function registerNativeBackend(name: 'native' | 'cuda'): Promise<boolean> {
  if (registered.has(name)) return true;
  const lib = loadLibrary(name);
  if (!lib) return false;
  if (name === 'cuda' && !lib.tr_device_ok!()) throw new Error(`cuda backend: ${String(lib.tr_error!())}`);
  const threads = Number(process.env.TABRECALL_THREADS ?? 0);
  if (threads > 0) lib.tr_set_num_threads(threads);
  tf.registerBackend(name, () => new NativeBackend(lib, name), name === 'cuda' ? 4 : 3);
  const configs = nativeKernelConfigs(name, FUSED_KERNELS);
  const native = new Set(configs.map((c) => c.kernelName));
  for (const c of configs) tf.registerKernel(c);
  for (const k of tf.getKernelsForBackend('cpu')) {
    if (native.has(k.kernelName)) continue;
    tf.registerKernel({
      kernelName: k.kernelName,
      backendName: name,
      kernelFunc: ({ inputs, attrs, backend }) => (backend as NativeBackend).runFallback(k.kernelName, inputs as Record<string, tf.TensorInfo>, attrs),
    });
  }
  registered.add(name);
  return true;
}
