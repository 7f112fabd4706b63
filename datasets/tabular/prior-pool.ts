/**
 * Prior batches drawn ahead of the training loop by worker threads. A batch depends only on (seed,
 * step), so the pool returns exactly what sampleBatch would, whatever the number of workers; with
 * 0 workers it calls sampleBatch in-line. Wide prior tables take ~0.1-0.3 s per batch of 32 in
 * JavaScript, longer than a GPU step, which is why generation moves off the main thread.
 */
import { Worker } from 'node:worker_threads';
import { existsSync, mkdtempSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sampleBatch, type PriorBatch, type PriorConfig } from './prior.js';

/**
 * The worker script: bin/prior-worker.mjs next to the offline bundle's bin/pretrain.mjs; in development
 * (TypeScript under tsx, whose loader a worker thread does not inherit) prior-worker.ts bundled once
 * per process with esbuild, the same bundler that makes the offline bundle.
 */
async function workerUrl(): Promise<URL> {
  const bundled = new URL('./prior-worker.mjs', import.meta.url);
  if (existsSync(fileURLToPath(bundled))) return bundled;
  const source = new URL('./prior-worker.ts', import.meta.url);
  if (!existsSync(fileURLToPath(source))) throw new Error(`prior pool: no prior-worker script next to ${fileURLToPath(import.meta.url)}`);
  const { build } = await import('esbuild');
  const outfile = join(mkdtempSync(join(tmpdir(), 'tabrecall-prior-')), 'prior-worker.mjs');
  await build({ entryPoints: [fileURLToPath(source)], outfile, bundle: true, platform: 'node', format: 'esm', target: 'node20', logLevel: 'warning' });
  return pathToFileURL(outfile);
}

export class PriorPool {
  private readonly workers: Worker[] = [];
  private readonly pending = new Map<number, { resolve: (b: PriorBatch) => void; reject: (e: unknown) => void; promise: Promise<PriorBatch> }>();
  private nextToRequest: number;
  private failed: unknown;

  private constructor(
    private readonly seed: number,
    private readonly size: number,
    private readonly cfg: PriorConfig,
    url: URL | undefined,
    workers: number,
    start: number,
    private readonly ahead = Math.max(2, 2 * workers),
  ) {
    this.nextToRequest = start;
    for (let i = 0; i < workers; i++) {
      const w = new Worker(url!);
      w.on('message', (m: { step: number; batch: PriorBatch }) => this.pending.get(m.step)?.resolve(m.batch));
      w.on('error', (e) => {
        this.failed = e;
        for (const p of this.pending.values()) p.reject(e);
      });
      this.workers.push(w);
    }
  }

  /** A pool of `workers` threads (0: batches drawn in-line) serving steps from `start` on. */
  static async create(seed: number, size: number, cfg: PriorConfig, workers: number, start: number): Promise<PriorPool> {
    return new PriorPool(seed, size, cfg, workers > 0 ? await workerUrl() : undefined, workers, start);
  }

  private request(step: number): void {
    let resolve!: (b: PriorBatch) => void;
    let reject!: (e: unknown) => void;
    const promise = new Promise<PriorBatch>((res, rej) => ((resolve = res), (reject = rej)));
    promise.catch(() => {}); // rejections surface through next()
    this.pending.set(step, { resolve, reject, promise });
    this.workers[step % this.workers.length]!.postMessage({ seed: this.seed, step, size: this.size, cfg: this.cfg });
  }

  /** The batch of `step` (steps must be asked for in order). */
  async next(step: number): Promise<PriorBatch> {
    if (this.workers.length === 0) return sampleBatch(this.seed, step, this.size, this.cfg);
    if (this.failed) throw this.failed;
    if (this.nextToRequest <= step) this.nextToRequest = step;
    while (this.nextToRequest < step + this.ahead) this.request(this.nextToRequest++);
    const p = this.pending.get(step)!;
    const b = await p.promise;
    this.pending.delete(step);
    return b;
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
