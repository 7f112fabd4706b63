/** The chart rules (form from the data) and the tabular Elo, without a browser. */
import { describe, expect, it } from 'vitest';
import { chooseChart, logTicks, type ChartInput } from '../reports/page/charts.js';
import { formatMetric } from '../reports/page/format.js';
import { eloRatings, type TabularSummary } from '../reports/tabular.js';

const input = (points: ChartInput['points'], log = false): ChartInput => ({
  id: 't', subject: 'accuracy', x: { title: 'd_model', kind: 'count', log }, y: { title: 'accuracy', kind: 'accuracy', domain: [0, 1] }, seriesTitle: 'model', points,
});

describe('charts choose their form from the data', () => {
  it('one x value: a bar per series, the x value in the subtitle', () => {
    const c = chooseChart(input([{ series: 'dense', x: 64, y: 0.99 }, { series: 'window', x: 64, y: 0.4 }, { series: 'bigbird', x: 64, y: 0.98 }]))!;
    expect(c.form).toBe('bar');
    expect(c.title).toBe('accuracy by model: d_model = 64');
    expect(c.series).toEqual(['dense', 'window', 'bigbird']);
  });

  it('every series at its own single x: bars naming the x, not scattered dots', () => {
    const c = chooseChart(input([{ series: 'dense', x: 64, y: 0.99 }, { series: 'window', x: 128, y: 0.4 }]))!;
    expect(c.form).toBe('bar');
    expect(c.series).toEqual(['dense (d_model 64)', 'window (d_model 128)']);
  });

  it('fewer than two values: no chart; a single series at one x: no chart', () => {
    expect(chooseChart(input([{ series: 'dense', x: 64, y: 0.99 }]))).toBeNull();
    expect(chooseChart(input([{ series: 'dense', x: 64, y: 0.99 }, { series: 'window', x: 64, y: NaN }]))).toBeNull();
    expect(chooseChart(input([]))).toBeNull();
  });

  it('series identical to 0.1%: one line under both names, with a note; bars are never merged', () => {
    const pts = [64, 128, 256].flatMap((x) => [{ series: 'sparse', x, y: x / 1000 }, { series: 'dense', x, y: (x / 1000) * 1.0005 }, { series: 'other', x, y: x / 500 }]);
    const c = chooseChart(input(pts, true))!;
    expect(c.form).toBe('line');
    expect(c.series).toEqual(['sparse = dense', 'other']);
    expect(c.notes).toEqual(['"sparse" and "dense" have the same values (to 0.1%): drawn as one series.']);
    const bars = chooseChart(input([{ series: 'a', x: 64, y: 0.5 }, { series: 'b', x: 64, y: 0.5 }]))!;
    expect(bars.series).toEqual(['a', 'b']);
  });

  it('log axes only over a factor of 4 or more, titled "(log scale)", ticks on round numbers', () => {
    const wide = chooseChart(input([64, 128, 256, 512].map((x) => ({ series: 'dense', x, y: 0.5 })), true))!;
    expect(wide.logAxes).toEqual(['x']);
    const spec = JSON.stringify(wide.spec);
    expect(spec).toContain('d_model (log scale)');
    expect(spec).toContain('"values":[64,128,256,512]');
    const narrow = chooseChart(input([64, 128].map((x) => ({ series: 'dense', x, y: 0.5 })), true))!;
    expect(narrow.logAxes).toEqual([]);
    expect(logTicks([0.7, 3000], false)).toEqual([1, 10, 100, 1000]);
    expect(logTicks([1.3, 40], false)).toEqual([3, 10, 30]);
    expect(logTicks([1.5, 9], false)).toEqual([2, 4, 6, 8]);
  });

  it('two values of one series at one x is a caller error, not a zigzag', () => {
    expect(() => chooseChart(input([{ series: 'a', x: 1, y: 0.5 }, { series: 'a', x: 1, y: 0.6 }, { series: 'a', x: 2, y: 0.6 }]))).toThrow(/series "a" has two values at x=1/);
  });

  it('numbers: fixed decimals per metric, thousands separators, nothing for a missing value', () => {
    expect(formatMetric('accuracy', 1)).toBe('1.0000');
    expect(formatMetric('accuracy', 0.99799)).toBe('0.9980');
    expect(formatMetric('count', 3679232)).toBe('3,679,232');
    expect(formatMetric('ms', 1630.4231)).toBe('1,630.423');
    expect(formatMetric('elo', 1033.4)).toBe('1,033');
    expect(formatMetric('ms', NaN)).toBe('');
    expect(formatMetric('ms', null)).toBe('');
  });
});

function summary(models: string[], perTable: number[][]): TabularSummary {
  const tables = perTable.map((_, i) => `t${i}`);
  return {
    models, tables,
    perTable: Object.fromEntries(tables.map((t, i) => [t, Object.fromEntries(models.map((m, j) => [m, { accuracy: perTable[i]![j]!, rocAuc: 0, logLoss: 0, n: 1 }]))])),
    aggregate: {},
  };
}

describe('tabular Elo (Bradley-Terry over per-table battles)', () => {
  it('orders models by wins, pins random-forest at 1000, intervals hold the rating, same input same numbers', () => {
    // a beats b beats random-forest on most tables
    const rows = Array.from({ length: 12 }, (_, i) => (i % 4 === 0 ? [0.8, 0.9, 0.85] : [0.9, 0.85, 0.8]));
    const s = summary(['a', 'b', 'random-forest'], rows);
    const elo = eloRatings(s);
    expect(elo.map((e) => e.model)).toEqual(['a', 'b', 'random-forest']);
    expect(elo[2]!.elo).toBeCloseTo(1000, 9);
    for (const e of elo) expect(e.lo <= e.elo + 1e-9 && e.elo <= e.hi + 1e-9).toBe(true);
    expect(eloRatings(s)).toEqual(elo);
  });

  it('two models splitting the tables evenly: equal ratings; odds of 10:1 are 400 points', () => {
    const even = eloRatings(summary(['x', 'y'], [[0.9, 0.8], [0.8, 0.9]]));
    expect(even[0]!.elo).toBeCloseTo(even[1]!.elo, 9);
    // 20 wins + 0.5 virtual vs 2 wins + 0.5 virtual: strengths 20.5/2.5 = 8.2 -> 400*log10(8.2) points apart
    const rows = [...Array.from({ length: 20 }, () => [0.9, 0.8]), [0.8, 0.9], [0.8, 0.9]];
    const e = eloRatings(summary(['x', 'y'], rows));
    expect(e[0]!.elo - e[1]!.elo).toBeCloseTo(400 * Math.log10(20.5 / 2.5), 6);
  });
});
