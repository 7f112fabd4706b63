/**
 * Classical baselines on the same ICL tasks (fit on the train rows, predict the test rows):
 * - random forest: ml-random-forest (mljs), probabilities = share of trees voting each class;
 * - logistic regression: multinomial, L2 penalty as scikit-learn's default (C = 1, i.e. 1/2 |W|^2
 *   added to the summed log-loss), fitted to convergence by L-BFGS. Written here because the npm
 *   package (ml-logistic-regression) is one-vs-rest gradient descent without intercept, penalty or
 *   probabilities;
 * - k nearest neighbours: Euclidean on the preprocessed features, probabilities = neighbour shares
 *   (ml-knn gives labels only, which leaves ROC-AUC and log-loss undefined).
 */
import { RandomForestClassifier } from 'ml-random-forest';
import type { IclTask } from '../../datasets/tabular/types.js';
import type { TabularModel } from './types.js';

export class RandomForest implements TabularModel {
  readonly parameterCount = 0;
  constructor(readonly name: string, private readonly o: { trees: number; seed: number }) {}

  async predictProba(t: IclTask): Promise<Float32Array> {
    const F = t.nFeatures;
    const rows = (x: Float32Array, n: number): number[][] => Array.from({ length: n }, (_, i) => Array.from(x.subarray(i * F, (i + 1) * F)));
    const rf = new RandomForestClassifier({ nEstimators: this.o.trees, seed: this.o.seed, maxFeatures: Math.max(1, Math.round(Math.sqrt(F))) / F, replacement: true, useSampleBagging: true });
    rf.train(rows(t.xTrain, t.nTrain), Array.from(t.yTrain));
    const test = rows(t.xTest, t.nTest);
    const out = new Float32Array(t.nTest * t.nClasses);
    for (let k = 0; k < t.nClasses; k++) {
      const p = rf.predictProbability(test, k) as number[];
      p.forEach((v, i) => (out[i * t.nClasses + k] = v));
    }
    return normalizeRows(out, t.nClasses);
  }
}

export class KNearest implements TabularModel {
  readonly parameterCount = 0;
  constructor(readonly name: string, private readonly k: number) {}

  async predictProba(t: IclTask): Promise<Float32Array> {
    const F = t.nFeatures;
    const k = Math.min(this.k, t.nTrain);
    const out = new Float32Array(t.nTest * t.nClasses);
    const d = new Float64Array(t.nTrain);
    const idx = new Int32Array(t.nTrain);
    for (let i = 0; i < t.nTest; i++) {
      for (let j = 0; j < t.nTrain; j++) {
        let s = 0;
        for (let f = 0; f < F; f++) s += (t.xTest[i * F + f]! - t.xTrain[j * F + f]!) ** 2;
        d[j] = s;
        idx[j] = j;
      }
      // Ties broken by train-row index: deterministic.
      const order = Array.from(idx).sort((a, b) => d[a]! - d[b]! || a - b);
      for (let r = 0; r < k; r++) out[i * t.nClasses + t.yTrain[order[r]!]!] += 1 / k;
    }
    return out;
  }
}

export class LogisticRegression implements TabularModel {
  readonly parameterCount = 0;
  constructor(readonly name: string, private readonly o: { C: number; maxIter: number; tol: number }) {}

  async predictProba(t: IclTask): Promise<Float32Array> {
    const { nFeatures: F, nClasses: K, nTrain: n } = t;
    const P = (F + 1) * K; // weights [K, F] then intercepts [K]
    const scores = (w: Float64Array, x: Float32Array, rows: number): Float64Array => {
      const s = new Float64Array(rows * K);
      for (let i = 0; i < rows; i++) {
        for (let k = 0; k < K; k++) {
          let z = w[K * F + k]!;
          for (let f = 0; f < F; f++) z += w[k * F + f]! * x[i * F + f]!;
          s[i * K + k] = z;
        }
        let m = -Infinity;
        for (let k = 0; k < K; k++) m = Math.max(m, s[i * K + k]!);
        let z = 0;
        for (let k = 0; k < K; k++) z += Math.exp(s[i * K + k]! - m);
        for (let k = 0; k < K; k++) s[i * K + k] = Math.exp(s[i * K + k]! - m) / z;
      }
      return s;
    };
    // Objective: C * sum_i -log p(y_i) + 1/2 |W|^2 (intercepts unpenalised), as scikit-learn.
    const objective = (w: Float64Array, g: Float64Array): number => {
      const p = scores(w, t.xTrain, n);
      g.fill(0);
      let f = 0;
      for (let i = 0; i < n; i++) {
        const y = t.yTrain[i]!;
        f -= this.o.C * Math.log(Math.max(p[i * K + y]!, 1e-300));
        for (let k = 0; k < K; k++) {
          const r = this.o.C * (p[i * K + k]! - (k === y ? 1 : 0));
          for (let ff = 0; ff < F; ff++) g[k * F + ff] += r * t.xTrain[i * F + ff]!;
          g[K * F + k] += r;
        }
      }
      for (let j = 0; j < K * F; j++) {
        f += 0.5 * w[j]! ** 2;
        g[j] += w[j]!;
      }
      return f;
    };
    const w = lbfgs(objective, new Float64Array(P), this.o.maxIter, this.o.tol);
    return Float32Array.from(scores(w, t.xTest, t.nTest));
  }
}

/** Limited-memory BFGS (m = 10) with a backtracking Armijo line search; stops at |g|_inf <= tol. */
export function lbfgs(fg: (w: Float64Array, g: Float64Array) => number, w0: Float64Array, maxIter: number, tol: number): Float64Array {
  const P = w0.length;
  const m = 10;
  let w = Float64Array.from(w0);
  let g = new Float64Array(P);
  let f = fg(w, g);
  const S: Float64Array[] = [];
  const Y: Float64Array[] = [];
  const dot = (a: Float64Array, b: Float64Array): number => a.reduce((s, v, i) => s + v * b[i]!, 0);
  for (let it = 0; it < maxIter; it++) {
    if (g.reduce((s, v) => Math.max(s, Math.abs(v)), 0) <= tol) break;
    // Two-loop recursion for the direction -H g.
    const q = Float64Array.from(g);
    const alpha: number[] = [];
    for (let j = S.length - 1; j >= 0; j--) {
      const a = dot(S[j]!, q) / dot(Y[j]!, S[j]!);
      alpha[j] = a;
      for (let i = 0; i < P; i++) q[i] -= a * Y[j]![i]!;
    }
    const gamma = S.length ? dot(S[S.length - 1]!, Y[Y.length - 1]!) / dot(Y[Y.length - 1]!, Y[Y.length - 1]!) : 1 / Math.max(1, Math.sqrt(dot(g, g)));
    for (let i = 0; i < P; i++) q[i] *= gamma;
    for (let j = 0; j < S.length; j++) {
      const b = dot(Y[j]!, q) / dot(Y[j]!, S[j]!);
      for (let i = 0; i < P; i++) q[i] += S[j]![i]! * (alpha[j]! - b);
    }
    const d = q.map((v) => -v);
    let gd = dot(g, d);
    if (gd >= 0) {
      // Not a descent direction: restart from steepest descent.
      S.length = 0;
      Y.length = 0;
      for (let i = 0; i < P; i++) d[i] = -g[i]!;
      gd = dot(g, d);
    }
    let step = 1;
    const wn = new Float64Array(P);
    const gn = new Float64Array(P);
    let fn = Infinity;
    for (let ls = 0; ls < 40; ls++) {
      for (let i = 0; i < P; i++) wn[i] = w[i]! + step * d[i]!;
      fn = fg(wn, gn);
      if (fn <= f + 1e-4 * step * gd) break;
      step *= 0.5;
    }
    if (!(fn < f) && Math.abs(fn - f) < 1e-12 * Math.max(1, Math.abs(f))) break;
    const s = wn.map((v, i) => v - w[i]!);
    const y = gn.map((v, i) => v - g[i]!);
    if (dot(s, y) > 1e-10) {
      S.push(s);
      Y.push(y);
      if (S.length > m) {
        S.shift();
        Y.shift();
      }
    }
    w = Float64Array.from(wn);
    g = Float64Array.from(gn);
    if (Math.abs(f - fn) <= 1e-10 * Math.max(1, Math.abs(f))) {
      f = fn;
      break;
    }
    f = fn;
  }
  return w;
}

function normalizeRows(p: Float32Array, C: number): Float32Array {
  for (let i = 0; i < p.length / C; i++) {
    let s = 0;
    for (let k = 0; k < C; k++) s += p[i * C + k]!;
    for (let k = 0; k < C; k++) p[i * C + k] = s > 0 ? p[i * C + k]! / s : 1 / C;
  }
  return p;
}
