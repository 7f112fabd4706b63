/**
 * Compute backend choice. `auto` takes the best one that initialises here: cuda > native > wasm > cpu.
 * Our own backends (native, cuda) register themselves from their own modules when their shared
 * library is built; wasm and cpu come from tfjs. tfjs-node, if a user has it, is detected and usable
 * as `tensorflow` but never required.
 */
import * as tf from '@tensorflow/tfjs-core';
// The union package registers what tfjs-core leaves opt-in: all gradients, chained tensor methods
// (x.reshape) and the cpu backend, on the same engine as '@tensorflow/tfjs-core'.
import '@tensorflow/tfjs';
import './gradients.js';
import { createRequire } from 'node:module';
import type { CudaLib, NativeLib } from './native/lib.js';

// PROD skips tfjs' debug checks and its 'install tfjs-node' console nag.
tf.env().set('PROD', true);

export const BACKEND_NAMES = ['auto', 'cuda', 'native', 'wasm', 'cpu', 'tensorflow'] as const;
export type BackendName = (typeof BACKEND_NAMES)[number];

/** Optional backends that register themselves: tried in this order by `auto`. */
const LOADERS: Record<string, () => Promise<boolean>> = {
  cuda: async () => (await import('./native/register.js')).registerNativeBackend('cuda'),
  native: async () => (await import('./native/register.js')).registerNativeBackend('native'),
  wasm: async () => {
    await import('@tensorflow/tfjs-backend-wasm');
    return true;
  },
  cpu: async () => true,
  tensorflow: async () => {
    try {
      createRequire(import.meta.url).resolve('@tensorflow/tfjs-node');
    } catch {
      return false;
    }
    await import('@tensorflow/tfjs-node' as string);
    return true;
  },
};

export class BackendError extends Error {}

/** Why a backend could not be used, for the one-line message a user sees. */
const unavailable = new Map<string, string>();

async function tryBackend(name: string): Promise<boolean> {
  try {
    if (!(await LOADERS[name]!())) {
      if (!unavailable.has(name)) unavailable.set(name, 'not built or not installed');
      return false;
    }
    return await tf.setBackend(name);
  } catch (e) {
    unavailable.set(name, (e as Error).message.split('\n')[0]!);
    return false;
  }
}

/** Select and initialise a backend; returns the name actually in use. */
export async function useBackend(requested: string): Promise<string> {
  if (!(BACKEND_NAMES as readonly string[]).includes(requested)) {
    throw new BackendError(`--backend: unknown backend ${JSON.stringify(requested)}; allowed: ${BACKEND_NAMES.join(', ')}`);
  }
  if (requested === 'auto') {
    for (const name of ['cuda', 'native', 'wasm', 'cpu']) {
      if (await tryBackend(name)) return name;
    }
    throw new BackendError('no tfjs backend could be initialised');
  }
  if (!(await tryBackend(requested))) {
    throw new BackendError(`--backend: ${requested} is not available here (${unavailable.get(requested) ?? 'failed to initialise'})`);
  }
  return requested;
}

export function unavailableReasons(): Record<string, string> {
  return Object.fromEntries(unavailable);
}

/** Whether the active backend has a kernel (e.g. wasm lacks UnsortedSegmentSum, gather's gradient). */
export function hasKernel(kernelName: string): boolean {
  return tf.getKernel(kernelName, tf.getBackend()) !== undefined;
}

/** Kernels that ran through a host-copy fallback since the last reset (our native/cuda backends count them). */
export function fallbackCounts(): Record<string, number> {
  const b = tf.backend() as unknown as { fallbackCounts?: () => Record<string, number> };
  return b.fallbackCounts ? { ...b.fallbackCounts() } : {};
}

export function resetFallbackCounts(): void {
  const b = tf.backend() as unknown as { resetFallbackCounts?: () => void };
  b.resetFallbackCounts?.();
}

/** Backend details for the report fingerprint (BLAS, threads, device...). */
export function backendInfo(): Record<string, string> {
  const b = tf.backend() as unknown as { info?: () => Record<string, string> };
  return b.info ? b.info() : {};
}

/** The active backend's cuda library (typed, kernels/native/lib.ts), or undefined on any other backend. */
export function cudaLibrary(): CudaLib | undefined {
  const lib = (tf.backend() as unknown as { lib?: NativeLib }).lib;
  return lib?.kind === 'cuda' ? (lib as CudaLib) : undefined;
}
