/** Reading anchor tables (PyTorch's numbers from scripts/device/anchors.py), with one clear error per bad field. */
import type { AnchorRow, AnchorTable } from './schema.js';
import { parseJson, ReportError } from './read.js';

/** Whether a JSON file's first characters look like an anchor table rather than a report. */
export function looksLikeAnchors(head: string): boolean {
  return /"torch"\s*:/.test(head) && /"rows"\s*:/.test(head) && !/"schemaVersion"\s*:/.test(head);
}

export function parseAnchors(text: string, path: string): AnchorTable {
  const a = parseJson(text, 'anchors', path) as Partial<AnchorTable>;
  const need = (ok: boolean, field: string, what: string) => {
    if (!ok) throw new ReportError(`anchors ${path}: ${field} ${what}`);
  };
  need(!!a && typeof a === 'object', '(top level)', 'must be a JSON object');
  need(typeof a.device === 'string', 'device', 'must be a string');
  need(typeof a.torch === 'string', 'torch', 'must be a string');
  need(Array.isArray(a.rows), 'rows', 'must be an array');
  a.rows!.forEach((r: Partial<AnchorRow>, i) => {
    need(!!r && typeof r === 'object', `rows[${i}]`, 'must be an object');
    for (const k of ['what', 'dtype'] as const) need(typeof r[k] === 'string', `rows[${i}].${k}`, 'must be a string');
    for (const k of ['L', 'B', 'ms', 'density', 'tflops'] as const) need(typeof r[k] === 'number' && Number.isFinite(r[k]), `rows[${i}].${k}`, 'must be a finite number');
  });
  return a as AnchorTable;
}
