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

/** What an O_EXCL holder file (lock or claim) says of its writer; undefined while it is being written. */
function holderOf(path: string): { pid?: number; host?: string } | undefined {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as { pid?: number; host?: string };
  } catch {
    return undefined;
  }
}

/** The holder's process is gone (it can only be checked on its own host). */
const holderGone = (h: { pid?: number; host?: string }): boolean => h.host === hostname() && typeof h.pid === 'number' && !alive(h.pid);

/** Create `path` exclusively with this process's pid and host; false if it exists. */
function createHolder(path: string): boolean {
  try {
    const fd = openSync(path, 'wx');
    writeSync(fd, JSON.stringify({ pid: process.pid, host: hostname(), since: new Date().toISOString() }));
    closeSync(fd);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    return false;
  }
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
    if (createHolder(path)) break;
    let age: number;
    try {
      age = Date.now() - statSync(path).mtimeMs;
    } catch {
      continue; // just released
    }
    const holder = holderOf(path);
    // Unreadable for 2 s: its writer was killed between open and write.
    if (holder ? holderGone(holder) || age > staleMs : age > 2000) {
      rmSync(path, { force: true });
      continue;
    }
    if (Date.now() - t0 > timeoutMs) throw new LockTimeout(`${path}: held by pid ${holder?.pid} on ${holder?.host} for ${Math.round(age / 1000)} s; remove it if that process is gone`);
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
    if (createHolder(path)) return true;
    const holder = holderOf(path);
    if (!holder) return false; // being written by its claimer right now
    if (holder.pid === process.pid && holder.host === hostname()) return true;
    if (!holderGone(holder)) return false;
    rmSync(path, { force: true }); // its worker was killed: take the job over
  }
  return false;
}
