/** `npm run leaderboard -- [REPORT.json ...] [--out FILE]`: one self-contained HTML file. */
import { closeSync, existsSync, openSync, readdirSync, readFileSync, readSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { args, main, UsageError } from './cli.js';
import { readReport } from '../reports/read.js';
import { looksLikeAnchors, parseAnchors } from '../reports/anchors.js';
import { renderLeaderboard } from '../reports/html.js';
import { writeAtomic } from '../core/files.js';

/** A file's first bytes (reports run to megabytes; the kind shows at the top). */
function headOf(p: string, bytes = 300): string {
  const fd = openSync(p, 'r');
  try {
    const buf = Buffer.alloc(bytes);
    return buf.subarray(0, readSync(fd, buf, 0, bytes, 0)).toString('utf8');
  } finally {
    closeSync(fd);
  }
}

/** What a JSON file holds: a schema-versioned report, an anchor table (PyTorch's numbers), or neither. */
function kindOf(p: string): 'report' | 'anchors' | undefined {
  const head = headOf(p);
  if (looksLikeAnchors(head)) return 'anchors';
  return /"schemaVersion"\s*:/.test(head) && /"suite"\s*:/.test(head) ? 'report' : undefined;
}

/** Report and anchor files under a folder, recursively (committed results are grouped by machine). */
function filesUnder(root: string): string[] {
  if (!existsSync(root)) return [];
  return readdirSync(root, { withFileTypes: true }).flatMap((d) => {
    const p = join(root, d.name);
    if (d.isDirectory()) return filesUnder(p);
    return p.endsWith('.json') && kindOf(p) ? [p] : [];
  });
}

/** Default inputs: every results/<suite>/report.json plus the committed current reports and anchors (reports/results/current; the archive is not shown). */
function defaultInputs(): string[] {
  const fresh = existsSync('results')
    ? readdirSync('results', { withFileTypes: true })
        .filter((d) => d.isDirectory() && existsSync(join('results', d.name, 'report.json')))
        .map((d) => join('results', d.name, 'report.json'))
    : [];
  return [...fresh, ...filesUnder(join('reports', 'results', 'current'))];
}

main(async () => {
  const { values: o, positionals } = args({ out: { type: 'string', default: join('results', 'leaderboard.html') } }, true);
  const paths = positionals.length ? positionals : defaultInputs();
  if (paths.length === 0) throw new UsageError('leaderboard: no report given and none found under results/ (run `npm run bench` first)');
  // a named file that is an anchor table joins the anchors; anything else must read as a report
  const anchorPaths = new Set(paths.filter((p) => existsSync(p) && p.endsWith('.json') && kindOf(p) === 'anchors'));
  const reports = paths.filter((p) => !anchorPaths.has(p)).map((p) => ({ path: p, report: readReport(p) }));
  const anchors = [...anchorPaths].map((p) => ({ path: p, table: parseAnchors(readFileSync(p, 'utf8'), p) }));
  const out = resolve(o.out!);
  writeAtomic(out, renderLeaderboard(reports, anchors));
  const extra = anchors.length ? ` and ${anchors.length} anchor table(s)` : '';
  console.log(`leaderboard: ${out} (${reports.reduce((s, r) => s + r.report.records.length, 0)} runs from ${reports.length} report(s)${extra})`);
  return 0;
});
