#!/usr/bin/env node
// Builds kernels/native/build/libtabrecall_native.so with g++ (OpenMP; OpenBLAS via pkg-config when
// present, else the built-in GEMM). Never fails the install: a missing compiler prints one line and
// tabrecall falls back to the wasm backend.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, 'build');
const cxx = process.env.CXX || 'g++';
const strict = process.argv.includes('--strict');

function pkg(args) {
  try {
    return execFileSync('pkg-config', args, { stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim().split(/\s+/).filter(Boolean);
  } catch {
    return null;
  }
}

function fail(msg) {
  console.log(`tabrecall: native backend not built (${msg}); using the wasm backend instead`);
  process.exit(strict ? 1 : 0);
}

if (spawnSync(cxx, ['--version'], { stdio: 'ignore' }).status !== 0) fail(`no C++ compiler "${cxx}" found`);
const sources = readdirSync(join(here, 'src')).filter((f) => f.endsWith('.cpp')).map((f) => join(here, 'src', f));
const blas = process.env.TABRECALL_NO_BLAS ? null : (pkg(['--libs', 'openblas']) && { cflags: pkg(['--cflags', 'openblas']) ?? [], libs: pkg(['--libs', 'openblas']) });
const march = process.env.TABRECALL_MARCH ?? 'native';
const flags = ['-std=c++17', '-O3', `-march=${march}`, '-fno-trapping-math', '-fno-math-errno', '-fPIC', '-shared', '-fopenmp', '-fvisibility=hidden', '-Wall'];
if (blas) flags.push('-DTR_HAVE_CBLAS', ...blas.cflags);
mkdirSync(out, { recursive: true });
const lib = join(out, 'libtabrecall_native.so');
const args = [...flags, ...sources, '-o', lib, ...(blas ? blas.libs : [])];
const r = spawnSync(cxx, args, { stdio: ['ignore', 'inherit', 'pipe'] });
if (r.status !== 0) {
  process.stderr.write(r.stderr);
  fail(`${cxx} failed`);
}
writeFileSync(join(out, 'build-info.json'), JSON.stringify({ cxx, flags, blas: blas ? 'openblas' : 'builtin', builtAt: new Date().toISOString() }, null, 1));
console.log(`tabrecall: native backend built (${blas ? 'OpenBLAS' : 'built-in GEMM'}) -> ${lib}`);
