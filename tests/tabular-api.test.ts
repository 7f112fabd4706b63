/**
 * Issue 23's user-facing pieces: XGBoost through libxgboost, TabularClassifier against the suite's
 * own result, user tables in a suite, and import-tables adding to the manifest.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { useBackend } from '../kernels/backend.js';
import { BACKEND } from './under-test.js';
import { loadShipped } from '../datasets/tabular/load.js';
import type { RawTable } from '../datasets/tabular/types.js';
import { accuracy, logLoss, makeTask, runTabularCase, splitRows, tabularCases, validateTabular } from '../suites/tabular.js';
import { XGBoost, XGB_DEFAULTS, tuneXgb, xgboostLibrary } from '../models/tabular/xgboost.js';
import { TabularClassifier, type Cell } from '../models/tabular/classifier.js';
import type { Report } from '../reports/schema.js';
import { cli } from './faults/harness.js';
import { tableFromArrays } from 'apache-arrow';

const FP = (JSON.parse(readFileSync('reports/results/current/tabular-quick-2core.json', 'utf8')) as Report).fingerprint;
const SPLIT = { folds: 5, maxTrainRows: 256, maxTestRows: 128 };
const rowsOf = (t: RawTable, rows: number[]): Cell[][] => rows.map((i) => t.features.map((f) => (f.kind === 'numeric' ? (Number.isNaN(f.values[i]!) ? null : f.values[i]!) : f.codes[i]! < 0 ? null : f.categories[f.codes[i]!]!)));

beforeAll(async () => {
  await useBackend(BACKEND);
});

describe('XGBoost (libxgboost through koffi)', () => {
  it('the library loads (CI installs libxgboost-dev)', () => {
    const l = xgboostLibrary();
    if ('error' in l) throw new Error(l.error);
    expect(l.lib.version).toMatch(/^\d+\.\d+\.\d+$/);
  });

  it('defaults: valid probabilities, far above chance, bit-identical on a second run', async () => {
    for (const name of ['iris', 'vote']) {
      const t = makeTask(loadShipped(name, { maxClasses: 10, classPolicy: 'top' }), SPLIT, 0, 0);
      const m = new XGBoost('xgboost', { seed: 0, tuned: false, rounds: 100 });
      const p = await m.predictProba(t);
      expect(p.length).toBe(t.nTest * t.nClasses);
      for (let i = 0; i < t.nTest; i++) expect(Math.abs(p.subarray(i * t.nClasses, (i + 1) * t.nClasses).reduce((s, x) => s + x, 0) - 1)).toBeLessThan(1e-5);
      expect(accuracy(p, t.yTest, t.nClasses)).toBeGreaterThan(0.85); // iris, vote: ~0.93-0.96 for any tree ensemble
      expect(Array.from(await m.predictProba(t))).toEqual(Array.from(p));
    }
  });

  it('tuned: the search keeps the best validation loss of its candidates, the defaults among them; seeded', async () => {
    const x = xgboostLibrary();
    if ('error' in x) throw new Error(x.error);
    const t = makeTask(loadShipped('diabetes'), SPLIT, 0, 0);
    const o = { seed: 3, maxRounds: 300, patience: 20, threads: 1 };
    const one = tuneXgb(x.lib, t, { ...o, configs: 1 });
    expect(one.params).toEqual(XGB_DEFAULTS);
    const six = tuneXgb(x.lib, t, { ...o, configs: 6 });
    expect(six.validLoss).toBeLessThanOrEqual(one.validLoss);
    expect(six.rounds).toBeGreaterThan(0);
    expect(tuneXgb(x.lib, t, { ...o, configs: 6 })).toEqual(six);
  });
});

describe('TabularClassifier', () => {
  it('fit/predict on a shipped table\'s split gives exactly the suite\'s result for that split', async () => {
    for (const name of ['diabetes', 'vote']) {
      const c = validateTabular({ tables: [name], ...SPLIT, evalFolds: 1, models: [{ name: 'orion-msp', checkpoint: 'models/checkpoints/orion-msp', members: 4, maxFeatures: 100, transform: 'mixed' }] });
      const [k] = tabularCases(c, [0]);
      const rec = await runTabularCase('api-test', c, k!, BACKEND, FP);
      const t = loadShipped(name, { maxClasses: 10, classPolicy: 'top' });
      const { train, test } = splitRows(t, SPLIT, 0, 0);
      const clf = new TabularClassifier({ backend: BACKEND }).fit(rowsOf(t, train), train.map((i) => t.target.classes[t.target.codes[i]!]!));
      const proba = await clf.predictProba(rowsOf(t, test));
      const labels = await clf.predict(rowsOf(t, test));
      clf.dispose();
      const y = Int32Array.from(test, (i) => t.target.codes[i]!);
      expect(clf.classes).toEqual(t.target.classes);
      expect(accuracy(Float32Array.from(proba.flat()), y, t.target.classes.length)).toBe(rec.metrics.accuracy);
      expect(logLoss(Float32Array.from(proba.flat()), y, t.target.classes.length)).toBe(rec.metrics.tabular!.logLoss);
      expect(labels.filter((l, i) => l === t.target.classes[y[i]!]).length / y.length).toBe(rec.metrics.accuracy);
    }
  });

  it('an apache-arrow Table in gives what the same rows as arrays give', async () => {
    const t = loadShipped('penguins');
    const rows = Array.from({ length: 120 }, (_, i) => i * 2);
    const cells = rowsOf(t, rows);
    const y = rows.map((i) => t.target.classes[t.target.codes[i]!]!);
    const cols = Object.fromEntries(t.features.map((f, j) => [f.name, f.kind === 'numeric' ? Float64Array.from(cells, (r) => (r[j] === null ? NaN : (r[j] as number))) : cells.map((r) => r[j] as string | null)]));
    const table = tableFromArrays(cols as Parameters<typeof tableFromArrays>[0]);
    const a = new TabularClassifier({ backend: BACKEND }).fit(cells.slice(0, 100), y.slice(0, 100));
    const b = new TabularClassifier({ backend: BACKEND }).fit(table.slice(0, 100), y.slice(0, 100));
    expect(await b.predictProba(table.slice(100))).toEqual(await a.predictProba(cells.slice(100)));
    a.dispose();
    b.dispose();
  });

  it('bad input names the field', async () => {
    expect(() => new TabularClassifier().fit([[1, 2], [3]], [0, 1])).toThrow(/X\[1\]: must be a row of 2 cells/);
    expect(() => new TabularClassifier().fit([[1], [2]], [0])).toThrow(/y: has 1 labels for 2 rows/);
    await expect(new TabularClassifier().predict([[1]])).rejects.toThrow(/call fit\(X, y\) before predicting/);
  });
});

describe('user tables', () => {
  it('a suite lists a CSV of its own beside shipped names; errors name the entry', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tr-ut-'));
    const csv = join(dir, 'mine.csv');
    writeFileSync(csv, 'a,b,label\n' + Array.from({ length: 40 }, (_, i) => `${i},${i % 3 === 0 ? 'x' : 'y'},${i % 2}`).join('\n') + '\n');
    const c = validateTabular({ tables: ['iris', { path: csv, target: 'label' }], models: [{ name: 'logreg' }] });
    expect(c.tables).toEqual(['iris', 'mine']);
    expect(c.userTables!.mine!.path).toBe(csv);
    expect(() => validateTabular({ tables: [{ path: join(dir, 'none.csv'), target: 'label' }], models: [{ name: 'logreg' }] })).toThrow(/tables\[0\] \(.*none\.csv\): table\.path: no such file/);
    expect(() => validateTabular({ tables: [{ path: csv, target: 'nope' }], models: [{ name: 'logreg' }] })).toThrow(/tables\[0\].*target: no column named "nope"; columns: a, b, label/);
    expect(() => validateTabular({ tables: [{ path: csv }], models: [{ name: 'logreg' }] })).toThrow(/tables\[0\]\.target: must name the target column/);
    expect(() => validateTabular({ tables: [{ path: csv, target: 'label', name: 'iris' }], models: [{ name: 'logreg' }] })).toThrow(/tables\[0\]\.name: "iris" is already a table of this suite \(a shipped one\)/);
    expect(() => validateTabular({ tables: ['irs'], models: [{ name: 'logreg' }] })).toThrow(/tables\[0\]: unknown table "irs"; shipped: .*iris/);
  });

  it('bench runs a user table; an edited file is a new case, not a resumed one; without libxgboost its cases are skipped with one line', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tr-ut-'));
    const csv = join(dir, 'mine.csv');
    const write = (k: number) => writeFileSync(csv, 'a,b,label\n' + Array.from({ length: 60 }, (_, i) => `${(i * k) % 17},${i % 3 === 0 ? 'x' : 'y'},${i % 2}`).join('\n') + '\n');
    write(1);
    const suite = join(dir, 'suite.json');
    writeFileSync(suite, JSON.stringify({ name: 'user-tables', kind: 'tabular', seeds: [0], entries: [], tabular: { tables: [{ path: csv, target: 'label' }], folds: 3, evalFolds: 1, models: [{ name: 'logreg' }, { name: 'xgboost' }] } }));
    const out = join(dir, 'out');
    const a = cli('bench.ts', ['--suite', suite, '--out', out, '--backend', 'cpu']);
    expect(a.code).toBe(0);
    const report = () => JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')) as Report;
    expect(report().records.map((r) => r.model.name).sort()).toEqual(['logreg', 'xgboost']);
    expect(report().records[0]!.task.params.path).toBe(csv);
    write(5);
    const b = cli('bench.ts', ['--suite', suite, '--out', out, '--backend', 'cpu', '--resume']);
    expect(b.code).toBe(0);
    expect(b.err).not.toMatch(/resumed/);
    const missing = cli('bench.ts', ['--suite', suite, '--out', join(dir, 'out2'), '--backend', 'cpu'], { TABRECALL_XGBOOST_LIB: join(dir, 'no-libxgboost.so') });
    expect(missing.code).toBe(0);
    expect(missing.err.match(/skipping xgboost \(1 cases\): libxgboost not found .*apt install libxgboost-dev/g)?.length).toBe(1);
    expect((JSON.parse(readFileSync(join(dir, 'out2', 'report.json'), 'utf8')) as Report).records.map((r) => r.model.name)).toEqual(['logreg']);
  });

  it('import-tables adds to the shipped manifest and keeps the other tables', () => {
    // Run on a copy of datasets/tables (--to), never on the shipped files.
    const dir = mkdtempSync(join(tmpdir(), 'tr-it-'));
    const tables = join(dir, 'tables');
    mkdirSync(tables);
    copyFileSync('datasets/tables/manifest.csv', join(tables, 'manifest.csv'));
    const src = join(dir, 'src');
    mkdirSync(src);
    const header = readFileSync('datasets/tables/manifest.csv', 'utf8').split(/\r?\n/)[0]!;
    writeFileSync(join(src, 'manifest.csv'), `${header}\nmine,mine.csv,label,30,2,1,2,0,none,a test,CC0,,no\n`);
    writeFileSync(join(src, 'mine.csv'), 'a,b,label\n' + Array.from({ length: 30 }, (_, i) => `${i},${i % 2 ? 'p' : 'q'},${i % 3 === 0}`).join('\n') + '\n');
    const r = cli('import-tables.ts', [src, '--to', tables]);
    expect(r.code).toBe(0);
    const after = readFileSync(join(tables, 'manifest.csv'), 'utf8'), before = readFileSync('datasets/tables/manifest.csv', 'utf8');
    expect(after.startsWith(before)).toBe(true); // the shipped rows byte for byte, the new one appended
    expect(after.slice(before.length).split(',').slice(0, 3)).toEqual(['mine', 'mine.csv', 'label']);
    expect(existsSync(join(tables, 'mine.arrow.gz'))).toBe(true);
  });
});
