/**
 * SeerAttention: an AttnGate per layer learns block-level attention. Pooled Q (mean) and pooled K
 * (mean, max and min, concatenated) pass through per-head linear maps to a gate width dg; their scaled
 * product, causally masked, softmaxed over key blocks, estimates the block attention. The gate is
 * trained with the model frozen by self-distillation: the target is the model's own attention, each
 * row's mass summed per key block, max-pooled over the rows of the query block, renormalised (KL
 * divergence). At inference the top blocks per query block (the same count per row) are kept, with the
 * diagonal block always in.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { CalibrationState, HeadInputs, Selector, SelectorContext } from './types.js';
import { blocksPerRow } from './select.js';
import { selectBlocks } from './select-blocks.js';
import { blockCausalBias, poolBlocks } from './primitives.js';
import { nBlocks } from '../layout.js';
import { Rng } from '../../core/rng.js';

export const SEER_GATE_DIM = 32;
export const SEER_STEPS = 150;
const NEG = -1e30;

interface Gate {
  wq: tf.Tensor3D; // [H, D, dg]
  wk: tf.Tensor3D; // [H, 3D, dg]
}

/** Gate log-probabilities over key blocks [H, nQ, nK] for one input. */
function gateLogProbs(g: Gate, q: tf.Tensor3D, k: tf.Tensor3D, B: number): tf.Tensor3D {
  return tf.tidy(() => {
    const gq = tf.matMul(poolBlocks(q, B), g.wq);
    const kp = tf.concat([poolBlocks(k, B), poolBlocks(k, B, 'max'), poolBlocks(k, B, 'min')], 2);
    const gk = tf.matMul(kp, g.wk);
    const bias = blockCausalBias(gq.shape[1]!, gk.shape[1]!);
    return tf.logSoftmax(tf.add(tf.div(tf.matMul(gq, gk, false, true), Math.sqrt(g.wq.shape[2])), bias)) as tf.Tensor3D;
  });
}

/** The distillation target [H, nQ, nK]: per row the mass of each key block, max over the block's rows, renormalised. */
export function rowMaxBlockTarget(q: tf.Tensor3D, k: tf.Tensor3D, B: number, scale: number): tf.Tensor3D {
  return tf.tidy(() => {
    const [H, L] = q.shape;
    const nB = nBlocks(L, B), pad = nB * B - L;
    const bias = new Float32Array(L * L);
    for (let i = 0; i < L; i++) bias.fill(NEG, i * L + i + 1, (i + 1) * L);
    let p = tf.softmax(tf.add(tf.mul(tf.matMul(q, k, false, true), scale), tf.tensor2d(bias, [L, L])));
    if (pad) p = tf.pad(p, [[0, 0], [0, pad], [0, pad]]);
    const perRow = tf.sum(tf.reshape(p, [H, nB * B, nB, B]), 3); // [H, rows, nK]
    const mx = tf.max(tf.reshape(perRow, [H, nB, B, nB]), 2); // [H, nQ, nK]
    return tf.div(mx, tf.sum(mx, 2, true)) as tf.Tensor3D;
  });
}

function gateFrom(state: CalibrationState, layer: number): Gate {
  const g = (state.gates as { wq: number[]; wk: number[]; H: number; D: number; dg: number }[])[layer]!;
  return { wq: tf.tensor3d(g.wq, [g.H, g.D, g.dg]), wk: tf.tensor3d(g.wk, [g.H, 3 * g.D, g.dg]) };
}

/** Train one layer's gate on calibration inputs (seeded init, Adam, KL to the row-max block target). */
export function trainGate(layer: HeadInputs[], ctx: SelectorContext, seed: number, steps = SEER_STEPS): { gate: { wq: number[]; wk: number[]; H: number; D: number; dg: number }; finalKl: number } {
  const [H, , D] = layer[0]!.q.shape;
  const dg = SEER_GATE_DIM;
  const rng = new Rng(seed);
  const init = (n: number, std: number) => Float32Array.from({ length: n }, () => rng.normal() * std);
  const wq = tf.variable(tf.tensor3d(init(H * D * dg, 1 / Math.sqrt(D)), [H, D, dg]));
  const wk = tf.variable(tf.tensor3d(init(H * 3 * D * dg, 1 / Math.sqrt(3 * D)), [H, 3 * D, dg]));
  const targets = layer.map((x) => rowMaxBlockTarget(x.q, x.k, ctx.block, ctx.scale));
  const opt = tf.train.adam(1e-2);
  let finalKl = NaN;
  for (let s = 0; s < steps; s++) {
    const t = s % layer.length;
    const x = layer[t]!;
    const loss = opt.minimize(() => tf.tidy(() => {
      const lp = gateLogProbs({ wq: wq as unknown as tf.Tensor3D, wk: wk as unknown as tf.Tensor3D }, x.q, x.k, ctx.block);
      const T = targets[t]!;
      const kl = tf.sum(tf.mul(T, tf.sub(tf.log(tf.add(T, 1e-12)), lp)), 2);
      return tf.mean(kl) as tf.Scalar;
    }), true)!;
    if (s === steps - 1) finalKl = loss.dataSync()[0]!;
    loss.dispose();
  }
  if (!Number.isFinite(finalKl)) throw new Error(`seer: gate training diverged (KL ${finalKl})`);
  const gate = { wq: Array.from(wq.dataSync()), wk: Array.from(wk.dataSync()), H, D, dg };
  tf.dispose([wq, wk, ...targets]);
  opt.dispose();
  return { gate, finalKl };
}

export const seer: Selector = {
  name: 'seer',
  budgetMeaning: 'fraction of causal blocks, the same count per row, ranked by the trained gate',
  calibrate(samples, _budget, ctx) {
    const trained = samples.map((layer, l) => trainGate(layer, ctx, 1000 + l));
    return { gates: trained.map((t) => t.gate), finalKl: trained.map((t) => t.finalKl) };
  },
  select(x, budget, ctx, state) {
    if (!state?.gates) throw new Error('seer: needs its trained gates (calibrate first)');
    const [H, L] = x.q.shape;
    const B = ctx.block, nQ = nBlocks(L, B);
    const g = gateFrom(state, x.layer);
    const lp = gateLogProbs(g, x.q, x.k, B);
    tf.dispose([g.wq, g.wk]);
    // The gate's ranking of key blocks, selected where the scores are (no host round trip on cuda).
    const layout = selectBlocks(lp, L, B, { perRow: blocksPerRow(nQ, budget) });
    lp.dispose();
    return { layout };
  },
};
