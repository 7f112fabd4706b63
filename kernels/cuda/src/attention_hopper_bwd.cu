// Block-sparse attention backward for Hopper (sm_90a) on wgmma: bf16 operands (q, k, v and dO,
// converted on entry), fp32 accumulation, P and dS in fp32 until they are rounded to bf16 for their
// products. The same two deterministic passes as attention_tc_bwd.cu (no atomics):
//   dQ pass, one CTA per query block:  S = Q K^T, dP = dO V^T (both operands in shared memory);
//     P = exp(S - lse), dS = P (dP - delta); dQ += dS K (dS from registers, K transposed).
//   dK/dV pass, one CTA per key block over the transposed layout:  S^T = K Q^T, dP^T = V dO^T;
//     dV += P^T dO, dK += dS^T Q (from registers); dkeyBias = row sums of dS^T.
// One warpgroup per CTA; the streamed tiles (K/V, or Q/dO with their lse and delta) double-buffered
// by cp.async. Written without a GPU to run it on (see docs/kernels-history.md): check it with
// `kernels/cuda/check/run.sh --backward` before trusting it.
#include "wgmma.cuh"

using namespace tr;
using namespace tr::tc;

TR_API void tr_to_bf16(const float* x, void* y, int64_t n);

namespace {
// two pinned tiles, two stages of two streamed tiles, 1 KB to align the swizzle atoms, then (dK/dV)
// two stages of 64 log2-domain lse values and 64 deltas
constexpr size_t kBwdSmem = sizeof(__nv_bfloat16) * kTile * 6 + 1024 + 2 * 2 * T * sizeof(float);

__global__ void __launch_bounds__(128, 2) bsa_dq_wgmma_k(Args p, const __nv_bfloat16* q, const __nv_bfloat16* k, const __nv_bfloat16* v,
                                                      const float* kbias, const float* lse, const float* delta, const __nv_bfloat16* dout,
                                                      float* dq) {
#ifdef TR_WGMMA
  extern __shared__ __align__(1024) uint8_t smraw[];
  __nv_bfloat16* Qs = smem_base(smraw);
  __nv_bfloat16* dOs = Qs + kTile;
  __nv_bfloat16* Ks = dOs + kTile;  // [2][kTile]
  __nv_bfloat16* Vs = Ks + 2 * kTile;  // [2][kTile]
  const int i = blockIdx.x, h = blockIdx.y, b = blockIdx.z;
  const int lh = p.LH == 1 ? 0 : h;
  const int64_t bh = (int64_t)b * p.H + h;
  const int warp = threadIdx.x >> 5, g = (threadIdx.x & 31) >> 2, t = threadIdx.x & 3;
  const int i0 = i * T, rowa = i0 + warp * 16 + g;
  const float* kb = kbias ? kbias + b * p.kb_sb + h * p.kb_sh : nullptr;
  const float sl2 = p.scale * kLog2e;
  const int a = p.row_ptr[lh * (p.nQ + 1) + i], n = p.row_ptr[lh * (p.nQ + 1) + i + 1] - a;
  load_tile<128>(Qs, q + bh * p.Lq * T, i0, p.Lq);
  load_tile<128>(dOs, dout + bh * p.Lq * T, i0, p.Lq);
  auto load = [&](int u) {  // key tile u of the row into buffer u % 2
    const int j = __ldg(p.col_idx + a + u) * T, st = u & 1;
    load_tile<128>(Ks + st * kTile, k + bh * p.Lk * T, j, p.Lk);
    load_tile<128>(Vs + st * kTile, v + bh * p.Lk * T, j, p.Lk);
  };
  if (n > 0) load(0);
  cp_commit();
  float l2[2], dl[2];
  row_stats(p, lse, delta, bh, rowa, l2, dl);
  float acc[8][4];
  zero(acc);
  const uint32_t qaddr = saddr(Qs), doaddr = saddr(dOs);
  for (int u = 0; u < n; u++) {
    cp_wait<0>();
    fence_proxy_async();  // cp.async wrote through the generic proxy; wgmma reads through the async one
    __syncthreads();  // tile u is in; every warp is done with tile u - 1's buffer
    if (u + 1 < n) load(u + 1);
    cp_commit();
    const uint32_t kaddr = saddr(Ks + (u & 1) * kTile), vaddr = saddr(Vs + (u & 1) * kTile);
    float s[8][4], dp[8][4];
    pin(acc);
    issue_s2_wait(s, qaddr, kaddr, dp, doaddr, vaddr);
    scaled_scores(p, s, kb, a + u, i0, rowa, t, sl2);
#pragma unroll
    for (int nt = 0; nt < 8; nt++)
#pragma unroll
      for (int e = 0; e < 4; e++) {
        const int hf = e >> 1;
        const float pr = l2[hf] == -INFINITY ? 0.0f : ex2(s[nt][e] - l2[hf]);
        s[nt][e] = pr * (dp[nt][e] - dl[hf]);  // dS
      }
    uint32_t dsa[4][4];
    pack_p(s, dsa);
    wg_fence();
    issue_pv(acc, dsa, kaddr);
    wg_commit();
    wg_wait<0>();
    pin(acc);
  }
  cp_wait<0>();
  store_acc(dq + bh * p.Lq * T, acc, rowa, p.Lq, p.scale, t);
#endif
}

__global__ void __launch_bounds__(128, 2) bsa_dkdv_wgmma_k(Args p, int nK, const __nv_bfloat16* q, const __nv_bfloat16* k, const __nv_bfloat16* v,
                                                        const float* kbias, const float* lse, const float* delta, const __nv_bfloat16* dout,
                                                        const int32_t* col_ptr, const int32_t* row_idx, const int32_t* src_idx, float* dk,
                                                        float* dv, float* dkb) {
#ifdef TR_WGMMA
  extern __shared__ __align__(1024) uint8_t smraw[];
  __nv_bfloat16* Ks = smem_base(smraw);
  __nv_bfloat16* Vs = Ks + kTile;
  __nv_bfloat16* Qs = Vs + kTile;  // [2][kTile]
  __nv_bfloat16* dOs = Qs + 2 * kTile;  // [2][kTile]
  float* Ls = reinterpret_cast<float*>(dOs + 2 * kTile);  // [2][64] log2-domain LSE of the streamed block's rows
  float* Ds = Ls + 2 * T;  // [2][64] their delta
  const int j = blockIdx.x, h = blockIdx.y, b = blockIdx.z;
  const int lh = p.LH == 1 ? 0 : h;
  const int64_t bh = (int64_t)b * p.H + h;
  const int warp = threadIdx.x >> 5, g = (threadIdx.x & 31) >> 2, t = threadIdx.x & 3;
  const int j0 = j * T, keya = j0 + warp * 16 + g;  // this lane's keys: keya, keya + 8
  const float* kb = kbias ? kbias + b * p.kb_sb + h * p.kb_sh : nullptr;
  const float sl2 = p.scale * kLog2e;
  const int a = col_ptr[lh * (nK + 1) + j], n = col_ptr[lh * (nK + 1) + j + 1] - a;
  load_tile<128>(Ks, k + bh * p.Lk * T, j0, p.Lk);
  load_tile<128>(Vs, v + bh * p.Lk * T, j0, p.Lk);
  auto load = [&](int u) {  // query block of column entry u, with its rows' lse and delta, into buffer u % 2
    const int i0 = row_idx[a + u] * T, st = u & 1;
    load_tile<128>(Qs + st * kTile, q + bh * p.Lq * T, i0, p.Lq);
    load_tile<128>(dOs + st * kTile, dout + bh * p.Lq * T, i0, p.Lq);
    if (threadIdx.x < T) {
      const int row = i0 + threadIdx.x;
      Ls[st * T + threadIdx.x] = row < p.Lq ? lse[bh * p.Lq + row] * kLog2e : -INFINITY;
      Ds[st * T + threadIdx.x] = row < p.Lq ? delta[bh * p.Lq + row] : 0.0f;
    }
  };
  if (n > 0) load(0);
  cp_commit();
  float kb2[2];
  key_bias2(p, kb, keya, kb2);
  float dka[8][4], dva[8][4], dbs[2] = {0.0f, 0.0f};
  zero(dka);
  zero(dva);
  const uint32_t kaddr = saddr(Ks), vaddr = saddr(Vs);
  for (int u = 0; u < n; u++) {
    cp_wait<0>();
    fence_proxy_async();
    __syncthreads();  // entry u is in; every warp is done with entry u - 1's buffers
    if (u + 1 < n) load(u + 1);
    cp_commit();
    const int st = u & 1, i0 = row_idx[a + u] * T, pi = src_idx[a + u];
    const uint32_t qaddr = saddr(Qs + st * kTile), doaddr = saddr(dOs + st * kTile);
    const float* L = Ls + st * T;
    const float* Dl = Ds + st * T;
    const bool full = p.full[pi] != 0 && j0 + T <= p.Lk;
    const uint8_t* bits = p.mask ? p.mask + (int64_t)pi * T * T : nullptr;
    float sT[8][4], dpT[8][4];  // S^T and dP^T: rows = this warp's keys, columns = the block's queries
    pin(dka);
    pin(dva);
    issue_s2_wait(sT, kaddr, qaddr, dpT, vaddr, doaddr);
#pragma unroll
    for (int nt = 0; nt < 8; nt++)
#pragma unroll
      for (int e = 0; e < 4; e++) {
        const int hf = e >> 1, qc = nt * 8 + 2 * t + (e & 1), key = keya + hf * 8;
        const bool ok = L[qc] != -INFINITY && (full || allowed(p, i0 + qc, key, bits, qc * T + (key - j0)));
        const float pr = ok ? ex2(fmaf(sT[nt][e], sl2, kb2[hf] - L[qc])) : 0.0f;
        sT[nt][e] = pr;  // P^T
        dpT[nt][e] = pr * (dpT[nt][e] - Dl[qc]);  // dS^T
        dbs[hf] += dpT[nt][e];
      }
    uint32_t pa[4][4], dsa[4][4];
    pack_p(sT, pa);
    pack_p(dpT, dsa);
    wg_fence();
    issue_pv(dva, pa, doaddr);
    issue_pv(dka, dsa, qaddr);
    wg_commit();
    wg_wait<0>();
    pin(dka);
    pin(dva);
  }
  cp_wait<0>();
  store_dkdv(p, dka, dva, dbs, dk, dv, dkb, bh, keya, t);
#endif
}
}  // namespace

namespace tr {
namespace tc {
bool hopper_bsa_bwd_bf16(const Args& p, int B, int nK, const float* q, const float* k, const float* v, const float* kb, const float* lse,
                         const float* delta, const float* dout, const int32_t* col_ptr, const int32_t* row_idx, const int32_t* src_idx,
                         float* dq, float* dk, float* dv, float* dkb) {
  if (!hopper_available()) return false;
  static bool attr = false;
  if (!attr) {
    TR_CUDA(cudaFuncSetAttribute((const void*)bsa_dq_wgmma_k, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)kBwdSmem));
    TR_CUDA(cudaFuncSetAttribute((const void*)bsa_dkdv_wgmma_k, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)kBwdSmem));
    attr = true;
  }
  auto st = stream();
  const int64_t nq = (int64_t)B * p.H * p.Lq * T, nk = (int64_t)B * p.H * p.Lk * T;
  __nv_bfloat16* h = nullptr;  // q, dO, k, v in bf16
  TR_CUDA(cudaMallocAsync((void**)&h, (2 * nq + 2 * nk) * sizeof(__nv_bfloat16), st));
  if (has_error()) return true;
  __nv_bfloat16 *qh = h, *doh = h + nq, *kh = h + 2 * nq, *vh = kh + nk;
  tr_to_bf16(q, qh, nq);
  tr_to_bf16(dout, doh, nq);
  tr_to_bf16(k, kh, nk);
  tr_to_bf16(v, vh, nk);
  if (p.nQ > 0) bsa_dq_wgmma_k<<<dim3(p.nQ, p.H, B), 128, kBwdSmem, st>>>(p, qh, kh, vh, kb, lse, delta, doh, dq);
  if (nK > 0)
    bsa_dkdv_wgmma_k<<<dim3(nK, p.H, B), 128, kBwdSmem, st>>>(p, nK, qh, kh, vh, kb, lse, delta, doh, col_ptr, row_idx, src_idx, dk, dv, dkb);
  TR_LAUNCHED("bsa_bwd_wgmma");
  TR_CUDA(cudaFreeAsync(h, st));
  return true;
}
}  // namespace tc
}  // namespace tr
