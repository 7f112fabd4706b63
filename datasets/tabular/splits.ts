/** Stratified folds and stratified subsampling, seeded. */
import { Rng } from '../../core/rng.js';

/** k stratified folds: each class's rows shuffled, then dealt round-robin (continuing across classes). */
export function stratifiedFolds(y: Int32Array, k: number, seed: number): number[][] {
  const rng = new Rng(Rng.derive(seed, 'tabular/folds'));
  const folds: number[][] = Array.from({ length: k }, () => []);
  const byClass = new Map<number, number[]>();
  y.forEach((c, i) => (byClass.get(c) ?? byClass.set(c, []).get(c)!).push(i));
  let next = 0;
  for (const c of [...byClass.keys()].sort((a, b) => a - b)) {
    const idx = byClass.get(c)!;
    rng.shuffle(idx);
    for (const i of idx) folds[next++ % k]!.push(i);
  }
  return folds.map((f) => f.sort((a, b) => a - b));
}

/** At most `max` of `rows`, keeping class proportions (largest-remainder allocation, at least one per present class). */
export function stratifiedSubsample(rows: number[], y: Int32Array, max: number, seed: number, label = 'tabular/subsample'): number[] {
  if (rows.length <= max) return rows;
  const rng = new Rng(Rng.derive(seed, label));
  const byClass = new Map<number, number[]>();
  for (const i of rows) (byClass.get(y[i]!) ?? byClass.set(y[i]!, []).get(y[i]!)!).push(i);
  const classes = [...byClass.keys()].sort((a, b) => a - b);
  const quota = classes.map((c) => (byClass.get(c)!.length * max) / rows.length);
  const take = quota.map((q) => Math.max(1, Math.floor(q)));
  let left = max - take.reduce((s, n) => s + n, 0);
  const order = quota.map((q, i) => [q - Math.floor(q), i] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]);
  for (const [, i] of order) {
    if (left <= 0) break;
    if (take[i]! < byClass.get(classes[i]!)!.length) {
      take[i]!++;
      left--;
    }
  }
  const out: number[] = [];
  classes.forEach((c, i) => {
    const idx = byClass.get(c)!;
    rng.shuffle(idx);
    out.push(...idx.slice(0, take[i]));
  });
  return out.sort((a, b) => a - b);
}
