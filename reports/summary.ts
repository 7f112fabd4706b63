/** The readable tables a bench prints at the end, from records alone (one per suite kind). */
import type { FailedJob, RunRecord } from './schema.js';
import { fmt, formatTable } from './table.js';
import { eloRatings, pairedDifference, tabularSummary, widthSummary } from './tabular.js';

export type SuiteKind = 'train' | 'kernels' | 'tabular' | 'sparsify' | 'decode' | 'grid';

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

function gridTable(records: RunRecord[]): string {
  const sizes = [...new Set(records.flatMap((r) => r.metrics.grid!.timings.map((t) => t.tokens)))].sort((a, b) => a - b);
  return formatTable(['case', 'accuracy', 'vs dense', 'density', ...sizes.flatMap((n) => [`gen ms @${n}`, `speedup @${n}`])], records.map((r) => {
    const g = r.metrics.grid!;
    return [r.label, fmt(r.metrics.accuracy, 4), g.accuracyRatio === null ? '-' : fmt(g.accuracyRatio, 3), fmt(g.density, 3),
      ...sizes.flatMap((n) => {
        const t = g.timings.find((x) => x.tokens === n);
        return t ? [fmt(t.generation.medianMs, 2), t.speedup === undefined ? '-' : `${fmt(t.speedup, 2)}x`] : ['-', '-'];
      })];
  }));
}

function decodeTables(records: RunRecord[]): string {
  const out: string[] = [];
  const methods = records.filter((r) => r.metrics.decode?.case === 'method');
  if (methods.length) {
    const lat = [...new Map(methods.flatMap((r) => r.metrics.decode!.latency.map((l) => [`${l.length}/${l.batch}`, l] as const))).values()];
    out.push(formatTable(['case', 'generated', 'teacher', 'vs dense', 'KV MB', 'read frac', 'TTFT ms', ...lat.map((l) => `step ms L${l.length} b${l.batch}`)], methods.map((r) => {
      const d = r.metrics.decode!;
      return [r.label, fmt(d.generatedExactMatch, 3), fmt(d.teacherExactMatch, 3), d.accuracyRatio === null ? '-' : fmt(d.accuracyRatio, 3), fmt(d.kvBytes / 1e6, 2), fmt(d.bytesReadFraction, 3), fmt(d.ttft?.medianMs, 1),
        ...lat.map((l) => fmt(d.latency.find((x) => x.length === l.length && x.batch === l.batch)?.step.medianMs, 2))];
    })));
  }
  const bw = records.filter((r) => r.metrics.decode?.case === 'bandwidth');
  if (bw.length) {
    out.push(formatTable(['kernel case', 'median ms', 'GB read', 'GB/s', 'copy GB/s', 'of copy'], bw.map((r) => {
      const b = r.metrics.decode!.bandwidth!;
      return [r.label, fmt(b.time.medianMs, 3), fmt(b.bytesRead / 1e9, 3), fmt(b.gbPerSec, 1), fmt(b.copyGbPerSec, 1), `${fmt(100 * b.fractionOfCopy, 1)}%`];
    })));
  }
  return out.join('\n\n');
}

function tabularTables(records: RunRecord[]): string {
  const out: string[] = [];
  const s = tabularSummary(records);
  if (s.models.length) {
    out.push(formatTable(['table', ...s.models], s.tables.map((t) => [t, ...s.models.map((m) => fmt(s.perTable[t]?.[m]?.accuracy, 4))])));
    const elo = new Map(eloRatings(s).map((e) => [e.model, e]));
    const base = s.models.includes('logreg') ? 'logreg' : undefined;
    out.push(formatTable(['model', 'mean accuracy (95% CI)', 'mean ROC-AUC', 'mean log-loss', 'mean rank', 'Elo (95% CI)', ...(base ? [`vs ${base} (paired, 95% CI)`] : []), 'tables'], s.models.map((m) => {
      const a = s.aggregate[m]!;
      const e = elo.get(m);
      const d = base && m !== base ? pairedDifference(s, m, base) : undefined;
      return [m, `${fmt(a.accuracy.mean, 4)} ± ${fmt(a.accuracy.ci95, 4)}`, fmt(a.rocAuc.mean, 4), fmt(a.logLoss.mean, 4), fmt(a.meanRank, 2), e ? `${Math.round(e.elo)} [${Math.round(e.lo)}, ${Math.round(e.hi)}]` : '',
        ...(base ? [d ? `${d.mean >= 0 ? '+' : ''}${fmt(d.mean, 4)} ± ${fmt(d.ci95, 4)}` : ''] : []), a.tables];
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
  if (kind === 'decode') return decodeTables(records);
  if (kind === 'grid') return gridTable(records);
  return kind === 'kernels' ? kernelsTable(records) : kind === 'tabular' ? tabularTables(records) : trainTable(records);
}

/** One line per failed run: what failed and why. Empty when none did. */
export function failureLines(records: RunRecord[], jobs: FailedJob[] = []): string[] {
  return [...records.filter((r) => r.failure).map((r) => `FAILED ${r.label} (run ${r.runId}): ${r.failure!.reason} at step ${r.failure!.step}: ${r.failure!.message}`),
    ...jobs.map((j) => `FAILED ${j.label} (run ${j.runId}): no record after ${j.attempts} attempt(s): ${j.message}`)];
}

/** The line a run prints when it ends. */
export function runEndLine(r: RunRecord): string {
  if (r.failure) return `FAILED: ${r.failure.message}`;
  if (r.metrics.grid) return `accuracy ${fmt(r.metrics.accuracy, 4)}, density ${fmt(r.metrics.grid.density, 3)}, generation ${fmt(r.metrics.grid.timings[0]?.generation.medianMs, 2)} ms`;
  if (r.metrics.sparsify) return `accuracy ${fmt(r.metrics.accuracy, 4)}, block density ${fmt(r.metrics.sparsify.blockDensity, 3)}, prefill ${fmt(r.metrics.sparsify.prefill.medianMs, 2)} ms`;
  if (r.metrics.decode?.bandwidth) return `${fmt(r.metrics.decode.bandwidth.gbPerSec, 1)} GB/s (${fmt(100 * r.metrics.decode.bandwidth.fractionOfCopy, 1)}% of copy)`;
  if (r.metrics.decode) return `generated ${fmt(r.metrics.decode.generatedExactMatch, 3)}, teacher ${fmt(r.metrics.decode.teacherExactMatch, 3)}, step ${fmt(r.metrics.decode.latency[0]?.step.medianMs, 2)} ms`;
  if (r.metrics.kernel) return `${fmt(r.metrics.latency[0]?.medianMs, 2)} ms, ${fmt(r.metrics.kernel.gflops, 1)} GFLOP/s`;
  if (r.metrics.width) return `${fmt(r.metrics.latency[0]!.medianMs, 2)} ms`;
  if (r.metrics.tabular) return `acc ${fmt(r.metrics.accuracy, 4)} auc ${fmt(r.metrics.tabular.rocAuc, 4)}`;
  return `accuracy ${fmt(r.metrics.accuracy, 4)} in ${r.metrics.trainSteps} steps`;
}
