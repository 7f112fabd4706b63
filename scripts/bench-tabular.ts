/** The tabular branch of `npm run bench`: cases -> records (resumable) -> report, leaderboard, tables on stdout. */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { UsageError } from './cli.js';
import type { SuiteFile } from '../suites/types.js';
import { useBackend, backendInfo } from '../kernels/backend.js';
import { modelFileDigest, runTabularCase, runWidthCase, tabularCaseId, tabularCases, tabularLabel, widthCaseId, widthLabel } from '../suites/tabular.js';
import { emitReport, loadRecord, recordPath } from '../suites/runner.js';
import { fingerprint } from '../reports/fingerprint.js';
import { renderLeaderboard } from '../reports/html.js';
import { writeAtomic } from '../reports/write.js';
import { fmt, formatTable } from '../reports/table.js';
import { tabularSummary, widthSummary } from '../reports/tabular.js';
import type { RunRecord } from '../reports/schema.js';

export async function runTabular(suite: SuiteFile, seeds: number[], filter: RegExp | undefined, o: { backend?: string; out?: string; resume?: boolean; list?: boolean }): Promise<number> {
  const c = suite.tabular!;
  const cases = tabularCases(c, seeds).filter((k) => !filter || filter.test(tabularLabel(k)));
  const widths = (c.widthScaling?.features ?? []).flatMap((f) => (['sparse', 'dense'] as const).map((a) => ({ f, a, label: widthLabel(f, a) }))).filter((w) => !filter || filter.test(w.label));
  if (o.list) {
    console.log(formatTable(['case'], [...cases.map((k) => [tabularLabel(k)]), ...widths.map((w) => [w.label])]));
    console.log(`\n${cases.length + widths.length} cases in suite ${suite.name}`);
    return 0;
  }
  if (cases.length + widths.length === 0) throw new UsageError(`--filter: no case of suite ${suite.name} matches`);
  const backend = await useBackend(o.backend!);
  const fp = fingerprint(backend, backendInfo());
  const outDir = resolve(o.out ?? join('results', suite.name));
  const total = cases.length + widths.length;
  process.stderr.write(`tabrecall: suite ${suite.name}, ${cases.length} table cases + ${widths.length} width cases, backend ${backend}, out ${outDir}\n`);
  const records: RunRecord[] = [];
  const t0 = performance.now();
  let done = 0;
  let lastEmit = t0;
  const step = async (id: string, label: string, run: () => Promise<RunRecord>, fileDigest?: string): Promise<void> => {
    const path = recordPath(outDir, id);
    const saved = o.resume && existsSync(path) ? loadRecord(path) : undefined;
    // A result computed from a model file since replaced at the same path is run again.
    const stale = saved !== undefined && saved.model.params.fileDigest !== fileDigest;
    const old = stale ? undefined : saved;
    if (stale) process.stderr.write(`[case ${done + 1}/${total}] ${label}: model file changed since the saved result; running it again\n`);
    const elapsed = (performance.now() - t0) / 1000;
    const eta = done ? Math.round((elapsed / done) * (total - done)) : NaN;
    process.stderr.write(`[case ${done + 1}/${total}] ${label} ${old ? '(resumed)' : `... ETA ${Number.isNaN(eta) ? '?' : eta}s`}`);
    const r = old ?? (await run());
    if (!old) writeAtomic(path, JSON.stringify(r, null, 1));
    records.push(r);
    done++;
    process.stderr.write(r.metrics.width ? ` ${fmt(r.metrics.latency[0]!.medianMs, 2)} ms\n` : ` acc ${fmt(r.metrics.accuracy, 4)} auc ${fmt(r.metrics.tabular!.rocAuc, 4)} (${fmt(r.wallTimeSeconds, 1)} s)\n`);
    // Every record is already safe in runs/; the report is rebuilt every 10 s, not after each of ~250 cheap cases.
    if (performance.now() - lastEmit > 10_000) {
      emitReport(outDir, suite.name, fp, records);
      lastEmit = performance.now();
    }
  };
  for (const k of cases) await step(tabularCaseId(suite.name, c, k, backend), tabularLabel(k), () => runTabularCase(suite.name, c, k, backend, fp), modelFileDigest(k.model));
  for (const w of widths) await step(widthCaseId(suite.name, c.widthScaling!, w.f, w.a, backend), w.label, () => runWidthCase(suite.name, c.widthScaling!, w.f, w.a, backend, fp));
  const paths = emitReport(outDir, suite.name, fp, records);
  const report = { schemaVersion: 1, suite: suite.name, createdAt: new Date().toISOString(), fingerprint: fp, records };
  const html = join(outDir, 'leaderboard.html');
  writeAtomic(html, renderLeaderboard([{ path: paths.json, report }]));
  const s = tabularSummary(records);
  if (s.models.length) {
    console.log(formatTable(['table', ...s.models], s.tables.map((t) => [t, ...s.models.map((m) => fmt(s.perTable[t]?.[m]?.accuracy, 4))])));
    console.log('');
    console.log(formatTable(['model', 'mean accuracy (95% CI)', 'mean ROC-AUC', 'mean log-loss', 'mean rank', 'tables'], s.models.map((m) => {
      const a = s.aggregate[m]!;
      return [m, `${fmt(a.accuracy.mean, 4)} ± ${fmt(a.accuracy.ci95, 4)}`, fmt(a.rocAuc.mean, 4), fmt(a.logLoss.mean, 4), fmt(a.meanRank, 2), a.tables];
    })));
  }
  const w = widthSummary(records);
  if (w.length) {
    console.log('');
    console.log(formatTable(['features', 'sparse ms', 'dense ms', 'sparse peak MB', 'dense peak MB', 'sparse density'], w.map((r) => [r.features, fmt(r.sparseMs, 2), fmt(r.denseMs, 2), fmt(r.sparseBytes / 1e6, 1), fmt(r.denseBytes / 1e6, 1), fmt(r.sparseDensity, 3)])));
  }
  console.log(`\nsuite ${suite.name} on ${backend}: ${records.length} cases in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  console.log(`report:      ${paths.json}\n             ${paths.arrow}\nleaderboard: ${html}`);
  return 0;
}
