/**
 * `npx tsx scripts/import-tables.ts SRC_DIR`: convert the source CSV tables (listed in SRC_DIR/manifest.csv)
 * to the Arrow IPC files shipped in datasets/tables/, through the same CSV reader users get.
 */
import { copyFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'csv-parse/sync';
import { main, UsageError } from './cli.js';
import { parseCsvTable } from '../datasets/tabular/csv.js';
import { tableToArrow } from '../datasets/tabular/arrow.js';
import { TABLES_DIR } from '../datasets/tabular/load.js';
import { writeAtomic } from '../core/files.js';

main(async () => {
  const src = process.argv[2];
  if (!src) throw new UsageError('usage: npx tsx scripts/import-tables.ts SRC_DIR (a folder with manifest.csv and the CSV files)');
  const manifest = parse(readFileSync(join(src, 'manifest.csv'), 'utf8'), { columns: true }) as Record<string, string>[];
  for (const m of manifest) {
    const t = parseCsvTable(readFileSync(join(src, m.file!), 'utf8'), { name: m.name!, target: m.target! });
    const bytes = tableToArrow(t);
    writeAtomic(join(TABLES_DIR, `${m.name}.arrow`), bytes);
    const cat = t.features.filter((f) => f.kind === 'categorical').length;
    console.log(`${m.name}: ${t.rows} rows, ${t.features.length} features (${cat} categorical), ${t.target.classes.length} classes, ${(bytes.length / 1024).toFixed(0)} KiB`);
  }
  copyFileSync(join(src, 'manifest.csv'), join(TABLES_DIR, 'manifest.csv'));
  return 0;
});
