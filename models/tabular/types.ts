/** Tabular models at the boundary: anything that turns an ICL task into test-row class probabilities. */
import type { IclTask } from '../../datasets/tabular/types.js';

export interface TabularModel {
  readonly name: string;
  /** Learned parameters (0 for non-parametric baselines). */
  readonly parameterCount: number;
  /** Probabilities [nTest, nClasses], row-major; rows sum to 1. `fit` time is included (ICL: none). */
  predictProba(task: IclTask): Promise<Float32Array>;
  dispose?(): void;
}
