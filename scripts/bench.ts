/** `npm run bench -- [--suite quick,tabular-quick,sparsify-quick,decode-quick] [--filter RE] [--backend auto] [--seeds 0,1] [--out DIR] [--resume] [--list]` */
import { join, resolve } from 'node:path';
import { existsSync, rmSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { cpus } from 'node:os';
import { readReport } from '../reports/read.js';
import { args, main, onLines, UsageError } from './cli.js';
import { loadSuite, suiteNames } from '../suites/grid.js';
import { planSuite } from '../suites/plan.js';
import { assignShards, parseShard } from '../suites/shard.js';
import { runJobs } from '../suites/orchestrator.js';
import { loadRecord, rebuildReport, recordPath } from '../reports/store.js';
import type { Report, RunRecord } from '../reports/schema.js';
import type { SuiteFile } from '../suites/types.js';
import { BACKEND_NAMES } from '../kernels/backend.js';
import { renderLeaderboard } from '../reports/html.js';
import { writeAtomic } from '../core/files.js';
import { formatTable } from '../reports/table.js';
import { failureLines, runEndLine, summaryTable } from '../reports/summary.js';

interface BenchOptions { queue?: string; collect?: boolean; detach?: boolean; cancel?: boolean; attempts?: string; onlyRun?: string; queueChild?: boolean; shard?: string; saveModels?: string; evalFile?: string; suite?: string; seeds?: string; filter?: string; backend?: string; out?: string; resume?: boolean; list?: boolean; jobs?: string; worker?: string }

main(async () => {
  const { values: o } = args({
    suite: { type: 'string', default: 'quick,tabular-quick,sparsify-quick,decode-quick' },
    filter: { type: 'string' },
    backend: { type: 'string', default: 'auto' },
    seeds: { type: 'string' },
    out: { type: 'string' },
    resume: { type: 'boolean', default: false },
    list: { type: 'boolean', default: false },
    jobs: { type: 'string', default: 'auto' },
    'save-models': { type: 'string' },
    'eval-file': { type: 'string' },
    shard: { type: 'string' },
    queue: { type: 'string' },
    collect: { type: 'boolean', default: false },
    detach: { type: 'boolean', default: false },
    cancel: { type: 'boolean', default: false },
    attempts: { type: 'string', default: '3' },
    // internal: a queue worker's child running one run (scripts/worker.ts)
    'only-run': { type: 'string' },
    'queue-child': { type: 'boolean', default: false },
    // internal: this process is worker i of a --jobs bench (claims jobs in the shared folder)
    worker: { type: 'string' },
    help: { type: 'boolean', default: false },
  });
  if (!/^(auto|[1-9]\d*)$/.test(o.jobs!)) throw new UsageError(`--jobs: must be auto or a positive integer, got ${JSON.stringify(o.jobs)}`);
  if (o['queue-child']) exitWithParent();
  if (o.help) {
    console.log(`usage: npm run bench -- [--suite ${suiteNames().join('|')}] [--filter REGEX] [--backend ${BACKEND_NAMES.join('|')}] [--seeds 0,1,2] [--out DIR] [--resume] [--list] [--jobs auto|N] [--save-models DIR] [--eval-file PATH] [--shard i/n] [--queue redis://HOST:PORT [--detach|--collect|--cancel] [--attempts N]]`);
    return 0;
  }
  const names = o.suite!.split(',').map((n) => n.trim()).filter(Boolean);
  if (names.length === 0) throw new UsageError('--suite: give a suite name, a suite file, or a comma-separated list');
  const suites = names.map((n) => loadSuite(n)); // validate them all before running any
  await checkQueueOptions(o, suites.length);
  if (o.queue !== undefined && !o.list) {
    const { checkReachable, parseQueueUrl } = await queueModule();
    await checkReachable(parseQueueUrl(o.queue)); // before planning: an unreachable server is one line at once
  }
  if (suites.length > 1 && o.out !== undefined) throw new UsageError('--out: only with a single --suite (each suite writes results/<suite>)');
  let failed = 0;
  for (const suite of suites) {
    try {
      failed += await runNamedSuite(suite, { ...o, saveModels: o['save-models'], evalFile: o['eval-file'], onlyRun: o['only-run'], queueChild: o['queue-child'] });
    } catch (e) {
      // With several suites, a filter may match runs of only some of them.
      if (!(suites.length > 1 && e instanceof UsageError && /^--filter: no (run|case) /.test(e.message))) throw e;
      process.stderr.write(`${e.message}; skipped\n`);
    }
  }
  if (suites.length > 1 && !o.list && !o.detach && !o.cancel) {
    // One leaderboard over all the suites just run.
    const reports = suites.map((s) => join('results', s.name, 'report.json')).filter((p) => existsSync(p)).map((p) => ({ path: p, report: readReport(p) }));
    const html = resolve('results', 'leaderboard.html');
    writeAtomic(html, renderLeaderboard(reports));
    console.log(`\nleaderboard (all suites): ${html}`);
  }
  if (failed) process.stderr.write(`\n${failed} run(s) failed; their records say why (see above)\n`);
  return failed ? 1 : 0;
});

/** Plan, run (through the one orchestrator), write the leaderboard, print the table. Returns the failed runs' count. */
async function runNamedSuite(suite: SuiteFile, o: BenchOptions): Promise<number> {
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
  const plan = await planSuite(suite, {
    seeds, filter, backend: o.backend!, listOnly: !!o.list, saveModels: o.saveModels === undefined ? undefined : resolve(o.saveModels), evalFile: o.evalFile,
    onSkip: (b, why) => process.stderr.write(`${suite.name}: skipping backend ${b} (${why})\n`),
  });
  if (o.shard !== undefined) {
    // A deterministic slice (suites/shard.ts); the report of this folder holds this shard's runs; `npm run merge` joins the folders.
    const { index, count } = parseShard(o.shard);
    if (o.list) throw new UsageError('--shard: not with --list (the slices are balanced by the planned jobs\' costs)');
    const of = assignShards(plan.jobs, count);
    const mine = new Set(plan.jobs.filter((j) => of.get(j.id) === index).map((j) => j.id));
    process.stderr.write(`tabrecall: shard ${index}/${count} of suite ${suite.name}: ${mine.size} of ${plan.jobs.length} ${plan.unit}\n`);
    if (mine.size === 0) return 0; // more shards than runs: this one has nothing to do
    plan.jobs = plan.jobs.filter((j) => mine.has(j.id));
    plan.listed = plan.listed.filter((j) => mine.has(j.id));
  }
  if (o.onlyRun !== undefined) {
    plan.jobs = plan.jobs.filter((j) => j.id === o.onlyRun);
    plan.listed = plan.listed.filter((j) => j.id === o.onlyRun);
    if (!plan.jobs.length) throw new UsageError(`--only-run: suite ${suite.name} (seeds ${seeds.join(',')}) has no run ${o.onlyRun} here; is the worker's suite file the submitter's?`);
  }
  if (o.queue !== undefined && !o.list) return runQueued(suite, plan, seeds, o);
  const jobs = jobCount(o.jobs!, plan.kind, plan.backend, plan.jobs.length);
  if (!o.list && o.worker === undefined && jobs > 1) return runWithWorkers(suite, plan, jobs, o);
  if (plan.fingerprint && o.queueChild && process.env.TABRECALL_QUEUE_WORKER) plan.fingerprint.backendInfo = { ...plan.fingerprint.backendInfo, queueWorker: process.env.TABRECALL_QUEUE_WORKER };
  if (plan.fingerprint && o.worker !== undefined) plan.fingerprint.backendInfo = { ...plan.fingerprint.backendInfo, concurrentJobs: o.worker.split('/')[1]! };
  const one = plan.unit.replace(/s$/, '');
  if (o.list) {
    console.log(formatTable(['run id', one], plan.listed.map((j) => [j.id, j.label])));
    console.log(`\n${plan.listed.length} ${plan.unit} in suite ${suite.name}`);
    return 0;
  }
  if (plan.jobs.length === 0) throw new UsageError(`--filter: no ${one} of suite ${suite.name} matches ${JSON.stringify(o.filter)}`);
  const outDir = resolve(o.out ?? join('results', suite.name));
  process.stderr.write(`tabrecall: suite ${suite.name}, ${plan.jobs.length} ${plan.unit}, backend ${plan.backend}, out ${outDir}\n`);
  const t0 = performance.now();
  const tty = process.stderr.isTTY;
  let lastLine = 0;
  const tag = (i: number, n: number) => `[${one} ${i + 1}/${n}]`;
  const { report, paths, records, failed } = await runJobs(plan.jobs, {
    suite: suite.name, outDir, resume: !!o.resume, fingerprint: plan.fingerprint!, order: plan.order, emitEveryMs: plan.emitEveryMs, finalize: plan.finalize, claim: o.worker !== undefined,
  }, {
    start: (i, n, label, eta) => process.stderr.write(`${tag(i, n)} ${label}${eta === null ? '' : ` (suite ETA ${Math.round(eta)}s)`}${plan.kind === 'train' ? '\n' : ' ... '}`),
    progress: (i, n, _label, p, eta) => {
      const now = performance.now();
      if (!tty && p.validAccuracy === undefined && now - lastLine < 5000) return;
      lastLine = now;
      const acc = p.validAccuracy !== undefined ? ` valid acc ${p.validAccuracy.toFixed(3)}` : '';
      const line = `${tag(i, n)} step ${p.step}/${p.maxSteps} loss ${p.loss.toFixed(4)}${acc} ETA ${Math.round(eta)}s`;
      process.stderr.write(tty ? `\r${line.padEnd(100)}` : `${line}\n`);
    },
    end: (i, n, r, resumed) => {
      if (resumed && o.worker !== undefined && !o.worker.startsWith('1/')) return; // worker 1 reports what was resumed
      if (resumed) process.stderr.write(`${tag(i, n)} ${r.label}: already done (resumed)\n`);
      else process.stderr.write(`${plan.kind === 'train' ? `${tty ? '\n' : ''}${tag(i, n)} done: ` : ''}${runEndLine(r)}, ${r.wallTimeSeconds.toFixed(1)} s\n`);
    },
    note: (i, n, message) => process.stderr.write(`${tag(i, n)} ${message}\n`),
  });
  if (o.worker !== undefined) return failed.length; // the parent writes the leaderboard and the table
  return finish(suite.name, plan, outDir, report, paths, records, t0, '');
}

/** The end of a suite: the leaderboard, the table of this invocation's runs, where the files are, what failed. Returns the failed count. */
function finish(suite: string, plan: Awaited<ReturnType<typeof planSuite>>, outDir: string, report: Report, paths: { json: string; arrow: string }, records: RunRecord[], t0: number, how: string): number {
  const html = join(outDir, 'leaderboard.html');
  writeAtomic(html, renderLeaderboard([{ path: paths.json, report }]));
  // The report's copies: its finalize step (speedups, ratios to dense) filled them in.
  console.log(summaryTable(plan.kind, records.map((r) => report.records.find((x) => x.runId === r.runId) ?? r)));
  const others = report.records.length - records.length;
  console.log(`\nsuite ${suite} on ${plan.backend}: ${records.length} ${plan.unit} in ${((performance.now() - t0) / 1000).toFixed(1)} s${how}${others > 0 ? `; the report also keeps ${others} earlier record(s) of ${outDir}/runs` : ''}`);
  console.log(`report:      ${paths.json}\n             ${paths.arrow}\nleaderboard: ${html}`);
  const failed = records.filter((r) => r.failure);
  const lost = (report.failedJobs ?? []).filter((j) => plan.listed.some((l) => l.id === j.runId));
  for (const line of failureLines(failed, lost)) console.log(line);
  return failed.length + lost.length;
}

/** Queue mode's module, loaded only for --queue (the offline bundle does not carry bullmq: a one-line error there). */
async function queueModule(): Promise<typeof import('../suites/queue.js')> {
  try {
    return await import('../suites/queue.js');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ERR_MODULE_NOT_FOUND' || /Cannot find (module|package) '(bullmq|ioredis)'/.test((e as Error).message)) {
      throw new UsageError('--queue: bullmq is not installed here (the offline bundle leaves it out); run npm ci, or use --shard and npm run merge');
    }
    throw e;
  }
}

/** Options that mean nothing with (or without) --queue are errors, never silently ignored. */
async function checkQueueOptions(o: { queue?: string; collect?: boolean; detach?: boolean; cancel?: boolean; attempts?: string; resume?: boolean; jobs?: string; 'save-models'?: string; 'eval-file'?: string; list?: boolean }, suites: number): Promise<void> {
  const modes = (['collect', 'detach', 'cancel'] as const).filter((k) => o[k]);
  if (o.queue === undefined) {
    if (modes.length) throw new UsageError(`--${modes[0]}: only with --queue redis://HOST:PORT`);
    if (o.attempts !== '3') throw new UsageError('--attempts: only with --queue redis://HOST:PORT');
    return;
  }
  (await queueModule()).parseQueueUrl(o.queue); // a malformed URL: one line before anything is planned
  if (modes.length > 1) throw new UsageError(`--${modes.join(', --')}: choose one`);
  if (!/^[1-9]\d*$/.test(o.attempts!)) throw new UsageError(`--attempts: must be a positive integer, got ${JSON.stringify(o.attempts)}`);
  if (o.jobs !== 'auto') throw new UsageError('--jobs: not with --queue (each worker sets its own: npm run worker -- --concurrency N)');
  if (o.resume) throw new UsageError('--resume: not with --queue (a queued run that already has a result is never run again; --collect gathers them)');
  if (o['save-models'] !== undefined || o['eval-file'] !== undefined) throw new UsageError(`--${o['save-models'] !== undefined ? 'save-models' : 'eval-file'}: not with --queue (its path would be each worker's)`);
  if (suites > 1 && !o.detach && !o.cancel) throw new UsageError('--queue: one --suite at a time when waiting for the results (or --detach, then --collect each suite)');
}

/** The queue worker's child: its worker gone (killed), it stops too, so a retried run never runs twice at once. */
function exitWithParent(): void {
  process.stdin.on('end', () => process.exit(137));
  process.stdin.on('error', () => process.exit(137));
  process.stdin.resume();
}

/**
 * bench --queue: enqueue the plan's runs (unless --collect), then (unless --detach) wait for the
 * workers' records, showing progress, and write the usual report, leaderboard and table.
 */
async function runQueued(suite: SuiteFile, plan: Awaited<ReturnType<typeof planSuite>>, seeds: number[], o: BenchOptions): Promise<number> {
  const { cancelRuns, codeVersion, collectRuns, openQueue, parseQueueUrl, submitRuns } = await queueModule();
  const target = parseQueueUrl(o.queue!);
  const runs = plan.jobs.map((j) => ({ id: j.id, label: j.label, cost: j.cost ?? 1 }));
  const q = openQueue(target);
  try {
    const t0 = performance.now();
    if (o.cancel) {
      const { removed, running } = await cancelRuns(q, suite.name, runs);
      console.log(`queue ${target.shown}: removed ${removed} run(s) of suite ${suite.name}${running ? `; ${running} running now were left to finish` : ''}`);
      return 0;
    }
    const code = codeVersion();
    if (!o.collect) {
      const source = suite.source?.endsWith('.json') ? resolve(suite.source) : suite.name;
      const s = await submitRuns(q, runs, { v: 1, suite: source, suiteName: suite.name, backend: o.backend!, seeds, code, submittedAt: new Date().toISOString() }, Number(o.attempts));
      process.stderr.write(`tabrecall: suite ${suite.name}: ${runs.length} ${plan.unit} on queue ${target.shown} (${s.added} added, ${s.kept} already queued${s.retried ? `, ${s.retried} failed ones retried` : ''}${s.replaced ? `, ${s.replaced} of another code version replaced` : ''}), code ${code}\n`);
      if (o.detach) {
        console.log(`submitted. Start workers:  npm run worker -- --queue ${target.shown}\nthen collect the report:   npm run bench -- --suite ${suite.source ?? suite.name} --queue ${target.shown} --collect`);
        return 0;
      }
    }
    const outDir = resolve(o.out ?? join('results', suite.name));
    const tty = process.stderr.isTTY;
    let last = '', lastAt = 0;
    const { records } = await collectRuns(q, suite.name, runs, outDir, {
      onProgress: (p) => {
        for (const r of p.collected) process.stderr.write(`${tty ? '\r' : ''}[queue] ${r.label}: ${runEndLine(r)}, ${r.wallTimeSeconds.toFixed(1)} s on ${r.fingerprint.hostname}\n`);
        const line = `[queue] ${p.done}/${p.total} done, ${p.running} running, ${p.waiting} waiting, ${p.failed} failed${p.etaSeconds === null ? '' : `, ETA ${Math.round(p.etaSeconds)}s`}`;
        const now = performance.now();
        if (line === last && now - lastAt < 30_000) return;
        if (!tty && now - lastAt < 5000 && p.collected.length === 0 && p.done + p.failed < p.total) return;
        last = line;
        lastAt = now;
        process.stderr.write(tty ? `\r${line.padEnd(90)}` : `${line}\n`);
      },
    });
    if (tty) process.stderr.write('\n');
    const { report, paths } = await rebuildReport(outDir, { suite: suite.name, fingerprint: { ...plan.fingerprint!, backendInfo: { ...plan.fingerprint!.backendInfo, queue: target.shown } }, order: plan.order, finalize: plan.finalize });
    return finish(suite.name, plan, outDir, report, paths, records, t0, ` (queue ${target.shown}, ${new Set(records.map((r) => r.fingerprint.backendInfo.queueWorker ?? r.fingerprint.hostname)).size} worker(s))`);
  } finally {
    await q.close();
  }
}

/**
 * --jobs auto: one worker process per core for training and tabular suites on the CPU (a d64 model
 * gains ~5% from a second thread, so two single-thread runs side by side nearly double throughput);
 * one for kernels and sparsify suites (their latencies are measured: a second process on the same
 * cores would be timed with them) and for cuda (one GPU).
 */
function jobCount(jobs: string, kind: string, backend: string, n: number): number {
  if (jobs !== 'auto') return Math.min(Number(jobs), Math.max(1, n));
  if (kind === 'kernels' || kind === 'sparsify' || kind === 'decode' || kind === 'grid' || backend === 'cuda') return 1;
  return Math.max(1, Math.min(cpus().length, n));
}

/**
 * Run the plan in `jobs` worker processes sharing the output folder: each claims jobs before running
 * them (claims/ in the folder), writes their records, and rebuilds the report under its lock; this
 * process then writes the report, the leaderboard and the table. Each worker gets cores / jobs
 * threads (unless TABRECALL_THREADS is set) and records the concurrency in its fingerprint.
 */
async function runWithWorkers(suite: SuiteFile, plan: Awaited<ReturnType<typeof planSuite>>, jobs: number, o: BenchOptions): Promise<number> {
  const outDir = resolve(o.out ?? join('results', suite.name));
  const claims = join(outDir, 'claims');
  rmSync(claims, { recursive: true, force: true });
  const t0 = performance.now();
  process.stderr.write(`tabrecall: suite ${suite.name}, ${plan.jobs.length} ${plan.unit}, backend ${plan.backend}, ${jobs} worker processes, out ${outDir}\n`);
  const threads = process.env.TABRECALL_THREADS ?? String(Math.max(1, Math.floor(cpus().length / jobs)));
  const args = ['--suite', suite.source ?? suite.name, '--backend', plan.backend, '--out', outDir, '--jobs', '1',
    ...(o.seeds !== undefined ? ['--seeds', o.seeds] : []), ...(o.filter !== undefined ? ['--filter', o.filter] : []), ...(o.resume ? ['--resume'] : []),
    ...(o.saveModels !== undefined ? ['--save-models', resolve(o.saveModels)] : []), ...(o.evalFile !== undefined ? ['--eval-file', o.evalFile] : []), ...(o.shard !== undefined ? ['--shard', o.shard] : [])];
  const codes = await Promise.all(Array.from({ length: jobs }, (_, w) => new Promise<number>((done) => {
    const child = spawn(process.execPath, [...process.execArgv, process.argv[1]!, ...args, '--worker', `${w + 1}/${jobs}`], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, TABRECALL_THREADS: threads } });
    onLines(child.stderr!, (l) => {
      if (!/^tabrecall: suite/.test(l)) process.stderr.write(`[worker ${w + 1}] ${l}\n`);
    });
    child.on('exit', (code, signal) => done(code ?? (signal ? 128 : 1)));
  })));
  rmSync(claims, { recursive: true, force: true });
  // 0: all ran; 1: some runs failed (their records say why); anything else: a worker broke.
  const broken = codes.map((c, i) => [c, i + 1] as const).filter(([c]) => c !== 0 && c !== 1);
  if (broken.length) throw new Error(`bench: worker(s) ${broken.map(([c, w]) => `${w} (exit ${c})`).join(', ')} failed; their output is above; --resume continues`);
  const records = plan.listed.map((j) => loadRecord(recordPath(outDir, j.id)));
  const lost = plan.listed.filter((_, i) => !records[i]);
  if (lost.length) throw new Error(`bench: no record for ${lost.map((j) => j.label).join('; ')}; --resume runs them`);
  const mine = records as RunRecord[];
  const { report, paths } = await rebuildReport(outDir, { suite: suite.name, fingerprint: mine[0]?.fingerprint ?? plan.fingerprint! /* a worker's: its threads, its concurrency */, order: plan.order, finalize: plan.finalize });
  return finish(suite.name, plan, outDir, report, paths, mine, t0, ` (${jobs} workers)`);
}
