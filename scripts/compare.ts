/** `npm run compare -- BASE.json NEW.json [--acc-tol 0.005] [--min-rel 0.1] [--spread 3] [--allow-missing] [--significant]`: exit 1 on regression. */
import { args, main, UsageError } from './cli.js';
import { readReport } from '../reports/read.js';
import { compareReports, formatCompare, COMPARE_DEFAULTS } from '../reports/compare.js';

main(async () => {
  const { values: o, positionals } = args(
    { 'acc-tol': { type: 'string' }, 'min-rel': { type: 'string' }, spread: { type: 'string' }, 'allow-missing': { type: 'boolean', default: false }, significant: { type: 'boolean', default: false } },
    true,
  );
  if (positionals.length !== 2) throw new UsageError(`compare: expects exactly two report paths (BASE NEW), got ${positionals.length}`);
  const num = (name: string, v: string | undefined, d: number) => {
    if (v === undefined) return d;
    const x = Number(v);
    if (!Number.isFinite(x) || x < 0) throw new UsageError(`--${name}: must be a non-negative number, got ${JSON.stringify(v)}`);
    return x;
  };
  const base = readReport(positionals[0]!);
  const next = readReport(positionals[1]!);
  const r = compareReports(base, next, {
    accTolerance: num('acc-tol', o['acc-tol'], COMPARE_DEFAULTS.accTolerance),
    minRelative: num('min-rel', o['min-rel'], COMPARE_DEFAULTS.minRelative),
    spreadFactor: num('spread', o.spread, COMPARE_DEFAULTS.spreadFactor),
    allowMissing: !!o['allow-missing'],
    significant: !!o.significant,
  });
  console.log(formatCompare(r));
  return r.regressions > 0 ? 1 : 0;
});
