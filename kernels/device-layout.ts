/**
 * Layouts whose BSR arrays live in backend tensors: what the selector kernels (TrSelectBlocks) write on
 * the device, so a selected layout reaches the attention kernel without visiting the host. Only the
 * fused forward reads one directly; anything else (the generic path, densities, tests) reads it back
 * with readLayout, explicitly.
 */
import type * as tf from '@tensorflow/tfjs-core';
import type { BlockLayout } from './layout.js';

export interface DeviceLayout extends Omit<BlockLayout, 'rowPtr' | 'colIdx' | 'full' | 'mask'> {
  device: {
    /** int32 [H * (nQ + 1)] absolute offsets. */
    rowPtr: tf.Tensor1D;
    /** int32 [capacity]; entries past rowPtr's last offset are unused. */
    colIdx: tf.Tensor1D;
    /** bool [capacity]: 1 = full block. */
    full: tf.Tensor1D;
  };
}

export type AnyLayout = BlockLayout | DeviceLayout;

export const isDeviceLayout = (l: AnyLayout): l is DeviceLayout => 'device' in l;

/** The host form of a layout (a device layout's arrays copied back, trimmed to what rowPtr lists). */
export function readLayout(l: AnyLayout): BlockLayout {
  if (!isDeviceLayout(l)) return l;
  const rowPtr = l.device.rowPtr.dataSync() as Int32Array;
  const nnz = rowPtr[rowPtr.length - 1]!;
  const { device, ...shape } = l;
  return {
    ...shape, rowPtr: Int32Array.from(rowPtr),
    colIdx: Int32Array.from((device.colIdx.dataSync() as Int32Array).subarray(0, nnz)),
    full: Uint8Array.from((device.full.dataSync() as Uint8Array).subarray(0, nnz)),
  };
}

/** Frees a device layout's tensors (a host layout has none). */
export function disposeLayout(l: AnyLayout): void {
  if (isDeviceLayout(l)) for (const t of [l.device.rowPtr, l.device.colIdx, l.device.full]) t.dispose();
}

/** Waits until a device layout is written (one int32 read: the kernels run in order on one stream). */
export function layoutReady(l: AnyLayout): void {
  if (isDeviceLayout(l)) {
    const n = l.device.rowPtr.shape[0];
    (l.device.rowPtr.slice([n - 1], [1]) as tf.Tensor).dataSync();
  }
}
