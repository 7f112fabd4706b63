/**
 * The layering ARCHITECTURE.md describes, checked on the import graph of every source file:
 * no import cycles (type-only imports excluded: they vanish at run time), and no upward imports
 * (core imports nothing of ours; kernels and datasets only core; reports only core; models not
 * suites, reports or scripts; nothing imports scripts or tests).
 */
import { describe, expect, it } from 'vitest';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';

const DIRS = ['core', 'kernels', 'datasets', 'models', 'reports', 'suites', 'scripts'];
/** What each top-level folder may import besides itself. */
const ALLOWED: Record<string, string[]> = {
  core: [],
  kernels: ['core'],
  datasets: ['core'],
  reports: ['core'],
  models: ['core', 'kernels', 'datasets'],
  suites: ['core', 'kernels', 'datasets', 'models', 'reports'],
  scripts: ['core', 'kernels', 'datasets', 'models', 'reports', 'suites'],
};

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    if (statSync(p).isDirectory()) return f === 'build' || f === 'node_modules' ? [] : sources(p);
    return p.endsWith('.ts') ? [p] : [];
  });
}

/** file -> the project files it imports at run time. */
function graph(): Map<string, string[]> {
  const g = new Map<string, string[]>();
  for (const file of DIRS.flatMap(sources)) {
    const text = readFileSync(file, 'utf8');
    const deps: string[] = [];
    for (const m of text.matchAll(/^\s*(import|export)\s+(type\s+)?(?:[^'";]*?\sfrom\s+)?'(\.{1,2}\/[^']+)'/gm)) {
      if (m[2]) continue; // `import type` is erased
      if (/^\s*import\s+\{[^}]*\}\s+from/.test(m[0]) && /^\s*import\s+\{\s*(type\s+\w+\s*,?\s*)+\}/.test(m[0])) continue;
      deps.push(normalize(join(dirname(file), m[3]!.replace(/\.js$/, '.ts'))));
    }
    g.set(normalize(file), deps);
  }
  return g;
}

describe('architecture', () => {
  const g = graph();

  it('reads a real graph', () => {
    expect(g.size).toBeGreaterThan(60);
    expect([...g.values()].flat().length).toBeGreaterThan(150);
    expect(g.get(normalize('scripts/bench.ts'))).toContain(normalize('suites/plan.ts'));
  });

  it('has no import cycles', () => {
    // Tarjan's strongly connected components; any component of 2+ files (or a self-import) is a cycle.
    let index = 0;
    const idx = new Map<string, number>();
    const low = new Map<string, number>();
    const stack: string[] = [];
    const on = new Set<string>();
    const cycles: string[][] = [];
    const visit = (v: string): void => {
      idx.set(v, index);
      low.set(v, index++);
      stack.push(v);
      on.add(v);
      for (const w of g.get(v) ?? []) {
        if (!g.has(w)) continue;
        if (!idx.has(w)) {
          visit(w);
          low.set(v, Math.min(low.get(v)!, low.get(w)!));
        } else if (on.has(w)) low.set(v, Math.min(low.get(v)!, idx.get(w)!));
      }
      if (low.get(v) === idx.get(v)) {
        const comp: string[] = [];
        let w: string;
        do {
          w = stack.pop()!;
          on.delete(w);
          comp.push(w);
        } while (w !== v);
        if (comp.length > 1 || (g.get(v) ?? []).includes(v)) cycles.push(comp.sort());
      }
    };
    for (const v of g.keys()) if (!idx.has(v)) visit(v);
    expect(cycles).toEqual([]);
  });

  it('imports only downward', () => {
    const bad: string[] = [];
    for (const [file, deps] of g) {
      const from = file.split('/')[0]!;
      for (const d of deps) {
        const to = relative('.', d).split('/')[0]!;
        if (to !== from && !ALLOWED[from]!.includes(to)) bad.push(`${file} -> ${d}`);
      }
    }
    expect(bad).toEqual([]);
  });
});
