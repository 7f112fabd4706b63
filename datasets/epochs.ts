/**
 * A fixed training set iterated in seeded shuffled epochs, as Zoology trains: step s of batch size b
 * takes rows [(s mod perEpoch) * b, ...) of the epoch's permutation. The tasks with a fixed training
 * set (MQAR, grid) share it; `tag` names the task in the permutation's seed.
 */
import { Rng } from '../core/rng.js';
import type { TokenBatch } from './types.js';

export class EpochBatches {
  private train: TokenBatch | undefined;
  private order: Int32Array | undefined;
  private epoch = -1;

  constructor(
    private readonly seed: number,
    private readonly tag: string,
    private readonly make: () => TokenBatch,
  ) {}

  batch(step: number, batchSize: number): TokenBatch {
    this.train ??= this.make();
    const n = this.train.n;
    const perEpoch = Math.max(1, Math.floor(n / batchSize));
    const epoch = Math.floor(step / perEpoch);
    if (epoch !== this.epoch || !this.order) {
      this.order = Int32Array.from({ length: n }, (_, i) => i);
      new Rng(Rng.derive(this.seed, `${this.tag}/order/${epoch}`)).shuffle(this.order);
      this.epoch = epoch;
    }
    return takeRows(this.train, this.order, (step % perEpoch) * batchSize, Math.min(batchSize, n));
  }
}

export function takeRows(src: TokenBatch, order: Int32Array, start: number, count: number): TokenBatch {
  const L = src.seqLen;
  const inputs = new Int32Array(count * L);
  const labels = new Int32Array(count * L);
  for (let i = 0; i < count; i++) {
    const r = order[(start + i) % order.length]!;
    inputs.set(src.inputs.subarray(r * L, (r + 1) * L), i * L);
    labels.set(src.labels.subarray(r * L, (r + 1) * L), i * L);
  }
  return { inputs, labels, n: count, seqLen: L };
}
