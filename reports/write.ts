/** Report writers: JSON and Arrow IPC, each through a temp file + rename so readers never see half a file. */
import { tableFromArrays, tableToIPC } from 'apache-arrow';
import { writeAtomic } from '../core/files.js';
import type { Report, RunRecord } from './schema.js';

/** One Arrow row per run: scalar columns for the headline numbers, JSON columns for nested parts. */
export function reportToArrow(report: Report): Uint8Array {
  const r = report.records;
  const lat = (x: RunRecord, i: number) => x.metrics.latency[i];
  const table = tableFromArrays({
    schema_version: Int32Array.from(r, (x) => x.schemaVersion),
    run_id: r.map((x) => x.runId),
    suite: r.map((x) => x.suite),
    label: r.map((x) => x.label),
    task: r.map((x) => x.task.name),
    task_params: r.map((x) => JSON.stringify(x.task.params)),
    model: r.map((x) => x.model.name),
    model_size: r.map((x) => x.model.size),
    model_params: r.map((x) => JSON.stringify(x.model.params)),
    parameter_count: Float64Array.from(r, (x) => x.model.parameterCount),
    seed: Int32Array.from(r, (x) => x.seed),
    backend: r.map((x) => x.backend),
    git_sha: r.map((x) => x.gitSha),
    accuracy: Float64Array.from(r, (x) => x.metrics.accuracy ?? NaN),
    accuracy_denominator: Float64Array.from(r, (x) => x.metrics.accuracyDenominator),
    exact_match: Float64Array.from(r, (x) => x.metrics.exactMatch),
    final_train_loss: Float64Array.from(r, (x) => x.metrics.finalTrainLoss),
    train_steps: Int32Array.from(r, (x) => x.metrics.trainSteps),
    train_tokens_per_sec: Float64Array.from(r, (x) => x.metrics.trainTokensPerSec),
    train_step_median_ms: Float64Array.from(r, (x) => x.metrics.trainStep?.medianMs ?? NaN),
    peak_memory_bytes: Float64Array.from(r, (x) => x.metrics.peakMemoryBytes),
    latency_b1_median_ms: Float64Array.from(r, (x) => lat(x, 0)?.medianMs ?? NaN),
    fallback_kernels: Int32Array.from(r, (x) => x.fallbackKernels.total),
    wall_time_s: Float64Array.from(r, (x) => x.wallTimeSeconds),
    failure: r.map((x) => (x.failure ? JSON.stringify(x.failure) : null)),
    metrics_json: r.map((x) => JSON.stringify(x.metrics)),
    config_json: r.map((x) => JSON.stringify({ train: x.train, optimizer: x.optimizer, latency: x.latencyConfig })),
    fingerprint_json: r.map((x) => JSON.stringify(x.fingerprint)),
  });
  return tableToIPC(table, 'file');
}

/** report.arrow first, report.json last: the JSON (what every reader uses) is never older than the Arrow beside it. */
export function writeReport(jsonPath: string, report: Report): { json: string; arrow: string } {
  const arrow = jsonPath.replace(/\.json$/, '') + '.arrow';
  writeAtomic(arrow, reportToArrow(report));
  writeAtomic(jsonPath, JSON.stringify(report, null, 1));
  return { json: jsonPath, arrow };
}
