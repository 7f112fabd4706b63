/** Fault-test plumbing: run a CLI, pause it at a named fault point (TABRECALL_FAULT), kill it there. */
import { spawn, spawnSync } from 'node:child_process';
import { readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const TSX = join('node_modules', '.bin', 'tsx');
/** One thread per child: vitest runs two test files at once on a 2-core machine, and OpenMP threads that outnumber the cores spin. */
export const CHILD_ENV = { ...process.env, TABRECALL_THREADS: '1' };

export function cli(script: string, args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(TSX, [join('scripts', script), ...args], { encoding: 'utf8', timeout: 120_000, env: { ...CHILD_ENV, ...env } });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/**
 * Start `script`, wait until it reports being paused at the fault point matching `fault`, then send
 * `signal` to its whole process group (tsx runs the script in a child). Resolves with what it printed.
 */
export function killAtFault(script: string, args: string[], fault: string, signal: 'SIGINT' | 'SIGKILL'): Promise<{ paused: string; stderr: string }> {
  const child = spawn(TSX, [join('scripts', script), ...args], { detached: true, stdio: ['ignore', 'ignore', 'pipe'], env: { ...CHILD_ENV, TABRECALL_FAULT: fault } });
  let stderr = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      process.kill(-child.pid!, 'SIGKILL');
      reject(new Error(`never paused at ${fault}:\n${stderr}`));
    }, 100_000);
    child.stderr!.on('data', (d: Buffer) => {
      stderr += d.toString();
      const m = /tabrecall-fault: paused at (.*)\n/.exec(stderr);
      if (m) {
        process.kill(-child.pid!, signal);
        // SIGINT reaches tsx and the script; the blocked script only dies once its pause ends, so make sure.
        if (signal === 'SIGINT') setTimeout(() => { try { process.kill(-child.pid!, 'SIGKILL'); } catch {} }, 3000);
        // tsx exiting is not the end of the workers: resolve once the whole group is gone.
        child.on('exit', () => {
          clearTimeout(timer);
          untilGroupGone(child.pid!).then(() => resolve({ paused: m[1]!, stderr }), reject);
        });
      }
    });
    child.on('exit', () => {
      if (!/paused at/.test(stderr)) {
        clearTimeout(timer);
        reject(new Error(`exited before pausing at ${fault}:\n${stderr}`));
      }
    });
  });
}

/** Resolves once no process of the process group `pgid` exists any more. */
export async function untilGroupGone(pgid: number): Promise<void> {
  for (let i = 0; i < 200; i++) {
    try {
      process.kill(-pgid, 0);
    } catch {
      return;
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`process group ${pgid} still alive 5 s after SIGKILL`);
}

/** Every file under `dir` (relative paths). */
export function filesUnder(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string, rel: string) => {
    for (const f of readdirSync(d)) {
      const p = join(d, f);
      if (statSync(p).isDirectory()) walk(p, join(rel, f));
      else out.push(join(rel, f));
    }
  };
  walk(dir, '');
  return out.sort();
}

/** A training suite small enough to run in a second or two per run. */
export function tinySuite(dir: string, o: { seeds?: number[]; lr?: number; train?: Record<string, unknown>; latency?: Record<string, unknown>; name?: string } = {}): string {
  const path = join(dir, `${o.name ?? 'tiny'}.json`);
  writeFileSync(path, JSON.stringify({
    name: o.name ?? 'tiny', description: 'test', seeds: o.seeds ?? [0, 1],
    entries: [{
      task: 'mqar', taskParams: { vocabSize: 32, inputSeqLen: 16, numKvPairs: 2, numTrainExamples: 128, numTestExamples: 16 },
      models: [{ name: 'dense', params: { dModel: 16, nLayers: 1, nHeads: 2 } }],
      train: { maxSteps: 20, batchSize: 8, evalEvery: 10, validExamples: 16, ...o.train }, optimizer: { lr: o.lr ?? 0.003, warmupSteps: 5 },
      latency: { batches: [1], lengths: [16], timeMs: 20, minSamples: 5, ...o.latency },
    }],
  }));
  return path;
}
