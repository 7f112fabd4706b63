/**
 * The trend page: the same runs (by run id) across reports of successive commits (e.g. one report
 * per CI run): accuracy and batch-1 latency per commit, as plots and a table. Reports know nothing
 * of models: a run is its id and label.
 */
import type { Report, RunRecord } from './schema.js';
import { chooseChart, type ChartPoint } from './page/charts.js';
import { formatMetric } from './page/format.js';
import { esc, Page } from './page/page.js';

export interface HistoryPoint {
  /** Index of the report in commit order (oldest 0). */
  at: number;
  gitSha: string;
  createdAt: string;
  accuracy: number | null;
  latencyMs: number | null;
  failed: boolean;
}

export interface HistoryRun {
  runId: string;
  label: string;
  points: HistoryPoint[];
}

/** Reports in time order (createdAt), and per run id its value in each report that has it. */
export function historyOf(reports: Report[]): { commits: { gitSha: string; createdAt: string }[]; runs: HistoryRun[] } {
  const ordered = [...reports].sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  const runs = new Map<string, HistoryRun>();
  ordered.forEach((rep, at) => {
    for (const r of rep.records) {
      if (!runs.has(r.runId)) runs.set(r.runId, { runId: r.runId, label: r.label, points: [] });
      runs.get(r.runId)!.points.push(point(r, rep, at));
    }
  });
  return { commits: ordered.map((r) => ({ gitSha: r.fingerprint.gitSha, createdAt: r.createdAt })), runs: [...runs.values()] };
}

function point(r: RunRecord, rep: Report, at: number): HistoryPoint {
  const lat = r.metrics.latency.find((l) => l.batch === 1) ?? r.metrics.latency[0];
  return {
    at, gitSha: r.gitSha ?? rep.fingerprint.gitSha, createdAt: rep.createdAt, failed: !!r.failure,
    accuracy: typeof r.metrics.accuracy === 'number' ? r.metrics.accuracy : null,
    latencyMs: typeof lat?.medianMs === 'number' ? lat.medianMs : null,
  };
}

const points = (runs: HistoryRun[], f: (p: HistoryPoint) => number | null): ChartPoint[] =>
  runs.flatMap((r) => r.points.filter((p) => f(p) !== null).map((p) => ({ series: r.label, x: p.at, y: f(p)!, details: { commit: p.gitSha.slice(0, 10) } })));

export function renderHistory(reports: Report[]): string {
  const h = historyOf(reports);
  const page = new Page();
  const commits = h.commits.map((c, i) => `<tr><td class="n" data-v="${i}">${i}</td><td>${esc(c.gitSha.slice(0, 10))}</td><td>${esc(c.createdAt)}</td></tr>`).join('');
  const rows = h.runs.flatMap((r) => r.points.map((p) => `<tr data-run-id="${esc(r.runId)}"><td>${esc(r.label)}</td><td class="n" data-v="${p.at}">${p.at}</td><td>${esc(p.gitSha.slice(0, 10))}</td>`
    + `<td class="n" data-v="${p.accuracy ?? ''}">${p.failed ? 'FAILED' : formatMetric('accuracy', p.accuracy)}</td><td class="n" data-v="${p.latencyMs ?? ''}">${formatMetric('ms', p.latencyMs)}</td></tr>`)).join('\n');
  const plots = page.plots([
    chooseChart({ id: 'history-accuracy', subject: 'Accuracy per commit', x: { title: 'commit (oldest = 0)', kind: 'count' }, y: { title: 'accuracy', kind: 'accuracy', domain: [0, 1] }, seriesTitle: 'run', points: points(h.runs, (p) => p.accuracy) }),
    chooseChart({ id: 'history-latency', subject: 'Latency per commit (batch 1, median)', x: { title: 'commit (oldest = 0)', kind: 'count' }, y: { title: 'median ms', kind: 'ms' }, seriesTitle: 'run', points: points(h.runs, (p) => p.latencyMs) }),
  ]);
  return page.render('tabrecall history', `<h1>tabrecall history</h1><p>${h.runs.length} runs across ${h.commits.length} report(s), matched by run id. Click a column header to sort.</p>
<section id="history"><h2>Trends</h2>${plots}
<h3>Commits</h3><table class="sortable" id="history-commits"><thead><tr><th data-col="0">#</th><th data-col="1">git sha</th><th data-col="2">report created</th></tr></thead><tbody>${commits}</tbody></table>
<h3>Runs per commit</h3><table class="sortable" id="history-runs"><thead><tr><th data-col="0">run</th><th data-col="1">commit #</th><th data-col="2">git sha</th><th data-col="3">accuracy</th><th data-col="4">latency b1 ms</th></tr></thead><tbody>
${rows}
</tbody></table></section>`);
}
