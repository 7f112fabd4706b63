/**
 * CSV -> RawTable. Column kinds are inferred: a column whose every non-missing cell parses as a
 * finite number is numeric, one with mostly text is categorical, and one that is mostly numbers
 * with a few stray tokens is rejected (that is almost always a data error, not a category).
 */
import { parse } from 'csv-parse/sync';
import { ParamError } from '../../core/params.js';
import type { FeatureColumn, RawTable } from './types.js';

/** Cells read as missing. */
export const MISSING_TOKENS = new Set(['', 'NA', 'N/A', 'na', 'NaN', 'nan', '?', 'null', 'NULL']);
/** Share of numeric cells above which stray text is an error rather than a categorical column. */
const NUMERIC_SHARE = 0.9;

export function parseCsvTable(text: string, o: { name: string; target: string }): RawTable {
  const where = `table ${o.name}`;
  if (text.trim().length === 0) throw new ParamError(`${where}`, 'the file is empty (expected a header row and data rows)');
  let rows: string[][];
  try {
    rows = parse(text, { skip_empty_lines: true, trim: true, relax_column_count: false, bom: true }) as string[][];
  } catch (e) {
    // csv-parse names the line and the column counts; keep its words, add ours.
    throw new ParamError(`${where}`, `not a well-formed CSV file: ${(e as Error).message}`);
  }
  if (rows.length < 2) throw new ParamError(`${where}`, `needs a header row and at least one data row, got ${rows.length} row(s)`);
  const header = rows[0]!;
  const data = rows.slice(1);
  return rawTableFromCells(header, (c) => data.map((r) => r[c]!), data.length, o);
}

/** Build a RawTable from string cells (shared by the CSV and Arrow readers). */
export function rawTableFromCells(header: string[], column: (c: number) => (string | null)[], rows: number, o: { name: string; target: string }): RawTable {
  const where = `table ${o.name}`;
  const t = header.indexOf(o.target);
  if (t < 0) throw new ParamError(`${where}.target`, `no column named ${JSON.stringify(o.target)}; columns: ${header.join(', ')}`);
  if (header.length < 2) throw new ParamError(`${where}`, 'needs at least one feature column besides the target');
  const tv = column(t);
  const missingTarget = tv.findIndex((v) => v === null || MISSING_TOKENS.has(v));
  if (missingTarget >= 0) throw new ParamError(`${where}.target`, `column ${o.target} is empty in data row ${missingTarget + 1}; every row needs a label`);
  const classes = [...new Set(tv as string[])].sort(naturalCompare);
  const index = new Map(classes.map((c, i) => [c, i]));
  const features: FeatureColumn[] = [];
  header.forEach((name, c) => {
    if (c !== t) features.push(inferColumn(name, column(c), where));
  });
  return { name: o.name, rows, features, target: { name: o.target, codes: Int32Array.from(tv as string[], (v) => index.get(v)!), classes } };
}

function inferColumn(name: string, cells: (string | null)[], where: string): FeatureColumn {
  const values = new Float64Array(cells.length);
  let present = 0;
  let numeric = 0;
  let firstBad = -1;
  cells.forEach((s, i) => {
    if (s === null || MISSING_TOKENS.has(s)) {
      values[i] = NaN;
      return;
    }
    present++;
    const x = Number(s);
    if (Number.isFinite(x)) {
      values[i] = x;
      numeric++;
    } else if (firstBad < 0) firstBad = i;
  });
  if (numeric === present) return { name, kind: 'numeric', values };
  if (numeric >= NUMERIC_SHARE * present) {
    throw new ParamError(`${where}.${name}`, `non-numeric value ${JSON.stringify(cells[firstBad])} in data row ${firstBad + 1} of a numeric column (${numeric} of ${present} cells are numbers); fix the cell or mark it missing (empty, NA or ?)`);
  }
  const categories = [...new Set(cells.filter((s): s is string => s !== null && !MISSING_TOKENS.has(s)))].sort(naturalCompare);
  const index = new Map(categories.map((c, i) => [c, i]));
  return { name, kind: 'categorical', categories, codes: Int32Array.from(cells, (s) => (s === null || MISSING_TOKENS.has(s) ? -1 : index.get(s)!)) };
}

/** Numbers in numeric order, text alphabetically: "2" before "10". */
export function naturalCompare(a: string, b: string): number {
  const x = Number(a);
  const y = Number(b);
  if (Number.isFinite(x) && Number.isFinite(y)) return x - y;
  return a < b ? -1 : a > b ? 1 : 0;
}
