/** AdamW (decoupled weight decay, Loshchilov & Hutter) with linear warm-up + cosine decay. */
import * as tf from '@tensorflow/tfjs-core';
import { assignOwned, ownedVariable } from '../models/init.js';

export interface OptimizerConfig {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  warmupSteps: number;
  /** Final learning rate as a fraction of lr. */
  minLrRatio: number;
  /** Clip the global gradient norm to this (0 = off). */
  clipNorm: number;
}

export const OPTIMIZER_DEFAULTS: OptimizerConfig = {
  lr: 1e-3, beta1: 0.9, beta2: 0.98, eps: 1e-8, weightDecay: 0.1, warmupSteps: 100, minLrRatio: 0.1, clipNorm: 1,
};

export function learningRate(c: OptimizerConfig, step: number, totalSteps: number): number {
  if (step < c.warmupSteps) return (c.lr * (step + 1)) / c.warmupSteps;
  const span = Math.max(1, totalSteps - c.warmupSteps);
  const progress = Math.min(1, (step - c.warmupSteps) / span);
  return c.lr * (c.minLrRatio + (1 - c.minLrRatio) * 0.5 * (1 + Math.cos(Math.PI * progress)));
}

export class AdamW {
  private readonly m: tf.Variable[];
  private readonly v: tf.Variable[];
  private t = 0;

  constructor(
    private readonly params: tf.Variable[],
    private readonly c: OptimizerConfig,
    private readonly totalSteps: number,
  ) {
    this.m = params.map((p) => ownedVariable(tf.zerosLike(p), undefined, false));
    this.v = params.map((p) => ownedVariable(tf.zerosLike(p), undefined, false));
  }

  /** One update from gradients given in the same order as the parameters. */
  step(grads: tf.Tensor[]): void {
    const lr = learningRate(this.c, this.t, this.totalSteps);
    this.t++;
    const { beta1: b1, beta2: b2, eps, weightDecay } = this.c;
    const bc1 = 1 - Math.pow(b1, this.t);
    const bc2 = 1 - Math.pow(b2, this.t);
    tf.tidy(() => {
      let scale: tf.Scalar | number = 1;
      if (this.c.clipNorm > 0) {
        const sq = tf.addN(grads.map((g) => tf.sum(tf.square(g))));
        const norm = tf.sqrt(sq);
        scale = tf.div(this.c.clipNorm, tf.maximum(norm, this.c.clipNorm)) as tf.Scalar;
      }
      this.params.forEach((p, i) => {
        const g = tf.mul(grads[i]!, scale);
        const m = tf.add(tf.mul(this.m[i]!, b1), tf.mul(g, 1 - b1));
        const v = tf.add(tf.mul(this.v[i]!, b2), tf.mul(tf.square(g), 1 - b2));
        this.m[i]!.assign(m);
        this.v[i]!.assign(v);
        const update = tf.div(tf.div(m, bc1), tf.add(tf.sqrt(tf.div(v, bc2)), eps));
        // Decay matrices only: biases, norms' gains and position tables keep their scale.
        const decayed = p.rank >= 2 && weightDecay > 0 ? tf.mul(p, 1 - lr * weightDecay) : p;
        p.assign(tf.sub(decayed, tf.mul(update, lr)));
      });
    });
  }

  /** Moments and step count, for checkpoints that resume exactly. */
  exportState(): { t: number; m: Float32Array[]; v: Float32Array[] } {
    return { t: this.t, m: this.m.map((x) => x.dataSync() as Float32Array), v: this.v.map((x) => x.dataSync() as Float32Array) };
  }

  importState(s: { t: number; m: Float32Array[]; v: Float32Array[] }): void {
    if (s.m.length !== this.m.length) throw new Error(`optimizer state has ${s.m.length} tensors, the model ${this.m.length}`);
    this.t = s.t;
    this.m.forEach((x, i) => assignOwned(x, tf.tensor(s.m[i]!, x.shape)));
    this.v.forEach((x, i) => assignOwned(x, tf.tensor(s.v[i]!, x.shape)));
  }

  dispose(): void {
    for (const t of [...this.m, ...this.v]) t.dispose();
  }
}
