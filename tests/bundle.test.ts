/** The offline bundle for GPU hosts: small enough to carry (with Node and the tracked files, 64 MiB a device call), and it runs. */
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const size = (d: string): number => readdirSync(d, { withFileTypes: true }).reduce((s, e) => s + (e.isDirectory() ? size(join(d, e.name)) : statSync(join(d, e.name)).size), 0);

describe('npm run bundle', () => {
  it('--slim is under 8 MiB and its CLI plans a suite with a bare node', () => {
    const out = join(mkdtempSync(join(tmpdir(), 'tr-bundle-')), 'b');
    const b = spawnSync(process.execPath, ['scripts/bundle.mjs', '--out', out, '--slim'], { encoding: 'utf8' });
    expect(b.status, b.stderr).toBe(0);
    expect(size(out)).toBeLessThan(8 * 2 ** 20);
    const r = spawnSync(process.execPath, [join(out, 'bin', 'bench.mjs'), '--suite', 'quick', '--list'], { encoding: 'utf8', cwd: out });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/4 runs in suite quick/);
  });
});
