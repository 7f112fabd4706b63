#!/usr/bin/env node
// `npm run bundle [-- --out DIR]`: an offline folder (default dist/tabrecall) that runs with a bare
// `node` on a host with no npm and no network, such as a lent GPU machine:
//   bin/bench.mjs        the CLI (same flags as npm run bench), suites next to it
//   bin/pretrain.mjs     tabular ICL pretraining (same flags as npm run pretrain; bin/prior-worker.mjs
//                        draws prior batches in worker threads)
//   bin/test-gpu.mjs     the kernel/operator/model tests on cuda (vitest-compatible shim)
//   native/, cuda/       sources + build scripts of both libraries (built there: node native/build.mjs,
//                        node cuda/build.mjs), found by the CLI at native/build and cuda/build
//   node_modules/koffi   the FFI package (not bundlable: it ships a native addon)
//   node_modules/vega*   the browser builds of Vega and vega-embed that leaderboards inline
//   tables/, models/     the shipped tables and ICL checkpoints (tabular suites)
// The wasm backend, onnxruntime-node (ONNX models) and bullmq (bench --queue: shards work) are not carried; the bundle's backends are
// native and cuda. The entry points share chunks (one copy of tfjs) and are minified (~5 MB in all).
// `--slim` leaves out tables/ and models/ (tabular suites then fail with their one-line error): with
// Node (24 MB) and the tracked files it fits a device call's 64 MiB carry.
import { build } from 'esbuild';
import { cpSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execFileSync } from 'node:child_process';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const i = process.argv.indexOf('--out');
const out = i > 0 ? process.argv[i + 1] : join(root, 'dist', 'tabrecall');
const slim = process.argv.includes('--slim');
rmSync(out, { recursive: true, force: true });
mkdirSync(join(out, 'bin'), { recursive: true });

let sha = 'unknown';
try {
  sha = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: root }).toString().trim();
} catch {}

await build({
  entryPoints: { bench: join(root, 'scripts/bench.ts'), pretrain: join(root, 'scripts/pretrain.ts'), 'test-gpu': join(root, 'tests/offline/run-gpu-tests.ts'), 'prior-worker': join(root, 'datasets/tabular/prior-worker.ts'), 'profile-op': join(root, 'scripts/profile-op.ts') },
  outdir: join(out, 'bin'),
  outExtension: { '.js': '.mjs' },
  chunkNames: 'chunk-[hash]', // next to the entries: modules find their data relative to their own file
  splitting: true,
  minify: true,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  // bullmq/ioredis (bench --queue) stay out too: a GPU host in a device call reaches no Redis, and they would push the slim bundle past its carry budget.
  external: ['koffi', 'esbuild', '@tensorflow/tfjs-node', '@tensorflow/tfjs-backend-wasm', 'playwright-core', 'onnxruntime-node', 'bullmq', 'ioredis'],
  alias: { vitest: join(root, 'tests/offline/vitest-shim.ts') },
  // Bundled CommonJS (tfjs) needs require() in an ES module.
  banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
  define: { 'process.env.TABRECALL_BUNDLE_SHA': JSON.stringify(sha) },
  logLevel: 'warning',
});

for (const f of readdirSync(join(root, 'suites')).filter((f) => f.endsWith('.json'))) cpSync(join(root, 'suites', f), join(out, 'bin', f));
for (const lib of ['native', 'cuda']) {
  mkdirSync(join(out, lib), { recursive: true });
  cpSync(join(root, 'kernels', lib, 'src'), join(out, lib, 'src'), { recursive: true });
  cpSync(join(root, 'kernels', lib, 'build.mjs'), join(out, lib, 'build.mjs'));
}
// Tabular data and checkpoints, where the bundled modules look for them (bin/../tables, bin/../models).
if (!slim) {
  cpSync(join(root, 'datasets', 'tables'), join(out, 'tables'), { recursive: true });
  cpSync(join(root, 'models', 'checkpoints'), join(out, 'models', 'checkpoints'), { recursive: true, dereference: true });
}
const nm = join(root, 'node_modules');
cpSync(join(nm, 'koffi'), join(out, 'node_modules', 'koffi'), { recursive: true, filter: (p) => !p.includes('koffi/doc') && !p.includes('koffi/vendor') });
for (const f of readdirSync(join(nm, '@koromix', 'koffi-linux-x64')).filter((f) => !f.startsWith('musl'))) cpSync(join(nm, '@koromix', 'koffi-linux-x64', f), join(out, 'node_modules', '@koromix', 'koffi-linux-x64', f), { recursive: true });
// The leaderboard inlines Vega's and vega-embed's browser builds, read from their packages at run time.
for (const [pkg, files] of [['vega', ['package.json', 'build/vega.module.js', 'build/vega.min.js']], ['vega-embed', ['package.json', 'build/embed.js', 'build/vega-embed.min.js']]]) {
  for (const f of files) cpSync(join(nm, pkg, f), join(out, 'node_modules', pkg, f));
}
writeFileSync(join(out, 'package.json'), JSON.stringify({ name: 'tabrecall-bundle', private: true, type: 'module', gitSha: sha }, null, 1));
const size = (d) => readdirSync(d, { withFileTypes: true }).reduce((s, e) => s + (e.isDirectory() ? size(join(d, e.name)) : statSync(join(d, e.name)).size), 0);
console.log(`tabrecall: offline bundle at ${out} (git ${sha.slice(0, 12)}, ${(size(out) / 2 ** 20).toFixed(1)} MiB${slim ? ', slim: no tables or checkpoints' : ''})`);
