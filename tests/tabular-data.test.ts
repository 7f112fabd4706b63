/** Tabular data: loaders (CSV, Arrow, shipped tables) and their errors, preprocessing, splits, the synthetic prior. */
import { describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseCsvTable } from '../datasets/tabular/csv.js';
import { tableFromArrow, tableToArrow } from '../datasets/tabular/arrow.js';
import { applyLimits, loadShipped, loadTableFile, shippedTables } from '../datasets/tabular/load.js';
import { fitPreprocessor, transformRows, CLIP_Z } from '../datasets/tabular/preprocess.js';
import { stratifiedFolds, stratifiedSubsample } from '../datasets/tabular/splits.js';
import { sampleBatch, parsePriorConfig, PRIOR_DEFAULTS } from '../datasets/tabular/prior.js';
import { PriorPool } from '../datasets/tabular/prior-pool.js';
import { DEFAULT_LIMITS } from '../datasets/tabular/types.js';
import { createHash } from 'node:crypto';

const dir = mkdtempSync(join(tmpdir(), 'tabrecall-tab-'));
const file = (name: string, text: string): string => {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
};

const GOOD = 'a,b,color,y\n1,2.5,red,yes\n2,,blue,no\n3,4,,yes\n4,1e3,red,no\n';

describe('CSV and Arrow loaders', () => {
  it('infers numeric and categorical columns, missing cells, classes', () => {
    const t = loadTableFile(file('good.csv', GOOD), 'y');
    expect(t.rows).toBe(4);
    expect(t.features.map((f) => f.kind)).toEqual(['numeric', 'numeric', 'categorical']);
    const b = t.features[1]!;
    expect(b.kind === 'numeric' && Number.isNaN(b.values[1]!)).toBe(true);
    const c = t.features[2]!;
    expect(c.kind === 'categorical' && c.categories).toEqual(['blue', 'red']);
    expect(c.kind === 'categorical' && Array.from(c.codes)).toEqual([1, 0, -1, 1]);
    expect(t.target.classes).toEqual(['no', 'yes']);
  });

  it('round-trips through Arrow IPC, and reads .arrow files', () => {
    const t = parseCsvTable(GOOD, { name: 'g', target: 'y' });
    const bytes = tableToArrow(t);
    const back = tableFromArrow(bytes, { name: 'g', target: 'y' });
    expect(back).toEqual(t);
    const p = join(dir, 'g.arrow');
    writeFileSync(p, bytes);
    expect(loadTableFile(p, 'y').rows).toBe(4);
  });

  it('names the problem on bad input', () => {
    expect(() => loadTableFile(file('e.csv', ''), 'y')).toThrow(/empty/);
    expect(() => loadTableFile(file('m.csv', GOOD), 'label')).toThrow(/target: no column named "label"; columns: a, b, color, y/);
    expect(() => loadTableFile(file('r.csv', 'a,b,y\n1,2,x\n3,4\n'), 'y')).toThrow(/not a well-formed CSV file: .*(record|column|fields)/i);
    const garbage = 'a,y\n' + Array.from({ length: 30 }, (_, i) => `${i},c${i % 2}`).join('\n') + '\nabc,c0\n';
    expect(() => loadTableFile(file('n.csv', garbage), 'y')).toThrow(/table n\.a: non-numeric value "abc" in data row 31 of a numeric column/);
    const many = 'a,y\n' + Array.from({ length: 24 }, (_, i) => `${i},k${i % 12}`).join('\n') + '\n';
    expect(() => loadTableFile(file('c.csv', many), 'y')).toThrow(/12 classes, more than the limit 10/);
    expect(() => loadTableFile(file('h.csv', 'y\n1\n'), 'y')).toThrow(/at least one feature column/);
    expect(() => loadTableFile(file('t.txt', GOOD), 'y')).toThrow(/unknown file type ".txt"; allowed: .csv, .arrow/);
    expect(() => loadTableFile(join(dir, 'nope.csv'), 'y')).toThrow(/no such file/);
    expect(() => loadTableFile(file('u.csv', 'a,y\n1,x\n2,\n'), 'y')).toThrow(/column y is empty in data row 2/);
    expect(() => loadTableFile(file('one.csv', 'a,y\n1,x\n2,x\n'), 'y')).toThrow(/at least 2 classes/);
    expect(() => loadShipped('nope')).toThrow(/unknown table "nope"; shipped: .*iris/);
  });

  it("classPolicy 'top' keeps the most frequent classes", () => {
    const many = 'a,y\n' + Array.from({ length: 60 }, (_, i) => `${i},k${i < 30 ? i % 3 : i % 12}`).join('\n') + '\n';
    const t = applyLimits(parseCsvTable(many, { name: 'c', target: 'y' }), { ...DEFAULT_LIMITS, maxClasses: 3, classPolicy: 'top' });
    expect(t.target.classes).toEqual(['k0', 'k1', 'k2']);
    expect(t.rows).toBe(30 + 6); // rows 36-38 and 48-50 also hold k0..k2
  });

  it('ships 43 tables whose Arrow files match the manifest, with provenance; wide, categorical-heavy and larger ones among them', () => {
    const m = shippedTables();
    expect(m.length).toBe(43);
    expect(new Set(m.map((x) => x.name)).size).toBe(43);
    for (const s of m) {
      expect(s.origin && s.license, s.name).toBeTruthy();
      const t = loadShipped(s.name, { maxClasses: 100 });
      expect([t.name, t.rows, t.features.length, t.target.classes.length]).toEqual([s.name, s.rows, s.features, s.classes]);
    }
    expect(m.filter((x) => x.features >= 200).length).toBeGreaterThanOrEqual(4);
    expect(m.filter((x) => x.rows >= 4000).length).toBeGreaterThanOrEqual(8);
  });

  it('reads gzip-compressed user files (.csv.gz, .arrow.gz) as their plain forms', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tr-gz-'));
    const csv = 'a,b,y\n1,x,p\n2,y,q\n3,x,p\n';
    writeFileSync(join(dir, 't.csv'), csv);
    writeFileSync(join(dir, 't.csv.gz'), gzipSync(csv));
    const plain = loadTableFile(join(dir, 't.csv'), 'y');
    expect(loadTableFile(join(dir, 't.csv.gz'), 'y')).toEqual(plain);
    expect(() => loadTableFile(join(dir, 't.csv.gz').replace('.csv', '.txt'), 'y')).toThrow(/no such file/);
    writeFileSync(join(dir, 't.txt.gz'), gzipSync(csv));
    expect(() => loadTableFile(join(dir, 't.txt.gz'), 'y')).toThrow(/table\.path: unknown file type ".gz"; allowed: .csv, .arrow, .feather, .ipc, each optionally .gz/);
  });
});

describe('preprocessing and splits', () => {
  it('standardises robustly on train rows, clips at |z| = 4, leaves no NaN', () => {
    const t = parseCsvTable('a,c,y\n' + Array.from({ length: 40 }, (_, i) => `${i === 39 ? 1e6 : i % 10},${i % 3 ? 'u' : i % 2 ? '' : 'v'},${i % 2}`).join('\n'), { name: 'p', target: 'y' });
    const rows = Array.from({ length: 40 }, (_, i) => i);
    const x = transformRows(t, fitPreprocessor(t, rows.slice(0, 30)), rows);
    expect(x.every(Number.isFinite)).toBe(true);
    expect(Math.max(...x)).toBeLessThanOrEqual(CLIP_Z);
    expect(x[39 * 2]).toBe(CLIP_Z); // the outlier
  });

  it('stratified folds partition the rows and keep class shares', () => {
    const y = Int32Array.from({ length: 103 }, (_, i) => (i < 80 ? 0 : i < 95 ? 1 : 2));
    const folds = stratifiedFolds(y, 5, 1);
    expect(folds.flat().sort((a, b) => a - b)).toEqual([...y.keys()]);
    for (const f of folds) {
      const n0 = f.filter((i) => y[i] === 0).length;
      expect(n0).toBeGreaterThanOrEqual(15);
      expect(n0).toBeLessThanOrEqual(17);
    }
    expect(stratifiedFolds(y, 5, 1)).toEqual(folds);
    const sub = stratifiedSubsample([...y.keys()], y, 20, 0);
    expect(sub.length).toBe(20);
    expect(sub.filter((i) => y[i] === 2).length).toBeGreaterThanOrEqual(1);
  });
});

describe('synthetic prior', () => {
  const batches = Array.from({ length: 40 }, (_, s) => sampleBatch(7, s, 4));

  it('is deterministic in (seed, step)', () => {
    expect(sampleBatch(7, 3, 4)).toEqual(batches[3]);
  });

  it('draws rows, features and classes in their ranges, with no NaN and every class present', () => {
    for (const b of batches) {
      expect(b.nRows).toBeGreaterThanOrEqual(PRIOR_DEFAULTS.minRows);
      expect(b.nRows).toBeLessThanOrEqual(PRIOR_DEFAULTS.maxRows);
      expect(b.nFeatures).toBeGreaterThanOrEqual(PRIOR_DEFAULTS.minFeatures);
      expect(b.nFeatures).toBeLessThanOrEqual(PRIOR_DEFAULTS.maxFeatures);
      expect(b.nClasses).toBeGreaterThanOrEqual(2);
      expect(b.nClasses).toBeLessThanOrEqual(PRIOR_DEFAULTS.maxClasses);
      for (const t of b.tables) {
        expect(t.xTrain.length).toBe(t.nTrain * t.nFeatures);
        expect(t.xTrain.every(Number.isFinite) && t.xTest.every(Number.isFinite)).toBe(true);
        const counts = new Array<number>(t.nClasses).fill(0);
        for (const c of [...t.yTrain, ...t.yTest]) counts[c]!++;
        // Class balance: each class holds at least minClassShare of the rows, none more than all but the others' minimum.
        expect(Math.min(...counts)).toBeGreaterThanOrEqual(Math.max(1, PRIOR_DEFAULTS.minClassShare * b.nRows));
        expect(t.nTrain / b.nRows).toBeGreaterThanOrEqual(0.49);
        expect(t.nTrain / b.nRows).toBeLessThanOrEqual(0.81);
      }
    }
  });

  it('mixes the three generators, and features vary (not constant columns)', () => {
    const kinds = new Set(batches.flatMap((b) => b.tables.map((t) => t.kind)));
    expect(kinds).toEqual(new Set(['mlp', 'tree', 'linear']));
    const t = batches[0]!.tables[0]!;
    for (let f = 0; f < t.nFeatures; f++) {
      const col = Array.from({ length: t.nTrain }, (_, r) => t.xTrain[r * t.nFeatures + f]!);
      expect(Math.max(...col) - Math.min(...col)).toBeGreaterThan(0);
    }
  });

  it('takes validated overrides: wide tables in range; bad keys and values name the field', () => {
    const wide = parsePriorConfig('--prior', { minFeatures: 60, maxFeatures: 100, minRows: 64, maxRows: 80 });
    for (let s = 0; s < 3; s++) {
      const b = sampleBatch(2, s, 2, wide);
      expect(b.nFeatures).toBeGreaterThanOrEqual(60);
      expect(b.nFeatures).toBeLessThanOrEqual(100);
      expect(b.tables.every((t) => t.xTrain.every(Number.isFinite))).toBe(true);
    }
    expect(() => parsePriorConfig('--prior', { maxFeature: 10 })).toThrow(/--prior.*maxFeature/);
    expect(() => parsePriorConfig('--prior', { maxRows: 10, minRows: 20 })).toThrow(/--prior\.maxRows: must be >= minRows/);
    expect(() => parsePriorConfig('--prior', { maxClasses: 1 })).toThrow(/--prior\.maxClasses: must be an integer in \[2, 100\]/);
    expect(() => parsePriorConfig('--prior', { mix: { mlp: 0, tree: 0, linear: 0 } })).toThrow(/--prior\.mix/);
  });

  it('draws the batches a shipped checkpoint was trained on: the first prior is unchanged by later options', () => {
    // Pinned: the shipped checkpoint's recorded prior (no catTables/relevant keys) at its last step.
    const b = sampleBatch(0, 4099, 2, parsePriorConfig('checkpoint.prior', { minRows: 64, maxRows: 512, maxFeatures: 100 }));
    const h = createHash('sha256');
    for (const t of b.tables) for (const a of [t.xTrain, t.yTrain, t.xTest]) h.update(new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
    expect([b.nRows, b.nFeatures, b.nClasses, h.digest('hex')]).toEqual([92, 7, 2, '91d22379dda18674458e24f65a0c0931e1b5cee8bb26dc30189c7e9d0c3b3c3f']);
  });

  it('catTables makes categorical-heavy tables: few-level columns ranked by train frequency, no NaN', () => {
    const cfg = parsePriorConfig('--prior', { catTables: 1, minRelevant: 0.1, maxRelevant: 1, maxFeatures: 40 });
    let catCols = 0;
    let cols = 0;
    for (let s = 0; s < 12; s++) {
      for (const t of sampleBatch(3, s, 2, cfg).tables) {
        expect(t.xTrain.every(Number.isFinite) && t.xTest.every(Number.isFinite)).toBe(true);
        for (let f = 0; f < t.nFeatures; f++) {
          cols++;
          const col = Array.from({ length: t.nTrain }, (_, r) => t.xTrain[r * t.nFeatures + f]!);
          const distinct = [...new Set(col)].sort((a, b) => a - b);
          if (distinct.length > 8) continue;
          catCols++;
          // Rank 0 (the most frequent level) is the smallest code; after standardising it stays the smallest value.
          const count = (v: number): number => col.filter((x) => x === v).length;
          expect(count(distinct[0]!)).toBeGreaterThanOrEqual(Math.max(...distinct.map(count)));
        }
      }
    }
    // Each table draws its categorical share from U(0, 1) (all columns in 30% of tables): well over the 15% of the first prior.
    expect(catCols / cols).toBeGreaterThan(0.4);
    expect(() => parsePriorConfig('--prior', { minRelevant: 0.8, maxRelevant: 0.2 })).toThrow(/--prior\.maxRelevant: must be >= minRelevant/);
    expect(() => parsePriorConfig('--prior', { catTables: 2 })).toThrow(/--prior\.catTables/);
  });

  it('worker threads draw exactly the batches sampleBatch draws', async () => {
    const pool = await PriorPool.create(7, 4, PRIOR_DEFAULTS, 2, 5);
    try {
      for (let s = 5; s < 9; s++) expect(await pool.next(s)).toEqual(sampleBatch(7, s, 4));
    } finally {
      await pool.close();
    }
  });
});
