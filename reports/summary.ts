/** The readable tables a bench prints at the end, from records alone (one per suite kind). */
import type { RunRecord } from './schema.js';
import { fmt, formatTable } from './table.js';
import { tabularSummary, widthSummary } from './tabular.js';

export type SuiteKind = 'train' | 'kernels' | 'tabular' | 'sparsify';

function trainTable(records: RunRecord[]): string {
  return formatTable(
    ['run', 'params', 'accuracy', 'exact', 'steps', 'stopped by', 'train tok/s', 'lat b1 ms', 'fallbacks', 'wall s'],
    records.map((r) => [
      r.label, r.model.parameterCount, r.failure ? 'FAILED' : fmt(r.metrics.accuracy, 4), fmt(r.metrics.exactMatch, 3), r.metrics.trainSteps, r.metrics.stoppedBy,
      Math.round(r.metrics.trainTokensPerSec), fmt(r.metrics.latency.find((l) => l.batch === 1)?.medianMs, 2), r.fallbackKernels.total, fmt(r.wallTimeSeconds, 1),
    ]),
  );
}

function kernelsTable(records: RunRecord[]): string {
  return formatTable(['case', 'density', 'median ms', 'p10', 'p90', 'GFLOP/s', 'vs dense'], records.map((r) => {
    const k = r.metrics.kernel!;
    const l = r.metrics.latency[0]!;
    return [r.label, fmt(k.density, 3), fmt(l.medianMs, 3), fmt(l.p10Ms, 3), fmt(l.p90Ms, 3), fmt(k.gflops, 1), k.speedupVsDense === null ? '-' : `${fmt(k.speedupVsDense, 2)}x`];
  }));
}

function sparsifyTable(records: RunRecord[]): string {
  return formatTable(['case', 'accuracy', 'vs dense', 'block density', 'pair density', 'selector ms', 'attention ms', 'prefill ms', 'prefill speedup'], records.map((r) => {
    const s = r.metrics.sparsify!;
    return [r.label, fmt(r.metrics.accuracy, 4), s.accuracyRatio === null ? '-' : fmt(s.accuracyRatio, 3), fmt(s.blockDensity, 3), fmt(s.pairDensity, 3),
      s.selector ? fmt(s.selector.medianMs, 2) : '-', fmt(s.attention.medianMs, 2), fmt(s.prefill.medianMs, 2), s.prefillSpeedup === null ? '-' : `${fmt(s.prefillSpeedup, 2)}x`];
  }));
}

function tabularTables(records: RunRecord[]): string {
  const out: string[] = [];
  const s = tabularSummary(records);
  if (s.models.length) {
    out.push(formatTable(['table', ...s.models], s.tables.map((t) => [t, ...s.models.map((m) => fmt(s.perTable[t]?.[m]?.accuracy, 4))])));
    out.push(formatTable(['model', 'mean accuracy (95% CI)', 'mean ROC-AUC', 'mean log-loss', 'mean rank', 'tables'], s.models.map((m) => {
      const a = s.aggregate[m]!;
      return [m, `${fmt(a.accuracy.mean, 4)} ± ${fmt(a.accuracy.ci95, 4)}`, fmt(a.rocAuc.mean, 4), fmt(a.logLoss.mean, 4), fmt(a.meanRank, 2), a.tables];
    })));
  }
  const w = widthSummary(records);
  if (w.length) {
    out.push(formatTable(['features', 'sparse ms', 'dense ms', 'sparse peak MB', 'dense peak MB', 'sparse density'], w.map((r) => [r.features, fmt(r.sparseMs, 2), fmt(r.denseMs, 2), fmt(r.sparseBytes / 1e6, 1), fmt(r.denseBytes / 1e6, 1), fmt(r.sparseDensity, 3)])));
  }
  return out.join('\n\n');
}

export function summaryTable(kind: SuiteKind, records: RunRecord[]): string {
  if (kind === 'sparsify') return sparsifyTable(records);
  return kind === 'kernels' ? kernelsTable(records) : kind === 'tabular' ? tabularTables(records) : trainTable(records);
}

/** One line per failed run: what failed and why. Empty when none did. */
export function failureLines(records: RunRecord[]): string[] {
  return records.filter((r) => r.failure).map((r) => `FAILED ${r.label} (run ${r.runId}): ${r.failure!.reason} at step ${r.failure!.step}: ${r.failure!.message}`);
}

/** The line a run prints when it ends. */
export function runEndLine(r: RunRecord): string {
  if (r.failure) return `FAILED: ${r.failure.message}`;
  if (r.metrics.sparsify) return `accuracy ${fmt(r.metrics.accuracy, 4)}, block density ${fmt(r.metrics.sparsify.blockDensity, 3)}, prefill ${fmt(r.metrics.sparsify.prefill.medianMs, 2)} ms`;
  if (r.metrics.kernel) return `${fmt(r.metrics.latency[0]?.medianMs, 2)} ms, ${fmt(r.metrics.kernel.gflops, 1)} GFLOP/s`;
  if (r.metrics.width) return `${fmt(r.metrics.latency[0]!.medianMs, 2)} ms`;
  if (r.metrics.tabular) return `acc ${fmt(r.metrics.accuracy, 4)} auc ${fmt(r.metrics.tabular.rocAuc, 4)}`;
  return `accuracy ${fmt(r.metrics.accuracy, 4)} in ${r.metrics.trainSteps} steps`;
}
