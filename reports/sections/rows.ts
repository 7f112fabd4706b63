/** What the sections share: task titles as the README writes them, and the best learning rate per model. */
import { meanCi, type Stat } from '../tabular.js';
import type { RunRecord } from '../schema.js';

const NIAH_FAMILY: Record<string, string> = { single: 'single', multikey: 'multi-key', multivalue: 'multi-value', multiquery: 'multi-query' };

/** A task configuration in the README's words ("MQAR L64 kv8 V256", "NIAH multi-key L128 (3 distractors)"). */
export function taskTitle(r: RunRecord): string {
  const p = r.task.params;
  if (r.task.name === 'mqar') return `MQAR L${p.inputSeqLen} kv${p.numKvPairs} V${p.vocabSize}`;
  if (r.task.name === 'grid') return `Grid ${p.frames}x${p.height}x${p.width}${p.textPairs ? ` + ${p.textPairs}-pair text` : ''}, motion ${p.shift}${p.jitter ? `±${p.jitter}` : ''}`;
  if (r.task.name === 'niah') {
    const n = Number(p.numNeedles);
    const what = p.family === 'multikey' ? `${n - 1} distractor${n === 2 ? '' : 's'}`
      : p.family === 'multivalue' ? `${n} values`
      : p.family === 'multiquery' ? `${p.numQueries} of ${n} keys queried` : '';
    const hay = p.haystack && p.haystack !== 'random' ? `, ${p.haystack} haystack` : '';
    return `NIAH ${NIAH_FAMILY[String(p.family)] ?? p.family} L${p.seqLen}${what || hay ? ` (${[what, hay.slice(2)].filter(Boolean).join(', ')})` : ''}`;
  }
  return r.task.name;
}

/** A model as the tables name it: "dense d64". */
export const modelTitle = (r: RunRecord) => (r.model.size && r.model.size !== r.model.name ? `${r.model.name} ${r.model.size}` : r.model.name);

/** The device a record ran on: the GPU's name for cuda, else the backend and the CPU. */
export function deviceOf(r: RunRecord): string {
  const gpu = r.fingerprint.backendInfo?.device;
  return r.backend === 'cuda' && gpu ? `cuda ${gpu.replace(/^NVIDIA /, '')}` : `${r.backend} ${r.fingerprint.cores}-core`;
}

export interface BestRow {
  task: string;
  model: string;
  size: string;
  backend: string;
  params: number;
  lr: number;
  accuracy: Stat;
  exactMatch: number;
  seeds: number;
  latencyMs: number | null;
  records: RunRecord[];
}

/** Per task config, model, size and backend: the learning rate with the best mean accuracy over seeds (95% CI over seeds). */
export function bestRows(records: RunRecord[]): BestRow[] {
  const groups = new Map<string, Map<number, RunRecord[]>>();
  for (const r of records) {
    if (r.failure || r.metrics.accuracy === null) continue; // failed runs are listed apart, never averaged in
    const k = [taskTitle(r), r.model.name, r.model.size, r.backend].join('\u0000');
    const lr = Number(r.optimizer.lr);
    if (!groups.has(k)) groups.set(k, new Map());
    const g = groups.get(k)!;
    if (!g.has(lr)) g.set(lr, []);
    g.get(lr)!.push(r);
  }
  const out: BestRow[] = [];
  for (const [k, byLr] of groups) {
    const [task, model, size, backend] = k.split('\u0000') as [string, string, string, string];
    let best: BestRow | undefined;
    for (const [lr, rs] of byLr) {
      const mean = (f: (r: RunRecord) => number) => rs.reduce((s, r) => s + f(r), 0) / rs.length;
      const lat = rs[0]!.metrics.latency.find((l) => l.batch === 1);
      const row: BestRow = {
        task, model, size, backend, lr, params: rs[0]!.model.parameterCount, seeds: rs.length, records: rs,
        accuracy: meanCi(rs.map((r) => r.metrics.accuracy!)), exactMatch: mean((r) => r.metrics.exactMatch),
        latencyMs: lat ? mean((r) => r.metrics.latency.find((l) => l.batch === 1 && l.length === lat.length)?.medianMs ?? NaN) : null,
      };
      if (!best || row.accuracy.mean > best.accuracy.mean) best = row;
    }
    out.push(best!);
  }
  return out.sort((a, b) => a.task.localeCompare(b.task) || b.accuracy.mean - a.accuracy.mean);
}

/** A 95% interval as chart bounds (none with one seed). */
export const interval = (s: Stat) => (Number.isFinite(s.ci95) ? { lo: s.mean - s.ci95, hi: s.mean + s.ci95 } : {});
