/**
 * The part of vitest's API our kernel/operator/model tests use (describe, it, it.each, beforeAll,
 * expect with toBe, toEqual, toBeCloseTo, toBeGreaterThan(OrEqual), toBeLessThan(OrEqual), toContain, toThrow,
 * .not). The offline bundle aliases 'vitest' to this file, so the same test files run on a GPU host
 * that has a bare `node` and no npm. Tests run in order, one file-level suite per test file.
 */
import { isDeepStrictEqual, inspect } from 'node:util';

type Fn = () => unknown;
interface Test { name: string; fn: Fn }
interface Suite { name: string; hooks: Fn[]; items: (Test | Suite)[] }

const root: Suite = { name: '', hooks: [], items: [] };
let current = root;

export function describe(name: string, fn: () => void): void {
  const s: Suite = { name, hooks: [], items: [] };
  current.items.push(s);
  const prev = current;
  current = s;
  try {
    fn();
  } finally {
    current = prev;
  }
}

function format(name: string, args: unknown[]): string {
  let i = 0;
  return name.replace(/%[sdijo]/g, () => String(args[i++]));
}

type It = ((name: string, fn: Fn) => void) & { each: <T extends unknown[]>(rows: T[]) => (name: string, fn: (...a: T) => unknown) => void; runIf: (cond: boolean) => (name: string, fn: Fn) => void };
export const it: It = Object.assign((name: string, fn: Fn) => void current.items.push({ name, fn }), {
  each:
    <T extends unknown[]>(rows: T[]) =>
    (name: string, fn: (...a: T) => unknown) => {
      for (const row of rows) {
        const args = (Array.isArray(row) ? row : [row]) as T;
        current.items.push({ name: format(name, args), fn: () => fn(...args) });
      }
    },
  runIf: (cond: boolean) => (name: string, fn: Fn) => {
    if (cond) current.items.push({ name, fn });
  },
});
export const test = it;

export function beforeAll(fn: Fn): void {
  current.hooks.push(fn);
}

class AssertionError extends Error {}

function matchers(actual: unknown, negate: boolean, msg?: string) {
  const check = (ok: boolean, what: string): void => {
    if (ok === negate) throw new AssertionError(`${msg ? `${msg}: ` : ''}expected ${inspect(actual, { depth: 4 })} ${negate ? 'not ' : ''}${what}`);
  };
  return {
    toBe: (e: unknown) => check(Object.is(actual, e), `to be ${inspect(e)}`),
    toEqual: (e: unknown) => check(isDeepStrictEqual(JSON.parse(JSON.stringify(actual ?? null)), JSON.parse(JSON.stringify(e ?? null))), `to equal ${inspect(e, { depth: 4 })}`),
    toBeCloseTo: (e: number, digits = 2) => check(Math.abs((actual as number) - e) < 10 ** -digits / 2, `to be close to ${e} (${digits} digits)`),
    toBeGreaterThan: (e: number) => check((actual as number) > e, `to be > ${e}`),
    toBeLessThan: (e: number) => check((actual as number) < e, `to be < ${e}`),
    toBeLessThanOrEqual: (e: number) => check((actual as number) <= e, `to be <= ${e}`),
    toBeGreaterThanOrEqual: (e: number) => check((actual as number) >= e, `to be >= ${e}`),
    toContain: (e: unknown) => check((actual as { includes(x: unknown): boolean }).includes(e), `to contain ${inspect(e)}`),
    toThrow: (e?: string | RegExp) => {
      let thrown: unknown;
      try {
        (actual as () => unknown)();
      } catch (err) {
        thrown = err;
      }
      const text = thrown instanceof Error ? thrown.message : String(thrown);
      const ok = thrown !== undefined && (e === undefined || (typeof e === 'string' ? text.includes(e) : e.test(text)));
      check(ok, `to throw ${e ?? ''} (threw: ${thrown === undefined ? 'nothing' : text})`);
    },
  };
}

export function expect(actual: unknown, msg?: string) {
  return Object.assign(matchers(actual, false, msg), { not: matchers(actual, true, msg) });
}

/** Open a file-level suite: tests and top-level hooks of the next imported file go there. */
export function beginFile(name: string): void {
  const s: Suite = { name, hooks: [], items: [] };
  root.items.push(s);
  current = s;
}

export interface RunResult { passed: number; failed: { name: string; error: string }[] }

async function runSuite(s: Suite, prefix: string, out: RunResult, log: (line: string) => void): Promise<void> {
  const path = s.name ? `${prefix}${s.name} > ` : prefix;
  let hookError: string | undefined;
  for (const h of s.hooks) {
    try {
      await h();
    } catch (e) {
      hookError = (e as Error).stack ?? String(e);
      break;
    }
  }
  for (const item of s.items) {
    if ('items' in item) {
      await runSuite(item, path, out, log);
      continue;
    }
    const name = `${path}${item.name}`;
    const t0 = performance.now();
    try {
      if (hookError) throw new Error(`beforeAll failed: ${hookError}`);
      await item.fn();
      out.passed++;
      log(`  ok    ${name} (${((performance.now() - t0) / 1000).toFixed(2)} s)`);
    } catch (e) {
      const error = (e as Error).stack ?? String(e);
      out.failed.push({ name, error });
      log(`  FAIL  ${name}\n        ${error.split('\n').slice(0, 6).join('\n        ')}`);
    }
  }
}

export async function runAll(log: (line: string) => void = console.log): Promise<RunResult> {
  const out: RunResult = { passed: 0, failed: [] };
  await runSuite(root, '', out, log);
  return out;
}
