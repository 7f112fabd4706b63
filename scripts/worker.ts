/**
 * `npm run worker -- --queue redis://HOST:PORT [--backend B] [--concurrency N] [--stalled-seconds S] [--idle-exit S]`:
 * take queued runs (bench --queue) and run them, on as many machines as there are workers.
 * Each run is a child `bench` process limited to that one run (the same code path as a local run,
 * so its record is the same), writing into a temp folder; its record is the job's result. The worker
 * process only holds the job's lock: a child's long computation never starves the lock renewal, and
 * a worker killed mid-run loses its lock, so another worker retries the run (BullMQ's stalled-job
 * check, every --stalled-seconds). A child whose worker is gone stops too (its stdin closes).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DelayedError, UnrecoverableError, Worker, type Job as BullJob } from 'bullmq';
import { args, main, onLines, UsageError } from './cli.js';
import { BACKEND_NAMES } from '../kernels/backend.js';
import { checkReachable, codeVersion, openQueue, parseQueueUrl, QUEUE_NAME, type QueueJobData } from '../suites/queue.js';
import { loadRecord, recordPath } from '../reports/store.js';
import { runEndLine } from '../reports/summary.js';
import type { RunRecord } from '../reports/schema.js';

const positive = (name: string, v: string, min = 1) => {
  const n = Number(v);
  if (!Number.isFinite(n) || n < min) throw new UsageError(`--${name}: must be a number >= ${min}, got ${JSON.stringify(v)}`);
  return n;
};

main(async () => {
  const { values: o } = args({
    queue: { type: 'string' },
    backend: { type: 'string' },
    concurrency: { type: 'string', default: '1' },
    'stalled-seconds': { type: 'string', default: '30' },
    'idle-exit': { type: 'string' },
    help: { type: 'boolean', default: false },
  });
  if (o.help || o.queue === undefined) {
    const usage = `usage: npm run worker -- --queue redis://HOST:PORT[/DB] [--backend ${BACKEND_NAMES.join('|')}] [--concurrency N] [--stalled-seconds S] [--idle-exit S]`;
    if (o.help) {
      console.log(usage);
      return 0;
    }
    throw new UsageError(`--queue: required (${usage})`);
  }
  if (o.backend !== undefined && !(BACKEND_NAMES as readonly string[]).includes(o.backend)) {
    throw new UsageError(`--backend: unknown backend ${JSON.stringify(o.backend)}; allowed: ${BACKEND_NAMES.join(', ')}`);
  }
  const concurrency = positive('concurrency', o.concurrency!);
  if (!Number.isInteger(concurrency)) throw new UsageError(`--concurrency: must be a positive integer, got ${JSON.stringify(o.concurrency)}`);
  const stalledMs = positive('stalled-seconds', o['stalled-seconds']!) * 1000;
  const idleExitMs = o['idle-exit'] === undefined ? undefined : positive('idle-exit', o['idle-exit'], 0) * 1000;
  const target = parseQueueUrl(o.queue);
  await checkReachable(target);

  const code = codeVersion();
  const me = `${hostname()} pid ${process.pid}`;
  const threads = process.env.TABRECALL_THREADS ?? String(Math.max(1, Math.floor(cpus().length / concurrency)));
  const bench = fileURLToPath(new URL('./bench.ts', import.meta.url));
  const children = new Set<ChildProcess>();
  const log = (line: string) => process.stderr.write(`worker ${me}: ${line}\n`);
  let exitCode = 0;
  let lastBusy = Date.now();
  let stopping: Promise<void> | undefined;

  const runOne = async (job: BullJob<QueueJobData, RunRecord>, token?: string): Promise<RunRecord> => {
    const d = job.data;
    if (d.code !== code) {
      // Another version's run: computed here it would be a different experiment. Put it back for a
      // worker of that version (a delay, not a failed attempt) and stop taking jobs.
      await job.moveToDelayed(Date.now() + 1000, token);
      log(`job ${job.id} was submitted by code version ${d.code}, this worker runs ${code}; left it queued and stopping (check out that version, or resubmit from this one)`);
      exitCode = 2;
      void stop();
      throw new DelayedError();
    }
    lastBusy = Date.now();
    const attempt = `attempt ${job.attemptsMade + 1}/${job.opts.attempts ?? 1}`;
    log(`started ${d.label} (${job.id}, ${attempt})`);
    const dir = mkdtempSync(join(tmpdir(), 'tabrecall-job-'));
    try {
      const backend = d.backend === 'auto' && o.backend !== undefined ? o.backend : d.backend;
      const argv = [...process.execArgv, bench, '--suite', d.suite, '--backend', backend, '--seeds', d.seeds.join(','), '--out', dir, '--jobs', '1', '--only-run', d.runId, '--queue-child'];
      const child = spawn(process.execPath, argv, { stdio: ['pipe', 'ignore', 'pipe'], env: { ...process.env, TABRECALL_THREADS: threads, TABRECALL_QUEUE_WORKER: me } });
      children.add(child);
      const tail: string[] = [];
      onLines(child.stderr!, (l) => {
        tail.push(l);
        if (tail.length > 20) tail.shift();
        if (!/^tabrecall: suite/.test(l)) process.stderr.write(`  [${d.runId}] ${l}\n`);
      });
      const [exit, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((res) => child.on('exit', (c, s) => res([c, s])));
      children.delete(child);
      const rec = loadRecord(recordPath(dir, d.runId));
      // 0: ran; 1 with a record: a failed run (a non-finite loss): its record says so.
      if (rec && (exit === 0 || exit === 1)) {
        log(`finished ${d.label}: ${runEndLine(rec)}, ${rec.wallTimeSeconds.toFixed(1)} s`);
        return rec;
      }
      const why = tail.filter((l) => !/^\s+at /.test(l)).slice(-3).join(' | ') || 'no output';
      // 2: bad input (a suite file not on this machine, a backend it lacks): no retry would help.
      if (exit === 2) throw new UnrecoverableError(`${me}: ${why}`);
      throw new Error(`${me}: bench exited with ${signal ?? `code ${exit}`}: ${why}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
      lastBusy = Date.now();
    }
  };

  const worker = new Worker<QueueJobData, RunRecord>(QUEUE_NAME, runOne, {
    connection: target.connection, concurrency, lockDuration: stalledMs, stalledInterval: Math.max(500, stalledMs / 2),
    // A run lost with its worker is retried like a crash; the run's own attempts bound both.
    maxStalledCount: 3,
  });
  let lastError = '';
  worker.on('error', (e) => {
    if (e.message !== lastError) log(`Redis: ${e.message}`); // ioredis reconnects; say it once per cause
    lastError = e.message;
  });
  worker.on('failed', (job, e) => {
    if (job && !(e instanceof DelayedError)) log(`failed ${job.data.label} (${job.id}, attempt ${job.attemptsMade}/${job.opts.attempts ?? 1}): ${e.message}`);
  });
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      for (const c of children) c.kill('SIGTERM');
      await worker.close(true);
    })();
    return stopping;
  };
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      log(`${sig}: stopping; a run it held is retried by another worker after ${stalledMs / 1000} s`);
      exitCode = sig === 'SIGINT' ? 130 : 143;
      void stop();
    });
  }
  log(`listening on ${target.shown} (queue ${QUEUE_NAME}), code ${code}, concurrency ${concurrency}, ${threads} thread(s) per run`);

  let idleTimer: NodeJS.Timeout | undefined;
  if (idleExitMs !== undefined) {
    const q = openQueue(target);
    idleTimer = setInterval(() => {
      if (children.size || stopping) return;
      void q.getJobCounts('waiting', 'delayed', 'prioritized', 'active').then((c) => {
        const open = Object.values(c).reduce((s, x) => s + x, 0);
        if (open) lastBusy = Date.now();
        else if (Date.now() - lastBusy >= idleExitMs) {
          log(`queue empty for ${idleExitMs / 1000} s; exiting`);
          void stop();
        }
      }, () => undefined);
    }, 1000);
    worker.on('closed', () => {
      clearInterval(idleTimer);
      void q.close();
    });
  }
  await new Promise<void>((res) => worker.on('closed', () => res()));
  if (stopping) await stopping;
  return exitCode;
});
