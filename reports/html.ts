/**
 * The leaderboard: ONE self-contained HTML file from one or more reports, in sections that answer
 * the benchmark's questions: a summary first, then recall, sparsity (layout selectors on trained checkpoints), speed, tabular ICL and the environment.
 */
import type { AnchorTable, Report } from './schema.js';
import { esc, Page } from './page/page.js';
import { recallSection } from './sections/recall.js';
import { speedSection } from './sections/speed.js';
import { sparsitySection } from './sections/sparsity.js';
import { decodingSection } from './sections/decoding.js';
import { patternsSection } from './sections/patterns.js';
import { summarySection } from './sections/summary.js';
import { TABULAR_TASKS, tabularSection } from './sections/tabular.js';
import { environmentSection, failedSection } from './sections/environment.js';

const SECTION_TITLES: [string, string][] = [['failed', 'Failed runs'], ['summary', 'Summary'], ['recall', 'Recall'], ['sparsity', 'Sparsity'], ['decoding', 'Decoding'], ['speed', 'Speed'], ['tabular', 'Tabular ICL'], ['environment', 'Environment']];

/** anchors: PyTorch reference tables (scripts/device/anchors.py), shown beside the kernel numbers. */
export function renderLeaderboard(reports: { path: string; report: Report }[], anchors: { path: string; table: AnchorTable }[] = []): string {
  const records = reports.flatMap((r) => r.report.records);
  const ok = records.filter((r) => !r.failure);
  const trained = records.filter((r) => !r.metrics.kernel && !r.metrics.sparsify && !r.metrics.decode && !r.metrics.grid && r.task.name !== 'attention-op' && !TABULAR_TASKS.includes(r.task.name));
  const page = new Page();
  const sections = [
    failedSection(records, reports.flatMap((r) => r.report.failedJobs ?? [])),
    summarySection(ok),
    recallSection(page, trained),
    sparsitySection(page, ok),
    decodingSection(page, ok),
    patternsSection(page, ok),
    speedSection(page, ok, anchors),
    tabularSection(page, ok),
    environmentSection(reports),
  ];
  const present = SECTION_TITLES.filter(([id]) => sections.some((s) => s.startsWith(`<section id="${id}"`)));
  const nav = `<nav class="toc">${present.map(([id, t]) => `<a href="#${id}">${esc(t)}</a>`).join('')}</nav>`;
  return page.render('tabrecall leaderboard', `<h1>tabrecall leaderboard</h1>
<p>${records.length} runs from ${reports.length} report(s)${anchors.length ? ` and ${anchors.length} PyTorch anchor table(s)` : ''}. Hover a point or bar for its numbers; click a legend entry to highlight a series; click a column header to sort.</p>
${nav}
${sections.filter(Boolean).join('\n')}`);
}
