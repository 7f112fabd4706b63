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
import { Rng } from '../../datasets/rng.js';

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
}

export const ENSEMBLE_DEFAULTS: EnsembleOptions = { members: 4, temperature: 0.9, cellBudget: 1 << 18, maxFeatures: 0 };

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
          for (let r = 0; r < n; r++) {
            const src = r < nTrain ? task.xTrain.subarray(r * FAll, (r + 1) * FAll) : task.xTest.subarray((t0 + r - nTrain) * FAll, (t0 + r - nTrain + 1) * FAll);
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
