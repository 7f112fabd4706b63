/**
 * `npm run pretrain -- --model orion-msp|dense-icl --steps N [--out DIR] [--seed 0] [--batch 8] [--lr 1e-3]
 *  [--every 100] [--resume] [--backend auto] [--config JSON] [--prior JSON] [--workers 0] [--profile] [--init DIR]`: pretrain a
 * tabular ICL model on the synthetic prior. --config overrides the network's size (IclConfig keys),
 * --prior the prior's ranges (PriorConfig keys); both are recorded in the checkpoint, and a resumed
 * run takes them from there. --workers N draws prior batches ahead in N worker threads. --profile
 * times every kernel of the first step (synchronising after each) and prints the costliest. --init
 * DIR starts from a checkpoint's weights (its network config; fresh optimizer, step count and prior),
 * and the new checkpoint records where it started (initFrom).
 * Each step draws a fresh batch of prior tables (deterministic in seed and step, so a resumed run
 * continues exactly); the loss is cross-entropy on the tables' test rows. Checkpoints (weights,
 * optimizer state, loss curve, provenance) are written every --every steps and at the end.
 */
import { join, resolve } from 'node:path';
import { existsSync } from 'node:fs';
import { args, main, UsageError } from './cli.js';
import { useBackend, BACKEND_NAMES, backendInfo } from '../kernels/backend.js';
import { pretrainStep } from '../suites/pretrain.js';
import { AdamW, OPTIMIZER_DEFAULTS } from '../suites/optimizer.js';
import * as tf from '@tensorflow/tfjs-core';
import { parsePriorConfig, type PriorBatch, type PriorConfig } from '../datasets/tabular/prior.js';
import { PriorPool } from '../datasets/tabular/prior-pool.js';
import { ICL_MODELS, buildIclNetwork } from '../models/tabular/registry.js';
import { loadCheckpoint, saveCheckpoint, type CheckpointMeta } from '../models/tabular/checkpoint.js';
import { fingerprint } from '../reports/fingerprint.js';
import { formatKernelTotals, kernelTotals } from '../kernels/profile.js';
import type { IclNetwork } from '../models/tabular/icl-network.js';

/** One step under tf.profile: per-kernel time (the backend synchronises after each kernel), summed by name. */
async function profiledStep(net: IclNetwork, opt: AdamW, b: PriorBatch): Promise<number> {
  let loss = NaN;
  const t0 = performance.now();
  const info = await tf.profile(async () => {
    loss = await pretrainStep(net, opt, b);
  });
  const wall = performance.now() - t0;
  const totals = kernelTotals(info);
  const total = totals.reduce((sum, e) => sum + e.ms, 0);
  process.stderr.write(`profile: step of ${b.tables.length} tables x ${b.nRows} rows x ${b.nFeatures} features, ${info.kernels.length} kernels, ${total.toFixed(1)} ms in kernels, ${wall.toFixed(1)} ms wall\n${formatKernelTotals(totals)}\n`);
  return loss;
}

main(async () => {
  const { values: o } = args({
    model: { type: 'string' },
    steps: { type: 'string' },
    out: { type: 'string' },
    seed: { type: 'string', default: '0' },
    batch: { type: 'string', default: '8' },
    lr: { type: 'string', default: '0.001' },
    every: { type: 'string', default: '100' },
    backend: { type: 'string', default: 'auto' },
    resume: { type: 'boolean', default: false },
    config: { type: 'string' },
    prior: { type: 'string' },
    workers: { type: 'string', default: '0' },
    profile: { type: 'boolean', default: false },
    init: { type: 'string' },
  });
  const json = (name: string, v: string | undefined): Record<string, unknown> => {
    if (v === undefined) return {};
    try {
      const o = JSON.parse(v) as unknown;
      if (o && typeof o === 'object' && !Array.isArray(o)) return o as Record<string, unknown>;
    } catch {}
    throw new UsageError(`--${name}: must be a JSON object, got ${JSON.stringify(v)}`);
  };
  const model = o.model;
  if (!model || !(ICL_MODELS as readonly string[]).includes(model)) throw new UsageError(`--model: must be one of ${ICL_MODELS.join(', ')}; got ${JSON.stringify(model)}`);
  const int = (name: string, v: string | undefined, min: number): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new UsageError(`--${name}: must be an integer >= ${min}, got ${JSON.stringify(v)}`);
    return n;
  };
  const steps = int('steps', o.steps, 1);
  const seed = int('seed', o.seed, 0);
  const batch = int('batch', o.batch, 1);
  const every = int('every', o.every, 1);
  const workers = int('workers', o.workers, 0);
  let prior: PriorConfig = parsePriorConfig('--prior', json('prior', o.prior));
  const configOverrides = json('config', o.config);
  const lr = Number(o.lr);
  if (!(lr > 0 && lr < 1)) throw new UsageError(`--lr: must be a number in (0, 1), got ${JSON.stringify(o.lr)}`);
  if (!(BACKEND_NAMES as readonly string[]).includes(o.backend!)) throw new UsageError(`--backend: unknown backend ${JSON.stringify(o.backend)}; allowed: ${BACKEND_NAMES.join(', ')}`);
  const out = resolve(o.out ?? join('results', 'pretrain', model));
  const backend = await useBackend(o.backend!);
  const optCfg = { ...OPTIMIZER_DEFAULTS, lr, warmupSteps: Math.min(200, Math.floor(steps / 10)), weightDecay: 0.01 };

  let net: IclNetwork;
  let start = 0;
  let trainSeconds = 0;
  let lossCurve: [number, number][] = [];
  let lossWindow: number[] = [];
  let optState;
  let earlierCommand: string | undefined;
  let initFrom: CheckpointMeta['initFrom'];
  if (o.init !== undefined && o.resume) throw new UsageError('--init: starts a new run from a checkpoint; --resume continues one; give one of them');
  if (o.init !== undefined && o.config !== undefined) throw new UsageError('--init: the network config comes from the initial checkpoint; drop --config');
  if (o.resume && existsSync(join(out, 'model.json'))) {
    const c = loadCheckpoint(out);
    if (c.meta.model !== model || c.meta.seed !== seed) throw new UsageError(`--resume: ${out} holds ${c.meta.model} seed ${c.meta.seed}, not ${model} seed ${seed}`);
    // A resumed run continues the same run: settings that change its batches or its schedule must match.
    const was: [string, unknown, unknown][] = [['--batch', c.meta.batchTables, batch], ['--lr', c.meta.optimizer.lr, lr], ['--steps', c.meta.optimizer.totalSteps, steps]];
    for (const [flag, before, now] of was) {
      if (before !== now) throw new UsageError(`${flag}: the checkpoint in ${out} was trained with ${flag} ${before}, not ${now}; resume with the same value or start a new --out`);
    }
    ({ net } = c);
    start = c.meta.step;
    trainSeconds = c.meta.trainSeconds;
    lossCurve = c.meta.lossCurve;
    lossWindow = c.meta.lossWindow ?? [];
    optState = c.optimizer;
    earlierCommand = c.meta.command;
    if (o.config !== undefined || o.prior !== undefined) throw new UsageError('--resume: the network and prior come from the checkpoint; drop --config and --prior');
    prior = parsePriorConfig('checkpoint.prior', c.meta.prior);
    initFrom = c.meta.initFrom;
    process.stderr.write(`pretrain: resuming ${model} at step ${start} from ${out}\n`);
  } else if (o.init !== undefined) {
    const c = loadCheckpoint(resolve(o.init!), { rowAttention: model === 'orion-msp' ? 'sparse' : 'dense' });
    net = c.net;
    const m = c.meta;
    initFrom = {
      dir: o.init, model: m.model, step: m.step, trainSeconds: m.trainSeconds + (m.initFrom?.trainSeconds ?? 0), backend: m.backend, command: m.command, gitSha: m.gitSha,
      ...(m.initFrom ? { initFrom: m.initFrom } : {}),
    };
    process.stderr.write(`pretrain: starting from ${o.init} (${m.model}, step ${m.step})\n`);
  } else net = buildIclNetwork(model, seed, configOverrides);
  const opt = new AdamW(net.vars, optCfg, steps);
  if (optState) opt.importState(optState);
  const quote = (v: string): string => `'${v.replace(/'/g, `'\\''`)}'`;
  const thisCommand = `npm run pretrain -- --model ${model} --steps ${steps} --seed ${seed} --batch ${batch} --lr ${lr} --backend ${o.backend}${o.config ? ` --config ${quote(o.config)}` : ''}${o.prior ? ` --prior ${quote(o.prior)}` : ''}${o.init ? ` --init ${quote(o.init)}` : ''}`;
  // A resumed run is the earlier command continued: both are kept, so the checkpoint says how it was made.
  const command = earlierCommand ? `${earlierCommand} && ${thisCommand} --resume` : thisCommand;
  let window: number[] = lossWindow;
  let t0 = performance.now();
  // Everything up to this step goes into the checkpoint: the seconds and the losses not yet on the curve.
  const save = (step: number): void => {
    const now = performance.now();
    trainSeconds += (now - t0) / 1000;
    t0 = now;
    saveCheckpoint(out, net, {
      model, seed, step, trainSeconds, backend, command, gitSha: fingerprint(backend, backendInfo()).gitSha, createdAt: new Date().toISOString(),
      prior: { ...prior }, optimizer: { ...optCfg, totalSteps: steps }, batchTables: batch, lossCurve, lossWindow: [...window], ...(initFrom ? { initFrom } : {}),
    }, opt.exportState());
  };

  process.stderr.write(`pretrain: ${model}, ${net.parameterCount} parameters, steps ${start}..${steps}, batch ${batch} tables, backend ${backend}, out ${out}\n`);
  const pool = await PriorPool.create(seed, batch, prior, workers, start);
  t0 = performance.now();
  const sessionStart = t0;
  for (let step = start; step < steps; step++) {
    const batchNow = await pool.next(step);
    const loss = o.profile && step === start ? await profiledStep(net, opt, batchNow) : await pretrainStep(net, opt, batchNow);
    if (!Number.isFinite(loss)) throw new Error(`pretrain: loss is ${loss} at step ${step}; lower --lr`);
    window.push(loss);
    const done = step + 1;
    if (done % 25 === 0 || done === steps) {
      const now = performance.now();
      trainSeconds += (now - t0) / 1000;
      t0 = now;
      const mean = window.reduce((s, v) => s + v, 0) / window.length;
      lossCurve.push([done, Number(mean.toFixed(4))]);
      window = [];
      // This process's speed only (a resumed run's earlier seconds are in trainSeconds).
      const rate = (now - sessionStart) / 1000 / (done - start || 1);
      process.stderr.write(`[pretrain ${model}] step ${done}/${steps} loss ${mean.toFixed(4)} ${(rate * 1000).toFixed(0)} ms/step ETA ${Math.round(rate * (steps - done))}s\n`);
    }
    if (done % every === 0 || done === steps) save(done);
  }
  await pool.close();
  console.log(`pretrain: ${model} done, ${steps} steps, ${trainSeconds.toFixed(0)} s training; checkpoint ${out}`);
  return 0;
});
