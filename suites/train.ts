/**
 * The training loop: seeded batches, loss on labelled positions only, AdamW, and early stopping on a
 * held-out validation split (never the test split).
 *
 * Early-stopping rule: every `evalEvery` steps the validation accuracy is measured. Training stops
 * when it has been 1.0 at two evaluations in a row, or when it has not beaten its best by more than
 * `minDelta` for `patience` evaluations in a row, or at `maxSteps`. A non-finite loss stops it at once
 * (`nonFinite`): NaN weights stay NaN, so the loss read every `evalEvery / 4` steps always sees it.
 */
import { quantile } from './latency.js';
import type { Timing } from '../reports/schema.js';
import * as tf from '@tensorflow/tfjs-core';
import type { SequenceModel } from '../models/types.js';
import type { SequenceTask, TokenBatch } from '../datasets/types.js';
import { AdamW, type OptimizerConfig } from './optimizer.js';
import { evaluate, labelledPositions } from './evaluate.js';
import { crossEntropy, gatherRows } from '../kernels/ops.js';

export interface TrainBudget {
  maxSteps: number;
  batchSize: number;
  evalEvery: number;
  patience: number;
  minDelta: number;
  validExamples: number;
}

export interface TrainProgress {
  step: number;
  maxSteps: number;
  loss: number;
  validAccuracy?: number;
}

export interface TrainResult {
  steps: number;
  finalLoss: number;
  bestValidAccuracy: number;
  /** nonFinite: the loss became NaN or infinite at `steps` (the run has failed; see RunFailure). */
  stoppedBy: 'perfect' | 'plateau' | 'maxSteps' | 'nonFinite';
  trainSeconds: number;
  trainTokensPerSec: number;
  lossCurve: [number, number][];
  validCurve: [number, number][];
}

/**
 * The training objective at the batch: mean cross-entropy at the labelled positions, plus the model's
 * own terms where it has them (Sparsifiner's distillation loss, in training passes only).
 */
export function batchLoss(model: SequenceModel, b: TokenBatch): tf.Scalar {
  const pos = labelledPositions(b);
  const ids = tf.tensor2d(b.inputs, [b.n, b.seqLen], 'int32');
  const out = model.hiddenWithAux ? model.hiddenWithAux(ids) : { h: model.hidden(ids) };
  const h = tf.reshape(out.h, [b.n * b.seqLen, -1]) as tf.Tensor2D;
  const rows = gatherRows(h, tf.tensor1d(pos.index, 'int32')) as tf.Tensor2D;
  const ce = crossEntropy(model.head(rows), tf.tensor1d(pos.targets, 'int32'));
  return out.aux ? tf.add(ce, out.aux) as tf.Scalar : ce;
}

/**
 * One optimisation step: loss at the batch's labelled positions, gradients, AdamW. Variables the
 * step leaves out of the graph (SeqBoat with no active token) get a zero gradient. Returns the loss
 * (the caller owns it).
 */
export function trainingStep(model: SequenceModel, adamw: AdamW, b: TokenBatch): tf.Scalar {
  model.setTraining?.(true);
  try {
    return tf.tidy(() => {
      const vars = model.variables();
      const { value, grads } = tf.variableGrads(() => batchLoss(model, b), vars);
      adamw.step(vars.map((v) => grads[v.name] ?? tf.zerosLike(v)));
      return value;
    });
  } finally {
    model.setTraining?.(false);
  }
}

export function train(
  model: SequenceModel,
  task: SequenceTask & { validSet(n: number): TokenBatch },
  budget: TrainBudget,
  opt: OptimizerConfig,
  onProgress: (p: TrainProgress) => void = () => {},
): TrainResult {
  const vars = model.variables();
  const adamw = new AdamW(vars, opt, budget.maxSteps);
  const valid = task.validSet(budget.validExamples);
  const lossCurve: [number, number][] = [];
  const validCurve: [number, number][] = [];
  let best = -1;
  let sinceBest = 0;
  let perfectRun = 0;
  let stoppedBy: TrainResult['stoppedBy'] = 'maxSteps';
  let loss = NaN;
  let tokens = 0;
  let step = 0;
  const t0 = performance.now();
  for (; step < budget.maxSteps; step++) {
    const b = task.trainBatch(step, budget.batchSize);
    tokens += b.n * b.seqLen;
    const lossT = trainingStep(model, adamw, b);
    const logEvery = Math.max(1, Math.floor(budget.evalEvery / 4));
    if (step % logEvery === 0 || step === budget.maxSteps - 1) {
      loss = lossT.dataSync()[0]!;
      lossCurve.push([step, loss]);
      if (!Number.isFinite(loss)) {
        lossT.dispose();
        stoppedBy = 'nonFinite';
        step++;
        break;
      }
    }
    lossT.dispose();
    if ((step + 1) % budget.evalEvery === 0 || step === budget.maxSteps - 1) {
      const acc = evaluate(model, valid, 128).accuracy;
      validCurve.push([step + 1, acc]);
      onProgress({ step: step + 1, maxSteps: budget.maxSteps, loss, validAccuracy: acc });
      perfectRun = acc >= 1 ? perfectRun + 1 : 0;
      if (acc > best + budget.minDelta) {
        best = acc;
        sinceBest = 0;
      } else {
        best = Math.max(best, acc);
        sinceBest++;
      }
      if (perfectRun >= 2) {
        stoppedBy = 'perfect';
        step++;
        break;
      }
      if (sinceBest >= budget.patience) {
        stoppedBy = 'plateau';
        step++;
        break;
      }
    } else if (step % logEvery === 0) {
      onProgress({ step: step + 1, maxSteps: budget.maxSteps, loss });
    }
  }
  const trainSeconds = (performance.now() - t0) / 1000;
  adamw.dispose();
  return {
    steps: step,
    finalLoss: loss,
    bestValidAccuracy: best,
    stoppedBy,
    trainSeconds,
    trainTokensPerSec: tokens / trainSeconds,
    lossCurve,
    validCurve,
  };
}

/**
 * Wall time of one optimisation step (forward, backward, AdamW) at the training batch size, each
 * sample waiting for the loss on the host, after `warmup` untimed steps: the per-step cost the
 * leaderboard sets against accuracy (trainSeconds also holds the validation passes). It trains the
 * model further with a fresh optimizer, so the runner calls it after everything else is measured.
 */
export function measureTrainStep(model: SequenceModel, task: SequenceTask, batchSize: number, opt: OptimizerConfig, samples = 10, warmup = 2): Timing & { batch: number; concurrentRuns?: number } {
  const adamw = new AdamW(model.variables(), opt, samples + warmup);
  const times: number[] = [];
  try {
    for (let i = 0; i < samples + warmup; i++) {
      const b = task.trainBatch(1_000_000 + i, batchSize);
      const t0 = performance.now();
      const l = trainingStep(model, adamw, b);
      l.dataSync();
      l.dispose();
      if (i >= warmup) times.push(performance.now() - t0);
    }
  } finally {
    adamw.dispose();
  }
  times.sort((a, b) => a - b);
  // Runs sharing the device (scripts/device/run.sh bg steps) say so: such times are not comparable.
  const shared = Number(process.env.TABRECALL_CONCURRENT_RUNS ?? 1);
  return { medianMs: quantile(times, 0.5), p10Ms: quantile(times, 0.1), p90Ms: quantile(times, 0.9), samples, batch: batchSize, ...(shared > 1 ? { concurrentRuns: shared } : {}) };
}
