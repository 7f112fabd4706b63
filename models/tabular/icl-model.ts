/**
 * An IclNetwork as a TabularModel: inference-time ensemble over cyclic feature shifts and cyclic class
 * shifts (Orion-MSP/TabICL), averaging softmax(logits / temperature) after undoing the class shift.
 * Large tables run in pieces: members are batched while they fit a cell budget, and test rows are
 * chunked (each chunk with all train rows), which the split attention makes exact.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { IclTask } from '../../datasets/tabular/types.js';
import type { IclNetwork } from './icl-network.js';
import type { TabularModel } from './types.js';
import { Rng } from '../../core/rng.js';

export interface EnsembleOptions {
  members: number;
  temperature: number;
  /** Cells (rows x features x members) per forward call. */
  cellBudget: number;
  /**
   * Tables wider than this: each member reads its own random subset of this many features (in table
   * order; TabPFN's policy for tables wider than its prior), drawn from a fixed seed and the member
   * index, never from the rows. 0: every member reads all features.
   */
  maxFeatures: number;
  /**
   * 'mixed': odd members read the features through a quantile-normal transform fitted on the train
   * rows (TabPFN's per-member preprocessing variety), so skewed and heavy-tailed real columns look
   * like the prior's near-normal ones; 'quantile': every member does; 'robust': every member reads
   * the table's robust z-scores.
   */
  transform: EnsembleTransform;
}

export const ENSEMBLE_TRANSFORMS = ['robust', 'mixed', 'quantile'] as const;
export type EnsembleTransform = (typeof ENSEMBLE_TRANSFORMS)[number];

export const ENSEMBLE_DEFAULTS: EnsembleOptions = { members: 4, temperature: 0.9, cellBudget: 1 << 18, maxFeatures: 0, transform: 'robust' };

/** Inverse standard normal CDF (Acklam's rational approximation, |error| < 1.2e-9). */
function normalQuantile(p: number): number {
  const a = [-39.69683028665376, 220.9460984245205, -275.9285104469687, 138.357751867269, -30.66479806614716, 2.506628277459239];
  const b = [-54.47609879822406, 161.5858368580409, -155.6989798598866, 66.80131188771972, -13.28068155211329];
  const c = [-0.007784894002430293, -0.3223964580411365, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783];
  const d = [0.007784695709041462, 0.3224671290700398, 2.445134137142996, 3.754408661907416];
  const tail = (q: number): number => (((((c[0]! * q + c[1]!) * q + c[2]!) * q + c[3]!) * q + c[4]!) * q + c[5]!) / ((((d[0]! * q + d[1]!) * q + d[2]!) * q + d[3]!) * q + 1);
  if (p < 0.02425) return tail(Math.sqrt(-2 * Math.log(p)));
  if (p > 1 - 0.02425) return -tail(Math.sqrt(-2 * Math.log(1 - p)));
  const q = p - 0.5;
  const r = q * q;
  return ((((((a[0]! * r + a[1]!) * r + a[2]!) * r + a[3]!) * r + a[4]!) * r + a[5]!) * q) / (((((b[0]! * r + b[1]!) * r + b[2]!) * r + b[3]!) * r + b[4]!) * r + 1);
}

/**
 * Each column mapped through the normal quantile of its mid-rank among the train rows (ties share
 * one value, test values interpolate between train values), so every row is transformed by the train
 * rows alone: test rows stay independent of each other.
 */
export function quantileNormal(task: IclTask): IclTask {
  const { nFeatures: F, nTrain, nTest } = task;
  const xTrain = new Float32Array(task.xTrain.length);
  const xTest = new Float32Array(task.xTest.length);
  for (let j = 0; j < F; j++) {
    const v = Float64Array.from({ length: nTrain }, (_, r) => task.xTrain[r * F + j]!).sort();
    // Mid-rank CDF of x among the train values, interpolated linearly between distinct values.
    const distinct: number[] = [];
    const cdf: number[] = [];
    for (let i = 0; i < nTrain; ) {
      let k = i;
      while (k < nTrain && v[k] === v[i]) k++;
      distinct.push(v[i]!);
      cdf.push((i + k) / 2 / nTrain);
      i = k;
    }
    const lo = 0.5 / nTrain;
    const z = (x: number): number => {
      let a = 0;
      let b = distinct.length - 1;
      if (x <= distinct[0]!) return normalQuantile(Math.max(lo, cdf[0]!));
      if (x >= distinct[b]!) return normalQuantile(Math.min(1 - lo, cdf[b]!));
      while (b - a > 1) {
        const m = (a + b) >> 1;
        if (distinct[m]! <= x) a = m;
        else b = m;
      }
      const u = cdf[a]! + ((cdf[b]! - cdf[a]!) * (x - distinct[a]!)) / (distinct[b]! - distinct[a]!);
      return normalQuantile(Math.min(1 - lo, Math.max(lo, u)));
    };
    for (let r = 0; r < nTrain; r++) xTrain[r * F + j] = z(task.xTrain[r * F + j]!);
    for (let r = 0; r < nTest; r++) xTest[r * F + j] = z(task.xTest[r * F + j]!);
  }
  return { ...task, xTrain, xTest };
}

export class IclModel implements TabularModel {
  readonly parameterCount: number;
  constructor(
    readonly name: string,
    readonly net: IclNetwork,
    readonly o: EnsembleOptions = ENSEMBLE_DEFAULTS,
  ) {
    this.parameterCount = net.parameterCount;
  }

  /** Member m's shifts: features rotated by an even spread over F, classes by m mod C. */
  static shifts(m: number, members: number, F: number, C: number): { feature: number; cls: number } {
    return { feature: Math.floor((m * F) / members) % F, cls: m % C };
  }

  /** Member m's feature columns: all of them, or a sorted random subset of maxFeatures. */
  static columns(m: number, F: number, maxFeatures: number): Int32Array {
    if (maxFeatures <= 0 || F <= maxFeatures) return Int32Array.from({ length: F }, (_, j) => j);
    const rng = new Rng(Rng.derive(0, `icl-features/${m}`));
    return Int32Array.from(rng.sampleDistinct(0, F, maxFeatures).sort((a, b) => a - b));
  }

  async predictProba(task: IclTask): Promise<Float32Array> {
    const { nFeatures: FAll, nClasses: C, nTrain, nTest } = task;
    const E = this.o.members;
    const F = this.o.maxFeatures > 0 ? Math.min(FAll, this.o.maxFeatures) : FAll;
    const cols = Array.from({ length: E }, (_, m) => IclModel.columns(m, FAll, this.o.maxFeatures));
    const probs = new Float32Array(nTest * C);
    const views = this.o.transform === 'mixed' ? [task, quantileNormal(task)] : this.o.transform === 'quantile' ? [quantileNormal(task)] : [task];
    const testChunk = Math.max(1, Math.min(nTest, Math.floor(this.o.cellBudget / F) - nTrain));
    const perCall = Math.max(1, Math.floor(this.o.cellBudget / ((nTrain + Math.min(testChunk, nTest)) * F)));
    for (let t0 = 0; t0 < nTest; t0 += testChunk) {
      const nt = Math.min(testChunk, nTest - t0);
      const n = nTrain + nt;
      for (let m0 = 0; m0 < E; m0 += perCall) {
        const ms = Array.from({ length: Math.min(perCall, E - m0) }, (_, k) => m0 + k);
        const x = new Float32Array(ms.length * n * F);
        const y = new Int32Array(ms.length * nTrain);
        ms.forEach((m, b) => {
          const s = IclModel.shifts(m, E, F, C);
          const view = views[m % views.length]!;
          for (let r = 0; r < n; r++) {
            const src = r < nTrain ? view.xTrain.subarray(r * FAll, (r + 1) * FAll) : view.xTest.subarray((t0 + r - nTrain) * FAll, (t0 + r - nTrain + 1) * FAll);
            const cm = cols[m]!;
            for (let j = 0; j < F; j++) x[(b * n + r) * F + j] = src[cm[(j + s.feature) % F]!]!;
          }
          for (let r = 0; r < nTrain; r++) y[b * nTrain + r] = (task.yTrain[r]! + s.cls) % C;
        });
        const p = tf.tidy(() => {
          const logits = this.net.forward(tf.tensor3d(x, [ms.length, n, F]), tf.tensor2d(y, [ms.length, nTrain], 'int32'), nTrain, C);
          return tf.softmax(tf.div(tf.slice(logits, [0, 0, 0], [ms.length, nt, C]), this.o.temperature));
        });
        const pd = (await p.data()) as Float32Array;
        p.dispose();
        ms.forEach((m, b) => {
          const s = IclModel.shifts(m, E, F, C);
          for (let r = 0; r < nt; r++) for (let k = 0; k < C; k++) probs[(t0 + r) * C + k] += pd[(b * nt + r) * C + ((k + s.cls) % C)]! / E;
        });
      }
    }
    return probs;
  }

  dispose(): void {
    for (const v of this.net.vars) v.dispose();
  }
}
