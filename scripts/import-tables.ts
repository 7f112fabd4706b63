/**
 * `npx tsx scripts/import-tables.ts SRC_DIR`: convert the source CSV tables (listed in SRC_DIR/manifest.csv)
 * to the gzipped Arrow IPC files shipped in datasets/tables/ (`<name>.arrow.gz`), through the same CSV reader users get. The
 * manifest (of --to DIR, default datasets/tables) gains SRC_DIR's rows (a row of the same name is replaced); its other tables stay.
 */
import { readFileSync, rmSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { stringify } from 'csv-stringify/sync';
import { join } from 'node:path';
import { parse } from 'csv-parse/sync';
import { main, UsageError } from './cli.js';
import { parseCsvTable } from '../datasets/tabular/csv.js';
import { tableToArrow } from '../datasets/tabular/arrow.js';
import { TABLES_DIR } from '../datasets/tabular/load.js';
import { writeAtomic } from '../core/files.js';

main(async () => {
  const args = process.argv.slice(2);
  const at = args.indexOf('--to');
  const dest = at >= 0 ? args[at + 1] : TABLES_DIR;
  const src = args.filter((_, i) => i !== at && i !== at + 1 || at < 0)[0];
  if (!src || !dest) throw new UsageError('usage: npx tsx scripts/import-tables.ts SRC_DIR [--to DIR] (SRC_DIR: a folder with manifest.csv and the CSV files; DIR: default datasets/tables)');
  const manifest = parse(readFileSync(join(src, 'manifest.csv'), 'utf8'), { columns: true }) as Record<string, string>[];
  for (const m of manifest) {
    const t = parseCsvTable(readFileSync(join(src, m.file!), 'utf8'), { name: m.name!, target: m.target! });
    const bytes = tableToArrow(t);
    const packed = gzipSync(bytes, { level: 9 });
    writeAtomic(join(dest, `${m.name}.arrow.gz`), packed);
    rmSync(join(dest, `${m.name}.arrow`), { force: true }); // an uncompressed file of an older import
    const cat = t.features.filter((f) => f.kind === 'categorical').length;
    console.log(`${m.name}: ${t.rows} rows, ${t.features.length} features (${cat} categorical), ${t.target.classes.length} classes, ${(packed.length / 1024).toFixed(0)} KiB gzipped`);
  }
  const path = join(dest, 'manifest.csv');
  const text = readFileSync(path, 'utf8');
  const shipped = parse(text, { columns: true }) as Record<string, string>[];
  const columns = Object.keys(shipped[0] ?? manifest[0]!);
  for (const m of manifest) {
    const missing = columns.filter((c) => !(c in m));
    if (missing.length) throw new UsageError(`${join(src, 'manifest.csv')}: row ${m.name} lacks column(s) ${missing.join(', ')} of the shipped manifest`);
  }
  const added = new Set(manifest.map((m) => m.name));
  const rows = [...shipped.filter((r) => !added.has(r.name!)), ...manifest];
  writeAtomic(path, stringify(rows, { header: true, columns, record_delimiter: text.includes('\r\n') ? 'windows' : 'unix' })); // the file's own line ends
  console.log(`manifest: ${rows.length} tables (${manifest.length} imported, ${rows.length - manifest.length} kept)`);
  return 0;
});
