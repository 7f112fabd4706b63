/** tf.profile's kernel list summed by kernel name, costliest first (the backends synchronise after each kernel). */
import * as tf from '@tensorflow/tfjs-core';

type ProfileInfo = Awaited<ReturnType<typeof tf.profile>>;

export interface KernelTotal {
  name: string;
  ms: number;
  count: number;
}

export function kernelTotals(info: ProfileInfo): KernelTotal[] {
  const by = new Map<string, KernelTotal>();
  for (const k of info.kernels) {
    const e = by.get(k.name) ?? { name: k.name, ms: 0, count: 0 };
    e.ms += Number(k.kernelTimeMs) || 0;
    e.count++;
    by.set(k.name, e);
  }
  return [...by.values()].sort((a, b) => b.ms - a.ms);
}

/** The `top` costliest kernels, one line each: name, total ms, calls. */
export function formatKernelTotals(totals: KernelTotal[], top = 25): string {
  return totals.slice(0, top).map((e) => `  ${e.name.padEnd(28)} ${e.ms.toFixed(1).padStart(9)} ms  x${e.count}`).join('\n');
}
