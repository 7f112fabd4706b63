/** `npm run history -- DIR... [--out FILE]`: the trend page over every report.json under the folders (one per commit, e.g. CI runs). */
import { readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { args, main, UsageError } from './cli.js';
import { readReport } from '../reports/read.js';
import { renderHistory } from '../reports/history.js';
import { writeAtomic } from '../core/files.js';

function reportsUnder(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    throw new UsageError(`history: cannot read folder ${dir}`);
  }
  return names.flatMap((f) => {
    const p = join(dir, f);
    if (statSync(p).isDirectory()) return f === 'runs' ? [] : reportsUnder(p);
    return /report.*\.json$/.test(f) ? [p] : [];
  });
}

main(async () => {
  const { values: o, positionals } = args({ out: { type: 'string', default: join('results', 'history.html') } }, true);
  if (positionals.length === 0) throw new UsageError('history: give one or more folders holding report.json files (one per commit)');
  const paths = positionals.flatMap(reportsUnder);
  if (paths.length === 0) throw new UsageError(`history: no report .json under ${positionals.join(', ')}`);
  const reports = paths.map(readReport);
  const out = resolve(o.out!);
  writeAtomic(out, renderHistory(reports));
  console.log(`history: ${out} (${reports.length} reports)`);
  return 0;
});
