/** Seeded parameter initialisation: same seed -> same weights on every backend. */
import * as tf from '@tensorflow/tfjs-core';
import { Rng } from '../core/rng.js';

export class ParamFactory {
  private readonly rng: Rng;
  readonly created: tf.Variable[] = [];

  /** `random` false: zeros instead of draws, for weights a checkpoint overwrites (drawing 1M normals takes ~0.1 s). */
  constructor(
    seed: number,
    private readonly random = true,
  ) {
    this.rng = new Rng(Rng.derive(seed, 'model/init'));
  }

  normal(shape: number[], std: number, name: string): tf.Variable {
    if (!this.random) return this.constant(shape, 0, name);
    const n = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    for (let i = 0; i < n; i++) data[i] = this.rng.normal() * std;
    return this.track(ownedVariable(tf.tensor(data, shape), name));
  }

  /** Identity [d, d] plus N(0, std^2) noise. */
  identityPlusNoise(d: number, std: number, name: string): tf.Variable {
    if (!this.random) return this.constant([d, d], 0, name);
    const data = new Float32Array(d * d);
    for (let i = 0; i < d * d; i++) data[i] = this.rng.normal() * std + (i % (d + 1) === 0 ? 1 : 0);
    return this.track(ownedVariable(tf.tensor(data, [d, d]), name));
  }

  constant(shape: number[], value: number, name: string): tf.Variable {
    return this.track(ownedVariable(tf.fill(shape, value), name));
  }

  private track(v: tf.Variable): tf.Variable {
    this.created.push(v);
    return v;
  }
}

let uid = 0;
/** Unique variable-name prefix: tfjs variable names are global per engine. */
export function uniquePrefix(name: string): string {
  return `${name}_${uid++}`;
}

/**
 * A variable made from a temporary tensor, which is then released. tf.variable shares the tensor's
 * data and takes a reference; without the release every model built leaks one copy of its initial
 * weights (hundreds of MB over a suite that builds a model per case).
 */
export function ownedVariable(init: tf.Tensor, name?: string, trainable = true): tf.Variable {
  const v = tf.variable(init, trainable, name);
  init.dispose();
  return v;
}

/** v.assign(value), then value released (assign shares its data too). */
export function assignOwned(v: tf.Variable, value: tf.Tensor): void {
  v.assign(value);
  value.dispose();
}
