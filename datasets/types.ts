/** A batch of token sequences for a causal LM: labels are next-token targets, IGNORE where unscored. */
export interface TokenBatch {
  /** [n, seqLen] row-major token ids. */
  inputs: Int32Array;
  /** [n, seqLen] target ids, IGNORE_INDEX where the position is not scored. */
  labels: Int32Array;
  n: number;
  seqLen: number;
}

/** The label value of unscored positions (PyTorch's cross-entropy convention, as in Zoology). */
export const IGNORE_INDEX = -100;

/** A sequence task the harness can train on and evaluate: MQAR, NIAH. */
export interface SequenceTask {
  readonly name: string;
  readonly vocabSize: number;
  /** Training sequence length (inputs). */
  readonly seqLen: number;
  /** The task's parameters, exactly as they enter the run's configuration hash. */
  readonly params: Record<string, unknown>;
  /** A fresh training batch; `step` and the seed determine it fully. */
  trainBatch(step: number, batchSize: number): TokenBatch;
}
