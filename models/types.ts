import type * as tf from '@tensorflow/tfjs-core';

/** A causal sequence model: token ids in, per-position hidden states and a vocabulary head out. */
export interface SequenceModel {
  readonly name: string;
  /** The model's parameters, exactly as they enter the run's configuration hash. */
  readonly config: Record<string, unknown>;
  readonly maxLen: number;
  /** Trainable variables, in a fixed order (the optimizer's state follows it). */
  variables(): tf.Variable[];
  /** ids [B, L] int32 -> final hidden states [B, L, d]. */
  hidden(ids: tf.Tensor2D): tf.Tensor3D;
  /**
   * The forward of a training loss: hidden states plus the model's own terms of the objective
   * (Sparsifiner's distillation), when it has any. Absent: hidden() alone.
   */
  hiddenWithAux?(ids: tf.Tensor2D): { h: tf.Tensor3D; aux?: tf.Scalar };
  /** Forward passes between setTraining(true) and setTraining(false) are training passes (the optimizer step's). */
  setTraining?(on: boolean): void;
  /** Variables the model updates without gradients (Routing Transformer's centroids): saved and copied with the weights, never given to the optimizer. */
  state?(): tf.Variable[];
  /** hidden rows [N, d] -> logits [N, vocab]. */
  head(h: tf.Tensor2D): tf.Tensor2D;
  /** Extra per-run measurements the model wants reported (e.g. SeqBoat's activation rates). */
  diagnostics?(): Record<string, number[]>;
  /** Start measuring diagnostics afresh (the runner calls it before the test evaluation). */
  resetDiagnostics?(): void;
  dispose(): void;
}

export interface ModelContext {
  vocabSize: number;
  maxLen: number;
  seed: number;
}

export type ModelFactory = (params: Record<string, unknown>, ctx: ModelContext) => SequenceModel;
