/** Reading reports back, with one clear error for anything unreadable. */
import { readFileSync } from 'node:fs';
import { READABLE_SCHEMA_VERSIONS, type Report, type RunRecord } from './schema.js';

export class ReportError extends Error {}

/** JSON text to a value, or a ReportError that names the file (`what`: "report", "anchors"). */
export function parseJson(text: string, what: string, path: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new ReportError(`${what} ${path}: not valid JSON (${(e as Error).message})`);
  }
}

export function parseReport(text: string, path: string): Report {
  const r = parseJson(text, 'report', path) as Partial<Report>;
  if (!r || typeof r !== 'object') throw new ReportError(`report ${path}: must be a JSON object`);
  if (!READABLE_SCHEMA_VERSIONS.includes(r.schemaVersion as number)) {
    throw new ReportError(`report ${path}: schemaVersion must be one of ${READABLE_SCHEMA_VERSIONS.join(', ')}, got ${JSON.stringify(r.schemaVersion)}`);
  }
  if (!Array.isArray(r.records)) throw new ReportError(`report ${path}: records must be an array`);
  r.records.forEach((rec, i) => checkRecord(rec, `${path}: records[${i}]`));
  return r as Report;
}

export function checkRecord(rec: unknown, where: string): RunRecord {
  const x = rec as Partial<RunRecord>;
  const need = (ok: boolean, field: string, what: string) => {
    if (!ok) throw new ReportError(`report ${where}.${field}: ${what}`);
  };
  need(!!x && typeof x === 'object', '', 'must be an object');
  need(typeof x.runId === 'string', 'runId', 'must be a string');
  need(typeof x.seed === 'number', 'seed', 'must be a number');
  need(typeof x.backend === 'string', 'backend', 'must be a string');
  need(!!x.metrics && (typeof x.metrics.accuracy === 'number' || x.metrics.accuracy === null), 'metrics.accuracy', 'must be a number or null');
  need(Array.isArray(x.metrics?.latency), 'metrics.latency', 'must be an array');
  need(x.failure === undefined || (typeof x.failure === 'object' && typeof x.failure?.reason === 'string'), 'failure', 'must be absent or an object with a reason');
  return x as RunRecord;
}

export function readReport(path: string): Report {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new ReportError(`report ${path}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  return parseReport(text, path);
}
