/** `npm run bench -- [--suite quick,tabular-quick] [--filter RE] [--backend auto] [--seeds 0,1] [--out DIR] [--resume] [--list]` */
import { join, resolve } from 'node:path';
import { existsSync } from 'node:fs';
import { readReport } from '../reports/read.js';
import { args, main, UsageError } from './cli.js';
import { expandSuite, loadSuite, runLabel, runId, suiteNames } from '../suites/grid.js';
import { runSuite } from '../suites/runner.js';
import { kernelCases, kernelCaseId, kernelCaseLabel, runKernelsSuite, KERNELS_DEFAULTS } from '../suites/kernels.js';
import type { SuiteFile } from '../suites/types.js';
import { runTabular } from './bench-tabular.js';
import { useBackend, backendInfo, hasKernel, BACKEND_NAMES } from '../kernels/backend.js';
import { FUSED_KERNEL } from '../kernels/block-sparse.js';
import { fingerprint } from '../reports/fingerprint.js';
import { renderLeaderboard } from '../reports/html.js';
import { writeAtomic } from '../reports/write.js';
import { fmt, formatTable } from '../reports/table.js';

main(async () => {
  const { values: o } = args({
    suite: { type: 'string', default: 'quick,tabular-quick' },
    filter: { type: 'string' },
    backend: { type: 'string', default: 'auto' },
    seeds: { type: 'string' },
    out: { type: 'string' },
    resume: { type: 'boolean', default: false },
    list: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  });
  if (o.help) {
    console.log(`usage: npm run bench -- [--suite ${suiteNames().join('|')}] [--filter REGEX] [--backend ${BACKEND_NAMES.join('|')}] [--seeds 0,1,2] [--out DIR] [--resume] [--list]`);
    return 0;
  }
  const names = o.suite!.split(',').map((n) => n.trim()).filter(Boolean);
  if (names.length === 0) throw new UsageError('--suite: give a suite name, a suite file, or a comma-separated list');
  const suites = names.map((n) => loadSuite(n)); // validate them all before running any
  if (suites.length > 1 && o.out !== undefined) throw new UsageError('--out: only with a single --suite (each suite writes results/<suite>)');
  for (const suite of suites) {
    try {
      await runNamedSuite(suite, o);
    } catch (e) {
      // With several suites, a filter may match runs of only some of them.
      if (!(suites.length > 1 && e instanceof UsageError && /^--filter: no (run|case) /.test(e.message))) throw e;
      process.stderr.write(`${e.message}; skipped\n`);
    }
  }
  if (suites.length > 1 && !o.list) {
    // One leaderboard over all the suites just run.
    const reports = suites.map((s) => join('results', s.name, 'report.json')).filter((p) => existsSync(p)).map((p) => ({ path: p, report: readReport(p) }));
    const html = resolve('results', 'leaderboard.html');
    writeAtomic(html, renderLeaderboard(reports));
    console.log(`\nleaderboard (all suites): ${html}`);
  }
  return 0;
});

async function runNamedSuite(suite: SuiteFile, o: { seeds?: string; filter?: string; backend?: string; out?: string; resume?: boolean; list?: boolean }): Promise<number> {
  let seeds = suite.seeds;
  if (o.seeds !== undefined) {
    seeds = o.seeds.split(',').map((s) => Number(s.trim()));
    if (seeds.length === 0 || seeds.some((s) => !Number.isInteger(s) || s < 0)) {
      throw new UsageError(`--seeds: must be a comma-separated list of non-negative integers, got ${JSON.stringify(o.seeds)}`);
    }
  }
  let filter: RegExp | undefined;
  if (o.filter !== undefined) {
    try {
      filter = new RegExp(o.filter);
    } catch (e) {
      throw new UsageError(`--filter: not a valid regular expression (${(e as Error).message})`);
    }
  }
  if (!(BACKEND_NAMES as readonly string[]).includes(o.backend!)) {
    throw new UsageError(`--backend: unknown backend ${JSON.stringify(o.backend)}; allowed: ${BACKEND_NAMES.join(', ')}`);
  }
  if (suite.kind === 'kernels') return runKernels(suite, filter, o);
  if (suite.kind === 'tabular') return runTabular(suite, seeds, filter, o);
  // Expand with the requested name first so --list works without initialising a backend.
  const planned = expandSuite(suite, seeds, o.backend!).filter((c) => !filter || filter.test(runLabel(c)));
  if (o.list) {
    console.log(formatTable(['run id', 'run'], planned.map((c) => [runId(c), runLabel(c)])));
    console.log(`\n${planned.length} runs in suite ${suite.name}`);
    return 0;
  }
  if (planned.length === 0) throw new UsageError(`--filter: no run of suite ${suite.name} matches ${JSON.stringify(o.filter)}`);
  const backend = await useBackend(o.backend!);
  const runs = expandSuite(suite, seeds, backend).filter((c) => !filter || filter.test(runLabel(c)));
  const outDir = resolve(o.out ?? join('results', suite.name));
  const fp = fingerprint(backend, backendInfo());
  process.stderr.write(`tabrecall: suite ${suite.name}, ${runs.length} runs, backend ${backend}, out ${outDir}\n`);
  const t0 = performance.now();
  const tty = process.stderr.isTTY;
  let lastLine = 0;
  const { report, paths } = await runSuite(suite.name, runs, { outDir, resume: o.resume!, fingerprint: fp }, {
    runStart: (i, n, label) => process.stderr.write(`[run ${i + 1}/${n}] ${label}\n`),
    progress: (i, n, label, p, eta) => {
      const now = performance.now();
      if (!tty && p.validAccuracy === undefined && now - lastLine < 5000) return;
      lastLine = now;
      const acc = p.validAccuracy !== undefined ? ` valid acc ${p.validAccuracy.toFixed(3)}` : '';
      const line = `[run ${i + 1}/${n}] step ${p.step}/${p.maxSteps} loss ${p.loss.toFixed(4)}${acc} ETA ${Math.round(eta)}s`;
      process.stderr.write(tty ? `\r${line.padEnd(100)}` : `${line}\n`);
    },
    runEnd: (i, n, r, skipped) => {
      if (tty) process.stderr.write('\n');
      process.stderr.write(`[run ${i + 1}/${n}] ${skipped ? 'already done (resumed)' : 'done'}: ${r.metrics.kernel ? `${fmt(r.metrics.latency[0]?.medianMs, 2)} ms, ${fmt(r.metrics.kernel.gflops, 1)} GFLOP/s` : `accuracy ${fmt(r.metrics.accuracy, 4)} in ${r.metrics.trainSteps} steps`}, ${r.wallTimeSeconds.toFixed(1)} s\n`);
    },
  });
  const html = join(outDir, 'leaderboard.html');
  writeAtomic(html, renderLeaderboard([{ path: paths.json, report }]));
  console.log(
    formatTable(
      ['run', 'params', 'accuracy', 'exact', 'steps', 'train tok/s', 'lat b1 ms', 'fallbacks', 'wall s'],
      report.records.map((r) => [
        r.label, r.model.parameterCount, fmt(r.metrics.accuracy, 4), fmt(r.metrics.exactMatch, 3), r.metrics.trainSteps,
        Math.round(r.metrics.trainTokensPerSec), fmt(r.metrics.latency.find((l) => l.batch === 1)?.medianMs, 2), r.fallbackKernels.total, fmt(r.wallTimeSeconds, 1),
      ]),
    ),
  );
  console.log(`\nsuite ${suite.name} on ${backend}: ${report.records.length} runs in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  console.log(`report:      ${paths.json}\n             ${paths.arrow}\nleaderboard: ${html}`);
  return 0;
}

/** The kernels suite: --backend auto measures every backend the suite lists that works here. */
async function runKernels(suite: SuiteFile, filter: RegExp | undefined, o: { backend?: string; out?: string; resume?: boolean; list?: boolean }): Promise<number> {
  const c = { ...KERNELS_DEFAULTS, ...suite.kernels! };
  let backends = o.backend === 'auto' ? c.backends : [o.backend!];
  const fusedOn = new Set<string>(backends.filter((b) => b === 'native' || b === 'cuda'));
  if (!o.list) {
    const ok: string[] = [];
    fusedOn.clear();
    for (const b of backends) {
      try {
        await useBackend(b);
        ok.push(b);
        if (hasKernel(FUSED_KERNEL)) fusedOn.add(b);
      } catch (e) {
        if (o.backend !== 'auto') throw e;
        process.stderr.write(`kernels: skipping backend ${b} (${(e as Error).message})\n`);
      }
    }
    backends = ok;
  }
  const cases = kernelCases(c, backends, fusedOn).filter((k) => !filter || filter.test(kernelCaseLabel(k)));
  if (o.list) {
    console.log(formatTable(['run id', 'case'], cases.map((k) => [kernelCaseId(suite.name, c, k), kernelCaseLabel(k)])));
    console.log(`\n${cases.length} cases in suite ${suite.name}`);
    return 0;
  }
  if (cases.length === 0) throw new UsageError(`--filter: no case of suite ${suite.name} matches`);
  const outDir = resolve(o.out ?? join('results', suite.name));
  const fp = fingerprint(backends.join('+'), backendInfo());
  process.stderr.write(`tabrecall: suite ${suite.name}, ${cases.length} cases on ${backends.join(', ')}, out ${outDir}\n`);
  const t0 = performance.now();
  const { report, paths } = await runKernelsSuite(suite.name, c, cases, { outDir, resume: !!o.resume, fingerprint: fp }, {
    start: (i, n, label) => process.stderr.write(`[case ${i + 1}/${n}] ${label} ... `),
    end: (_i, _n, r, skipped) => process.stderr.write(skipped ? `[resumed] ${r.label}\n` : `${fmt(r.metrics.latency[0]!.medianMs, 2)} ms, ${fmt(r.metrics.kernel!.gflops, 1)} GFLOP/s\n`),
  });
  const html = join(outDir, 'leaderboard.html');
  writeAtomic(html, renderLeaderboard([{ path: paths.json, report }]));
  console.log(formatTable(['case', 'density', 'median ms', 'p10', 'p90', 'GFLOP/s', 'vs dense'], report.records.map((r) => {
    const k = r.metrics.kernel!;
    const l = r.metrics.latency[0]!;
    return [r.label, fmt(k.density, 3), fmt(l.medianMs, 3), fmt(l.p10Ms, 3), fmt(l.p90Ms, 3), fmt(k.gflops, 1), k.speedupVsDense === null ? '-' : `${fmt(k.speedupVsDense, 2)}x`];
  })));
  console.log(`\nsuite ${suite.name}: ${report.records.length} cases in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  console.log(`report:      ${paths.json}\n             ${paths.arrow}\nleaderboard: ${html}`);
  return 0;
}
