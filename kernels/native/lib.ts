/**
 * koffi bindings to the C ABI in kernels/native/src/api.h. The same declarations bind the cuda
 * library, whose pointers are device pointers: the TypeScript backend never looks inside a buffer
 * except through read/write.
 */
import koffi from 'koffi';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const P = 'void *';
const SIGNATURES = {
  tr_info: ['const char *', []],
  tr_set_num_threads: ['void', ['int']],
  tr_get_num_threads: ['int', []],
  tr_unary: ['void', ['int', 'int', P, P, 'int64_t', 'float']],
  tr_binary: ['void', ['int', 'int', P, P, P, 'int', P, P, P]],
  tr_select: ['void', [P, P, P, P, 'int64_t', 'int']],
  tr_cast: ['void', ['int', 'int', P, P, 'int64_t']],
  tr_fill: ['void', ['int', P, 'int64_t', 'double']],
  tr_reduce: ['void', ['int', 'int', P, P, 'int64_t', 'int64_t']],
  tr_reduce_mid: ['void', ['int', P, P, 'int64_t', 'int64_t', 'int64_t']],
  tr_transpose: ['void', ['int', P, P, 'int', P, P]],
  tr_slice: ['void', ['int', P, P, 'int', P, P, P, P]],
  tr_pad: ['void', ['int', P, P, 'int', P, P, P, 'double', 'int']],
  tr_concat2d: ['void', ['int', P, P, 'int64_t', 'int64_t', 'int64_t', 'int64_t']],
  tr_tile: ['void', ['int', P, P, 'int', P, P]],
  tr_gather: ['void', ['int', P, P, P, 'int64_t', 'int64_t', 'int64_t', 'int64_t', 'int64_t']],
  tr_unsorted_segment_sum: ['void', ['int', P, P, P, 'int64_t', 'int64_t', 'int64_t']],
  tr_one_hot: ['void', [P, P, 'int', 'int64_t', 'int64_t', 'double', 'double']],
  tr_matmul: ['void', [P, P, P, 'int64_t', 'int64_t', 'int64_t', 'int64_t', 'int64_t', 'int64_t', 'int', 'int']],
  tr_gemm_builtin: ['void', [P, P, P, 'int64_t', 'int64_t', 'int64_t', 'int', 'int']],
  tr_softmax: ['void', [P, P, 'int64_t', 'int64_t']],
  tr_layernorm_fwd: ['void', [P, P, P, P, P, P, 'int64_t', 'int64_t', 'float']],
  tr_layernorm_bwd: ['void', [P, P, P, P, P, P, P, P, 'int64_t', 'int64_t']],
  tr_gelu_fwd: ['void', [P, P, 'int64_t']],
  tr_gelu_bwd: ['void', [P, P, P, 'int64_t']],
  tr_bsa_fwd: ['void', [P, P, P, P, P, P, 'int', 'int', 'int', 'int', 'int', 'int', 'int', 'int', 'int', P, P, P, P, 'int', 'int', 'float', 'int64_t', 'int64_t']],
  tr_bsa_bwd: ['void', [P, P, P, P, P, P, P, P, P, P, P, 'int', 'int', 'int', 'int', 'int', 'int', 'int', 'int', 'int', P, P, P, P, 'int', 'int', 'float', 'int64_t', 'int64_t']],
  tr_cumsum: ['void', ['int', P, P, 'int64_t', 'int64_t', 'int64_t', 'int', 'int']],
  tr_select_blocks: ['void', [P, 'int', 'int', 'int', 'int', 'int', 'int', 'double', P, P, P, P, P]],
  tr_kv_write: ['void', ['int', P, P, 'int', 'int', 'int', 'int', 'int', 'int']],
  tr_decode_attn: ['void', [P, P, P, P, 'int', 'int', 'int', 'int', 'int', 'int', 'float', P, P, P, 'int', 'int', 'int64_t']],
  tr_topk_rows: ['void', [P, 'int', 'int', 'int', P, P]],
  tr_page_minmax: ['void', [P, 'int', P, P, 'int', 'int', 'int', 'int', 'int', 'int', 'int', 'int', 'int']],
  tr_quest_scores: ['void', [P, P, P, P, 'int', 'int', 'int', 'int', 'int', P, 'int']],
  tr_label_write: ['void', [P, P, P, 'int', 'int', 'int', 'int', 'int', 'int', 'int']],
  tr_label_scores: ['void', [P, P, P, P, 'int', 'int', 'int', 'int', 'int', 'int', 'int']],
  tr_mustafar_compress: ['void', [P, P, P, 'int', 'int', 'int', 'int', 'int', 'int', 'int']],
  tr_decode_attn_mustafar: ['void', [P, P, P, P, P, P, 'int', 'int', 'int', 'int', 'int', 'int', 'int', 'float']],
  tr_copy_bandwidth: ['double', ['int64_t', 'int']],
} as const;

/** Functions only the cuda library has: device memory, errors, the transposed backward, bf16, timers. */
const CUDA_SIGNATURES = {
  tr_error: ['const char *', []],
  tr_device_ok: ['int', []],
  tr_malloc: [P, ['int64_t']],
  tr_free: ['void', [P]],
  tr_h2d: ['void', [P, P, 'int64_t']],
  tr_d2h: ['void', [P, P, 'int64_t']],
  tr_d2d: ['void', [P, P, 'int64_t']],
  tr_sync: ['void', []],
  // the last argument: 0 fp32, 1 tf32, 2 bf16 (kernels/precision.ts decides; the library does that or fails)
  tr_bsa_bwd_t: ['void', [P, P, P, P, P, P, P, P, P, P, P, 'int', 'int', 'int', 'int', 'int', 'int', 'int', 'int', 'int', P, P, P, P, 'int', 'int', 'float', 'int64_t', 'int64_t', P, P, P, 'int']],
  tr_bsa_bf16_supported: ['int', ['int', 'int', 'int', 'int']],
  tr_bsa_wgmma_available: ['int', []],
  tr_tf32_enabled: ['int', []],
  tr_bsa_fits: ['int', ['int', 'int', 'int', 'int']],
  tr_bsa_fwd_tf32: ['void', [P, P, P, P, P, P, 'int', 'int', 'int', 'int', 'int', 'int', 'int', 'int', 'int', P, P, P, P, 'int', 'int', 'float', 'int64_t', 'int64_t']],
  tr_to_bf16: ['void', [P, P, 'int64_t']],
  // the last argument: the layout's listed blocks over its heads (the kernel pick reads the mean row length)
  tr_bsa_fwd_bf16: ['void', [P, P, P, P, P, P, 'int', 'int', 'int', 'int', 'int', 'int', 'int', 'int', 'int', P, P, P, P, 'int', 'int', 'float', 'int64_t', 'int64_t', 'int64_t']],
  tr_bsa_last_fwd_kernel: ['const char *', []],
  tr_timer_start: ['void', []],
  tr_timer_stop: ['float', []],
} as const;

/**
 * What a pointer argument takes: a host array (native), a device buffer from tr_malloc (cuda: an
 * opaque koffi pointer), or null.
 */
export type Pointer = ArrayBufferView | object | null;
type CType = 'void' | 'int' | 'int64_t' | 'float' | 'double' | 'const char *' | typeof P;
type TsArg<T extends CType> = T extends typeof P ? Pointer : T extends 'const char *' ? string : number;
type TsRet<T extends CType> = T extends 'void' ? void : T extends typeof P ? object | null : T extends 'const char *' ? string : number;
type TsArgs<A extends readonly CType[]> = { [I in keyof A]: A[I] extends CType ? TsArg<A[I]> : never };
/** A C function as TypeScript sees it, derived from its one declaration in the tables above. */
type Bound<S> = S extends readonly [infer R extends CType, infer A extends readonly CType[]] ? (...args: TsArgs<A>) => TsRet<R> : never;
type Bind<T> = { -readonly [K in keyof T]: Bound<T[K]> };

export type NativeLib = Bind<typeof SIGNATURES> & Partial<Bind<typeof CUDA_SIGNATURES>> & {
  path: string;
  kind: 'native' | 'cuda';
};
export type CudaLib = NativeLib & Bind<typeof CUDA_SIGNATURES>;

/** Every declared C function, by library (the boundary test compares these with the C sources). */
export const DECLARED: Record<'native' | 'cuda', Record<string, readonly [CType, readonly CType[]]>> = {
  native: SIGNATURES,
  cuda: { ...SIGNATURES, ...CUDA_SIGNATURES },
};

const here = dirname(fileURLToPath(import.meta.url));

/** Where a backend's shared library is expected (TABRECALL_NATIVE_LIB / TABRECALL_CUDA_LIB override). */
export function libraryPath(kind: 'native' | 'cuda'): string {
  const env = kind === 'native' ? process.env.TABRECALL_NATIVE_LIB : process.env.TABRECALL_CUDA_LIB;
  if (env) return env;
  return join(here, '..', kind, 'build', `libtabrecall_${kind}.so`);
}

export function loadLibrary(kind: 'native' | 'cuda'): NativeLib | undefined {
  const path = libraryPath(kind);
  if (!existsSync(path)) return undefined;
  const lib = koffi.load(path);
  const out: Record<string, unknown> = { path, kind };
  for (const [name, [ret, params]] of Object.entries(DECLARED[kind])) out[name] = lib.func(name, ret, [...params]);
  return out as NativeLib;
}
