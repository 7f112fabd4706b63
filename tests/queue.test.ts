/**
 * Issue 24's queue mode against a real redis-server (started here on a free 127.0.0.1 port; no mock):
 * a suite enqueued, a worker of another code version refused, a worker SIGKILLed mid-run, its run
 * retried by another worker, and the collected report equal to a one-process run bit for bit; a run
 * that crashes every time stops after its attempts with its error in the report; bad input is one line.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jobIdOf, parseQueueUrl } from '../suites/queue.js';
import type { Report } from '../reports/schema.js';
import { CHILD_ENV, cli, tinySuite, TSX, untilGroupGone } from './faults/harness.js';

const hasRedis = spawnSync('redis-server', ['--version']).status === 0;
// CI installs redis-server (scripts/setup.sh); a developer machine without it skips, CI never does.
const run = hasRedis || process.env.CI ? describe : describe.skip;

const freePort = () => new Promise<number>((res, rej) => {
  const s = createServer().listen(0, '127.0.0.1', () => {
    const { port } = s.address() as { port: number };
    s.close(() => res(port));
  }).on('error', rej);
});

/** A process whose stderr we watch; started in its own process group so a SIGKILL takes its children too (a machine dying). */
function startWorker(args: string[], env: Record<string, string> = {}) {
  const p = spawn(TSX, [join('scripts', 'worker.ts'), ...args], { detached: true, stdio: ['ignore', 'ignore', 'pipe'], env: { ...CHILD_ENV, ...env } });
  const w = { p, err: '', exit: new Promise<number | null>((res) => p.on('exit', (c) => res(c))) };
  p.stderr!.on('data', (d: Buffer) => { w.err += d.toString(); });
  return w;
}

/** cli() without blocking this process: the workers' output is read meanwhile. */
function cliAsync(script: string, args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  const p = spawn(TSX, [join('scripts', script), ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: CHILD_ENV });
  let out = '', err = '';
  p.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
  p.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
  return new Promise((res) => p.on('close', (code) => res({ code, out, err })));
}

async function until(what: string, ok: () => boolean, ms = 90_000): Promise<void> {
  const t0 = Date.now();
  while (!ok()) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const accuracies = (dir: string) => Object.fromEntries((JSON.parse(readFileSync(join(dir, 'report.json'), 'utf8')) as Report).records.map((r) => [r.runId, r.metrics.accuracy]));

// Generous timeouts: each step starts CLI processes (about 3 s each), and CI runs two test files at once on 2 cores.
run('queue mode on a real Redis', { timeout: 300_000 }, () => {
  let redis: ChildProcess;
  let url = '';
  const dir = mkdtempSync(join(tmpdir(), 'tr-queue-'));
  beforeAll(async () => {
    const port = await freePort();
    redis = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    redis.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
    await until('redis-server to start', () => /Ready to accept connections/.test(out), 20_000);
    url = `redis://127.0.0.1:${port}`;
  });
  afterAll(() => { redis?.kill('SIGKILL'); });

  it('URLs: what is accepted, and one line naming --queue for the rest', () => {
    expect(parseQueueUrl('redis://u:p%40ss@example.org:6380/3').connection).toMatchObject({ host: 'example.org', port: 6380, username: 'u', password: 'p@ss', db: 3 });
    expect(parseQueueUrl('redis://u:secret@h:1').shown).toBe('redis://u@h:1');
    expect((parseQueueUrl('rediss://h:6380').connection as { tls?: object }).tls).toEqual({});
    for (const bad of ['localhost:6379', 'http://h:1', 'redis://h', 'redis://h:1/x', 'redis://h:1?a=1']) expect(() => parseQueueUrl(bad)).toThrow(/^--queue: .*expected redis:\/\/HOST:PORT/);
    expect(jobIdOf('a:b c', '0123')).toBe('a_b_c.0123');
  });

  it('bad input: unreachable Redis, a wrong URL, options that mean nothing with --queue: one line, nothing written', async () => {
    const suite = tinySuite(dir, { name: 'bad', seeds: [0] });
    const out = join(dir, 'bad-out');
    const closed = `redis://127.0.0.1:${await freePort()}`;
    const cases: [string[], RegExp][] = [
      [['--queue', closed], /^error: --queue: cannot reach Redis at redis:\/\/127\.0\.0\.1:\d+ \(.*ECONNREFUSED.*\); start redis-server there/],
      [['--queue', 'http://127.0.0.1:1'], /^error: --queue: unknown scheme "http"/],
      [['--collect'], /^error: --collect: only with --queue/],
      [['--queue', url, '--jobs', '2'], /^error: --jobs: not with --queue/],
      [['--queue', url, '--resume'], /^error: --resume: not with --queue/],
      [['--queue', url, '--detach', '--collect'], /^error: --collect, --detach: choose one|^error: --detach, --collect: choose one|^error: --collect, --detach/],
    ];
    for (const [args, re] of cases) {
      const r = cli('bench.ts', ['--suite', suite, '--backend', 'native', '--out', out, ...args]);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.err.trim().split('\n'), args.join(' ')).toHaveLength(1);
      expect(r.err, args.join(' ')).toMatch(re);
    }
    expect(existsSync(out)).toBe(false);
    const w = cli('worker.ts', ['--queue', closed]);
    expect(w.code).toBe(2);
    expect(w.err).toMatch(/^error: --queue: cannot reach Redis/);
    // --collect of a suite never submitted
    const c = cli('bench.ts', ['--suite', suite, '--backend', 'native', '--out', out, '--queue', url, '--collect']);
    expect(c.code).toBe(2);
    expect(c.err).toMatch(/--collect: run .* of suite bad is not in the queue; submit the suite first/);
    // Runs of another code version still waiting: a submission from this one is refused, whole; --cancel clears them.
    expect(cli('bench.ts', ['--suite', suite, '--backend', 'native', '--queue', url, '--detach'], { TABRECALL_GIT_SHA: 'oldversion' }).code).toBe(0);
    const clash = cli('bench.ts', ['--suite', suite, '--backend', 'native', '--queue', url, '--detach']);
    expect(clash.code).toBe(2);
    expect(clash.err).toMatch(/^error: --queue: 1 run\(s\) of suite bad from code version oldversion are still waiting or running \(this checkout is \S+\); .* --cancel\n$/);
    expect(cli('bench.ts', ['--suite', suite, '--backend', 'native', '--queue', url, '--cancel']).out).toMatch(/removed 1 run\(s\) of suite bad/);
    expect(cli('bench.ts', ['--suite', suite, '--backend', 'native', '--queue', url, '--detach']).err).toMatch(/\(1 added, 0 already queued\)/);
    expect(cli('bench.ts', ['--suite', suite, '--backend', 'native', '--queue', url, '--cancel']).code).toBe(0);
  });

  it('two workers, one SIGKILLed mid-run: every run once, the collected report equal to a one-process run bit for bit', async () => {
    // Runs of a few seconds, so the kill lands inside one.
    const suite = tinySuite(dir, { seeds: [0, 1, 2, 3], train: { maxSteps: 150, evalEvery: 50 } });
    const whole = join(dir, 'whole'), queued = join(dir, 'queued');
    expect(cli('bench.ts', ['--suite', suite, '--backend', 'native', '--jobs', '1', '--out', whole]).code).toBe(0);

    const sub = cli('bench.ts', ['--suite', suite, '--backend', 'native', '--queue', url, '--detach']);
    expect(sub.code, sub.err).toBe(0);
    expect(sub.err).toMatch(/suite tiny: 4 runs on queue .* \(4 added, 0 already queued\)/);
    expect(cli('bench.ts', ['--suite', suite, '--backend', 'native', '--queue', url, '--detach']).err).toMatch(/\(0 added, 4 already queued\)/);

    // A worker of another code version takes a run, puts it back, and stops.
    const stranger = startWorker(['--queue', url, '--stalled-seconds', '2'], { TABRECALL_GIT_SHA: 'deadbeef' });
    expect(await stranger.exit).toBe(2);
    expect(stranger.err).toMatch(/was submitted by code version \S+, this worker runs deadbeef; left it queued and stopping/);

    const w1 = startWorker(['--queue', url, '--stalled-seconds', '2']);
    await until('worker 1 to be inside a run', () => /step 50\/150/.test(w1.err));
    const killed = /started .* \(tiny\.([0-9a-f]+), attempt/.exec(w1.err)![1]!;
    process.kill(-w1.p.pid!, 'SIGKILL');
    await untilGroupGone(w1.p.pid!);

    const w2 = startWorker(['--queue', url, '--stalled-seconds', '2', '--idle-exit', '3']);
    const col = await cliAsync('bench.ts', ['--suite', suite, '--backend', 'native', '--queue', url, '--collect', '--out', queued]);
    expect(col.code, col.err).toBe(0);
    expect(col.err).toMatch(/\[queue\] 4\/4 done, 0 running, 0 waiting, 0 failed/);
    expect(await w2.exit).toBe(0);
    const w2pid = /worker \S+ pid (\d+): listening/.exec(w2.err)![1]!;
    expect(w2.err).toMatch(new RegExp(`started .*tiny\\.${killed}, attempt`));

    expect(readdirSync(join(queued, 'runs')).sort()).toEqual(readdirSync(join(whole, 'runs')).sort());
    expect(accuracies(queued)).toEqual(accuracies(whole));
    const rep = JSON.parse(readFileSync(join(queued, 'report.json'), 'utf8')) as Report;
    const retried = rep.records.find((r) => r.runId === killed)!;
    expect(retried.fingerprint.backendInfo.queueWorker).toMatch(new RegExp(`pid ${w2pid}$`));
    const ref = (JSON.parse(readFileSync(join(whole, 'report.json'), 'utf8')) as Report).records.find((r) => r.runId === killed)!;
    expect(retried.metrics.lossCurve).toEqual(ref.metrics.lossCurve);
    expect(existsSync(join(queued, 'leaderboard.html'))).toBe(true);
  });

  it('a run that crashes every time stops after --attempts with its error in the report and the leaderboard', async () => {
    const suite = tinySuite(dir, { name: 'crashy', seeds: [0] });
    const crash = join(dir, 'crash.cjs');
    // Only the worker's bench child crashes (a bug in a run, say), never the worker.
    writeFileSync(crash, "if (process.argv.includes('--queue-child')) throw new Error('injected crash');\n");
    expect(cli('bench.ts', ['--suite', suite, '--backend', 'native', '--queue', url, '--detach', '--attempts', '2']).code).toBe(0);
    const w = startWorker(['--queue', url, '--stalled-seconds', '2', '--idle-exit', '2'], { NODE_OPTIONS: `--require ${crash}` });
    const out = join(dir, 'crashy-out');
    const col = await cliAsync('bench.ts', ['--suite', suite, '--backend', 'native', '--queue', url, '--collect', '--out', out]);
    expect(await w.exit).toBe(0);
    expect(w.err.match(/: failed mqar/g)).toHaveLength(2);
    expect(col.code).toBe(1);
    expect(col.out).toMatch(/FAILED mqar .* \(run [0-9a-f]+\): no record after 2 attempt\(s\): .*injected crash/);
    const rep = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')) as Report;
    expect(rep.records).toHaveLength(0);
    expect(rep.failedJobs).toHaveLength(1);
    expect(rep.failedJobs![0]).toMatchObject({ suite: 'crashy', attempts: 2 });
    expect(readFileSync(join(out, 'leaderboard.html'), 'utf8')).toMatch(/no record after 2 attempt\(s\)/);
  });
});
