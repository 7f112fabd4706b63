/**
 * Seeded pseudo-random numbers. Every random choice in tabrecall flows from one of these, so a run is
 * reproducible from its seed on any platform (JS Math.random is neither seedable nor portable).
 * xoshiro128** (Blackman & Vigna) seeded through splitmix32: fast, 32-bit, good statistical quality.
 */
export class Rng {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;

  constructor(seed: number) {
    if (!Number.isInteger(seed)) throw new Error(`seed: must be an integer, got ${seed}`);
    let x = seed >>> 0;
    const next = (): number => {
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.s0 = next();
    this.s1 = next();
    this.s2 = next();
    this.s3 = next();
  }

  /** Uniform 32-bit unsigned integer. */
  nextU32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5) >>> 0, 7), 9) >>> 0;
    const t = (this.s1 << 9) >>> 0;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    this.s0 >>>= 0; this.s1 >>>= 0; this.s2 >>>= 0; this.s3 >>>= 0;
    return result;
  }

  /** Uniform float in [0, 1) with 32 bits of resolution. */
  float(): number {
    return this.nextU32() / 4294967296;
  }

  /** Uniform integer in [lo, hi) (hi exclusive), unbiased (rejection sampling). */
  int(lo: number, hi: number): number {
    const n = hi - lo;
    if (!(n > 0) || n > 4294967296) throw new Error(`Rng.int: empty or too large range [${lo}, ${hi})`);
    const limit = 4294967296 - (4294967296 % n);
    let r = this.nextU32();
    while (r >= limit) r = this.nextU32();
    return lo + (r % n);
  }

  /** Standard normal (Box-Muller). */
  normal(): number {
    let u = this.float();
    while (u <= 0) u = this.float();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.float());
  }

  /** In-place Fisher-Yates shuffle. */
  shuffle<T>(a: T[] | Int32Array): void {
    for (let i = a.length - 1; i > 0; i--) {
      const j = this.int(0, i + 1);
      const t = a[i]!;
      a[i] = a[j]!;
      a[j] = t as never;
    }
  }

  /** k distinct integers from [lo, hi), in random order. */
  sampleDistinct(lo: number, hi: number, k: number): number[] {
    const n = hi - lo;
    if (k > n) throw new Error(`Rng.sampleDistinct: cannot draw ${k} distinct values from ${n}`);
    // Partial Fisher-Yates over a sparse map: O(k) memory even for large ranges.
    const swapped = new Map<number, number>();
    const out: number[] = [];
    for (let i = 0; i < k; i++) {
      const j = this.int(i, n);
      const vi = swapped.get(i) ?? i;
      const vj = swapped.get(j) ?? j;
      swapped.set(j, vi);
      out.push(lo + vj);
    }
    return out;
  }

  /**
   * k distinct indices from [0, weights.length) drawn without replacement with probability
   * proportional to weights (numpy's choice(replace=False, p=...) semantics: successive draws
   * from the renormalised remaining mass).
   */
  weightedDistinct(weights: ArrayLike<number>, k: number): number[] {
    const w = Float64Array.from(weights);
    if (k > w.length) throw new Error(`Rng.weightedDistinct: cannot draw ${k} from ${w.length}`);
    let total = 0;
    for (const x of w) total += x;
    const out: number[] = [];
    for (let d = 0; d < k; d++) {
      let u = this.float() * total;
      let idx = -1;
      for (let i = 0; i < w.length; i++) {
        if (w[i] === 0) continue;
        idx = i;
        u -= w[i]!;
        if (u < 0) break;
      }
      out.push(idx);
      total -= w[idx]!;
      w[idx] = 0;
    }
    return out;
  }

  /** Derive an independent stream (e.g. one per split or per run) from this seed and a label. */
  static derive(seed: number, label: string): number {
    let h = (seed ^ 0x811c9dc5) >>> 0;
    for (let i = 0; i < label.length; i++) h = Math.imul(h ^ label.charCodeAt(i), 0x01000193) >>> 0;
    return h;
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}
