/**
 * Queue mode (bench --queue, npm run worker): a suite's runs as BullMQ jobs on Redis, so any number
 * of machines run one sweep. BullMQ does the distributed part (locks, stalled-job recovery of a
 * killed worker's job, attempts, backoff); this module maps runs to jobs and back:
 *  - job id = `<suite>.<run id>`: submitting twice adds nothing, and a run's result is found again;
 *  - the job carries the submitter's code version: a worker of another version puts it back and
 *    stops, and a job of another version is never taken for this one's result;
 *  - the job's result is the run's record, written by the collector like a local run's.
 */
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { Queue, type ConnectionOptions, type Job as BullJob } from 'bullmq';
import { Redis } from 'ioredis';
import { ParamError } from '../core/params.js';
import { writeAtomic } from '../core/files.js';
import { checkRecord } from '../reports/read.js';
import { failedJobPath, recordPath } from '../reports/store.js';
import type { FailedJob, RunRecord } from '../reports/schema.js';

/** The BullMQ queue every tabrecall worker listens on (one Redis database per independent sweep farm: /DB in the URL). */
export const QUEUE_NAME = 'tabrecall';

export interface QueueTarget {
  connection: ConnectionOptions & { host: string; port: number };
  /** The URL without its password, for messages. */
  shown: string;
}

/** What a worker needs to run one planned run: the same suite, seeds and backend plan it. */
export interface QueueJobData {
  v: 1;
  /** A suite name, or a suite file's absolute path (workers must see the file at that path). */
  suite: string;
  suiteName: string;
  runId: string;
  label: string;
  /** The submitter's --backend; `auto` lets each worker pick (worker --backend, else its best). */
  backend: string;
  seeds: number[];
  code: string;
  cost: number;
  submittedAt: string;
}

export interface PlannedRun { id: string; label: string; cost: number }

/** `redis://[user:password@]host:port[/db]` or `rediss://...` (TLS). */
export function parseQueueUrl(url: string): QueueTarget {
  let u: URL;
  const bad = (why: string) => new ParamError('--queue', `${why}; expected redis://HOST:PORT[/DB] (or rediss:// for TLS), got ${JSON.stringify(url)}`);
  try {
    u = new URL(url);
  } catch {
    throw bad('not a URL');
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') throw bad(`unknown scheme ${JSON.stringify(u.protocol.replace(/:$/, ''))}`);
  if (!u.hostname) throw bad('no host');
  if (!u.port) throw bad('no port');
  const db = u.pathname.replace(/^\//, '');
  if (db !== '' && !/^\d+$/.test(db)) throw bad(`database must be a number, got ${JSON.stringify(db)}`);
  if (u.search || u.hash) throw bad('no query or fragment allowed');
  const connection = {
    host: u.hostname.replace(/^\[|\]$/g, ''),
    port: Number(u.port),
    ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
    ...(db ? { db: Number(db) } : {}),
    ...(u.protocol === 'rediss:' ? { tls: {} } : {}),
    // BullMQ's workers block on Redis: a command must wait for a reconnect, never fail after N retries.
    maxRetriesPerRequest: null,
  };
  const shown = `${u.protocol}//${u.username ? `${u.username}@` : ''}${u.host}${u.pathname === '/' ? '' : u.pathname}`;
  return { connection, shown };
}

/** One attempt to reach Redis, so a wrong host or a stopped server is one clear line instead of endless reconnects. */
export async function checkReachable(t: QueueTarget, timeoutMs = 5000): Promise<void> {
  const probe = new Redis({ ...t.connection, lazyConnect: true, connectTimeout: timeoutMs, retryStrategy: () => null, maxRetriesPerRequest: 0, enableOfflineQueue: false });
  let cause = '';
  probe.on('error', (e: Error) => { cause ||= e.message; }); // the socket's reason (ECONNREFUSED...); connect() only says "closed"
  try {
    await probe.connect();
    const info = await probe.info('server');
    const version = /redis_version:(\S+)/.exec(info)?.[1] ?? '0';
    const [major, minor] = version.split('.').map(Number);
    if (major! < 6 || (major === 6 && minor! < 2)) throw new ParamError('--queue', `Redis at ${t.shown} is version ${version}; BullMQ needs 6.2 or later`);
  } catch (e) {
    if (e instanceof ParamError) throw e;
    throw new ParamError('--queue', `cannot reach Redis at ${t.shown} (${(cause || (e as Error).message).split('\n')[0]}); start redis-server there, or check the host, port and password`);
  } finally {
    probe.disconnect();
  }
}

/**
 * The code a run is computed by: the git commit, plus a digest of uncommitted changes to tracked
 * files (two dirty checkouts of one commit are the same code only if their changes are). A bundle
 * without git uses TABRECALL_GIT_SHA / TABRECALL_BUNDLE_SHA as the fingerprint does.
 */
export function codeVersion(): string {
  const env = process.env.TABRECALL_GIT_SHA ?? undefined;
  if (env) return env;
  const git = (args: string[]) => {
    try {
      return execFileSync('git', args, { stdio: ['ignore', 'pipe', 'ignore'], maxBuffer: 1 << 28 });
    } catch {
      return null;
    }
  };
  const sha = git(['rev-parse', 'HEAD'])?.toString().trim() ?? process.env.TABRECALL_BUNDLE_SHA ?? 'unknown';
  const diff = git(['diff', 'HEAD', '--binary']);
  return diff && diff.length ? `${sha}+${createHash('sha256').update(diff).digest('hex').slice(0, 12)}` : sha;
}

/** BullMQ job ids may not contain ':' nor be plain integers; a suite-name prefix rules out both. */
export function jobIdOf(suite: string, runId: string): string {
  return `${suite.replace(/[:\s]/g, '_')}.${runId}`;
}

export function openQueue(t: QueueTarget): Queue<QueueJobData, RunRecord> {
  const q = new Queue<QueueJobData, RunRecord>(QUEUE_NAME, { connection: t.connection });
  q.on('error', () => { /* ioredis reconnects; commands wait (maxRetriesPerRequest: null) */ });
  return q;
}

export interface SubmitResult { added: number; kept: number; retried: number; replaced: number }

/**
 * Enqueue the runs (costliest first, so the workers' first-come order is longest-job-first). A run
 * already queued by the same code is kept (failed ones are retried); one left finished by another
 * code version is replaced; one of another version still waiting or running refuses the whole
 * submission before anything changes.
 */
export async function submitRuns(q: Queue<QueueJobData, RunRecord>, runs: PlannedRun[], base: Omit<QueueJobData, 'runId' | 'label' | 'cost'>, attempts: number): Promise<SubmitResult> {
  const existing = await Promise.all(runs.map(async (r) => {
    const job = await q.getJob(jobIdOf(base.suiteName, r.id));
    return job ? { job, state: await job.getState() } : undefined;
  }));
  const conflicts = existing.filter((e) => e && e.job.data.code !== base.code && e.state !== 'completed' && e.state !== 'failed');
  if (conflicts.length) {
    const versions = [...new Set(conflicts.map((c) => c!.job.data.code))].join(', ');
    throw new ParamError('--queue', `${conflicts.length} run(s) of suite ${base.suiteName} from code version ${versions} are still waiting or running (this checkout is ${base.code}); collect them with workers of that version, or remove them with --cancel`);
  }
  const res: SubmitResult = { added: 0, kept: 0, retried: 0, replaced: 0 };
  const order = runs.map((r, i) => ({ r, e: existing[i] })).sort((a, b) => b.r.cost - a.r.cost);
  for (const { r, e } of order) {
    if (e && e.job.data.code === base.code) {
      if (e.state === 'failed') {
        await e.job.retry('failed');
        res.retried++;
      } else res.kept++;
      continue;
    }
    if (e) {
      await e.job.remove();
      res.replaced++;
    } else res.added++;
    await q.add('run', { ...base, runId: r.id, label: r.label, cost: r.cost }, {
      jobId: jobIdOf(base.suiteName, r.id), attempts, backoff: { type: 'fixed', delay: 2000 }, removeOnComplete: false, removeOnFail: false,
    });
  }
  return res;
}

/** Remove the suite's runs that no worker has taken (waiting, delayed, failed, finished). Running ones stay: a worker holds their lock. */
export async function cancelRuns(q: Queue<QueueJobData, RunRecord>, suite: string, runs: PlannedRun[]): Promise<{ removed: number; running: number }> {
  let removed = 0, running = 0;
  for (const r of runs) {
    const job = await q.getJob(jobIdOf(suite, r.id));
    if (!job) continue;
    if ((await job.getState()) === 'active') running++;
    else {
      await job.remove();
      removed++;
    }
  }
  return { removed, running };
}

export interface QueueProgress { done: number; running: number; waiting: number; failed: number; total: number; etaSeconds: number | null; collected: RunRecord[] }

/**
 * Wait until every run has a record or has failed for good, writing each record into `outDir/runs`
 * as it arrives (atomically: an interrupted collect loses nothing, and `--collect` picks up again)
 * and each final failure into `outDir/failed`. Throws if a run is not in the queue at all.
 */
export async function collectRuns(q: Queue<QueueJobData, RunRecord>, suite: string, runs: PlannedRun[], outDir: string, o: { pollMs?: number; onProgress(p: QueueProgress): void }): Promise<{ records: RunRecord[]; failed: FailedJob[] }> {
  const pending = new Map(runs.map((r) => [r.id, r]));
  const records = new Map<string, RunRecord>();
  const failed = new Map<string, FailedJob>();
  const t0 = Date.now();
  let costDone = 0;
  const costAll = runs.reduce((s, r) => s + r.cost, 0);
  let costBefore = 0; // finished before this collect began: not part of its rate
  let first = true;
  for (;;) {
    let running = 0, waiting = 0;
    const fresh: RunRecord[] = [];
    for (const r of [...pending.values()]) {
      // The state first, then the job: a job fetched while running and finishing before its state
      // is read would look completed with no result yet.
      const id = jobIdOf(suite, r.id);
      const state = await q.getJobState(id);
      const job: BullJob<QueueJobData, RunRecord> | undefined = state === 'unknown' ? undefined : await q.getJob(id);
      if (!job) throw new ParamError('--collect', `run ${r.label} (${r.id}) of suite ${suite} is not in the queue; submit the suite first (bench --queue without --collect)`);
      if (state === 'completed') {
        const rec = checkRecord(job.returnvalue, `queue job ${job.id}`);
        if (rec.runId !== r.id) throw new Error(`queue job ${job.id} returned the record of run ${rec.runId}`);
        writeAtomic(recordPath(outDir, r.id), JSON.stringify(rec, null, 1));
        rmSync(failedJobPath(outDir, r.id), { force: true });
        records.set(r.id, rec);
        fresh.push(rec);
        pending.delete(r.id);
        if (first) costBefore += r.cost;
        costDone += r.cost;
      } else if (state === 'failed') {
        const f: FailedJob = { runId: r.id, label: r.label, suite, attempts: job.attemptsMade, message: job.failedReason ?? 'unknown error', failedAt: new Date(job.finishedOn ?? Date.now()).toISOString() };
        writeAtomic(failedJobPath(outDir, r.id), JSON.stringify(f, null, 1));
        failed.set(r.id, f);
        pending.delete(r.id);
        if (first) costBefore += r.cost;
        costDone += r.cost;
      } else if (state === 'active') running++;
      else waiting++;
    }
    first = false;
    const rate = (costDone - costBefore) / ((Date.now() - t0) / 1000);
    o.onProgress({ done: records.size, running, waiting, failed: failed.size, total: runs.length, etaSeconds: rate > 0 ? (costAll - costDone) / rate : null, collected: fresh });
    if (!pending.size) break;
    await new Promise((res) => setTimeout(res, o.pollMs ?? 1000));
  }
  const order = new Map(runs.map((r, i) => [r.id, i]));
  const byPlan = <T extends { runId: string }>(xs: T[]) => xs.sort((a, b) => order.get(a.runId)! - order.get(b.runId)!);
  return { records: byPlan([...records.values()]), failed: byPlan([...failed.values()]) };
}
