/**
 * The TypeScript/C boundary: each C function of the two libraries has exactly one TypeScript
 * declaration (kernels/native/lib.ts), with the same argument count and types, and the libraries
 * export nothing that only kernel experiments use.
 */
import { describe, expect, it } from 'vitest';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DECLARED } from '../kernels/native/lib.js';

/** One C parameter or return type (its name dropped) as koffi's table spells it. */
function koffiType(c: string): string {
  const t = c.replace(/\s+/g, ' ').trim();
  if (t.includes('*')) return /^const char ?\*/.test(t) ? 'const char *' : 'void *';
  return t.replace(/^const /, '').split(' ')[0]!;
}

/** TR_API functions of C/CUDA sources: name -> [return, params]; defined only outside TR_KERNEL_EXPERIMENTS blocks. */
function exported(files: string[]): Map<string, [string, string[]]> {
  const out = new Map<string, [string, string[]]>();
  for (const f of files) {
    // drop the experiments-only regions: their functions must not be in the library
    const text = readFileSync(f, 'utf8').replace(/#ifdef TR_KERNEL_EXPERIMENTS[\s\S]*?#endif/g, '');
    for (const m of text.matchAll(/TR_API\s+([\w\s*]+?)\s*\b(tr_\w+)\s*\(([^)]*)\)/g)) {
      const params = m[3]!.trim() === '' ? [] : m[3]!.split(',').map(koffiType);
      const sig: [string, string[]] = [koffiType(m[1]!), params];
      const prev = out.get(m[2]!);
      if (prev) expect(prev, `${m[2]} declared twice with different signatures (${f})`).toEqual(sig);
      out.set(m[2]!, sig);
    }
  }
  return out;
}

const native = exported(['kernels/native/src/api.h']);
const cudaDir = 'kernels/cuda/src';
const cuda = exported(readdirSync(cudaDir).filter((f) => /\.(cu|cuh)$/.test(f)).map((f) => join(cudaDir, f)));

describe('C ABI declarations', () => {
  it('parses the C sources (sanity)', () => {
    expect(native.get('tr_unary')).toEqual(['void', ['int', 'int', 'void *', 'void *', 'int64_t', 'float']]);
    expect(cuda.get('tr_malloc')).toEqual(['void *', ['int64_t']]);
    expect(native.size).toBeGreaterThan(25);
  });

  it.each([['native', native], ['cuda', cuda]] as const)('%s: every exported function has one TypeScript declaration with its types', (kind, fns) => {
    const declared = DECLARED[kind];
    // the cuda library also defines the native ABI (common.cuh includes api.h): check against both
    const c = kind === 'cuda' ? new Map([...native, ...cuda]) : fns;
    expect([...c.keys()].filter((n) => !(n in declared)).sort(), 'exported but not declared in lib.ts').toEqual([]);
    expect(Object.keys(declared).filter((n) => !c.has(n)).sort(), 'declared in lib.ts but not exported').toEqual([]);
    for (const [name, [ret, params]] of c) expect([declared[name]![0], [...declared[name]![1]]], name).toEqual([ret, params]);
  });

  it('no experiment hook is part of the library', () => {
    for (const name of ['tr_bsa_set_kernel', 'tr_bsa_num_variants', 'tr_bsa_fwd_kernel']) expect(cuda.has(name), name).toBe(false);
    const sources = readdirSync(cudaDir).map((f) => readFileSync(join(cudaDir, f), 'utf8')).join('\n');
    // the only environment switch the library reads is cuBLAS's TF32 one
    expect([...sources.matchAll(/getenv\("(\w+)"\)/g)].map((m) => m[1])).toEqual(['TABRECALL_TF32']);
  });
});
