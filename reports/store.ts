/**
 * A results folder: `runs/<run id>.json` (one record per run, the source of truth) and the report
 * built from them (`report.json` + `report.arrow`). The report is always rebuilt from every record
 * in runs/, under a lock, so a filtered or concurrent bench never drops another's runs.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { removeStaleTemps, withLock } from '../core/files.js';
import { checkRecord } from './read.js';
import { SCHEMA_VERSION, type FailedJob, type Fingerprint, type Report, type RunRecord } from './schema.js';
import { writeReport } from './write.js';

export function recordPath(outDir: string, id: string): string {
  return join(outDir, 'runs', `${id}.json`);
}

/** Where a queued run that produced no record is noted (bench --queue); removed once a record exists. */
export function failedJobPath(outDir: string, id: string): string {
  return join(outDir, 'failed', `${id}.json`);
}

/** A saved record, or undefined when it is missing or damaged (then the run is simply run again). */
export function loadRecord(path: string): RunRecord | undefined {
  try {
    return checkRecord(JSON.parse(readFileSync(path, 'utf8')), path);
  } catch {
    return undefined;
  }
}

/** Every readable record under `outDir/runs` (damaged ones are left out: they are re-run on resume). */
export function loadRecords(outDir: string): RunRecord[] {
  let names: string[];
  try {
    names = readdirSync(join(outDir, 'runs')).filter((f) => f.endsWith('.json'));
  } catch {
    return [];
  }
  return names.sort().map((f) => loadRecord(join(outDir, 'runs', f))).filter((r): r is RunRecord => r !== undefined);
}

/** Failed queued runs noted in `outDir/failed` of this suite that have no record. */
export function loadFailedJobs(outDir: string, suite: string, records: RunRecord[]): FailedJob[] {
  let names: string[];
  try {
    names = readdirSync(join(outDir, 'failed')).filter((f) => f.endsWith('.json'));
  } catch {
    return [];
  }
  const done = new Set(records.map((r) => r.runId));
  const out: FailedJob[] = [];
  for (const f of names.sort()) {
    try {
      const j = JSON.parse(readFileSync(join(outDir, 'failed', f), 'utf8')) as FailedJob;
      if (j.suite === suite && !done.has(j.runId)) out.push(j);
    } catch {
      /* half-written by a killed collector: the next collect writes it again */
    }
  }
  return out;
}

/** Temp files of killed writers, in the folder, its runs/ and failed/. */
export function cleanResults(outDir: string): string[] {
  return [...removeStaleTemps(outDir), ...removeStaleTemps(join(outDir, 'runs')), ...removeStaleTemps(join(outDir, 'failed'))];
}

export interface RebuildOptions {
  suite: string;
  fingerprint: Fingerprint;
  /** Run ids in the suite's planned order; records of other ids follow, by start time. */
  order?: string[];
  /** Derived fields over the whole set (the kernels suite's speedups over dense). */
  finalize?: (records: RunRecord[]) => void;
}

/** Rebuild report.json/arrow from runs/ under the folder's lock; returns the report written. */
export async function rebuildReport(outDir: string, o: RebuildOptions): Promise<{ report: Report; paths: { json: string; arrow: string } }> {
  return withLock(outDir, () => {
    cleanResults(outDir);
    const rank = new Map((o.order ?? []).map((id, i) => [id, i]));
    const records = loadRecords(outDir)
      .filter((r) => r.suite === o.suite)
      .sort((a, b) => (rank.get(a.runId) ?? Infinity) - (rank.get(b.runId) ?? Infinity) || a.startedAt.localeCompare(b.startedAt) || a.runId.localeCompare(b.runId));
    o.finalize?.(records);
    const failedJobs = loadFailedJobs(outDir, o.suite, records);
    const report: Report = { schemaVersion: SCHEMA_VERSION, suite: o.suite, createdAt: new Date().toISOString(), fingerprint: o.fingerprint, records, ...(failedJobs.length ? { failedJobs } : {}) };
    return { report, paths: writeReport(join(outDir, 'report.json'), report) };
  });
}
