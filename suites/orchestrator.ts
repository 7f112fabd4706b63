/**
 * The one loop every suite kind runs through: for each job, reuse its saved record (--resume) or run
 * it, write the record (atomically), and keep the report rebuilt from every record in the folder.
 * Training, kernels and tabular suites differ only in the jobs they plan (suites/plan.ts).
 */
import { existsSync } from 'node:fs';
import type { Fingerprint, Report, RunRecord } from '../reports/schema.js';
import { cleanResults, loadRecord, rebuildReport, recordPath } from '../reports/store.js';
import { tryClaim, writeAtomic } from '../core/files.js';
import { join } from 'node:path';

export interface JobProgress {
  step: number;
  maxSteps: number;
  loss: number;
  validAccuracy?: number;
}

export interface Job {
  id: string;
  label: string;
  /** Rough relative cost, for the suite's ETA (default 1). */
  cost?: number;
  /** Why a saved record no longer describes this job (its model file changed...); undefined: reuse it. */
  staleReason?(saved: RunRecord): string | undefined;
  run(progress: (p: JobProgress) => void): Promise<RunRecord>;
}

export interface OrchestratorEvents {
  start(i: number, n: number, label: string, etaSeconds: number | null): void;
  progress?(i: number, n: number, label: string, p: JobProgress, runEtaSeconds: number): void;
  end(i: number, n: number, r: RunRecord, resumed: boolean): void;
  note?(i: number, n: number, message: string): void;
}

export interface OrchestratorOptions {
  suite: string;
  outDir: string;
  resume: boolean;
  fingerprint: Fingerprint;
  /** Every run id of the suite's full plan (before --filter), so the report keeps a stable order. */
  order?: string[];
  /** Rebuild the report at most this often while running (always at the end). Default: after every job. */
  emitEveryMs?: number;
  finalize?: (records: RunRecord[]) => void;
  /** One of several workers sharing this folder (bench --jobs): run only jobs this process claims first. */
  claim?: boolean;
}

export interface SuiteResult {
  /** The report as written: every record of this suite in the folder, not only this invocation's. */
  report: Report;
  paths: { json: string; arrow: string };
  /** This invocation's records (run or resumed), in job order; with `claim`, only the jobs this worker ran. */
  records: RunRecord[];
  failed: RunRecord[];
}

export async function runJobs(jobs: Job[], o: OrchestratorOptions, ev: OrchestratorEvents): Promise<SuiteResult> {
  cleanResults(o.outDir);
  const rebuild = () => rebuildReport(o.outDir, { suite: o.suite, fingerprint: o.fingerprint, order: o.order, finalize: o.finalize });
  const records: RunRecord[] = [];
  const totalCost = jobs.reduce((s, j) => s + (j.cost ?? 1), 0);
  let ranCost = 0;
  let ranSeconds = 0;
  let doneCost = 0;
  let lastEmit = performance.now();
  // Workers take the costliest jobs first (longest-processing-time order balances them best).
  const order = jobs.map((_, i) => i);
  if (o.claim) order.sort((a, b) => (jobs[b]!.cost ?? 1) - (jobs[a]!.cost ?? 1) || a - b);
  // Resumed = on disk when this invocation began: a record another worker of the same invocation
  // writes meanwhile is that worker's (its claim keeps this one off it), not a resumed run.
  // A worker may start after another has already run a job: the parent empties claims/ before
  // starting the workers, so a claimed job's record is this invocation's, never a resumed one.
  const claimedNow = (id: string) => o.claim === true && existsSync(join(o.outDir, 'claims', id));
  const before = new Set(o.resume ? jobs.filter((j) => existsSync(recordPath(o.outDir, j.id)) && !claimedNow(j.id)).map((j) => j.id) : []);
  for (const i of order) {
    const job = jobs[i]!;
    const path = recordPath(o.outDir, job.id);
    const saved = before.has(job.id) ? loadRecord(path) : undefined;
    const stale = saved ? job.staleReason?.(saved) : undefined;
    if (stale) ev.note?.(i, jobs.length, `${job.label}: ${stale}; running it again`);
    if (saved && !stale) {
      records.push(saved);
      doneCost += job.cost ?? 1;
      ev.end(i, jobs.length, saved, true);
      continue;
    }
    if (o.claim && !tryClaim(join(o.outDir, 'claims'), job.id)) {
      doneCost += job.cost ?? 1; // another worker runs it
      continue;
    }
    // Suite ETA from the jobs run in this process (resumed ones cost nothing).
    const eta = ranCost > 0 ? (ranSeconds / ranCost) * (totalCost - doneCost) : null;
    ev.start(i, jobs.length, job.label, eta);
    const t0 = performance.now();
    const r = await job.run((p) => {
      const elapsed = (performance.now() - t0) / 1000;
      ev.progress?.(i, jobs.length, job.label, p, p.step > 0 ? (elapsed / p.step) * (p.maxSteps - p.step) : NaN);
    });
    writeAtomic(path, JSON.stringify(r, null, 1));
    records.push(r);
    ranSeconds += (performance.now() - t0) / 1000;
    ranCost += job.cost ?? 1;
    doneCost += job.cost ?? 1;
    if (o.emitEveryMs === undefined || performance.now() - lastEmit > o.emitEveryMs) {
      await rebuild();
      lastEmit = performance.now();
    }
    ev.end(i, jobs.length, r, false);
  }
  const { report, paths } = await rebuild();
  const rank = new Map(jobs.map((j, i) => [j.id, i]));
  records.sort((a, b) => rank.get(a.runId)! - rank.get(b.runId)!);
  return { report, paths, records, failed: records.filter((r) => r.failure) };
}
