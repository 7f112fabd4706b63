#!/usr/bin/env node
// Builds kernels/cuda/build/libtabrecall_cuda.so with nvcc (sm_80 and sm_90a machine code, PTX for
// newer GPUs) against cuBLAS. Without CUDA it says so in one line and exits 0: nothing else depends
// on it (`auto` then picks native). `--strict` makes a failed build an error.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, 'build');
const strict = process.argv.includes('--strict');
const cudaHome = process.env.CUDA_HOME ?? '/usr/local/cuda';
const nvcc = process.env.NVCC ?? (existsSync(join(cudaHome, 'bin', 'nvcc')) ? join(cudaHome, 'bin', 'nvcc') : 'nvcc');

function fail(msg) {
  console.log(`tabrecall: cuda backend not built (${msg})`);
  process.exit(strict ? 1 : 0);
}

if (spawnSync(nvcc, ['--version'], { stdio: 'ignore' }).status !== 0) fail(`no nvcc found; set NVCC or CUDA_HOME`);
const sources = readdirSync(join(here, 'src')).filter((f) => f.endsWith('.cu')).map((f) => join(here, 'src', f));
const arch = (process.env.TABRECALL_CUDA_ARCH ?? '80,90').split(',');
// sm_90 is built as sm_90a: wgmma (attention_hopper.cu) exists only there. The PTX for newer GPUs is
// plain compute_XX, since arch-specific ('a') PTX runs on no other GPU.
const gencode = arch.flatMap((a) => ['-gencode', a === '90' ? 'arch=compute_90a,code=sm_90a' : `arch=compute_${a},code=sm_${a}`]);
gencode.push('-gencode', `arch=compute_${arch[arch.length - 1]},code=compute_${arch[arch.length - 1]}`);
const flags = ['-std=c++17', '-O3', '-shared', '-Xcompiler', '-fPIC', '-t', '0', ...gencode];
mkdirSync(out, { recursive: true });
const lib = join(out, 'libtabrecall_cuda.so');
const r = spawnSync(nvcc, [...flags, ...sources, '-o', lib, '-lcublas'], { stdio: ['ignore', 'inherit', 'pipe'] });
if (r.status !== 0) {
  const err = r.stderr.toString();
  if (/cannot find -lcublas|cublas_v2\.h/.test(err)) fail('cuBLAS is not installed');
  process.stderr.write(err);
  fail('nvcc failed');
}
writeFileSync(join(out, 'build-info.json'), JSON.stringify({ nvcc, flags, builtAt: new Date().toISOString() }, null, 1));
console.log(`tabrecall: cuda backend built (${arch.map((a) => (a === '90' ? 'sm_90a' : `sm_${a}`)).join(', ')}) -> ${lib}`);
