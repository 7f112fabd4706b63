import { useBackend } from './kernels/backend.ts';
import { buildIclNetwork } from './models/tabular/registry.ts';
import { sampleBatch } from './datasets/tabular/prior.ts';
import { pretrainStep } from './suites/pretrain.ts';
import { AdamW, OPTIMIZER_DEFAULTS } from './suites/optimizer.ts';
await useBackend('native');
const lr = Number(process.argv[2] ?? 3e-3);
const net = buildIclNetwork('orion-msp', 0, { dCol: 8, colHeads: 2, rowHeads: 2, inducing: 4, cls: 2, latents: 8, dIcl: 32, iclBlocks: 2, iclHeads: 2, scales: [1] });
const prior = { minRows: 48, maxRows: 96, minFeatures: 2, maxFeatures: 8, maxClasses: 4, minClassShare: 0.05, mix: { mlp: 0.3, tree: 0.2, linear: 0.5 } };
const opt = new AdamW(net.vars, { ...OPTIMIZER_DEFAULTS, lr, warmupSteps: 20, weightDecay: 0.01 }, 400);
let m = 0, bsum = 0;
const t0 = performance.now();
for (let s = 0; s < 400; s++) {
  const b = sampleBatch(9, s, 8, prior);
  let ce = 0, cnt = 0;
  for (const t of b.tables) { const f = new Array(t.nClasses).fill(1); for (const c of t.yTrain) f[c]++; const tot = f.reduce((a, b) => a + b, 0); for (const c of t.yTest) { ce -= Math.log(f[c] / tot); cnt++; } }
  bsum += ce / cnt;
  m += await pretrainStep(net, opt, b);
  if ((s + 1) % 50 === 0) { console.log(s + 1, (m / 50).toFixed(3), 'freq baseline', (bsum / 50).toFixed(3), ((performance.now() - t0) / 1000).toFixed(0) + 's'); m = 0; bsum = 0; }
}
