// Block-sparse attention forward on tensor cores: bf16 q/k/v, fp32 accumulation, softmax statistics
// and output; FlashAttention-2 tiling over the BSR layout. One CTA (4 warps, 16 query rows each) per
// 64-row query block; 64-key blocks stream through shared memory double-buffered with cp.async;
// S = QK^T and O += PV with mma.sync m16n8k16, P reused from the S accumulators in registers. Full
// blocks skip the token rule. Shapes it takes: head dim 64, Bq = Bk = 64 (others use attention.cu).
// Shared-memory rows are 128 bytes, swizzled by 16-byte chunk (chunk ^ row % 8): ldmatrix and
// cp.async then touch 8 different bank groups.
#include "attention_tc.cuh"

using namespace tr;
using namespace tr::tc;

namespace {

__global__ void __launch_bounds__(128, 4) bsa_fwd_bf16_k(Args p, const __nv_bfloat16* q, const __nv_bfloat16* k, const __nv_bfloat16* v,
                                                      const float* kbias, float* out, float* lse) {
  __shared__ __align__(128) __nv_bfloat16 Qs[T * T];
  __shared__ __align__(128) __nv_bfloat16 Ks[2][T * T];
  __shared__ __align__(128) __nv_bfloat16 Vs[2][T * T];
  const int i = blockIdx.x, h = blockIdx.y, b = blockIdx.z;
  const int lh = p.LH == 1 ? 0 : h;
  const int64_t bh = (int64_t)b * p.H + h;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
  const int i0 = i * T;
  const __nv_bfloat16* qb = q + bh * p.Lq * T;
  const __nv_bfloat16* kbh = k + bh * p.Lk * T;
  const __nv_bfloat16* vbh = v + bh * p.Lk * T;
  const float* kb = kbias ? kbias + b * p.kb_sb + h * p.kb_sh : nullptr;
  const int a = p.row_ptr[lh * (p.nQ + 1) + i], n = p.row_ptr[lh * (p.nQ + 1) + i + 1] - a;

  load_tile<128>(Qs, qb, i0, p.Lq);
  if (n > 0) {
    const int j0 = p.col_idx[a] * T;
    load_tile<128>(Ks[0], kbh, j0, p.Lk);
    load_tile<128>(Vs[0], vbh, j0, p.Lk);
  }
  cp_commit();

  float o[8][4];
  zero(o);
  float mrow[2] = {-INFINITY, -INFINITY}, lrow[2] = {0.0f, 0.0f};
  uint32_t qf[4][4];
  const float sl2 = p.scale * kLog2e;
  const int rowa = i0 + warp * 16 + g;  // this lane's two rows: rowa and rowa + 8

  for (int it = 0; it < n; it++) {
    const int pi = a + it, buf = it & 1;
    if (it + 1 < n) {
      const int j1 = p.col_idx[pi + 1] * T;
      load_tile<128>(Ks[buf ^ 1], kbh, j1, p.Lk);
      load_tile<128>(Vs[buf ^ 1], vbh, j1, p.Lk);
      cp_commit();
      cp_wait<1>();
    } else {
      cp_wait<0>();
    }
    __syncthreads();
    if (it == 0) {
#pragma unroll
      for (int kk = 0; kk < 4; kk++) ldsm_x4(qf[kk], &Qs[swz(warp * 16 + (lane & 15), kk * 16 + (lane >> 4) * 8)]);
    }
    float s[8][4];
    zero(s);
#pragma unroll
    for (int kk = 0; kk < 4; kk++) {
#pragma unroll
      for (int np = 0; np < 4; np++) {
        uint32_t r[4];
        ldsm_x4(r, &Ks[buf][swz(np * 16 + (lane & 7) + (lane >> 4) * 8, kk * 16 + ((lane >> 3) & 1) * 8)]);
        mma(s[2 * np], qf[kk], r[0], r[1]);
        mma(s[2 * np + 1], qf[kk], r[2], r[3]);
      }
    }
    mask_softmax(p, s, o, mrow, lrow, kb, pi, i0, rowa, t, sl2);
#pragma unroll
    for (int kk = 0; kk < 4; kk++) {
      const uint32_t pa[4] = {pack(s[2 * kk][0], s[2 * kk][1]), pack(s[2 * kk][2], s[2 * kk][3]), pack(s[2 * kk + 1][0], s[2 * kk + 1][1]),
                              pack(s[2 * kk + 1][2], s[2 * kk + 1][3])};
#pragma unroll
      for (int np = 0; np < 4; np++) {
        uint32_t r[4];
        ldsm_x4_t(r, &Vs[buf][swz(kk * 16 + (lane & 7) + ((lane >> 3) & 1) * 8, np * 16 + (lane >> 4) * 8)]);
        mma(o[2 * np], pa, r[0], r[1]);
        mma(o[2 * np + 1], pa, r[2], r[3]);
      }
    }
    __syncthreads();
  }
  cp_wait<0>();
  store_rows(p, o, mrow, lrow, out, lse, bh, rowa, t);
}


// ---- fp32 operands on tf32 tensor cores (mma m16n8k8) -----------------------------------------------
// Tiles stay fp32 in shared memory (rows padded to 68 floats for Q/K, 72 for V: the fragment loads
// then hit 32 different banks); operands are rounded to tf32 as they are loaded into registers.
constexpr int LDQK = 68, LDV = 72;
constexpr size_t kTf32Smem = sizeof(float) * (T * LDQK + 2 * T * LDQK + 2 * T * LDV);


// Rows [row0, row0+64) of a [len, 64] fp32 matrix into a tile with row stride ld; rows past len zero.
__device__ __forceinline__ void load_tile_f32(float* tile, int ld, const float* base, int row0, int len) {
  for (int c = threadIdx.x; c < T * 16; c += blockDim.x) {
    const int row = c >> 4, ch = c & 15;
    const bool ok = row0 + row < len;
    cp_async16(tile + row * ld + ch * 4, base + (int64_t)(ok ? row0 + row : 0) * T + ch * 4, ok);
  }
}

__global__ void __launch_bounds__(128, 2) bsa_fwd_tf32_k(Args p, const float* q, const float* k, const float* v, const float* kbias, float* out,
                                                      float* lse) {
  extern __shared__ __align__(16) float smf[];
  float* Qs = smf;
  float* Ks = Qs + T * LDQK;   // [2][T * LDQK]
  float* Vs = Ks + 2 * T * LDQK;  // [2][T * LDV]
  const int i = blockIdx.x, h = blockIdx.y, b = blockIdx.z;
  const int lh = p.LH == 1 ? 0 : h;
  const int64_t bh = (int64_t)b * p.H + h;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
  const int i0 = i * T;
  const float* qb = q + bh * p.Lq * T;
  const float* kbh = k + bh * p.Lk * T;
  const float* vbh = v + bh * p.Lk * T;
  const float* kb = kbias ? kbias + b * p.kb_sb + h * p.kb_sh : nullptr;
  const int a = p.row_ptr[lh * (p.nQ + 1) + i], n = p.row_ptr[lh * (p.nQ + 1) + i + 1] - a;

  load_tile_f32(Qs, LDQK, qb, i0, p.Lq);
  if (n > 0) {
    const int j0 = p.col_idx[a] * T;
    load_tile_f32(Ks, LDQK, kbh, j0, p.Lk);
    load_tile_f32(Vs, LDV, vbh, j0, p.Lk);
  }
  cp_commit();

  float o[8][4];
  zero(o);
  float mrow[2] = {-INFINITY, -INFINITY}, lrow[2] = {0.0f, 0.0f};
  uint32_t qf[8][4];
  const float sl2 = p.scale * kLog2e;
  const int r0 = warp * 16;
  const int rowa = i0 + r0 + g;
  const int srcA = (lane & ~3) | (t >> 1), srcB = (lane & ~3) | (2 + (t >> 1));  // lanes holding P[.][t], P[.][t+4]

  for (int it = 0; it < n; it++) {
    const int pi = a + it, buf = it & 1;
    if (it + 1 < n) {
      const int j1 = p.col_idx[pi + 1] * T;
      load_tile_f32(Ks + (buf ^ 1) * T * LDQK, LDQK, kbh, j1, p.Lk);
      load_tile_f32(Vs + (buf ^ 1) * T * LDV, LDV, vbh, j1, p.Lk);
      cp_commit();
      cp_wait<1>();
    } else {
      cp_wait<0>();
    }
    __syncthreads();
    if (it == 0) frag_a<LDQK>(qf, Qs, r0, g, t);
    const float* Kt = Ks + buf * T * LDQK;
    const float* Vt = Vs + buf * T * LDV;
    float s[8][4];
    zero(s);
#pragma unroll
    for (int nt = 0; nt < 8; nt++) {
#pragma unroll
      for (int kk = 0; kk < 8; kk++) {
        const float* kr = Kt + (nt * 8 + g) * LDQK + kk * 8 + t;
        mma_tf32(s[nt], qf[kk], tf32(kr[0]), tf32(kr[4]));
      }
    }
    mask_softmax(p, s, o, mrow, lrow, kb, pi, i0, rowa, t, sl2);
#pragma unroll
    for (int kk = 0; kk < 8; kk++) {  // keys 8kk..8kk+7: P's columns moved from accumulator to A layout
      const float x0 = __shfl_sync(0xffffffff, s[kk][0], srcA), x1 = __shfl_sync(0xffffffff, s[kk][1], srcA);
      const float x2 = __shfl_sync(0xffffffff, s[kk][2], srcA), x3 = __shfl_sync(0xffffffff, s[kk][3], srcA);
      const float y0 = __shfl_sync(0xffffffff, s[kk][0], srcB), y1 = __shfl_sync(0xffffffff, s[kk][1], srcB);
      const float y2 = __shfl_sync(0xffffffff, s[kk][2], srcB), y3 = __shfl_sync(0xffffffff, s[kk][3], srcB);
      const bool odd = t & 1;
      const uint32_t pa[4] = {tf32(odd ? x1 : x0), tf32(odd ? x3 : x2), tf32(odd ? y1 : y0), tf32(odd ? y3 : y2)};
#pragma unroll
      for (int nt = 0; nt < 8; nt++) {
        const float* vr = Vt + (kk * 8 + t) * LDV + nt * 8 + g;
        mma_tf32(o[nt], pa, tf32(vr[0]), tf32(vr[4 * LDV]));
      }
    }
    __syncthreads();
  }
  cp_wait<0>();
  store_rows(p, o, mrow, lrow, out, lse, bh, rowa, t);
}

__global__ void to_bf16_k(const float* x, __nv_bfloat16* y, int64_t n) {
  GRID_STRIDE(i, n) y[i] = __float2bfloat16_rn(x[i]);
}

cudaEvent_t g_start = nullptr, g_stop = nullptr;
}  // namespace

// Whether the tensor-core path takes this shape.
TR_API int tr_bsa_bf16_supported(int D, int Dv, int Bq, int Bk) { return D == T && Dv == T && Bq == T && Bk == T; }

TR_API void tr_to_bf16(const float* x, void* y, int64_t n) {
  if (n <= 0) return;
  to_bf16_k<<<blocks_for(n), 256, 0, stream()>>>(x, (__nv_bfloat16*)y, n);
  TR_LAUNCHED("to_bf16");
}

// Same arguments as tr_bsa_fwd, with q/k/v in bf16.
TR_API void tr_bsa_fwd_bf16(const void* q, const void* k, const void* v, const float* kb, float* out, float* lse, int B, int H, int Lq,
                            int Lk, int D, int Dv, int Bq, int Bk, int LH, const int32_t* row_ptr, const int32_t* col_idx,
                            const uint8_t* full, const uint8_t* mask, int causal, int window, float scale, int64_t kb_sb,
                            int64_t kb_sh, int64_t nnz) {
  if (!tr_bsa_bf16_supported(D, Dv, Bq, Bk)) {
    set_error("tr_bsa_fwd_bf16", __FILE__, __LINE__, "the tensor-core path takes head dim 64 and 64x64 blocks only");
    return;
  }
  const int nQ = (Lq + T - 1) / T;
  if (B * H * nQ == 0) return;
  Args p{H, Lq, Lk, LH, nQ, row_ptr, col_idx, full, mask, causal, window, scale, kb_sb, kb_sh};
  if (hopper_bsa_fwd_bf16(p, B, (const __nv_bfloat16*)q, (const __nv_bfloat16*)k, (const __nv_bfloat16*)v, kb, out, lse, nnz)) return;
  bsa_fwd_bf16_k<<<dim3(nQ, H, B), 128, 0, stream()>>>(p, (const __nv_bfloat16*)q, (const __nv_bfloat16*)k, (const __nv_bfloat16*)v, kb,
                                                        out, lse);
  TR_LAUNCHED("bsa_fwd_bf16");
}

// Same arguments as tr_bsa_fwd: fp32 in and out, tf32 tensor cores inside.
TR_API void tr_bsa_fwd_tf32(const float* q, const float* k, const float* v, const float* kb, float* out, float* lse, int B, int H, int Lq,
                            int Lk, int D, int Dv, int Bq, int Bk, int LH, const int32_t* row_ptr, const int32_t* col_idx,
                            const uint8_t* full, const uint8_t* mask, int causal, int window, float scale, int64_t kb_sb,
                            int64_t kb_sh) {
  if (!tr_bsa_bf16_supported(D, Dv, Bq, Bk)) {
    set_error("tr_bsa_fwd_tf32", __FILE__, __LINE__, "the tensor-core path takes head dim 64 and 64x64 blocks only");
    return;
  }
  const int nQ = (Lq + T - 1) / T;
  if (B * H * nQ == 0) return;
  static bool attr = false;
  if (!attr) {
    TR_CUDA(cudaFuncSetAttribute((const void*)bsa_fwd_tf32_k, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)kTf32Smem));
    attr = true;
  }
  Args p{H, Lq, Lk, LH, nQ, row_ptr, col_idx, full, mask, causal, window, scale, kb_sb, kb_sh};
  bsa_fwd_tf32_k<<<dim3(nQ, H, B), 128, kTf32Smem, stream()>>>(p, q, k, v, kb, out, lse);
  TR_LAUNCHED("bsa_fwd_tf32");
}

// Device-side timing of whatever is enqueued between start and stop (milliseconds).
TR_API void tr_timer_start() {
  if (!g_start) {
    TR_CUDA(cudaEventCreate(&g_start));
    TR_CUDA(cudaEventCreate(&g_stop));
  }
  TR_CUDA(cudaEventRecord(g_start, stream()));
}

TR_API float tr_timer_stop() {
  float ms = 0;
  TR_CUDA(cudaEventRecord(g_stop, stream()));
  TR_CUDA(cudaEventSynchronize(g_stop));
  TR_CUDA(cudaEventElapsedTime(&ms, g_start, g_stop));
  return ms;
}
