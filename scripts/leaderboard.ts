/** `npm run leaderboard -- [REPORT.json ...] [--out FILE]`: one self-contained HTML file. */
import { existsSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { args, main, UsageError } from './cli.js';
import { readReport } from '../reports/read.js';
import { renderLeaderboard } from '../reports/html.js';
import { writeAtomic } from '../reports/write.js';

/** Default inputs: every results/<suite>/report.json plus the committed reports under reports/results. */
function defaultReports(): string[] {
  const out: string[] = [];
  for (const root of ['results', join('reports', 'results')]) {
    if (!existsSync(root)) continue;
    for (const d of readdirSync(root, { withFileTypes: true })) {
      const p = d.isDirectory() ? join(root, d.name, 'report.json') : join(root, d.name);
      if (p.endsWith('.json') && existsSync(p)) out.push(p);
    }
  }
  return out;
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
