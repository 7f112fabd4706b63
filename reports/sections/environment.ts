/** Where the numbers came from: each report's environment fingerprint, and the runs that produced no number. */
import { esc, howToRead, table } from '../page/page.js';
import type { FailedJob, Report, RunRecord } from '../schema.js';

export function environmentSection(reports: { path: string; report: Report }[]): string {
  const parts = reports.map(({ path, report }, i) => {
    const f = report.fingerprint;
    const rows = Object.entries({ ...f, backendInfo: JSON.stringify(f.backendInfo) }).map(([k, v]) => ({ cells: [k, String(v)] }));
    return `<details${reports.length <= 3 ? ' open' : ''}><summary>${esc(path)}: suite ${esc(report.suite)}, ${report.records.length} runs, ${esc(report.createdAt)}, ${esc(f.gpu ?? f.cpu)}</summary>${table(`fp-${i}`, [{ header: 'field' }, { header: 'value' }], rows)}</details>`;
  });
  return `<section id="environment"><h2>Environment</h2>${howToRead('one fingerprint per report: git sha, backend, CPU/GPU, library versions. Numbers from different machines are not comparable for speed; accuracy is comparable across backends of one seed.')}${parts.join('\n')}</section>`;
}

/** Runs that produced no result (a non-finite loss; a queued run whose every attempt crashed): first on the page, never averaged into a table. */
export function failedSection(records: RunRecord[], jobs: FailedJob[] = []): string {
  const failed = records.filter((r) => r.failure);
  const n = failed.length + jobs.length;
  if (!n) return '';
  return `<section id="failed"><h2>Failed runs (${n})</h2>${table('failed-runs', [{ header: 'run' }, { header: 'run id' }, { header: 'reason' }, { header: 'step', kind: 'count' }, { header: 'message' }],
    [...failed.map((r) => ({ attrs: `data-run-id="${esc(r.runId)}"`, cells: [r.label, r.runId, r.failure!.reason, r.failure!.step, r.failure!.message] })),
      ...jobs.map((j) => ({ attrs: `data-run-id="${esc(j.runId)}"`, cells: [j.label, j.runId, `no record after ${j.attempts} attempt(s)`, null, j.message] }))])}</section>`;
}
