/**
 * XGBoost, the gradient-boosted-tree baseline every tabular ICL paper measures itself against,
 * through its C API (libxgboost; Debian: libxgboost-dev) bound with koffi, as the native backend
 * binds its own library. Two variants:
 * - `xgboost`: the library's defaults (eta 0.3, max_depth 6, ...) with 100 rounds (the scikit-learn
 *   wrapper's n_estimators default);
 * - `xgboost-tuned`: a seeded random search of `configs` configurations over TabArena's XGBoost
 *   space, each with early stopping on an inner stratified validation split (20% of the train rows),
 *   ranked by validation log-loss; the winner is refitted on all train rows with its best round count.
 * Features are the suite's preprocessed ones (the same rows every model sees). Single-threaded by
 * default (TABRECALL_THREADS), which keeps results bit-identical run to run.
 */
import koffi from 'koffi';
import { Rng } from '../../core/rng.js';
import { stratifiedFolds } from '../../datasets/tabular/splits.js';
import type { IclTask } from '../../datasets/tabular/types.js';
import type { TabularModel } from './types.js';

type Handle = unknown;
interface XgbLib {
  version: string;
  XGBGetLastError(): string;
  XGDMatrixCreateFromMat(data: Float32Array, nrow: number, ncol: number, missing: number, out: Handle[]): number;
  XGDMatrixSetFloatInfo(h: Handle, field: string, data: Float32Array, len: number): number;
  XGDMatrixFree(h: Handle): number;
  XGBoosterCreate(dmats: Handle[], len: number, out: Handle[]): number;
  XGBoosterSetParam(h: Handle, name: string, value: string): number;
  XGBoosterUpdateOneIter(h: Handle, iter: number, dtrain: Handle): number;
  XGBoosterEvalOneIter(h: Handle, iter: number, dmats: Handle[], names: string[], len: number, out: (string | null)[]): number;
  XGBoosterPredict(h: Handle, dmat: Handle, mask: number, ntreeLimit: number, training: number, outLen: number[], out: unknown[]): number;
  XGBoosterFree(h: Handle): number;
}

const CANDIDATES = ['libxgboost.so', 'libxgboost.so.0', '/usr/lib/x86_64-linux-gnu/libxgboost.so', '/usr/lib/aarch64-linux-gnu/libxgboost.so', '/usr/local/lib/libxgboost.so', 'libxgboost.dylib'];
let loaded: { lib: XgbLib } | { error: string } | undefined;

/** The library, or why it is not here (one line, for the suite to print when it skips the model). */
export function xgboostLibrary(): { lib: XgbLib } | { error: string } {
  if (loaded) return loaded;
  const paths = process.env.TABRECALL_XGBOOST_LIB ? [process.env.TABRECALL_XGBOOST_LIB] : CANDIDATES;
  const tried: string[] = [];
  for (const p of paths) {
    let k: ReturnType<typeof koffi.load>;
    try {
      k = koffi.load(p);
    } catch (e) {
      tried.push(p);
      continue;
    }
    const major = [0], minor = [0], patch = [0];
    k.func('void XGBoostVersion(_Out_ int *major, _Out_ int *minor, _Out_ int *patch)')(major, minor, patch);
    const f = (proto: string) => k.func(proto);
    const lib: XgbLib = {
      version: `${major[0]}.${minor[0]}.${patch[0]}`,
      XGBGetLastError: f('const char *XGBGetLastError()') as XgbLib['XGBGetLastError'],
      XGDMatrixCreateFromMat: f('int XGDMatrixCreateFromMat(const float *data, uint64_t nrow, uint64_t ncol, float missing, _Out_ void **out)') as XgbLib['XGDMatrixCreateFromMat'],
      XGDMatrixSetFloatInfo: f('int XGDMatrixSetFloatInfo(void *h, const char *field, const float *data, uint64_t len)') as XgbLib['XGDMatrixSetFloatInfo'],
      XGDMatrixFree: f('int XGDMatrixFree(void *h)') as XgbLib['XGDMatrixFree'],
      XGBoosterCreate: f('int XGBoosterCreate(void **dmats, uint64_t len, _Out_ void **out)') as XgbLib['XGBoosterCreate'],
      XGBoosterSetParam: f('int XGBoosterSetParam(void *h, const char *name, const char *value)') as XgbLib['XGBoosterSetParam'],
      XGBoosterUpdateOneIter: f('int XGBoosterUpdateOneIter(void *h, int iter, void *dtrain)') as XgbLib['XGBoosterUpdateOneIter'],
      XGBoosterEvalOneIter: f('int XGBoosterEvalOneIter(void *h, int iter, void **dmats, const char **names, uint64_t len, _Out_ const char **out)') as XgbLib['XGBoosterEvalOneIter'],
      XGBoosterPredict: f('int XGBoosterPredict(void *h, void *dmat, int mask, unsigned int ntree, int training, _Out_ uint64_t *len, _Out_ void **out)') as XgbLib['XGBoosterPredict'],
      XGBoosterFree: f('int XGBoosterFree(void *h)') as XgbLib['XGBoosterFree'],
    };
    return (loaded = { lib });
  }
  return (loaded = { error: `libxgboost not found (tried ${tried.join(', ')}); install it (Debian: apt install libxgboost-dev) or set TABRECALL_XGBOOST_LIB to the library's path` });
}

function lib(): XgbLib {
  const l = xgboostLibrary();
  if ('error' in l) throw new Error(`xgboost: ${l.error}`);
  return l.lib;
}

function check(x: XgbLib, rc: number, what: string): void {
  if (rc !== 0) throw new Error(`xgboost: ${what} failed: ${x.XGBGetLastError()}`);
}

export interface XgbParams {
  eta: number;
  maxDepth: number;
  minChildWeight: number;
  subsample: number;
  colsampleBylevel: number;
  lambda: number;
  alpha: number;
}

/** The library's own defaults (what `xgboost` runs). */
export const XGB_DEFAULTS: XgbParams = { eta: 0.3, maxDepth: 6, minChildWeight: 1, subsample: 1, colsampleBylevel: 1, lambda: 1, alpha: 0 };

/** One draw from TabArena's XGBoost search space (log-uniform where it uses log scales). */
export function sampleXgbParams(rng: Rng): XgbParams {
  const logU = (lo: number, hi: number) => Math.exp(Math.log(lo) + rng.float() * (Math.log(hi) - Math.log(lo)));
  return {
    eta: logU(5e-3, 0.1), maxDepth: rng.int(4, 11), minChildWeight: logU(1e-3, 5), subsample: 0.6 + 0.4 * rng.float(),
    colsampleBylevel: 0.6 + 0.4 * rng.float(), lambda: logU(1e-3, 5), alpha: logU(1e-3, 5),
  };
}

class Matrix {
  readonly h: Handle;
  constructor(private readonly x: XgbLib, data: Float32Array, rows: number, cols: number, labels?: Int32Array) {
    const out: Handle[] = [null];
    check(x, x.XGDMatrixCreateFromMat(data, rows, cols, NaN, out), 'XGDMatrixCreateFromMat');
    this.h = out[0];
    if (labels) check(x, x.XGDMatrixSetFloatInfo(this.h, 'label', Float32Array.from(labels), labels.length), 'XGDMatrixSetFloatInfo');
  }
  free(): void {
    this.x.XGDMatrixFree(this.h);
  }
}

interface FitOptions { params: XgbParams; rounds: number; seed: number; nClasses: number; threads: number }

class Booster {
  readonly h: Handle;
  constructor(private readonly x: XgbLib, train: Matrix, o: FitOptions, evalOn: Matrix[] = []) {
    const out: Handle[] = [null];
    check(x, x.XGBoosterCreate([train.h, ...evalOn.map((m) => m.h)], 1 + evalOn.length, out), 'XGBoosterCreate');
    this.h = out[0];
    const p = o.params;
    const set: [string, string][] = [
      ['objective', o.nClasses === 2 ? 'binary:logistic' : 'multi:softprob'], ...(o.nClasses > 2 ? [['num_class', String(o.nClasses)] as [string, string]] : []),
      ['eval_metric', o.nClasses === 2 ? 'logloss' : 'mlogloss'], ['tree_method', 'hist'], ['seed', String(o.seed)], ['nthread', String(o.threads)], ['verbosity', '0'],
      ['eta', String(p.eta)], ['max_depth', String(p.maxDepth)], ['min_child_weight', String(p.minChildWeight)], ['subsample', String(p.subsample)],
      ['colsample_bylevel', String(p.colsampleBylevel)], ['lambda', String(p.lambda)], ['alpha', String(p.alpha)],
    ];
    for (const [k, v] of set) check(x, x.XGBoosterSetParam(this.h, k, v), `XGBoosterSetParam(${k})`);
  }
  update(iter: number, train: Matrix): void {
    check(this.x, this.x.XGBoosterUpdateOneIter(this.h, iter, train.h), 'XGBoosterUpdateOneIter');
  }
  /** The validation loss after round `iter` (the library's own metric). */
  evalLoss(iter: number, m: Matrix): number {
    const out: (string | null)[] = [null];
    check(this.x, this.x.XGBoosterEvalOneIter(this.h, iter, [m.h], ['valid'], 1, out), 'XGBoosterEvalOneIter');
    const v = Number(/valid-m?logloss:([-+0-9.eE]+|nan|inf)/.exec(out[0] ?? '')?.[1]);
    if (!Number.isFinite(v)) throw new Error(`xgboost: validation loss unreadable: ${JSON.stringify(out[0])}`);
    return v;
  }
  predict(m: Matrix, rows: number, C: number): Float32Array {
    const len = [0], out: unknown[] = [null];
    check(this.x, this.x.XGBoosterPredict(this.h, m.h, 0, 0, 0, len, out), 'XGBoosterPredict');
    const n = Number(len[0]);
    const raw = koffi.decode(out[0], 'float', n) as number[];
    const p = new Float32Array(rows * C);
    if (C === 2) {
      if (n !== rows) throw new Error(`xgboost: ${n} predictions for ${rows} rows`);
      for (let i = 0; i < rows; i++) {
        p[i * 2 + 1] = raw[i]!;
        p[i * 2] = 1 - raw[i]!;
      }
    } else {
      if (n !== rows * C) throw new Error(`xgboost: ${n} predictions for ${rows} rows x ${C} classes`);
      p.set(raw);
    }
    return p;
  }
  free(): void {
    this.x.XGBoosterFree(this.h);
  }
}

/** Fit on the train rows for `rounds` rounds, then the test rows' probabilities [nTest, nClasses]. */
function fitPredict(x: XgbLib, t: IclTask, o: FitOptions): Float32Array {
  const train = new Matrix(x, t.xTrain, t.nTrain, t.nFeatures, t.yTrain);
  const test = new Matrix(x, t.xTest, t.nTest, t.nFeatures);
  const b = new Booster(x, train, o);
  try {
    for (let i = 0; i < o.rounds; i++) b.update(i, train);
    return b.predict(test, t.nTest, o.nClasses);
  } finally {
    b.free();
    train.free();
    test.free();
  }
}

export interface TunedResult { params: XgbParams; rounds: number; validLoss: number }

/**
 * Random search with early stopping (patience rounds without a better validation loss, at most
 * maxRounds): the configuration and round count with the lowest validation loss.
 */
export function tuneXgb(x: XgbLib, t: IclTask, o: { configs: number; seed: number; maxRounds: number; patience: number; threads: number }): TunedResult {
  // Inner split: one of five stratified folds of the train rows is the validation set.
  const folds = stratifiedFolds(t.yTrain, 5, Rng.derive(o.seed, 'xgboost/inner'));
  const inValid = new Set(folds[0]!);
  const tr = [...t.yTrain.keys()].filter((i) => !inValid.has(i)), va = folds[0]!;
  const rows = (ids: number[]) => {
    const out = new Float32Array(ids.length * t.nFeatures);
    ids.forEach((r, i) => out.set(t.xTrain.subarray(r * t.nFeatures, (r + 1) * t.nFeatures), i * t.nFeatures));
    return out;
  };
  const train = new Matrix(x, rows(tr), tr.length, t.nFeatures, Int32Array.from(tr, (i) => t.yTrain[i]!));
  const valid = new Matrix(x, rows(va), va.length, t.nFeatures, Int32Array.from(va, (i) => t.yTrain[i]!));
  const rng = new Rng(Rng.derive(o.seed, 'xgboost/search'));
  let best: TunedResult | undefined;
  try {
    for (let c = 0; c < o.configs; c++) {
      const params = c === 0 ? XGB_DEFAULTS : sampleXgbParams(rng); // the defaults are one candidate
      const b = new Booster(x, train, { params, rounds: o.maxRounds, seed: o.seed, nClasses: t.nClasses, threads: o.threads }, [valid]);
      try {
        let bestLoss = Infinity, bestRounds = 0;
        for (let i = 0; i < o.maxRounds && i - bestRounds < o.patience; i++) {
          b.update(i, train);
          const loss = b.evalLoss(i, valid);
          if (loss < bestLoss - 1e-12) {
            bestLoss = loss;
            bestRounds = i + 1;
          }
        }
        if (!best || bestLoss < best.validLoss) best = { params, rounds: bestRounds, validLoss: bestLoss };
      } finally {
        b.free();
      }
    }
  } finally {
    train.free();
    valid.free();
  }
  return best!;
}

const threads = (): number => Math.max(1, Number(process.env.TABRECALL_THREADS ?? 1) || 1);

export class XGBoost implements TabularModel {
  readonly parameterCount = 0;
  /** The tuned variant's choice on the last task (recorded with the run). */
  lastChoice: TunedResult | undefined;
  constructor(readonly name: string, private readonly o: { seed: number; tuned: false; rounds: number } | { seed: number; tuned: true; configs: number; maxRounds: number; patience: number }) {}

  async predictProba(t: IclTask): Promise<Float32Array> {
    const x = lib();
    const n = threads();
    if (!this.o.tuned) return fitPredict(x, t, { params: XGB_DEFAULTS, rounds: this.o.rounds, seed: this.o.seed, nClasses: t.nClasses, threads: n });
    const choice = tuneXgb(x, t, { configs: this.o.configs, seed: this.o.seed, maxRounds: this.o.maxRounds, patience: this.o.patience, threads: n });
    this.lastChoice = choice;
    return fitPredict(x, t, { params: choice.params, rounds: Math.max(1, choice.rounds), seed: this.o.seed, nClasses: t.nClasses, threads: n });
  }
}
