/** The CLI's contract: one-line errors with exit code 2, nothing overwritten, and --resume after a kill. */
import { describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cli, tinySuite as harnessSuite, TSX, untilGroupGone } from './faults/harness.js';

// The cli tests' tiny suite: 40 steps, an evaluation every 20.
const tinySuite = (dir: string, runs = 2): string => harnessSuite(dir, { seeds: Array.from({ length: runs }, (_, i) => i), train: { maxSteps: 40, evalEvery: 20 } });

describe('pretrain CLI', () => {
  it('bad input: one line naming the option or config key, exit 2', () => {
    const cases: [string[], RegExp][] = [
      [['--model', 'tabpfn', '--steps', '1'], /--model: must be one of orion-msp, dense-icl/],
      [['--model', 'orion-msp', '--steps', '1', '--prior', '{bad'], /--prior: must be a JSON object/],
      [['--model', 'orion-msp', '--steps', '1', '--prior', '{"maxRows":4}'], /--prior\.maxRows: must be an integer in \[8/],
      [['--model', 'orion-msp', '--steps', '1', '--config', '{"dIcl":30,"iclHeads":4}'], /orion-msp\.dIcl: must be divisible by iclHeads/],
      [['--model', 'orion-msp', '--steps', '1', '--init', 'models/checkpoints/orion-msp', '--resume'], /--init: starts a new run from a checkpoint; --resume continues one/],
      [['--model', 'orion-msp', '--steps', '1', '--init', 'no/such/dir'], /checkpoint: no checkpoint at/],
    ];
    for (const [args, re] of cases) {
      const r = cli('pretrain.ts', [...args, '--backend', 'cpu']);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.err.trim().split('\n').length, args.join(' ')).toBe(1);
      expect(r.err, args.join(' ')).toMatch(re);
    }
  });
});

describe('pretrain --init', () => {
  it('records where it started, with that checkpoint\'s own chain, back to a random init', () => {
    const out = mkdtempSync(join(tmpdir(), 'tr-init-'));
    const r = cli('pretrain.ts', ['--model', 'orion-msp', '--steps', '1', '--batch', '1', '--every', '1', '--backend', 'native', '--out', out,
      '--init', 'models/checkpoints/orion-msp', '--prior', '{"minRows":16,"maxRows":24,"maxFeatures":4}']);
    expect(r.code, r.err).toBe(0);
    const shipped = JSON.parse(readFileSync(join('models', 'checkpoints', 'orion-msp', 'model.json'), 'utf8'));
    const meta = JSON.parse(readFileSync(join(out, 'model.json'), 'utf8'));
    expect(meta.initFrom).toMatchObject({ dir: 'models/checkpoints/orion-msp', step: shipped.step, command: shipped.command });
    expect(meta.initFrom.initFrom).toEqual(shipped.initFrom);
  });
});

describe('bench CLI', () => {
  it('bad input: one line naming the field and the allowed values, exit 2', () => {
    const cases: [string[], RegExp][] = [
      [['--suite', 'nope'], /--suite: unknown suite "nope"; allowed: .*quick/],
      [['--backend', 'tpu'], /--backend: unknown backend "tpu"; allowed: auto, cuda, native, wasm, cpu/],
      [['--seeds', 'a,b'], /--seeds: must be a comma-separated list/],
      [['--filter', '('], /--filter: not a valid regular expression/],
      [['--bogus'], /Unknown option '--bogus'.*allowed options: --suite/],
    ];
    for (const [args, re] of cases) {
      const r = cli('bench.ts', [...args, '--list']);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.err.trim().split('\n').length).toBe(1);
      expect(r.err).toMatch(re);
    }
  });

  it('invalid task, model and suite fields are named', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tr-cli-'));
    const path = tinySuite(dir);
    const s = JSON.parse(readFileSync(path, 'utf8'));
    const variants: [(x: typeof s) => void, RegExp][] = [
      [(x) => (x.entries[0].task = 'qa'), /suite\.entries\[0\]\.task: unknown task "qa"; allowed: mqar, niah/],
      [(x) => (x.entries[0].models[0].name = 'gpt'), /model: unknown model "gpt"; allowed: dense/],
      [(x) => (x.entries[0].taskParams.inputSeqLen = 15), /task\.mqar\.inputSeqLen: must be even/],
      [(x) => (x.entries[0].models[0].params.nHeads = 3), /model\.dense\.nHeads: must divide dModel/],
      [(x) => (x.seeds = 'zero'), /suite\.seeds: must be an array of integers/],
    ];
    for (const [mutate, re] of variants) {
      const copy = JSON.parse(JSON.stringify(s));
      mutate(copy);
      const p = join(dir, 'bad.json');
      writeFileSync(p, JSON.stringify(copy));
      const r = cli('bench.ts', ['--suite', p, '--list']);
      expect(r.code).toBe(2);
      expect(r.err).toMatch(re);
    }
  });

  it('compare and leaderboard reject unreadable reports without writing anything', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tr-cmp-'));
    writeFileSync(join(dir, 'bad.json'), 'not json');
    const r = cli('compare.ts', [join(dir, 'bad.json'), join(dir, 'bad.json')]);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/report .*bad\.json: not valid JSON/);
    const l = cli('leaderboard.ts', [join(dir, 'missing.json'), '--out', join(dir, 'lb.html')]);
    expect(l.code).toBe(2);
    expect(existsSync(join(dir, 'lb.html'))).toBe(false);
    // an anchor table given by name joins the leaderboard; a broken one fails with its field named
    writeFileSync(join(dir, 'anchors.json'), JSON.stringify({ device: 'NVIDIA H200', torch: '2.11.0', rows: [{ what: 'sdpa dense', dtype: 'bf16', L: 4096, B: 4, ms: 0.6, density: 1, tflops: 466 }] }));
    const a = cli('leaderboard.ts', [join(dir, 'anchors.json'), '--out', join(dir, 'lb.html')]);
    expect(a.code).toBe(0);
    expect(readFileSync(join(dir, 'lb.html'), 'utf8')).toContain('<td>sdpa dense</td>');
    writeFileSync(join(dir, 'anchors.json'), JSON.stringify({ device: 'NVIDIA H200', torch: '2.11.0', rows: [{ what: 'sdpa dense' }] }));
    const b = cli('leaderboard.ts', [join(dir, 'anchors.json'), '--out', join(dir, 'lb2.html')]);
    expect(b.code).toBe(2);
    expect(b.err).toMatch(/anchors .*anchors\.json: rows\[0\]\.dtype must be a string/);
    expect(existsSync(join(dir, 'lb2.html'))).toBe(false);
  });

  it('--resume runs a tabular case again when its checkpoint was replaced at the same path', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tr-ckpt-'));
    const ckpt = join(dir, 'ckpt');
    cpSync(join('models', 'checkpoints', 'orion-msp'), ckpt, { recursive: true });
    const suite = join(dir, 'tab.json');
    writeFileSync(suite, JSON.stringify({
      name: 'tab', description: 'test', kind: 'tabular', seeds: [0], entries: [],
      tabular: { tables: ['iris'], folds: 5, evalFolds: 1, maxTrainRows: 64, maxTestRows: 16, safetyProbes: 0, models: [{ name: 'orion-msp', checkpoint: ckpt, members: 1 }] },
    }));
    const out = join(dir, 'out');
    const run = () => cli('bench.ts', ['--suite', suite, '--backend', 'native', '--out', out, '--resume']);
    expect(run().code).toBe(0);
    const again = run();
    expect(again.err).toMatch(/\(resumed\)/);
    // Same shapes, other weights: the saved result no longer describes this checkpoint.
    const w = readFileSync(join(ckpt, 'weights.bin'));
    new Float32Array(w.buffer, w.byteOffset, w.byteLength / 4).forEach((x, i, a) => (a[i] = x * 0.5));
    writeFileSync(join(ckpt, 'weights.bin'), w);
    const changed = run();
    expect(changed.code).toBe(0);
    expect(changed.err).toMatch(/model file changed since the saved result; running it again/);
    expect(changed.err).not.toMatch(/\(resumed\)/);
  });

  it('--resume skips runs finished before an interruption', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tr-resume-'));
    const suite = tinySuite(dir, 3);
    const out = join(dir, 'out');
    // Start the suite and kill it as soon as the first run's record is on disk.
    // tsx runs the script in a child process: start a process group and kill all of it.
    const child = spawn(TSX, [join('scripts', 'bench.ts'), '--suite', suite, '--backend', 'native', '--out', out], { stdio: 'ignore', detached: true });
    await new Promise<void>((resolve, reject) => {
      const timer = setInterval(() => {
        const runs = existsSync(join(out, 'runs')) ? readdirSync(join(out, 'runs')).filter((f) => f.endsWith('.json')) : [];
        if (runs.length >= 1) {
          clearInterval(timer);
          process.kill(-child.pid!, 'SIGKILL');
          resolve();
        }
      }, 50);
      child.on('exit', () => {
        clearInterval(timer);
        resolve();
      });
      setTimeout(() => reject(new Error('no run finished in time')), 100_000);
    });
    // A worker on another core may still finish renaming its record while the signal reaches it:
    // list what is on disk only once no process of the group is left.
    await untilGroupGone(child.pid!);
    const before = readdirSync(join(out, 'runs')).filter((f) => f.endsWith('.json'));
    expect(before.length).toBeGreaterThanOrEqual(1);
    expect(before.length).toBeLessThan(3);
    const firstRecord = readFileSync(join(out, 'runs', before[0]!), 'utf8');
    const r = cli('bench.ts', ['--suite', suite, '--backend', 'native', '--out', out, '--resume']);
    expect(r.code).toBe(0);
    expect((r.err.match(/already done \(resumed\)/g) ?? []).length).toBe(before.length);
    expect(readFileSync(join(out, 'runs', before[0]!), 'utf8')).toBe(firstRecord);
    const report = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8'));
    expect(report.records.length).toBe(3);
    expect(existsSync(join(out, 'report.arrow'))).toBe(true);
    expect(existsSync(join(out, 'leaderboard.html'))).toBe(true);
  });
});
