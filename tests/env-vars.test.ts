/** Every environment variable the sources read is documented in the README's list (and nothing there is stale). */
import { describe, expect, it } from 'vitest';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

const ROOTS = ['core', 'kernels', 'datasets', 'models', 'reports', 'suites', 'scripts', 'tests'];
const EXT = /\.(ts|mjs|cu|cuh|cpp|h)$/;

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    if (statSync(p).isDirectory()) return f === 'build' ? [] : files(p);
    return EXT.test(p) ? [p] : [];
  });
}

describe('environment variables', () => {
  const read = new Set<string>();
  for (const f of ROOTS.flatMap(files)) {
    const text = readFileSync(f, 'utf8');
    for (const m of text.matchAll(/process\.env\.([A-Z][A-Z0-9_]+)|process\.env\[['"]([A-Z][A-Z0-9_]+)['"]\]|getenv\("([A-Z][A-Z0-9_]+)"\)/g)) read.add(m[1] ?? m[2] ?? m[3]!);
  }
  const readme = readFileSync('README.md', 'utf8');
  const section = readme.slice(readme.indexOf('## Environment variables'), readme.indexOf('\n## ', readme.indexOf('## Environment variables') + 5));
  const documented = new Set([...section.matchAll(/`([A-Z][A-Z0-9_]+)(?:=[^`]*)?`/g)].map((m) => m[1]!));

  it('finds the ones we know are read', () => {
    expect(read).toContain('TABRECALL_THREADS');
    expect(read).toContain('TABRECALL_TF32');
  });

  it('documents every one the sources read', () => {
    expect([...read].filter((v) => !documented.has(v)).sort()).toEqual([]);
  });

  it('documents none that nothing reads', () => {
    expect([...documented].filter((v) => !read.has(v)).sort()).toEqual([]);
  });
});
