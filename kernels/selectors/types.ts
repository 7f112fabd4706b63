/**
 * Layout selectors: dynamic sparse-attention methods that choose, per input and per head at prefill,
 * which blocks (or which key columns inside blocks) the shared operator computes. A selector never
 * attends itself: it returns a layout (and, for permuting methods, a key order) for the one operator.
 */
import type * as tf from '@tensorflow/tfjs-core';
import type { AnyLayout } from '../device-layout.js';
import type { Precision } from '../precision.js';

export const SELECTOR_NAMES = [
  'oracle', 'a-shape', 'window', 'minference', 'flexprefill', 'anchor', 'pbs', 'seer', 'double-sparsity', 'moa',
] as const;
export type SelectorName = (typeof SELECTOR_NAMES)[number];

/** One input's queries and keys of one layer, after position encoding: [H, L, D]. */
export interface HeadInputs {
  q: tf.Tensor3D;
  k: tf.Tensor3D;
  layer: number;
}

export interface SelectorContext {
  /** Block size of the layouts (Bq = Bk). */
  block: number;
  /** The model's score scale (1/sqrt(D)). */
  scale: number;
  /** The operator's arithmetic for the selected attention (kernels/precision.ts; default: the backend's). */
  precision?: Precision;
}

export interface Selection {
  /** A host layout, or a device layout a selector kernel wrote (the caller disposes it after use). */
  layout: AnyLayout;
  /**
   * Permuting methods (PBS-Attn): per head, the original index of the key at each position [H * L];
   * the caller gathers k and v in this order before the operator. Queries keep their order, so the
   * operator's output needs no un-permutation.
   */
  keyOrder?: Int32Array;
}

/** What an offline calibration step learned (MInference's per-head patterns, Double Sparsity's channels, SeerAttention's gates). JSON, so it can be cached. */
export type CalibrationState = Record<string, unknown>;

export interface Selector {
  readonly name: SelectorName;
  /** What `budget` means for this method (reports show it next to the achieved density). */
  readonly budgetMeaning: string;
  /** Offline step on calibration inputs (per layer, lists of [H, L, D] q/k); returns JSON state. */
  calibrate?(samples: HeadInputs[][], budget: number, ctx: SelectorContext): CalibrationState;
  /** The layout for one input and layer; budget in (0, 1]. */
  select(x: HeadInputs, budget: number, ctx: SelectorContext, state?: CalibrationState): Selection;
}
