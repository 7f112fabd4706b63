/** Tabular data at the boundaries: raw tables (as loaded), encoded ICL tasks (what models see). */

export interface NumericColumn {
  name: string;
  kind: 'numeric';
  /** NaN marks a missing cell. */
  values: Float64Array;
}

export interface CategoricalColumn {
  name: string;
  kind: 'categorical';
  /** Index into `categories`; -1 marks a missing cell. */
  codes: Int32Array;
  categories: string[];
}

export type FeatureColumn = NumericColumn | CategoricalColumn;

/** A classification table as loaded from CSV or Arrow: features plus one categorical target. */
export interface RawTable {
  name: string;
  rows: number;
  features: FeatureColumn[];
  target: { name: string; codes: Int32Array; classes: string[] };
}

/**
 * One in-context learning problem: preprocessed features (row-major float32, no NaN), labels of the
 * train rows 0..nClasses-1, and the test rows to predict. Models return test-row class probabilities.
 */
export interface IclTask {
  nFeatures: number;
  nClasses: number;
  xTrain: Float32Array;
  yTrain: Int32Array;
  xTest: Float32Array;
  nTrain: number;
  nTest: number;
}

/** Limits a consumer states; what happens past them is documented where they are applied. */
export interface TableLimits {
  /** More classes than this: 'error' (default for user files) or keep the most frequent ('top'). */
  maxClasses: number;
  classPolicy: 'error' | 'top';
  maxFeatures: number;
}

export const DEFAULT_LIMITS: TableLimits = { maxClasses: 10, classPolicy: 'error', maxFeatures: 2048 };
