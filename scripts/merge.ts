/**
 * `npm run merge -- DIR... --out DIR [--allow-mixed]`: join the result folders of a suite's shards
 * (`bench --shard i/n`, one folder each, from any machines) into one report, leaderboard included.
 * Refuses, naming the folders: records of different suites; different code versions (git sha),
 * unless --allow-mixed; one run id with different results in two folders (the same result twice is
 * kept once). Nothing is written until every check has passed.
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { args, main, UsageError } from './cli.js';
import { loadRecords, rebuildReport, recordPath } from '../reports/store.js';
import { renderLeaderboard } from '../reports/html.js';
import { summaryTable } from '../reports/summary.js';
import { writeAtomic } from '../core/files.js';
import { loadSuite } from '../suites/grid.js';
import { planSuite } from '../suites/plan.js';
import type { RunRecord } from '../reports/schema.js';

main(async () => {
  const { values: o, positionals: dirs } = args({ out: { type: 'string' }, 'allow-mixed': { type: 'boolean', default: false } }, true);
  if (!dirs.length || !o.out) throw new UsageError('usage: npm run merge -- DIR... --out DIR [--allow-mixed] (DIR: a bench --out folder, e.g. one per --shard)');
  const from = new Map<string, { r: RunRecord; dir: string }>();
  const suites = new Map<string, string>();
  const shas = new Map<string, string>();
  for (const d of dirs) {
    if (!existsSync(join(d, 'runs'))) throw new UsageError(`merge: ${d} has no runs/ folder (not a bench --out folder)`);
    const rs = loadRecords(d);
    if (!rs.length) throw new UsageError(`merge: ${d}/runs holds no readable record`);
    for (const r of rs) {
      if (!suites.has(r.suite)) suites.set(r.suite, d);
      const sha = `${r.gitSha}${r.fingerprint.gitDirty ? ' (dirty)' : ''}`;
      if (!shas.has(sha)) shas.set(sha, d);
      const seen = from.get(r.runId);
      if (seen && !sameResult(seen.r, r)) throw new UsageError(`merge: run ${r.runId} (${r.label}) has different results in ${seen.dir} and ${d}; remove one of them`);
      if (!seen) from.set(r.runId, { r, dir: d });
    }
  }
  if (suites.size > 1) throw new UsageError(`merge: the folders hold different suites: ${[...suites].map(([s, d]) => `${s} (${d})`).join(', ')}; merge one suite at a time`);
  if (shas.size > 1 && !o['allow-mixed']) throw new UsageError(`merge: the records come from different code versions: ${[...shas].map(([s, d]) => `${s} (${d})`).join(', ')}; rerun on one version or pass --allow-mixed`);
  const [suite] = [...suites.keys()];
  const records = [...from.values()].map((x) => x.r);
  // The suite's planned order and finalize step (speed-ups, ratios to dense), when its file is known here.
  let plan: Awaited<ReturnType<typeof planSuite>> | undefined;
  try {
    plan = await planSuite(loadSuite(suite!), { seeds: [...new Set(records.map((r) => r.seed))], backend: records[0]!.backend, listOnly: true });
  } catch {
    plan = undefined; // a suite file not in suites/: records in start-time order, no finalize step
  }
  const out = resolve(o.out);
  for (const r of records) writeAtomic(recordPath(out, r.runId), JSON.stringify(r, null, 1));
  const { report, paths } = await rebuildReport(out, { suite: suite!, fingerprint: records[0]!.fingerprint, order: plan?.order, finalize: plan?.finalize });
  const html = join(out, 'leaderboard.html');
  writeAtomic(html, renderLeaderboard([{ path: paths.json, report }]));
  if (plan) console.log(summaryTable(plan.kind, report.records));
  console.log(`\nmerged ${records.length} runs of suite ${suite} from ${dirs.length} folder(s)${shas.size > 1 ? ` (mixed code versions: ${[...shas.keys()].join(', ')})` : ''}`);
  console.log(`report:      ${paths.json}\n             ${paths.arrow}\nleaderboard: ${html}`);
  return 0;
});

/** The same result: equal outcome (accuracy, failure) and task/model/config; timings may differ between machines. */
function sameResult(a: RunRecord, b: RunRecord): boolean {
  return a.metrics.accuracy === b.metrics.accuracy && (a.failure?.message ?? null) === (b.failure?.message ?? null) && a.label === b.label;
}
