/**
 * Entry point of the bundle's `test-gpu.mjs`: the kernel, operator and model test files of
 * `npm run test:gpu`, run by the vitest shim on a host with only `node` (TABRECALL_TEST_BACKEND=cuda,
 * TABRECALL_TF32=0 are set here, before the tests load). Exit code 1 if any test fails.
 */
// The bundler aliases 'vitest' to this same module, so the test files register here.
import { beginFile, runAll } from './vitest-shim.js';

process.env.TABRECALL_TEST_BACKEND ??= 'cuda';
process.env.TABRECALL_TF32 ??= '0';

const shim = { beginFile, runAll };
// `node test-gpu.mjs [FILE...]`: only the named test files (default: all of them).
const only = process.argv.slice(2);
const want = (f: string) => only.length === 0 || only.includes(f);
if (want('native-kernels')) {
  shim.beginFile('native-kernels');
  await import('../native-kernels.test.js');
}
if (want('block-sparse')) {
  shim.beginFile('block-sparse');
  await import('../block-sparse.test.js');
}
if (want('combiner')) {
  shim.beginFile('combiner');
  await import('../combiner.test.js');
}
if (want('seqboat')) {
  shim.beginFile('seqboat');
  await import('../seqboat.test.js');
}
if (want('training-step')) {
  shim.beginFile('training-step');
  await import('../training-step.test.js');
}
if (want('selectors')) {
  shim.beginFile('selectors');
  await import('../selectors.test.js');
}
if (want('trainable')) {
  shim.beginFile('trainable');
  await import('../trainable.test.js');
}
if (want('decode')) {
  shim.beginFile('decode');
  await import('../decode.test.js');
}
const t0 = performance.now();
const r = await shim.runAll();
console.log(`\n${r.passed} passed, ${r.failed.length} failed (${((performance.now() - t0) / 1000).toFixed(1)} s) on ${process.env.TABRECALL_TEST_BACKEND}`);
for (const f of r.failed) console.log(`  failed: ${f.name}`);
process.exit(r.failed.length ? 1 : 0);
