/**
 * A scikit-learn-like classifier over an ICL checkpoint (the shipped Orion-MSP-style one by default)
 * or an exported .onnx file: `fit(X, y)` keeps the training rows (in-context learning fits nothing),
 * `predictProba(X)` / `predict(X)` read them as context. X is rows of cells (numbers, strings,
 * null for missing) or an apache-arrow Table; y the labels (numbers or strings). The rows go
 * through the suites' own reader and preprocessing (kinds inferred as for CSV, preprocessing fitted
 * on the train rows), so a split gives exactly what the tabular suite gives for it.
 */
import type { Table } from 'apache-arrow';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ParamError } from '../../core/params.js';
import { useBackend } from '../../kernels/backend.js';
import { rawTableFromCells } from '../../datasets/tabular/csv.js';
import { arrowCells } from '../../datasets/tabular/arrow.js';
import { fitPreprocessor, transformRows } from '../../datasets/tabular/preprocess.js';
import type { EnsembleTransform } from './icl-model.js';
import { OnnxIclModel } from './onnx.js';
import { iclModelFromCheckpoint, type IclModelName } from './registry.js';
import type { TabularModel } from './types.js';

export type Cell = number | string | boolean | null | undefined;
export type Label = number | string;

export interface TabularClassifierOptions {
  /** Checkpoint folder (default: the shipped models/checkpoints/orion-msp). */
  checkpoint?: string;
  /** Use this .onnx file instead of a checkpoint. */
  onnx?: string;
  /** Row interaction: 'orion-msp' (block-sparse, default) or 'dense-icl'. */
  model?: IclModelName;
  members?: number;
  maxFeatures?: number;
  transform?: EnsembleTransform;
  /** Compute backend, as bench's --backend (default 'auto': cuda > native > wasm > cpu). */
  backend?: string;
}

/** The shipped suites' ensemble settings (suites/tabular-quick.json). */
export const CLASSIFIER_DEFAULTS = { members: 4, maxFeatures: 100, transform: 'mixed' as EnsembleTransform };
export const SHIPPED_CHECKPOINT = join(dirname(fileURLToPath(import.meta.url)), '..', 'checkpoints', 'orion-msp');

const TARGET = '\u0000target';

/** X as feature columns of string cells (null = missing), and the column names. */
function columnsOf(X: Cell[][] | Table, field: string): { names: string[]; cols: (string | null)[][] } {
  const cell = (x: Cell): string | null => (x === null || x === undefined || (typeof x === 'number' && Number.isNaN(x)) ? null : String(x));
  if (!Array.isArray(X)) {
    const t = X as Table;
    if (typeof t.getChildAt !== 'function') throw new ParamError(field, 'must be an array of rows or an apache-arrow Table');
    return { names: t.schema.fields.map((f) => f.name), cols: t.schema.fields.map((_, c) => arrowCells(t, c)) };
  }
  if (X.length === 0) throw new ParamError(field, 'has no rows');
  const F = X[0]!.length;
  X.forEach((r, i) => {
    if (!Array.isArray(r) || r.length !== F) throw new ParamError(`${field}[${i}]`, `must be a row of ${F} cells like row 0, got ${Array.isArray(r) ? r.length : typeof r}`);
  });
  return { names: Array.from({ length: F }, (_, j) => `x${j}`), cols: Array.from({ length: F }, (_, j) => X.map((r) => cell(r[j]))) };
}

export class TabularClassifier {
  private model: TabularModel | undefined;
  private train: { names: string[]; cols: (string | null)[][]; y: string[] } | undefined;
  /** The labels seen by fit, in the order of predictProba's columns (natural sort, as the CSV reader). */
  classes: Label[] = [];
  private labelOf = new Map<string, Label>();

  constructor(private readonly o: TabularClassifierOptions = {}) {}

  fit(X: Cell[][] | Table, y: ArrayLike<Label>): this {
    const x = columnsOf(X, 'X');
    const n = x.cols[0]?.length ?? 0;
    if (y.length !== n) throw new ParamError('y', `has ${y.length} labels for ${n} rows of X`);
    const ys = Array.from(y, (v, i) => {
      if (v === null || v === undefined || (typeof v === 'number' && !Number.isFinite(v))) throw new ParamError(`y[${i}]`, `must be a label (number or string), got ${v}`);
      this.labelOf.set(String(v), v);
      return String(v);
    });
    this.train = { ...x, y: ys };
    const t = rawTableFromCells([...x.names, TARGET], (c) => (c < x.names.length ? x.cols[c]! : ys), n, { name: 'fit', target: TARGET });
    this.classes = t.target.classes.map((c) => this.labelOf.get(c)!);
    if (this.classes.length > 10) throw new ParamError('y', `${this.classes.length} classes; the ICL models' head takes at most 10`);
    return this;
  }

  /** Class probabilities [rows][classes] in the order of `classes`. */
  async predictProba(X: Cell[][] | Table): Promise<number[][]> {
    if (!this.train) throw new ParamError('TabularClassifier', 'call fit(X, y) before predicting');
    const tr = this.train;
    const x = columnsOf(X, 'X');
    if (x.names.length !== tr.names.length) throw new ParamError('X', `has ${x.names.length} columns; fit saw ${tr.names.length}`);
    const n = tr.y.length, m = x.cols[0]!.length;
    // One table of the train rows then the test rows; test rows carry a train label (never read).
    const table = rawTableFromCells([...tr.names, TARGET], (c) => (c < tr.names.length ? [...tr.cols[c]!, ...x.cols[c]!] : [...tr.y, ...new Array<string>(m).fill(tr.y[0]!)]), n + m, { name: 'predict', target: TARGET });
    const train = Array.from({ length: n }, (_, i) => i), test = Array.from({ length: m }, (_, i) => n + i);
    const pre = fitPreprocessor(table, train);
    const C = table.target.classes.length;
    if (!this.model) await useBackend(this.o.backend ?? 'auto');
    const p = await this.network().predictProba({
      nFeatures: table.features.length, nClasses: C, nTrain: n, nTest: m,
      xTrain: transformRows(table, pre, train), yTrain: Int32Array.from(train, (i) => table.target.codes[i]!), xTest: transformRows(table, pre, test),
    });
    return Array.from({ length: m }, (_, i) => Array.from(p.subarray(i * C, (i + 1) * C)));
  }

  async predict(X: Cell[][] | Table): Promise<Label[]> {
    return (await this.predictProba(X)).map((row) => this.classes[row.reduce((b, v, k) => (v > row[b]! ? k : b), 0)]!);
  }

  dispose(): void {
    this.model?.dispose?.();
    this.model = undefined;
  }

  private network(): TabularModel {
    if (this.model) return this.model;
    if (this.o.onnx) return (this.model = new OnnxIclModel(this.o.onnx));
    return (this.model = iclModelFromCheckpoint(this.o.model ?? 'orion-msp', this.o.checkpoint ?? SHIPPED_CHECKPOINT, {
      members: this.o.members ?? CLASSIFIER_DEFAULTS.members, maxFeatures: this.o.maxFeatures ?? CLASSIFIER_DEFAULTS.maxFeatures, transform: this.o.transform ?? CLASSIFIER_DEFAULTS.transform,
    }));
  }
}
