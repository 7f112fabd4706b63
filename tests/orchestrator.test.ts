import { describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { runJobs, type Job } from '../suites/orchestrator.js';
import { recordPath } from '../reports/store.js';
import type { Report } from '../reports/schema.js';

// Two real records of a shipped report stand in for finished runs.
const shipped = JSON.parse(readFileSync('reports/results/current/trainable-quick-2core.json', 'utf8')) as Report;

describe('runJobs with --resume and worker claims', () => {
  it('a record another worker of the same invocation wrote is not reported as resumed, nor run again', async () => {
    const out = mkdtempSync(join(tmpdir(), 'tr-orch-'));
    const [a, b] = shipped.records;
    mkdirSync(join(out, 'runs'), { recursive: true });
    // a: finished before this invocation. b: claimed and finished by a live sibling worker
    // (its claim names another live process: the test runner's parent) before this worker started.
    writeFileSync(recordPath(out, a!.runId), JSON.stringify(a));
    mkdirSync(join(out, 'claims'));
    writeFileSync(join(out, 'claims', b!.runId), JSON.stringify({ pid: process.ppid, host: hostname(), since: new Date().toISOString() }));
    writeFileSync(recordPath(out, b!.runId), JSON.stringify(b));
    const job = (id: string): Job => ({ id, label: id, run: async () => { throw new Error(`${id} must not run`); } });
    const resumed: string[] = [];
    const result = await runJobs([job(a!.runId), job(b!.runId)], { suite: shipped.suite, outDir: out, resume: true, claim: true, fingerprint: shipped.fingerprint }, {
      start: (_i, _n, label) => { throw new Error(`${label} started`); },
      end: (_i, _n, r, wasResumed) => { if (wasResumed) resumed.push(r.runId); },
    });
    expect(resumed).toEqual([a!.runId]);
    expect(result.records.map((r) => r.runId)).toEqual([a!.runId]);
    // the report still holds both records: it is rebuilt from the folder
    expect(result.report.records.map((r) => r.runId).sort()).toEqual([a!.runId, b!.runId].sort());
  });
});
