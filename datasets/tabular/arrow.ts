/** RawTable <-> Arrow IPC: numeric features as Float64 (null = missing), categoricals and the target as Utf8. */
import { type Vector, Dictionary, Float64, Int8, Int16, Int32, Table, Utf8, tableFromIPC, tableToIPC, vectorFromArray, DataType } from 'apache-arrow';
import { ParamError } from '../../core/params.js';
import { rawTableFromCells } from './csv.js';
import type { RawTable } from './types.js';

export function tableToArrow(t: RawTable): Uint8Array {
  const cols: Record<string, Vector> = {};
  for (const f of t.features) {
    cols[f.name] = f.kind === 'numeric'
      ? vectorFromArray(Array.from(f.values, (v) => (Number.isNaN(v) ? null : v)), numericType(f.values))
      : vectorFromArray(Array.from(f.codes, (c) => (c < 0 ? null : f.categories[c]!)), new Dictionary(new Utf8(), new Int32()));
  }
  cols[t.target.name] = vectorFromArray(Array.from(t.target.codes, (c) => t.target.classes[c]!), new Dictionary(new Utf8(), new Int32()));
  return tableToIPC(new Table(cols), 'file');
}

/** The narrowest exact type: small integers as Int8/Int16/Int32 (the shipped files stay small), else Float64. */
function numericType(v: Float64Array): DataType {
  let lo = 0;
  let hi = 0;
  for (const x of v) {
    if (Number.isNaN(x)) continue;
    if (!Number.isInteger(x)) return new Float64();
    lo = Math.min(lo, x);
    hi = Math.max(hi, x);
  }
  return lo >= -128 && hi <= 127 ? new Int8() : lo >= -32768 && hi <= 32767 ? new Int16() : lo >= -2147483648 && hi <= 2147483647 ? new Int32() : new Float64();
}

export function tableFromArrow(bytes: Uint8Array, o: { name: string; target: string }): RawTable {
  let table: Table;
  try {
    table = tableFromIPC(bytes);
  } catch (e) {
    throw new ParamError(`table ${o.name}`, `not an Arrow IPC file: ${(e as Error).message}`);
  }
  if (table.numRows === 0) throw new ParamError(`table ${o.name}`, 'the file has no rows');
  const header = table.schema.fields.map((f) => f.name);
  return rawTableFromCells(header, (c) => arrowCells(table, c), table.numRows, o);
}

/** Column c as string cells (null = missing): numeric Arrow columns go through the same inference as CSV cells, so both formats give one table. */
export function arrowCells(table: Table, c: number): (string | null)[] {
  const v = table.getChildAt(c)!;
  const numeric = DataType.isFloat(v.type) || DataType.isInt(v.type);
  return Array.from({ length: table.numRows }, (_, i) => {
    const x = v.get(i);
    return x === null || x === undefined ? null : numeric ? String(Number(x)) : String(x);
  });
}
