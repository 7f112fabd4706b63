/** `npm run leaderboard -- [REPORT.json ...] [--out FILE]`: one self-contained HTML file. */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { args, main, UsageError } from './cli.js';
import { readReport } from '../reports/read.js';
import { renderLeaderboard } from '../reports/html.js';
import { writeAtomic } from '../reports/write.js';

/** Report files under a folder, recursively (committed results are grouped by machine). */
function reportsUnder(root: string): string[] {
  if (!existsSync(root)) return [];
  return readdirSync(root, { withFileTypes: true }).flatMap((d) => {
    const p = join(root, d.name);
    if (d.isDirectory()) return reportsUnder(p);
    // Anchor tables (PyTorch numbers) and other JSON sit next to reports; only schema-versioned reports render.
    if (!p.endsWith('.json')) return [];
    const head = readFileSync(p, 'utf8').slice(0, 300);
    return /"schemaVersion"\s*:/.test(head) && /"suite"\s*:/.test(head) ? [p] : [];
  });
}

/** Default inputs: every results/<suite>/report.json plus the committed reports under reports/results. */
function defaultReports(): string[] {
  const fresh = existsSync('results')
    ? readdirSync('results', { withFileTypes: true })
        .filter((d) => d.isDirectory() && existsSync(join('results', d.name, 'report.json')))
        .map((d) => join('results', d.name, 'report.json'))
    : [];
  return [...fresh, ...reportsUnder(join('reports', 'results'))];
}

main(async () => {
  const { values: o, positionals } = args({ out: { type: 'string', default: join('results', 'leaderboard.html') } }, true);
  const paths = positionals.length ? positionals : defaultReports();
  if (paths.length === 0) throw new UsageError('leaderboard: no report given and none found under results/ (run `npm run bench` first)');
  const reports = paths.map((p) => ({ path: p, report: readReport(p) }));
  const out = resolve(o.out!);
  writeAtomic(out, renderLeaderboard(reports));
  console.log(`leaderboard: ${out} (${reports.reduce((s, r) => s + r.report.records.length, 0)} runs from ${reports.length} report(s))`);
  return 0;
});
