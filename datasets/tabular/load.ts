/** Load a table from a CSV or Arrow file, or by name from the tables shipped in datasets/tables/. */
import { existsSync, readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { dirname, extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'csv-parse/sync';
import { ParamError } from '../../core/params.js';
import { parseCsvTable } from './csv.js';
import { tableFromArrow } from './arrow.js';
import { DEFAULT_LIMITS, type RawTable, type TableLimits } from './types.js';

export const TABLES_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', 'tables');

export interface ShippedTable {
  name: string;
  file: string;
  target: string;
  rows: number;
  features: number;
  classes: number;
  origin: string;
  license: string;
  openmlId: string;
  inOpenmlCC18: boolean;
}

export function shippedTables(): ShippedTable[] {
  const rows = parse(readFileSync(join(TABLES_DIR, 'manifest.csv'), 'utf8'), { columns: true, skip_empty_lines: true }) as Record<string, string>[];
  return rows.map((r) => ({
    // gzip-compressed Arrow IPC: a quarter of the bytes in the repository (and in a device call's carry)
    name: r.name!, file: r.name + '.arrow.gz', target: r.target!, rows: Number(r.rows), features: Number(r.features), classes: Number(r.classes),
    origin: r.origin!, license: r.license!, openmlId: r.openml_id!, inOpenmlCC18: r.in_openml_cc18 === 'yes',
  }));
}

/** Read a user's file: `.csv` (csv-parse) or `.arrow` / `.feather` / `.ipc` (Arrow IPC), each also gzip-compressed (`.gz`), with the target column named. */
export function loadTableFile(path: string, target: string, limits: Partial<TableLimits> = {}): RawTable {
  if (!existsSync(path)) throw new ParamError('table.path', `no such file: ${path}`);
  const gz = path.toLowerCase().endsWith('.gz');
  const base = gz ? path.slice(0, -3) : path;
  const name = base.split(/[\\/]/).pop()!.replace(/\.[^.]+$/, '');
  const ext = extname(base).toLowerCase();
  const bytes = () => (gz ? gunzipSync(readFileSync(path)) : readFileSync(path));
  let t: RawTable;
  if (ext === '.csv') t = parseCsvTable(bytes().toString('utf8'), { name, target });
  else if (ext === '.arrow' || ext === '.feather' || ext === '.ipc') t = tableFromArrow(bytes(), { name, target });
  else throw new ParamError('table.path', `unknown file type ${JSON.stringify(extname(path))}; allowed: .csv, .arrow, .feather, .ipc, each optionally .gz`);
  return applyLimits(t, { ...DEFAULT_LIMITS, ...limits });
}

/** A shipped table by name; its target comes from the manifest. */
export function loadShipped(name: string, limits: Partial<TableLimits> = {}): RawTable {
  const m = shippedTables().find((t) => t.name === name);
  if (!m) throw new ParamError('table', `unknown table ${JSON.stringify(name)}; shipped: ${shippedTables().map((t) => t.name).join(', ')}`);
  return applyLimits(tableFromArrow(gunzipSync(readFileSync(join(TABLES_DIR, m.file))), { name, target: m.target }), { ...DEFAULT_LIMITS, ...limits });
}

/**
 * Class and feature limits. classPolicy 'top' keeps the rows of the `maxClasses` most frequent
 * classes (ties: lower class index) and drops the rest: the documented reduction for the shipped
 * tables with more classes than the ICL models' heads (letter, soybean, vowel).
 */
export function applyLimits(t: RawTable, l: TableLimits): RawTable {
  if (t.features.length > l.maxFeatures) {
    throw new ParamError(`table ${t.name}.features`, `${t.features.length} feature columns, more than the limit ${l.maxFeatures}`);
  }
  const C = t.target.classes.length;
  if (C < 2) throw new ParamError(`table ${t.name}.target`, `needs at least 2 classes, got ${C}`);
  if (C <= l.maxClasses) return t;
  if (l.classPolicy === 'error') {
    throw new ParamError(`table ${t.name}.target`, `${C} classes, more than the limit ${l.maxClasses}; use classPolicy 'top' to keep the ${l.maxClasses} most frequent classes`);
  }
  const counts = new Array<number>(C).fill(0);
  for (const c of t.target.codes) counts[c]!++;
  const keep = counts.map((n, c) => [n, c] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]).slice(0, l.maxClasses).map(([, c]) => c).sort((a, b) => a - b);
  const remap = new Map(keep.map((c, i) => [c, i]));
  const rows = [...t.target.codes.keys()].filter((i) => remap.has(t.target.codes[i]!));
  return selectRows({ ...t, target: { ...t.target, classes: keep.map((c) => t.target.classes[c]!) } }, rows, (c) => remap.get(c)!);
}

export function selectRows(t: RawTable, rows: number[], mapClass: (c: number) => number = (c) => c): RawTable {
  return {
    name: t.name,
    rows: rows.length,
    features: t.features.map((f) => (f.kind === 'numeric' ? { ...f, values: Float64Array.from(rows, (i) => f.values[i]!) } : { ...f, codes: Int32Array.from(rows, (i) => f.codes[i]!) })),
    target: { ...t.target, codes: Int32Array.from(rows, (i) => mapClass(t.target.codes[i]!)) },
  };
}
