/**
 * The result schema. Reports know nothing of models: a record is configuration + measurements.
 * Bump SCHEMA_VERSION on any incompatible change; readers refuse versions they do not know.
 * 2: failed runs are records (`failure`, accuracy null); a v1 reader would take them for kernel records.
 */
export const SCHEMA_VERSION = 2;
/** Versions readers accept: v1 is v2 without failed records. */
export const READABLE_SCHEMA_VERSIONS: readonly number[] = [1, 2];

export interface Fingerprint {
  gitSha: string;
  gitDirty: boolean;
  node: string;
  tfjs: string;
  backend: string;
  /** Backend-specific details (BLAS, threads, GPU driver, TF32...). */
  backendInfo: Record<string, string>;
  os: string;
  cpu: string;
  cores: number;
  memoryGiB: number;
  gpu: string | null;
  hostname: string;
}

export interface LatencyRecord {
  batch: number;
  length: number;
  medianMs: number;
  p10Ms: number;
  p90Ms: number;
  samples: number;
  tokensPerSec: number;
}

export interface NiahCellRecord {
  length: number;
  depth: number;
  score: number;
  examples: number;
  /** Exact match with the answers generated token by token (KV cache, or recomputing the prefix: models/decoder.ts). */
  generated?: number;
}

/** A kernel-suite measurement: one operator call pattern on one backend. */
export interface KernelMetrics {
  /** Layout builder name (dense, window, bigbird, random). */
  layout: string;
  impl: string;
  /** Operand precision of the fused forward; absent = fp32. */
  precision?: 'fp32' | 'tf32' | 'bf16';
  /** The bf16 forward kernel that ran (cuda; the default picks one by the layout's row length). */
  variant?: string;
  /** backward: the gradient kernel alone (2.5x the forward's FLOPs); forward+backward: autodiff through the op (3.5x). */
  pass: 'forward' | 'forward+backward' | 'backward';
  /** Listed blocks / all blocks. */
  density: number;
  /** Effective FLOPs per call: 4*B*H*Lq*Lk*D*density forward, x3.5 with the backward (FlashAttention's 2.5x). */
  flops: number;
  gflops: number;
  /** Dense-layout median / this median, same backend, impl, pass and L (null for dense itself or when dense was not run). */
  speedupVsDense: number | null;
}

/** A tabular ICL measurement: one model on one table, fold and seed. */
export interface TabularMetrics {
  table: string;
  fold: number;
  folds: number;
  rocAuc: number;
  logLoss: number;
  nTrain: number;
  nTest: number;
  nFeatures: number;
  nClasses: number;
  /** Fit + predict wall time (ICL models: one forward per ensemble member). */
  seconds: number;
  /** ICL-safety probe: largest change of another test row's probabilities when one test row changes (null = not probed). */
  iclSafetyMaxDelta: number | null;
  /** A tuned baseline's choice (xgboost-tuned: the winning configuration, its round count and validation log-loss). */
  tuned?: Record<string, number>;
}

/** Width scaling: the row-interaction stage at one feature count. */
export interface WidthMetrics {
  features: number;
  rows: number;
  rowAttention: string;
  /** Peak tensor bytes of one forward of the stage (tfjs profiler). */
  peakBytes: number;
  /** Listed blocks / all blocks of the row layout at this width. */
  density: number;
}

export interface Metrics {
  /** Fraction of labelled test positions predicted right (MQAR) or exact-match score (NIAH); null for kernel records. */
  accuracy: number | null;
  /** Labelled positions behind `accuracy` (MQAR) or examples (NIAH). */
  accuracyDenominator: number;
  /** Fraction of test examples whose every labelled position is right. */
  exactMatch: number;
  examples: number;
  finalTrainLoss: number;
  bestValidAccuracy: number;
  trainSteps: number;
  stoppedBy: string;
  trainSeconds: number;
  trainTokensPerSec: number;
  /** Wall time of one training step (forward, backward, AdamW) at the training batch size, timed after the run (suites/train.ts measureTrainStep). */
  trainStep?: Timing & { batch: number; concurrentRuns?: number };
  peakMemoryBytes: number;
  latency: LatencyRecord[];
  niahGrid?: NiahCellRecord[];
  /** NIAH, in-range lengths: exact match with the answers generated token by token (next to exactMatch, teacher-forced). */
  generatedExactMatch?: number;
  /** NIAH mean over lengths above the training length (null when there are none). */
  extrapolationScore?: number | null;
  lossCurve: [number, number][];
  validCurve: [number, number][];
  /** Per test example, in test-set order: labelled positions right and labelled positions (base64 of little-endian uint16), for compare's paired test. */
  perExample?: { correct: string; total: string };
  /** Score on an external Zoology-format evaluation file (bench --eval-file). */
  evalFile?: { path: string; sha256: string; accuracy: number; labelled: number; exactMatch: number; examples: number; seqLen: number };
  /** Grid / masked-denoising tasks: accuracy is by iterative unmasking over `steps`; oneShot predicts every masked token at once. */
  denoise?: { steps: number; oneShotAccuracy: number; stepMs: number[] };
  kernel?: KernelMetrics;
  grid?: GridMetrics;
  sparsify?: SparsifyMetrics;
  decode?: DecodeMetrics;
  tabular?: TabularMetrics;
  width?: WidthMetrics;
}

/** A grid case (suites/patterns.ts): a bidirectional checkpoint denoising through a head-pattern method. */
export interface GridMetrics {
  checkpoint: string;
  checkpointSha256: string;
  /** A grid method (kernels/grid-methods.ts) or 'dense', the reference. */
  method: string;
  budget: number | null;
  block: number;
  /** Denoising steps of a generation. */
  steps: number;
  /** Mean listed blocks / all blocks over inputs, layers and steps of the scoring (1 for full-attention steps). */
  density: number;
  calibrationSeconds: number;
  /** One input: each step's time and the whole generation's, at the checkpoint's grid and the timing grids; speedup = dense / this (generation). */
  timings: { frames: number; height: number; width: number; tokens: number; stepMs: Timing[]; generation: Timing; speedup?: number }[];
  denseAccuracy: number | null;
  accuracyRatio: number | null;
  /** Listed blocks (row * blocks + col) of every head of every layer at the last step, for the first test input. */
  picture: { blocks: number; layers: number[][][] } | null;
}

/** A timed cost: median and spread over repetitions, in milliseconds. */
export interface Timing {
  medianMs: number;
  p10Ms: number;
  p90Ms: number;
  samples: number;
}

/** A sparsify case: a trained checkpoint attending through a layout selector at a budget (suites/sparsify.ts). */
export interface SparsifyMetrics {
  checkpoint: string;
  checkpointSha256: string;
  /** A selector (kernels/selectors) or 'dense', the reference. */
  method: string;
  budget: number;
  budgetMeaning: string;
  block: number;
  /** Length of the scored inputs and of the timed prefill. */
  length: number;
  precision?: string;
  /** Mean over layers, heads and test inputs: listed blocks / causal blocks (what the operator computes). */
  blockDensity: number;
  /** The same for allowed (query, key) pairs / causal pairs (what the method keeps). */
  pairDensity: number;
  /** [layer][head] means over the test inputs. */
  perHead: { blocks: number[][]; pairs: number[][] };
  /** Summed over layers, one input; null for dense. */
  selector: Timing | null;
  attention: Timing;
  /** The whole model forward (selection included) on one input. */
  prefill: Timing;
  /** The same three costs at each timing length (suite sparsify.timingLengths). */
  costs: { length: number; selector: Timing | null; attention: Timing; prefill: Timing }[];
  calibrationSeconds: number;
  /** Filled from the checkpoint's dense case when the report is written. */
  denseAccuracy: number | null;
  accuracyRatio: number | null;
  prefillSpeedup: number | null;
  attentionSpeedup: number | null;
  /** Selector time / the dense attention time it replaces. */
  selectorShare: number | null;
}

/**
 * A decode case (suites/decode.ts): a checkpoint decoding through a decode-time method at a budget
 * ('method'), or the decode attention kernel alone over a synthetic cache ('bandwidth').
 */
export interface DecodeMetrics {
  case: 'method' | 'bandwidth';
  checkpoint?: string;
  checkpointSha256?: string;
  /** A decode method (kernels/decode/methods.ts), or the kernel of a bandwidth case. */
  method: string;
  /** Tokens read per head per step; mustafar: the pruned fraction; 0 for dense. */
  budget: number;
  budgetMeaning: string;
  format: string;
  /** Test length (method) or context length (bandwidth). */
  length: number;
  /** NIAH answers generated token by token (fed back) / teacher-forced through the same cache; null for bandwidth cases. */
  generatedExactMatch: number | null;
  teacherExactMatch: number | null;
  examples: number;
  answerTokens: number;
  /** Cache bytes at the test length, batch 1, all layers (what the method must hold; bandwidth: bytes read). */
  kvBytes: number;
  kvBytesDense: number;
  /** Bytes one step reads / the dense cache's bytes at the test length (selection statistics included). */
  bytesReadFraction: number | null;
  /** Prefill of the first test prompt + its first token, batch 1. */
  ttft: Timing | null;
  /** The same for a seeded random prompt at every latency length (batch 1). */
  ttftByLength?: { length: number; ttft: Timing }[];
  /** Per context length and batch: one decode step (next token on the host). */
  latency: { length: number; batch: number; step: Timing; tokensPerSec: number; kvBytes: number }[];
  calibrationSeconds: number;
  streamingHeads?: boolean[][];
  labelChannels?: number[][][];
  /** Filled from the checkpoint's dense case when the report is written. */
  denseExactMatch: number | null;
  accuracyRatio: number | null;
  bandwidth?: { batch: number; heads: number; headDim: number; bytesRead: number; time: Timing; gbPerSec: number; copyGbPerSec: number; fractionOfCopy: number; splitKv: boolean };
}

/** Why a run produced no result. A failed run is a record (so it is reported, compared, resumed), never a number. */
export interface RunFailure {
  /** nonFinite: the training loss became NaN or infinite. */
  reason: 'nonFinite';
  /** Training step at which it was detected. */
  step: number;
  message: string;
}

export interface RunRecord {
  schemaVersion: number;
  runId: string;
  suite: string;
  label: string;
  task: { name: string; params: Record<string, unknown> };
  model: { name: string; size: string; params: Record<string, unknown>; parameterCount: number };
  train: Record<string, unknown>;
  optimizer: Record<string, unknown>;
  latencyConfig: Record<string, unknown>;
  seed: number;
  backend: string;
  fingerprint: Fingerprint;
  gitSha: string;
  metrics: Metrics;
  diagnostics: Record<string, number[]>;
  fallbackKernels: { total: number; byKernel: Record<string, number> };
  wallTimeSeconds: number;
  /** Set when the run failed: metrics.accuracy is then null and metrics.stoppedBy names the reason. */
  failure?: RunFailure;
  startedAt: string;
  finishedAt: string;
}

/**
 * A queued run (bench --queue) that produced no record: every attempt crashed (a bug, an out-of-memory
 * kill) or it cannot run (its suite is not on the worker). Listed in the report, never averaged.
 */
export interface FailedJob {
  runId: string;
  label: string;
  suite: string;
  /** Attempts made (each on whichever worker took it). */
  attempts: number;
  /** The last attempt's error, as the worker saw it. */
  message: string;
  failedAt: string;
}

export interface Report {
  schemaVersion: number;
  suite: string;
  createdAt: string;
  fingerprint: Fingerprint;
  records: RunRecord[];
  /** Queued runs without a record (absent when there are none). */
  failedJobs?: FailedJob[];
}

/**
 * Reference numbers from another library at a kernels suite's shapes (scripts/device/anchors.py:
 * PyTorch SDPA and FlexAttention, timed in the same device call as a kernels report). Not run
 * records: no seed, no fingerprint beyond the device and library version.
 */
export interface AnchorRow {
  what: string;
  dtype: string;
  L: number;
  B: number;
  ms: number;
  density: number;
  tflops: number;
}

export interface AnchorTable {
  device: string;
  torch: string;
  rows: AnchorRow[];
}
