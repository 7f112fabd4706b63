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
  // The README's list for users; build, test and internal ones in docs/reference.md.
  const sectionOf = (path: string, heading: string) => {
    const text = readFileSync(path, 'utf8');
    const at = text.indexOf(heading);
    expect(at, `${path}: ${heading}`).toBeGreaterThanOrEqual(0);
    return text.slice(at, text.indexOf('\n## ', at + 5));
  };
  const section = sectionOf('README.md', '## Environment variables') + sectionOf('docs/reference.md', '## Build and test variables');
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
