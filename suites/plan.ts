/**
 * A suite file of any kind -> the jobs one bench runs, the full plan's ids (for --list and the
 * report's order) and what the report needs (fingerprint, finalize step). The orchestrator runs it.
 */
import type { SuiteFile } from './types.js';
import { buildTask, checkTask } from '../datasets/registry.js';
import { readEvalFile } from '../datasets/eval-file.js';
import { readModelMeta } from '../models/saved.js';
import { canonical } from '../core/canonical.js';
import { ParamError } from '../core/params.js';
import type { Job } from './orchestrator.js';
import { expandSuite, runId, runLabel } from './grid.js';
import { trainJobs } from './runner.js';
import { addSparsifyRatios, checkCheckpoints, sparsifyCaseId, sparsifyCases, sparsifyJobs, sparsifyLabel } from './sparsify.js';
import { addSpeedups, kernelCaseId, kernelCaseLabel, kernelCases, kernelJobs, KERNELS_DEFAULTS } from './kernels.js';
import { addGridRatios, checkGridCheckpoints, gridCaseId, gridCases, gridJobs, gridLabel } from './patterns.js';
import { addDecodeRatios, checkDecodeCheckpoints, decodeCaseId, decodeCases, decodeJobs, decodeLabel } from './decode.js';
import { modelLabel, tabularCaseId, tabularCases, tabularJobs, tabularLabel, widthCaseId, widthCases, XGBOOST_MODELS } from './tabular.js';
import { xgboostLibrary } from '../models/tabular/xgboost.js';
import { backendInfo, hasKernel, useBackend } from '../kernels/backend.js';
import { FUSED_KERNEL } from '../kernels/block-sparse.js';
import { fingerprint } from '../reports/fingerprint.js';
import type { Fingerprint, RunRecord } from '../reports/schema.js';
import type { SuiteKind } from '../reports/summary.js';

export interface PlanOptions {
  seeds: number[];
  filter?: RegExp;
  backend: string;
  /** Plan only (--list): no backend is initialised where the plan does not need one. */
  listOnly: boolean;
  /** Called when --backend auto skips a backend of a kernels suite. */
  onSkip?: (backend: string, why: string) => void;
  /** Training suites: save each trained model under this folder (--save-models). */
  saveModels?: string;
  /** Training suites: also score each trained model on this Zoology-format file (--eval-file). */
  evalFile?: string;
}

export interface SuitePlan {
  kind: SuiteKind;
  /** id and label of every planned job after --filter (what --list prints). */
  listed: { id: string; label: string }[];
  /** Ids of the full plan before --filter: the report's order. */
  order: string[];
  /** Set unless listOnly. */
  jobs: Job[];
  backend: string;
  fingerprint?: Fingerprint;
  finalize?: (records: RunRecord[]) => void;
  emitEveryMs?: number;
  /** "runs" or "cases", for messages. */
  unit: string;
}

/** A run's init model must exist and have the run's model name, parameters and vocabulary. */
function checkInit(c: ReturnType<typeof expandSuite>[number]): void {
  const { meta } = readModelMeta(c.init!);
  const vocab = buildTask(c.task.name, c.task.params, c.seed).vocabSize;
  if (meta.model.name !== c.model.name || canonical(meta.model.params) !== canonical(c.model.params) || meta.vocabSize !== vocab) {
    throw new ParamError('suite.entries.init', `${c.init} is ${meta.model.name} ${canonical(meta.model.params)} with vocabulary ${meta.vocabSize}; the entry builds ${c.model.name} ${canonical(c.model.params)} with vocabulary ${vocab}`);
  }
}

/** --eval-file is read and checked against every run's task before anything runs (a bad file writes nothing). */
function checkEvalFile(path: string, runs: ReturnType<typeof expandSuite>): void {
  const seen = new Set<string>();
  for (const c of runs) {
    const key = JSON.stringify(c.task);
    if (seen.has(key)) continue;
    seen.add(key);
    const { maxLen } = checkTask(c.task.name, c.task.params);
    readEvalFile(path, { vocabSize: buildTask(c.task.name, c.task.params, c.seed).vocabSize, maxLen });
  }
}

const keep = (filter: RegExp | undefined) => (label: string) => !filter || filter.test(label);

export async function planSuite(suite: SuiteFile, o: PlanOptions): Promise<SuitePlan> {
  const pass = keep(o.filter);
  if (suite.kind === 'kernels') {
    const c = { ...KERNELS_DEFAULTS, ...suite.kernels! };
    let backends = o.backend === 'auto' ? c.backends : [o.backend];
    const fusedOn = new Set<string>(backends.filter((b) => b === 'native' || b === 'cuda'));
    if (!o.listOnly) {
      const ok: string[] = [];
      fusedOn.clear();
      for (const b of backends) {
        try {
          await useBackend(b);
          ok.push(b);
          if (hasKernel(FUSED_KERNEL)) fusedOn.add(b);
        } catch (e) {
          if (o.backend !== 'auto') throw e;
          o.onSkip?.(b, (e as Error).message);
        }
      }
      backends = ok;
    }
    const all = kernelCases(c, backends, fusedOn);
    const cases = all.filter((k) => pass(kernelCaseLabel(k)));
    const fp = o.listOnly ? undefined : fingerprint(backends.join('+'), backendInfo());
    return {
      kind: 'kernels', unit: 'cases', backend: backends.join(', '), fingerprint: fp, finalize: addSpeedups,
      listed: cases.map((k) => ({ id: kernelCaseId(suite.name, c, k), label: kernelCaseLabel(k) })),
      order: all.map((k) => kernelCaseId(suite.name, c, k)),
      jobs: fp ? kernelJobs(suite.name, c, cases, fp) : [],
    };
  }
  if (suite.kind === 'sparsify') {
    const c = suite.sparsify!;
    const metas = checkCheckpoints(c); // a checkpoint that does not match its entry stops the suite before anything is written
    const backend = o.listOnly ? o.backend : await useBackend(o.backend);
    const all = sparsifyCases(c, metas);
    const cases = all.filter((k) => pass(sparsifyLabel(k)));
    const fp = o.listOnly ? undefined : fingerprint(backend, backendInfo());
    return {
      kind: 'sparsify', unit: 'cases', backend, fingerprint: fp, finalize: addSparsifyRatios,
      listed: cases.map((k) => ({ id: sparsifyCaseId(suite.name, c, k, backend), label: sparsifyLabel(k) })),
      order: all.map((k) => sparsifyCaseId(suite.name, c, k, backend)),
      jobs: fp ? sparsifyJobs(suite.name, c, cases, backend, fp) : [],
    };
  }
  if (suite.kind === 'decode') {
    const c = suite.decode!;
    const metas = checkDecodeCheckpoints(c);
    const backend = o.listOnly ? o.backend : await useBackend(o.backend);
    const all = decodeCases(c, metas);
    const cases = all.filter((k) => pass(decodeLabel(k)));
    const fp = o.listOnly ? undefined : fingerprint(backend, backendInfo());
    return {
      kind: 'decode', unit: 'cases', backend, fingerprint: fp, finalize: addDecodeRatios,
      listed: cases.map((k) => ({ id: decodeCaseId(suite.name, c, k, backend), label: decodeLabel(k) })),
      order: all.map((k) => decodeCaseId(suite.name, c, k, backend)),
      jobs: fp ? decodeJobs(suite.name, c, cases, backend, fp) : [],
    };
  }
  if (suite.kind === 'grid') {
    const c = suite.grid!;
    const metas = checkGridCheckpoints(c);
    const backend = o.listOnly ? o.backend : await useBackend(o.backend);
    const all = gridCases(c, metas);
    const cases = all.filter((k) => pass(gridLabel(k)));
    const fp = o.listOnly ? undefined : fingerprint(backend, backendInfo());
    return {
      kind: 'grid', unit: 'cases', backend, fingerprint: fp, finalize: addGridRatios,
      listed: cases.map((k) => ({ id: gridCaseId(suite.name, c, k, backend), label: gridLabel(k) })),
      order: all.map((k) => gridCaseId(suite.name, c, k, backend)),
      jobs: fp ? gridJobs(suite.name, c, cases, backend, fp) : [],
    };
  }
  if (suite.kind === 'tabular') {
    const c = suite.tabular!;
    const backend = o.listOnly ? o.backend : await useBackend(o.backend);
    const allCases = tabularCases(c, o.seeds);
    const allWidths = widthCases(c);
    let cases = allCases.filter((k) => pass(tabularLabel(k)));
    // XGBoost needs the system library: without it its cases are skipped, and one line says so.
    const xgb = xgboostLibrary();
    const needXgb = cases.filter((k) => XGBOOST_MODELS.includes(k.model.name));
    if ('error' in xgb && needXgb.length) {
      process.stderr.write(`tabrecall: skipping ${[...new Set(needXgb.map((k) => modelLabel(k.model)))].join(', ')} (${needXgb.length} cases): ${xgb.error}\n`);
      cases = cases.filter((k) => !needXgb.includes(k));
    }
    const widths = allWidths.filter((w) => pass(w.label));
    const fp = o.listOnly ? undefined : fingerprint(backend, backendInfo());
    const caseId = (k: (typeof allCases)[number]) => tabularCaseId(suite.name, c, k, backend);
    const widthId = (w: (typeof allWidths)[number]) => widthCaseId(suite.name, c.widthScaling!, w.features, w.rowAttention, backend);
    return {
      kind: 'tabular', unit: 'cases', backend, fingerprint: fp,
      // Every record is safe in runs/ as soon as it exists; rebuilding the report after each of ~250 cheap cases is not needed.
      emitEveryMs: 10_000,
      listed: [...cases.map((k) => ({ id: caseId(k), label: tabularLabel(k) })), ...widths.map((w) => ({ id: widthId(w), label: w.label }))],
      order: [...allCases.map(caseId), ...allWidths.map(widthId)],
      jobs: fp ? tabularJobs(suite.name, c, cases, widths, backend, fp) : [],
    };
  }
  // Expand with the requested name first so --list works without initialising a backend.
  const backend = o.listOnly ? o.backend : await useBackend(o.backend);
  const all = expandSuite(suite, o.seeds, backend);
  const runs = all.filter((c) => pass(runLabel(c)));
  if (o.evalFile) checkEvalFile(o.evalFile, runs);
  for (const c of runs) if (c.init) checkInit(c); // a missing or mismatched init model stops the plan, before anything is written
  const fp = o.listOnly ? undefined : fingerprint(backend, backendInfo());
  return {
    kind: 'train', unit: 'runs', backend, fingerprint: fp,
    listed: runs.map((c) => ({ id: runId(c), label: runLabel(c) })),
    order: all.map(runId),
    jobs: fp ? trainJobs(runs, fp, { saveModels: o.saveModels, evalFile: o.evalFile }) : [],
  };
}
