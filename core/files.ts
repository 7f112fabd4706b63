/**
 * Files that are never seen half-written: every write goes to `<path>.<pid>.tmp` and is renamed into
 * place; temp files of dead processes are removed; a lock file serialises writers of a shared file.
 * Fault points (TABRECALL_FAULT) let tests pause the process at a named step and kill it there.
 */
import { closeSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { basename, dirname, join } from 'node:path';

let faultHits = 0;
/**
 * TABRECALL_FAULT="REGEX[@N]": the Nth (default first) fault point whose name matches REGEX prints
 * `tabrecall-fault: paused at NAME` on stderr and blocks for 120 s, so a test can kill the process
 * exactly there. Names: `rename:<file name>` (between a temp file's write and its rename).
 */
export function faultPoint(name: string): void {
  const spec = process.env.TABRECALL_FAULT;
  if (!spec) return;
  const m = /^(.*?)(?:@(\d+))?$/.exec(spec)!;
  if (!new RegExp(m[1]!).test(name)) return;
  if (++faultHits !== Number(m[2] ?? 1)) return;
  process.stderr.write(`tabrecall-fault: paused at ${name}\n`); // synchronous on pipes and files
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 120_000);
}

export function writeAtomic(path: string, data: string | Uint8Array): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  try {
    writeFileSync(tmp, data);
    faultPoint(`rename:${basename(path)}`);
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Remove `*.<pid>.tmp` files left in `dir` by processes that no longer run (a kill between write and rename). */
export function removeStaleTemps(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const f of names) {
    const m = /\.(\d+)\.tmp$/.exec(f);
    if (m && !alive(Number(m[1]))) {
      rmSync(join(dir, f), { force: true, recursive: true });
      removed.push(join(dir, f));
    }
  }
  return removed;
}

export class LockTimeout extends Error {}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Run `fn` holding `<dir>/.lock` (created with O_EXCL; holds pid and host). A lock whose process is
 * gone (same host) or older than `staleMs` is taken over: a SIGKILL never blocks later writers.
 */
export async function withLock<T>(dir: string, fn: () => T | Promise<T>, o: { timeoutMs?: number; staleMs?: number } = {}): Promise<T> {
  const timeoutMs = o.timeoutMs ?? 120_000;
  const staleMs = o.staleMs ?? 600_000;
  mkdirSync(dir, { recursive: true });
  const path = join(dir, '.lock');
  const t0 = Date.now();
  for (let wait = 10; ; wait = Math.min(wait * 2, 500)) {
    try {
      const fd = openSync(path, 'wx');
      writeSync(fd, JSON.stringify({ pid: process.pid, host: hostname(), since: new Date().toISOString() }));
      closeSync(fd);
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    let holder: { pid?: number; host?: string } = {};
    let age = 0;
    try {
      holder = JSON.parse(readFileSync(path, 'utf8')) as typeof holder;
      age = Date.now() - statSync(path).mtimeMs;
    } catch {
      // Half-written (its writer was killed between open and write) or just released: look again.
      try {
        age = Date.now() - statSync(path).mtimeMs;
      } catch {
        continue;
      }
      if (age > 2000) rmSync(path, { force: true });
      await sleep(wait);
      continue;
    }
    const dead = holder.host === hostname() && typeof holder.pid === 'number' && !alive(holder.pid);
    if (dead || age > staleMs) {
      rmSync(path, { force: true });
      continue;
    }
    if (Date.now() - t0 > timeoutMs) throw new LockTimeout(`${path}: held by pid ${holder.pid} on ${holder.host} for ${Math.round(age / 1000)} s; remove it if that process is gone`);
    await sleep(wait);
  }
  try {
    return await fn();
  } finally {
    rmSync(path, { force: true });
  }
}

/**
 * Claim `<dir>/<name>` for this process (O_EXCL): false when a live process holds it. Workers that
 * share a job list claim each job before running it, so each runs exactly once.
 */
export function tryClaim(dir: string, name: string): boolean {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, name);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, 'wx');
      writeSync(fd, JSON.stringify({ pid: process.pid, host: hostname() }));
      closeSync(fd);
      return true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    let holder: { pid?: number; host?: string } = {};
    try {
      holder = JSON.parse(readFileSync(path, 'utf8')) as typeof holder;
    } catch {
      return false; // being written by its claimer right now
    }
    if (holder.pid === process.pid && holder.host === hostname()) return true;
    if (holder.host !== hostname() || typeof holder.pid !== 'number' || alive(holder.pid)) return false;
    rmSync(path, { force: true }); // its worker was killed: take the job over
  }
  return false;
}
