/**
 * `npm run bench:backends`: the native backend against the BLAS itself and against tfjs' own CPU
 * backends, in one process so the numbers are comparable:
 *  - GEMM GFLOP/s at several shapes: our tr_matmul (OpenMP + single-threaded BLAS row blocks), our
 *    built-in blocked GEMM, and cblas_sgemm called directly with the BLAS's own threads;
 *  - one training step (fwd + bwd + AdamW) of the 2-layer d=64 dense baseline, batch 32, length 64,
 *    vocab 256, on native, wasm and cpu.
 * Writes results/backends/backends.json (with the environment fingerprint) and prints a table.
 */
import * as tf from '@tensorflow/tfjs-core';
import koffi from 'koffi';
import { join } from 'node:path';
import { args, main } from './cli.js';
import { useBackend, backendInfo } from '../kernels/backend.js';
import { loadLibrary } from '../kernels/native/lib.js';
import { MqarTask, parseMqarParams } from '../datasets/mqar.js';
import { buildModel } from '../models/registry.js';
import { trainingStep } from '../suites/train.js';
import { AdamW, OPTIMIZER_DEFAULTS } from '../suites/optimizer.js';
import { quantile } from '../suites/latency.js';
import { fingerprint } from '../reports/fingerprint.js';
import { writeAtomic } from '../core/files.js';
import { fmt, formatTable } from '../reports/table.js';

function timeIt(f: () => void, minMs: number, minIters: number): { median: number; p10: number; p90: number; n: number } {
  f();
  const samples: number[] = [];
  const t0 = performance.now();
  while (samples.length < minIters || performance.now() - t0 < minMs) {
    const s = performance.now();
    f();
    samples.push(performance.now() - s);
  }
  samples.sort((a, b) => a - b);
  return { median: quantile(samples, 0.5), p10: quantile(samples, 0.1), p90: quantile(samples, 0.9), n: samples.length };
}

function gemmBench() {
  const lib = loadLibrary('native');
  if (!lib) throw new Error('native library not built: run npm run build:native');
  let blas: { sgemm: (...a: unknown[]) => void; threads: (n: number) => void } | undefined;
  try {
    const ob = koffi.load('libopenblas.so.0');
    blas = {
      sgemm: ob.func('cblas_sgemm', 'void', ['int', 'int', 'int', 'int', 'int', 'int', 'float', 'void *', 'int', 'void *', 'int', 'float', 'void *', 'int']),
      threads: ob.func('openblas_set_num_threads', 'void', ['int']),
    };
  } catch {
    blas = undefined;
  }
  const threads = Number(lib.tr_get_num_threads());
  const rows: Record<string, number | string>[] = [];
  for (const [m, n, k] of [[256, 256, 256], [512, 512, 512], [1024, 1024, 1024], [2048, 64, 192], [2048, 256, 64], [64, 64, 32]]) {
    const a = Float32Array.from({ length: m * k }, (_, i) => ((i * 7) % 13) / 13);
    const b = Float32Array.from({ length: k * n }, (_, i) => ((i * 5) % 11) / 11);
    const c = new Float32Array(m * n);
    const flop = 2 * m * n * k;
    const ours = timeIt(() => lib.tr_matmul(a, b, c, 1, 1, 1, m, n, k, 0, 0), 300, 5);
    const builtin = timeIt(() => lib.tr_gemm_builtin(a, b, c, m, n, k, 0, 0), 300, 3);
    let direct = NaN;
    if (blas) {
      blas.threads(threads);
      direct = timeIt(() => blas!.sgemm(101, 111, 111, m, n, k, 1, a, k, b, n, 0, c, n), 300, 5).median;
      blas.threads(1); // our library runs the BLAS single-threaded inside its OpenMP workers
    }
    rows.push({ shape: `${m}x${n}x${k}`, ours: flop / ours.median / 1e6, builtin: flop / builtin.median / 1e6, blas: flop / direct / 1e6 });
  }
  return { threads, rows };
}

async function stepBench(backend: string, minMs: number, minIters: number) {
  await useBackend(backend);
  const task = new MqarTask(parseMqarParams({ vocabSize: 256, inputSeqLen: 64, numKvPairs: 8, numTrainExamples: 1024, numTestExamples: 8 }), 0);
  const model = buildModel('dense', { dModel: 64, nLayers: 2, nHeads: 2 }, { vocabSize: 256, maxLen: 64, seed: 0 });
  const opt = new AdamW(model.variables(), OPTIMIZER_DEFAULTS, 1000);
  let i = 0;
  const step = () => {
    const loss = trainingStep(model, opt, task.trainBatch(i++, 32));
    loss.dataSync(); // wait for the result, as a training loop logging its loss does
    loss.dispose();
  };
  const t = timeIt(step, minMs, minIters);
  const info = backendInfo();
  opt.dispose();
  model.dispose();
  return { backend, ...t, info };
}

main(async () => {
  const { values: o } = args({ out: { type: 'string', default: join('results', 'backends', 'backends.json') }, 'skip-cpu': { type: 'boolean', default: false } });
  const gemm = gemmBench();
  console.log(formatTable(['GEMM m x n x k', 'native GFLOP/s', 'built-in GFLOP/s', `BLAS direct (${gemm.threads} thr)`], gemm.rows.map((r) => [r.shape as string, fmt(r.ours as number, 1), fmt(r.builtin as number, 1), fmt(r.blas as number, 1)])));
  const steps = [await stepBench('native', 2000, 20), await stepBench('wasm', 5000, 5)];
  if (!o['skip-cpu']) steps.push(await stepBench('cpu', 0, 2));
  const native = steps[0]!.median;
  console.log('\n' + formatTable(['backend', 'train step ms (median)', 'p10', 'p90', 'samples', 'vs native'],
    steps.map((s) => [s.backend, fmt(s.median, 1), fmt(s.p10, 1), fmt(s.p90, 1), s.n, `${fmt(s.median / native, 1)}x`])));
  const fp = fingerprint('native', backendInfo());
  writeAtomic(o.out!, JSON.stringify({ kind: 'backends', schemaVersion: 1, createdAt: new Date().toISOString(), fingerprint: fp, gemm, trainStep: { config: 'dense 2 layers d64 heads2, batch 32, length 64, vocab 256, AdamW', results: steps } }, null, 1));
  console.log(`\nwritten: ${o.out}`);
  return 0;
});
