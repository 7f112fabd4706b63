#!/usr/bin/env node
// `npm run test:gpu`: the kernel, operator and model tests on the cuda backend (fp32 throughout:
// TABRECALL_TF32=0), against the same CPU references as the default run. Skips with a message, and
// exit code 0, where no cuda library is built or no GPU is visible.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

const lib = process.env.TABRECALL_CUDA_LIB ?? new URL('../kernels/cuda/build/libtabrecall_cuda.so', import.meta.url).pathname;
if (!existsSync(lib)) {
  console.log(`test:gpu skipped: no cuda library at ${lib} (run npm run build:cuda on a machine with nvcc and cuBLAS)`);
  process.exit(0);
}
if (spawnSync('nvidia-smi', ['-L'], { stdio: 'ignore' }).status !== 0) {
  console.log('test:gpu skipped: no NVIDIA GPU visible (nvidia-smi -L failed)');
  process.exit(0);
}
const files = ['native-kernels', 'block-sparse', 'combiner', 'seqboat', 'training-step', 'selectors', 'decode', 'trainable'].map((f) => `tests/${f}.test.ts`);
const r = spawnSync('npx', ['vitest', 'run', ...files], {
  stdio: 'inherit',
  env: { ...process.env, TABRECALL_TEST_BACKEND: 'cuda', TABRECALL_TF32: process.env.TABRECALL_TF32 ?? '0' },
});
process.exit(r.status ?? 1);
