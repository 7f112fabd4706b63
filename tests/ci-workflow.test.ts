/**
 * The regression workflow users copy (docs/ci/tabrecall-regression.yml), run here: its `run:` steps
 * in order, with the CI's variables set as GitHub would (base = this commit, a tiny suite), then
 * the same compare step against a report with a planted accuracy drop, which must fail it.
 */
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { CHILD_ENV, tinySuite } from './faults/harness.js';

interface Step { name?: string; run?: string; uses?: string }

describe('docs/ci/tabrecall-regression.yml', () => {
  const wf = parse(readFileSync('docs/ci/tabrecall-regression.yml', 'utf8')) as { on: Record<string, unknown>; env: Record<string, string>; jobs: Record<string, { steps: Step[] }> };

  it('runs on pull requests, benches base and head, compares, uploads the leaderboards', () => {
    expect(Object.keys(wf.on)).toEqual(['pull_request']);
    const steps = wf.jobs.compare!.steps;
    expect(steps.map((s) => s.uses ?? s.name)).toEqual(['actions/checkout@v4', 'actions/setup-node@v4', 'system packages', 'bench the base branch', 'bench this pull request', 'compare', 'actions/upload-artifact@v4']);
  });

  it('its run steps pass locally on an unchanged commit and fail on a planted regression', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tr-wf-'));
    // The steps need a git checkout (the base side is a worktree of a commit). CI may test an export
    // without .git: then run them in a one-commit repository made from this tree.
    let cwd = process.cwd();
    if (spawnSync('git', ['rev-parse', 'HEAD'], { encoding: 'utf8' }).status !== 0) {
      cwd = join(dir, 'repo');
      cpSync('.', cwd, { recursive: true, filter: (p) => !/^(\.\/)?(node_modules|results|dist|\.git)(\/|$)/.test(p) });
      symlinkSync(join(process.cwd(), 'node_modules'), join(cwd, 'node_modules'));
      const git = (...a: string[]) => expect(spawnSync('git', a, { cwd, encoding: 'utf8' }).status).toBe(0);
      git('init', '-q');
      git('-c', 'user.name=t', '-c', 'user.email=t@t', 'add', '-A');
      git('-c', 'user.name=t', '-c', 'user.email=t@t', 'commit', '-qm', 'tree under test');
    }
    const head = spawnSync('git', ['rev-parse', 'HEAD'], { encoding: 'utf8', cwd }).stdout.trim();
    // latency is not the subject here (two test files share the 2 cores): hold it to 5x, accuracy stays exact
    const env = { ...CHILD_ENV, SUITE: tinySuite(dir, { seeds: [0] }), OUT: join(dir, 'ci'), BASE_REF: head };
    const runs = wf.jobs.compare!.steps.filter((s) => s.run).map((s) => ({ name: s.name!, cmd: s.run!.replace('"origin/$BASE_REF"', '"$BASE_REF"') }));
    for (const { name, cmd } of runs) {
      const full = name === 'compare' ? `${cmd} --min-rel 4` : cmd;
      const r = spawnSync('bash', ['-c', full], { encoding: 'utf8', env, cwd, timeout: 180_000 });
      expect(r.status, `${name}: ${r.stdout}\n${r.stderr}`).toBe(0);
    }
    expect(readFileSync(join(dir, 'ci', 'compare.txt'), 'utf8')).toMatch(/no regressions/);
    expect(existsSync(join(dir, 'ci', 'head', 'leaderboard.html'))).toBe(true);
    expect(existsSync(join(dir, 'ci', 'worktree'))).toBe(false);
    // A head report whose accuracy dropped: the compare step fails the job.
    const rep = JSON.parse(readFileSync(join(dir, 'ci', 'head', 'report.json'), 'utf8'));
    rep.records[0].metrics.accuracy -= 0.1;
    writeFileSync(join(dir, 'ci', 'head', 'report.json'), JSON.stringify(rep));
    const bad = spawnSync('bash', ['-c', runs.find((s) => s.name === 'compare')!.cmd], { encoding: 'utf8', env, cwd });
    expect(bad.status).toBe(1);
    expect(bad.stdout).toMatch(/REGRESSION/);
  });
});
