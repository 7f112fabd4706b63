// Block-sparse attention backward on tf32 tensor cores (mma.sync m16n8k8; head dim 64, 64 x 64
// blocks; fp32 in and out, fp32 accumulation), the same two deterministic passes as attention.cu:
// dQ over each query block's key blocks, dK/dV/dkeyBias over each key block's query blocks (the
// transposed layout), so no atomics. Every product is one of two shapes on 16-row warp slices:
//   A . Y^T  A in registers (mma A fragments of a row-major tile), Y row-major in shared memory;
//   C . Z    C the accumulators of an earlier product (moved into A fragments by shuffles), Z
//            row-major in shared memory.
// dQ pass:  S = Q K^T, dP = dO V^T (A . Y^T); dS = P (dP - delta); dQ += dS K (C . Z).
// dKV pass: S^T = K Q^T, dP^T = V dO^T (A . Y^T); dV += P^T dO, dK += dS^T Q (C . Z).
// Checked against a float64 reference (kernels/cuda/check --backward): tf32 worst relative error
// ~6e-4, 20x the fp32 passes' speed on an H200.
#include "attention_tc.cuh"

using namespace tr;
using namespace tr::tc;

namespace {
constexpr int LD = 68;  // padded fp32 row: the A . Y^T reads of a warp hit 32 banks (C . Z reads: 2-way)
constexpr size_t kSmem = sizeof(float) * 4 * T * LD + 2 * T * sizeof(float);

// Rows [row0, row0+64) of a [len, 64] fp32 matrix into a tile with row stride LD; rows past len zero.
__device__ __forceinline__ void load_rows(float* tile, const float* base, int row0, int len) {
  for (int c = threadIdx.x; c < T * 16; c += blockDim.x) {
    const int row = c >> 4, ch = c & 15;
    const bool ok = row0 + row < len;
    cp_async16(tile + row * LD + ch * 4, base + (int64_t)(ok ? row0 + row : 0) * T + ch * 4, ok);
  }
}
// Rows [row0, row0 + 64) of two [len, 64] matrices into shared tiles, then this warp's A fragments of
// both: the pinned operands of a pass (Q and dO for dQ; K and V for dK/dV).
__device__ __forceinline__ void load_pinned(float* As, float* Bs, const float* a, const float* b, int row0, int len, int r0, int g, int t,
                                            uint32_t (&fa)[8][4], uint32_t (&fb)[8][4]) {
  load_rows(As, a, row0, len);
  load_rows(Bs, b, row0, len);
  cp_commit();
  cp_wait<0>();
  __syncthreads();
  frag_a<LD>(fa, As, r0, g, t);
  frag_a<LD>(fb, Bs, r0, g, t);
}
// acc = A . Y^T: 16 x 64, Y a row-major [64 n][64 k] tile.
__device__ __forceinline__ void mm_abt(float (&acc)[8][4], const uint32_t (&af)[8][4], const float* Y, int g, int t) {
#pragma unroll
  for (int nt = 0; nt < 8; nt++) {
    acc[nt][0] = acc[nt][1] = acc[nt][2] = acc[nt][3] = 0.0f;
#pragma unroll
    for (int kk = 0; kk < 8; kk++) {
      const float* y = Y + (nt * 8 + g) * LD + kk * 8 + t;
      mma_tf32(acc[nt], af[kk], tf32(y[0]), tf32(y[4]));
    }
  }
}
// acc += C . Z: C 16 x 64 in accumulator layout, Z a row-major [64 k][64 n] tile. C's column t of an
// 8-column group lives in lane (t / 2) of the quad (element t % 2): two shuffles per A register.
__device__ __forceinline__ void mm_cz(float (&acc)[8][4], const float (&c)[8][4], const float* Z, int lane, int g, int t) {
  const int srcA = (lane & ~3) | (t >> 1), srcB = (lane & ~3) | (2 + (t >> 1));
  const bool odd = t & 1;
#pragma unroll
  for (int kk = 0; kk < 8; kk++) {
    const float x0 = __shfl_sync(0xffffffff, c[kk][0], srcA), x1 = __shfl_sync(0xffffffff, c[kk][1], srcA);
    const float x2 = __shfl_sync(0xffffffff, c[kk][2], srcA), x3 = __shfl_sync(0xffffffff, c[kk][3], srcA);
    const float y0 = __shfl_sync(0xffffffff, c[kk][0], srcB), y1 = __shfl_sync(0xffffffff, c[kk][1], srcB);
    const float y2 = __shfl_sync(0xffffffff, c[kk][2], srcB), y3 = __shfl_sync(0xffffffff, c[kk][3], srcB);
    const uint32_t pa[4] = {tf32(odd ? x1 : x0), tf32(odd ? x3 : x2), tf32(odd ? y1 : y0), tf32(odd ? y3 : y2)};
#pragma unroll
    for (int nt = 0; nt < 8; nt++) {
      const float* z = Z + (kk * 8 + t) * LD + nt * 8 + g;
      mma_tf32(acc[nt], pa, tf32(z[0]), tf32(z[4 * LD]));
    }
  }
}

__global__ void __launch_bounds__(128, 2) bsa_dq_tf32_k(Args p, const float* q, const float* k, const float* v, const float* kbias,
                                                     const float* lse, const float* delta, const float* dout, float* dq) {
  extern __shared__ __align__(16) float smf[];
  float* Qs = smf;
  float* dOs = Qs + T * LD;
  float* Ks = dOs + T * LD;
  float* Vs = Ks + T * LD;
  const int i = blockIdx.x, h = blockIdx.y, b = blockIdx.z;
  const int lh = p.LH == 1 ? 0 : h;
  const int64_t bh = (int64_t)b * p.H + h;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
  const int i0 = i * T, r0 = warp * 16, rowa = i0 + r0 + g;
  const float* kb = kbias ? kbias + b * p.kb_sb + h * p.kb_sh : nullptr;
  const float sl2 = p.scale * kLog2e;
  uint32_t qf[8][4], df[8][4];
  load_pinned(Qs, dOs, q + bh * p.Lq * T, dout + bh * p.Lq * T, i0, p.Lq, r0, g, t, qf, df);
  float l2[2], dl[2];
  row_stats(p, lse, delta, bh, rowa, l2, dl);
  float acc[8][4];
  zero(acc);
  const int a = p.row_ptr[lh * (p.nQ + 1) + i], z = p.row_ptr[lh * (p.nQ + 1) + i + 1];
  for (int pi = a; pi < z; pi++) {
    const int j0 = p.col_idx[pi] * T;
    const bool full = p.full[pi] != 0 && j0 + T <= p.Lk;
    const uint8_t* bits = p.mask ? p.mask + (int64_t)pi * T * T : nullptr;
    __syncthreads();  // every warp is done with the previous K/V
    load_rows(Ks, k + bh * p.Lk * T, j0, p.Lk);
    load_rows(Vs, v + bh * p.Lk * T, j0, p.Lk);
    cp_commit();
    cp_wait<0>();
    __syncthreads();
    float s[8][4], dp[8][4];
    mm_abt(s, qf, Ks, g, t);
    mm_abt(dp, df, Vs, g, t);
#pragma unroll
    for (int nt = 0; nt < 8; nt++)
#pragma unroll
      for (int e = 0; e < 4; e++) {
        const int hf = e >> 1, col = nt * 8 + 2 * t + (e & 1), c = j0 + col, row = rowa + hf * 8;
        const bool ok = l2[hf] != -INFINITY && (full || allowed(p, row, c, bits, (row - i0) * T + col));
        const float pr = ok ? ex2(fmaf(s[nt][e], sl2, (kb ? kb[c] * kLog2e : 0.0f) - l2[hf])) : 0.0f;
        s[nt][e] = pr * (dp[nt][e] - dl[hf]);  // dS
      }
    mm_cz(acc, s, Ks, lane, g, t);
  }
  store_acc(dq + bh * p.Lq * T, acc, rowa, p.Lq, p.scale, t);
}

__global__ void __launch_bounds__(128, 2) bsa_dkdv_tf32_k(Args p, int nK, const float* q, const float* k, const float* v, const float* kbias,
                                                       const float* lse, const float* delta, const float* dout, const int32_t* col_ptr,
                                                       const int32_t* row_idx, const int32_t* src_idx, float* dk, float* dv, float* dkb) {
  extern __shared__ __align__(16) float smf[];
  float* Ks = smf;
  float* Vs = Ks + T * LD;
  float* Qs = Vs + T * LD;
  float* dOs = Qs + T * LD;
  float* Ls = dOs + T * LD;  // [64] log2-domain LSE of the current query block's rows
  float* Ds = Ls + T;  // [64] their delta
  const int j = blockIdx.x, h = blockIdx.y, b = blockIdx.z;
  const int lh = p.LH == 1 ? 0 : h;
  const int64_t bh = (int64_t)b * p.H + h;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
  const int j0 = j * T, c0 = warp * 16, keya = j0 + c0 + g;  // this lane's keys: keya, keya + 8
  const float* kb = kbias ? kbias + b * p.kb_sb + h * p.kb_sh : nullptr;
  const float sl2 = p.scale * kLog2e;
  uint32_t kf[8][4], vf[8][4];
  load_pinned(Ks, Vs, k + bh * p.Lk * T, v + bh * p.Lk * T, j0, p.Lk, c0, g, t, kf, vf);
  float kb2[2];
  key_bias2(p, kb, keya, kb2);
  float dka[8][4], dva[8][4], dbs[2] = {0.0f, 0.0f};
  zero(dka);
  zero(dva);
  const int a = col_ptr[lh * (nK + 1) + j], z = col_ptr[lh * (nK + 1) + j + 1];
  for (int tt = a; tt < z; tt++) {
    const int i0 = row_idx[tt] * T, pi = src_idx[tt];
    const bool full = p.full[pi] != 0 && j0 + T <= p.Lk;
    const uint8_t* bits = p.mask ? p.mask + (int64_t)pi * T * T : nullptr;
    __syncthreads();  // every warp is done with the previous Q/dO
    load_rows(Qs, q + bh * p.Lq * T, i0, p.Lq);
    load_rows(dOs, dout + bh * p.Lq * T, i0, p.Lq);
    cp_commit();
    if (threadIdx.x < T) {
      const int row = i0 + threadIdx.x;
      Ls[threadIdx.x] = row < p.Lq ? lse[bh * p.Lq + row] * kLog2e : -INFINITY;
      Ds[threadIdx.x] = row < p.Lq ? delta[bh * p.Lq + row] : 0.0f;
    }
    cp_wait<0>();
    __syncthreads();
    float st[8][4], dpt[8][4];  // S^T and dP^T: rows = this warp's keys, columns = the block's queries
    mm_abt(st, kf, Qs, g, t);
    mm_abt(dpt, vf, dOs, g, t);
#pragma unroll
    for (int nt = 0; nt < 8; nt++)
#pragma unroll
      for (int e = 0; e < 4; e++) {
        const int hf = e >> 1, qc = nt * 8 + 2 * t + (e & 1), row = i0 + qc, key = keya + hf * 8;
        const bool ok = Ls[qc] != -INFINITY && (full || allowed(p, row, key, bits, qc * T + (key - j0)));
        const float pr = ok ? ex2(fmaf(st[nt][e], sl2, kb2[hf] - Ls[qc])) : 0.0f;
        st[nt][e] = pr;  // P^T
        dpt[nt][e] = pr * (dpt[nt][e] - Ds[qc]);  // dS^T
        dbs[hf] += dpt[nt][e];
      }
    mm_cz(dva, st, dOs, lane, g, t);
    mm_cz(dka, dpt, Qs, lane, g, t);
  }
  store_dkdv(p, dka, dva, dbs, dk, dv, dkb, bh, keya, t);
}
}  // namespace

namespace tr {
namespace tc {
// The tf32 backward (head dim 64, 64 x 64 blocks): dq, dk, dv, dkb from the saved LSE and
// delta = rowsum(dO * O).
void tf32_bsa_bwd(const Args& p, int B, int nK, const float* q, const float* k, const float* v, const float* kb, const float* lse,
                  const float* delta, const float* dout, const int32_t* col_ptr, const int32_t* row_idx, const int32_t* src_idx, float* dq,
                  float* dk, float* dv, float* dkb) {
  static bool attr = false;
  if (!attr) {
    TR_CUDA(cudaFuncSetAttribute((const void*)bsa_dq_tf32_k, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)kSmem));
    TR_CUDA(cudaFuncSetAttribute((const void*)bsa_dkdv_tf32_k, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)kSmem));
    attr = true;
  }
  if (p.nQ > 0) bsa_dq_tf32_k<<<dim3(p.nQ, p.H, B), 128, kSmem, stream()>>>(p, q, k, v, kb, lse, delta, dout, dq);
  if (nK > 0)
    bsa_dkdv_tf32_k<<<dim3(nK, p.H, B), 128, kSmem, stream()>>>(p, nK, q, k, v, kb, lse, delta, dout, col_ptr, row_idx, src_idx, dk, dv,
                                                                 dkb);
  TR_LAUNCHED("bsa_bwd_tf32");
}
}  // namespace tc
}  // namespace tr
