import type { TrainBudget } from './train.js';
import type { OptimizerConfig } from './optimizer.js';
import type { LatencyConfig } from './latency.js';

/** One block of a suite file: a task, the models to try on it, and the sweep axes. */
export interface SuiteEntry {
  task: string;
  taskParams: Record<string, unknown>;
  models: { name: string; size?: string; params: Record<string, unknown> }[];
  train: Partial<TrainBudget>;
  optimizer: Partial<OptimizerConfig>;
  latency: Partial<LatencyConfig>;
  /** Start every model of the entry from a saved model's weights (bench --save-models output; same model config). */
  init?: string;
  /** Cartesian sweep: keys "task.X", "model.X" or "optimizer.X" -> list of values. */
  sweep?: Record<string, unknown[]>;
}

export interface SuiteFile {
  name: string;
  description: string;
  /** 'train' (default): task x model runs; 'kernels': operator latency (see suites/kernels.ts). */
  kind?: 'train' | 'kernels' | 'tabular' | 'sparsify' | 'decode' | 'grid';
  seeds: number[];
  entries: SuiteEntry[];
  kernels?: import('./kernels.js').KernelsConfig;
  /** How it was named when loaded (a suite name or a file path), so worker processes load the same one. */
  source?: string;
  tabular?: import('./tabular.js').TabularConfig;
  sparsify?: import('./sparsify.js').SparsifyConfig;
  decode?: import('./decode.js').DecodeConfig;
  grid?: import('./patterns.js').GridSuiteConfig;
}

/** A fully expanded run: everything that determines its result (its hash is the run id). */
export interface RunConfig {
  suite: string;
  task: { name: string; params: Record<string, unknown> };
  model: { name: string; size: string; params: Record<string, unknown> };
  train: TrainBudget;
  optimizer: OptimizerConfig;
  latency: LatencyConfig;
  seed: number;
  backend: string;
  /** Saved model whose weights the run starts from (the entry's init). */
  init?: string;
}
