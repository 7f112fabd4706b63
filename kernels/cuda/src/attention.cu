// Block-sparse attention over the BSR layout (kernels/layout.ts), fp32, any block size and head dim:
// the path every model trains through on `cuda`. One CTA per (query block, head, batch) in the
// forward and the dQ pass; one CTA per (key block, head, batch) in the dK/dV pass, which walks the
// transposed (CSC) layout, so the backward needs no atomics and is deterministic.
// Tiles live in shared memory with rows padded by one float (no bank conflicts in the dot products).
#include "common.cuh"
#include "attention_tc.cuh"
#include <cstdio>

using namespace tr;

namespace {
struct Lay {
  int B, H, Lq, Lk, D, Dv, Bq, Bk, LH, nQ, nK;
  const int32_t *row_ptr, *col_idx;
  const uint8_t *full, *mask;
  int causal, window;
  float scale;
  int64_t kb_sb, kb_sh;
};

// Whether query row i may see key c (both absolute) inside a partial block; bits: the block's mask.
__device__ __forceinline__ bool allowed(const Lay& p, int i, int c, const uint8_t* bits, int r, int cc) {
  if (c >= p.Lk) return false;
  const int qi = i + (p.Lk - p.Lq);
  int lo = p.window >= 0 ? max(0, qi - p.window) : 0;
  int hi = p.causal ? qi : p.Lk - 1;
  if (p.window >= 0) hi = min(hi, qi + p.window);
  if (c < lo || c > hi) return false;
  return bits ? bits[r * p.Bk + cc] != 0 : true;
}

__device__ void load_tile(float* dst, int ld, const float* src, int rows, int cols, int max_rows) {
  for (int e = threadIdx.x; e < max_rows * cols; e += blockDim.x) {
    const int r = e / cols, c = e % cols;
    dst[r * ld + c] = r < rows ? src[(int64_t)r * cols + c] : 0.0f;
  }
}

// S[r][c] = scale * q_r . k_c + kb, or -inf where not allowed.
__device__ void scores(const Lay& p, const float* Qs, const float* Ks, float* S, int i0, int rows, int j0, int cols, bool full,
                       const uint8_t* bits, const float* kb) {
  const int ld = p.D + 1;
  for (int e = threadIdx.x; e < p.Bq * p.Bk; e += blockDim.x) {
    const int r = e / p.Bk, c = e % p.Bk;
    float s = -INFINITY;
    if (r < rows && c < cols && (full || allowed(p, i0 + r, j0 + c, bits, r, c))) {
      float acc = 0;
      for (int d = 0; d < p.D; d++) acc += Qs[r * ld + d] * Ks[c * ld + d];
      s = acc * p.scale + (kb ? kb[j0 + c] : 0.0f);
    }
    S[r * (p.Bk + 1) + c] = s;
  }
}

__global__ void bsa_fwd_k(Lay p, const float* q, const float* k, const float* v, const float* kbias, float* out, float* lse) {
  extern __shared__ float sm[];
  const int i = blockIdx.x, h = blockIdx.y, b = blockIdx.z;
  const int lh = p.LH == 1 ? 0 : h;
  const int64_t bh = (int64_t)b * p.H + h;
  const int ldq = p.D + 1, ldv = p.Dv + 1, lds = p.Bk + 1;
  float* Qs = sm;
  float* Ks = Qs + p.Bq * ldq;
  float* Vs = Ks + p.Bk * ldq;
  float* S = Vs + p.Bk * ldv;
  float* acc = S + p.Bq * lds;
  float* m = acc + p.Bq * p.Dv;
  float* l = m + p.Bq;
  float* corr = l + p.Bq;
  const int i0 = i * p.Bq, rows = min(p.Bq, p.Lq - i0);
  const float* kb = kbias ? kbias + b * p.kb_sb + h * p.kb_sh : nullptr;
  load_tile(Qs, ldq, q + (bh * p.Lq + i0) * p.D, rows, p.D, p.Bq);
  for (int e = threadIdx.x; e < p.Bq * p.Dv; e += blockDim.x) acc[e] = 0;
  for (int r = threadIdx.x; r < p.Bq; r += blockDim.x) m[r] = -INFINITY, l[r] = 0;
  const int a = p.row_ptr[lh * (p.nQ + 1) + i], z = p.row_ptr[lh * (p.nQ + 1) + i + 1];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, nw = blockDim.x / 32;
  for (int pi = a; pi < z; pi++) {
    const int j0 = p.col_idx[pi] * p.Bk, cols = min(p.Bk, p.Lk - j0);
    __syncthreads();
    load_tile(Ks, ldq, k + (bh * p.Lk + j0) * p.D, cols, p.D, p.Bk);
    load_tile(Vs, ldv, v + (bh * p.Lk + j0) * p.Dv, cols, p.Dv, p.Bk);
    __syncthreads();
    scores(p, Qs, Ks, S, i0, rows, j0, cols, p.full[pi] != 0, p.mask ? p.mask + (int64_t)pi * p.Bq * p.Bk : nullptr, kb);
    __syncthreads();
    for (int r = warp; r < p.Bq; r += nw) {  // online softmax, one warp per row
      float* sr = S + r * lds;
      float mx = -INFINITY;
      for (int c = lane; c < p.Bk; c += 32) mx = fmaxf(mx, sr[c]);
      for (int o = 16; o > 0; o >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffff, mx, o));
      const float mnew = fmaxf(m[r], mx);
      float sum = 0;
      for (int c = lane; c < p.Bk; c += 32) {
        const float e = sr[c] == -INFINITY ? 0.0f : expf(sr[c] - mnew);
        sr[c] = e;
        sum += e;
      }
      for (int o = 16; o > 0; o >>= 1) sum += __shfl_xor_sync(0xffffffff, sum, o);
      if (lane == 0) {
        const float cr = mnew == -INFINITY ? 1.0f : expf(m[r] - mnew);
        corr[r] = cr;
        l[r] = l[r] * cr + sum;
        m[r] = mnew;
      }
    }
    __syncthreads();
    for (int e = threadIdx.x; e < p.Bq * p.Dv; e += blockDim.x) {
      const int r = e / p.Dv, d = e % p.Dv;
      float s = acc[e] * corr[r];
      for (int c = 0; c < cols; c++) s += S[r * lds + c] * Vs[c * ldv + d];
      acc[e] = s;
    }
  }
  __syncthreads();
  for (int e = threadIdx.x; e < rows * p.Dv; e += blockDim.x) {
    const int r = e / p.Dv;
    out[(bh * p.Lq + i0) * p.Dv + e] = l[r] > 0 ? acc[e] / l[r] : 0.0f;  // empty rows give zeros
  }
  for (int r = threadIdx.x; r < rows; r += blockDim.x) lse[bh * p.Lq + i0 + r] = l[r] > 0 ? m[r] + logf(l[r]) : -INFINITY;
}

// delta = rowsum(dO * O), one warp per row.
__global__ void bsa_delta_k(const float* out, const float* dout, float* delta, int64_t rows, int Dv) {
  const int64_t r = blockIdx.x * (int64_t)(blockDim.x / 32) + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (r >= rows) return;
  float s = 0;
  for (int d = lane; d < Dv; d += 32) s += out[r * Dv + d] * dout[r * Dv + d];
  for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffff, s, o);
  if (lane == 0) delta[r] = s;
}

// P = exp(S - lse) and dS = P * (dO . v - delta), left in S (dS) for the tile (r < rows, c < cols).
__device__ void probs_and_ds(const Lay& p, float* S, const float* dOs, const float* Vs, const float* L, const float* Dl, float* P) {
  const int lds = p.Bk + 1, ldv = p.Dv + 1;
  for (int e = threadIdx.x; e < p.Bq * p.Bk; e += blockDim.x) {
    const int r = e / p.Bk, c = e % p.Bk;
    const float s = S[r * lds + c];
    const float pr = (s == -INFINITY || L[r] == -INFINITY) ? 0.0f : expf(s - L[r]);
    float dp = 0;
    if (pr != 0.0f)
      for (int d = 0; d < p.Dv; d++) dp += dOs[r * ldv + d] * Vs[c * ldv + d];
    if (P) P[r * lds + c] = pr;
    S[r * lds + c] = pr * (dp - Dl[r]);
  }
}

__global__ void bsa_dq_k(Lay p, const float* q, const float* k, const float* v, const float* kbias, const float* lse, const float* delta,
                         const float* dout, float* dq) {
  extern __shared__ float sm[];
  const int i = blockIdx.x, h = blockIdx.y, b = blockIdx.z;
  const int lh = p.LH == 1 ? 0 : h;
  const int64_t bh = (int64_t)b * p.H + h;
  const int ldq = p.D + 1, ldv = p.Dv + 1, lds = p.Bk + 1;
  float* Qs = sm;
  float* dOs = Qs + p.Bq * ldq;
  float* Ks = dOs + p.Bq * ldv;
  float* Vs = Ks + p.Bk * ldq;
  float* S = Vs + p.Bk * ldv;
  float* acc = S + p.Bq * lds;
  float* L = acc + p.Bq * p.D;
  float* Dl = L + p.Bq;
  const int i0 = i * p.Bq, rows = min(p.Bq, p.Lq - i0);
  const float* kb = kbias ? kbias + b * p.kb_sb + h * p.kb_sh : nullptr;
  load_tile(Qs, ldq, q + (bh * p.Lq + i0) * p.D, rows, p.D, p.Bq);
  load_tile(dOs, ldv, dout + (bh * p.Lq + i0) * p.Dv, rows, p.Dv, p.Bq);
  for (int r = threadIdx.x; r < p.Bq; r += blockDim.x) {
    L[r] = r < rows ? lse[bh * p.Lq + i0 + r] : -INFINITY;
    Dl[r] = r < rows ? delta[bh * p.Lq + i0 + r] : 0.0f;
  }
  for (int e = threadIdx.x; e < p.Bq * p.D; e += blockDim.x) acc[e] = 0;
  const int a = p.row_ptr[lh * (p.nQ + 1) + i], z = p.row_ptr[lh * (p.nQ + 1) + i + 1];
  for (int pi = a; pi < z; pi++) {
    const int j0 = p.col_idx[pi] * p.Bk, cols = min(p.Bk, p.Lk - j0);
    __syncthreads();
    load_tile(Ks, ldq, k + (bh * p.Lk + j0) * p.D, cols, p.D, p.Bk);
    load_tile(Vs, ldv, v + (bh * p.Lk + j0) * p.Dv, cols, p.Dv, p.Bk);
    __syncthreads();
    scores(p, Qs, Ks, S, i0, rows, j0, cols, p.full[pi] != 0, p.mask ? p.mask + (int64_t)pi * p.Bq * p.Bk : nullptr, kb);
    __syncthreads();
    probs_and_ds(p, S, dOs, Vs, L, Dl, nullptr);
    __syncthreads();
    for (int e = threadIdx.x; e < p.Bq * p.D; e += blockDim.x) {
      const int r = e / p.D, d = e % p.D;
      float s = 0;
      for (int c = 0; c < cols; c++) s += S[r * lds + c] * Ks[c * ldq + d];
      acc[e] += s * p.scale;
    }
  }
  __syncthreads();
  for (int e = threadIdx.x; e < rows * p.D; e += blockDim.x) dq[(bh * p.Lq + i0) * p.D + e] = acc[e];
}

__global__ void bsa_dkdv_k(Lay p, const float* q, const float* k, const float* v, const float* kbias, const float* lse, const float* delta,
                           const float* dout, const int32_t* col_ptr, const int32_t* row_idx, const int32_t* src_idx, float* dk, float* dv,
                           float* dkb) {
  extern __shared__ float sm[];
  const int j = blockIdx.x, h = blockIdx.y, b = blockIdx.z;
  const int lh = p.LH == 1 ? 0 : h;
  const int64_t bh = (int64_t)b * p.H + h;
  const int ldq = p.D + 1, ldv = p.Dv + 1, lds = p.Bk + 1;
  float* Ks = sm;
  float* Vs = Ks + p.Bk * ldq;
  float* Qs = Vs + p.Bk * ldv;
  float* dOs = Qs + p.Bq * ldq;
  float* S = dOs + p.Bq * ldv;
  float* P = S + p.Bq * lds;
  float* dK = P + p.Bq * lds;
  float* dV = dK + p.Bk * p.D;
  float* dB = dV + p.Bk * p.Dv;
  float* L = dB + p.Bk;
  float* Dl = L + p.Bq;
  const int j0 = j * p.Bk, cols = min(p.Bk, p.Lk - j0);
  const float* kb = kbias ? kbias + b * p.kb_sb + h * p.kb_sh : nullptr;
  load_tile(Ks, ldq, k + (bh * p.Lk + j0) * p.D, cols, p.D, p.Bk);
  load_tile(Vs, ldv, v + (bh * p.Lk + j0) * p.Dv, cols, p.Dv, p.Bk);
  for (int e = threadIdx.x; e < p.Bk * p.D; e += blockDim.x) dK[e] = 0;
  for (int e = threadIdx.x; e < p.Bk * p.Dv; e += blockDim.x) dV[e] = 0;
  for (int c = threadIdx.x; c < p.Bk; c += blockDim.x) dB[c] = 0;
  const int a = col_ptr[lh * (p.nK + 1) + j], z = col_ptr[lh * (p.nK + 1) + j + 1];
  for (int t = a; t < z; t++) {
    const int i0 = row_idx[t] * p.Bq, rows = min(p.Bq, p.Lq - i0);
    const int pi = src_idx[t];
    __syncthreads();
    load_tile(Qs, ldq, q + (bh * p.Lq + i0) * p.D, rows, p.D, p.Bq);
    load_tile(dOs, ldv, dout + (bh * p.Lq + i0) * p.Dv, rows, p.Dv, p.Bq);
    for (int r = threadIdx.x; r < p.Bq; r += blockDim.x) {
      L[r] = r < rows ? lse[bh * p.Lq + i0 + r] : -INFINITY;
      Dl[r] = r < rows ? delta[bh * p.Lq + i0 + r] : 0.0f;
    }
    __syncthreads();
    scores(p, Qs, Ks, S, i0, rows, j0, cols, p.full[pi] != 0, p.mask ? p.mask + (int64_t)pi * p.Bq * p.Bk : nullptr, kb);
    __syncthreads();
    probs_and_ds(p, S, dOs, Vs, L, Dl, P);
    __syncthreads();
    for (int e = threadIdx.x; e < p.Bk * p.Dv; e += blockDim.x) {  // dV += P^T dO
      const int c = e / p.Dv, d = e % p.Dv;
      float s = 0;
      for (int r = 0; r < rows; r++) s += P[r * lds + c] * dOs[r * ldv + d];
      dV[e] += s;
    }
    for (int e = threadIdx.x; e < p.Bk * p.D; e += blockDim.x) {  // dK += scale dS^T Q
      const int c = e / p.D, d = e % p.D;
      float s = 0;
      for (int r = 0; r < rows; r++) s += S[r * lds + c] * Qs[r * ldq + d];
      dK[e] += s * p.scale;
    }
    for (int c = threadIdx.x; c < p.Bk; c += blockDim.x) {
      float s = 0;
      for (int r = 0; r < rows; r++) s += S[r * lds + c];
      dB[c] += s;
    }
  }
  __syncthreads();
  for (int e = threadIdx.x; e < cols * p.D; e += blockDim.x) dk[(bh * p.Lk + j0) * p.D + e] = dK[e];
  for (int e = threadIdx.x; e < cols * p.Dv; e += blockDim.x) dv[(bh * p.Lk + j0) * p.Dv + e] = dV[e];
  if (dkb)
    for (int c = threadIdx.x; c < cols; c += blockDim.x) dkb[bh * p.Lk + j0 + c] = dB[c];
}

bool smem_ok(const void* kernel, size_t bytes) {
  static int limit = 0;
  if (!limit) cudaDeviceGetAttribute(&limit, cudaDevAttrMaxSharedMemoryPerBlockOptin, 0);
  if (bytes > (size_t)limit) {
    char msg[160];
    snprintf(msg, sizeof msg, "block-sparse attention tile needs %zu bytes of shared memory, the device has %d; use smaller blocks",
             bytes, limit);
    set_error("tr_bsa", __FILE__, __LINE__, msg);
    return false;
  }
  TR_CUDA(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)bytes));
  return true;
}
}  // namespace

TR_API void tr_bsa_fwd(const float* q, const float* k, const float* v, const float* kb, float* out, float* lse, int B, int H, int Lq,
                       int Lk, int D, int Dv, int Bq, int Bk, int LH, const int32_t* row_ptr, const int32_t* col_idx,
                       const uint8_t* full, const uint8_t* mask, int causal, int window, float scale, int64_t kb_sb, int64_t kb_sh) {
  const int nQ = (Lq + Bq - 1) / Bq, nK = (Lk + Bk - 1) / Bk;
  if (B * H * nQ == 0) return;
  Lay p{B, H, Lq, Lk, D, Dv, Bq, Bk, LH, nQ, nK, row_ptr, col_idx, full, mask, causal, window, scale, kb_sb, kb_sh};
  const size_t bytes = 4 * ((size_t)Bq * (D + 1) + (size_t)Bk * (D + 1) + (size_t)Bk * (Dv + 1) + (size_t)Bq * (Bk + 1) +
                            (size_t)Bq * Dv + 3 * (size_t)Bq);
  if (!smem_ok((const void*)bsa_fwd_k, bytes)) return;
  bsa_fwd_k<<<dim3(nQ, H, B), 128, bytes, stream()>>>(p, q, k, v, kb, out, lse);
  TR_LAUNCHED("bsa_fwd");
}

// The cuda backward: the native signature plus the transposed layout (col_ptr, row_idx, src_idx) and
// the arithmetic, chosen by the caller (kernels/precision.ts): 0 the fp32 passes; on tensor-core shapes
// (head dim 64, 64 x 64 blocks) 1 tf32 (mma.sync) and 2 bf16 (wgmma: sm_90a only). A mode this GPU
// or shape cannot run is an error, never a quiet substitute.
TR_API void tr_bsa_bwd_t(const float* q, const float* k, const float* v, const float* kb, const float* out, const float* lse,
                         const float* dout, float* dq, float* dk, float* dv, float* dkb, int B, int H, int Lq, int Lk, int D, int Dv,
                         int Bq, int Bk, int LH, const int32_t* row_ptr, const int32_t* col_idx, const uint8_t* full,
                         const uint8_t* mask, int causal, int window, float scale, int64_t kb_sb, int64_t kb_sh, const int32_t* col_ptr,
                         const int32_t* row_idx, const int32_t* src_idx, int mode) {
  const int nQ = (Lq + Bq - 1) / Bq, nK = (Lk + Bk - 1) / Bk;
  if (B * H == 0) return;
  Lay p{B, H, Lq, Lk, D, Dv, Bq, Bk, LH, nQ, nK, row_ptr, col_idx, full, mask, causal, window, scale, kb_sb, kb_sh};
  auto st = stream();
  float* delta = nullptr;
  const int64_t rows = (int64_t)B * H * Lq;
  TR_CUDA(cudaMallocAsync((void**)&delta, rows * 4 + 4, st));
  if (has_error()) return;
  bsa_delta_k<<<(unsigned)((rows + 7) / 8), 256, 0, st>>>(out, dout, delta, rows, Dv);
  if (mode < 0 || mode > 2 || (mode > 0 && !(D == 64 && Dv == 64 && Bq == 64 && Bk == 64)) || (mode == 2 && !tc::hopper_available())) {
    set_error("tr_bsa_bwd_t", __FILE__, __LINE__, mode == 2 ? "mode 2 (bf16) needs wgmma (an sm_90 GPU, a build with sm_90a) and head dim 64 with 64x64 blocks"
              : "mode must be 0 (fp32), or 1 (tf32) with head dim 64 and 64x64 blocks");
    TR_CUDA(cudaFreeAsync(delta, st));
    return;
  }
  if (mode > 0) {
    const tc::Args a{H, Lq, Lk, LH, nQ, row_ptr, col_idx, full, mask, causal, window, scale, kb_sb, kb_sh};
    if (mode == 2) tc::hopper_bsa_bwd_bf16(a, B, nK, q, k, v, kb, lse, delta, dout, col_ptr, row_idx, src_idx, dq, dk, dv, dkb);
    else tc::tf32_bsa_bwd(a, B, nK, q, k, v, kb, lse, delta, dout, col_ptr, row_idx, src_idx, dq, dk, dv, dkb);
    TR_CUDA(cudaFreeAsync(delta, st));
    return;
  }
  const size_t dq_bytes = 4 * ((size_t)Bq * (D + 1) + (size_t)Bq * (Dv + 1) + (size_t)Bk * (D + 1) + (size_t)Bk * (Dv + 1) +
                               (size_t)Bq * (Bk + 1) + (size_t)Bq * D + 2 * (size_t)Bq);
  if (nQ > 0 && smem_ok((const void*)bsa_dq_k, dq_bytes))
    bsa_dq_k<<<dim3(nQ, H, B), 128, dq_bytes, st>>>(p, q, k, v, kb, lse, delta, dout, dq);
  const size_t kv_bytes = 4 * ((size_t)Bk * (D + 1) + (size_t)Bk * (Dv + 1) + (size_t)Bq * (D + 1) + (size_t)Bq * (Dv + 1) +
                               2 * (size_t)Bq * (Bk + 1) + (size_t)Bk * D + (size_t)Bk * Dv + Bk + 2 * (size_t)Bq);
  if (nK > 0 && smem_ok((const void*)bsa_dkdv_k, kv_bytes))
    bsa_dkdv_k<<<dim3(nK, H, B), 128, kv_bytes, st>>>(p, q, k, v, kb, lse, delta, dout, col_ptr, row_idx, src_idx, dk, dv, dkb);
  TR_LAUNCHED("bsa_bwd");
  TR_CUDA(cudaFreeAsync(delta, st));
}

// Whether the fp32 kernels' tiles (forward, dQ and dK/dV passes) fit in one block's shared memory.
TR_API int tr_bsa_fits(int D, int Dv, int Bq, int Bk) {
  int limit = 0;
  cudaDeviceGetAttribute(&limit, cudaDevAttrMaxSharedMemoryPerBlockOptin, 0);
  const size_t kv = 4 * ((size_t)Bk * (D + 1) + (size_t)Bk * (Dv + 1) + (size_t)Bq * (D + 1) + (size_t)Bq * (Dv + 1) + 2 * (size_t)Bq * (Bk + 1) +
                         (size_t)Bk * D + (size_t)Bk * Dv + Bk + 2 * (size_t)Bq);
  const size_t dq = 4 * ((size_t)Bq * (D + 1) + (size_t)Bq * (Dv + 1) + (size_t)Bk * (D + 1) + (size_t)Bk * (Dv + 1) + (size_t)Bq * (Bk + 1) +
                         (size_t)Bq * D + 2 * (size_t)Bq);
  return kv <= (size_t)limit && dq <= (size_t)limit;
}

// The native signature without the transposed layout is not usable on the GPU: say so.
TR_API void tr_bsa_bwd(const float*, const float*, const float*, const float*, const float*, const float*, const float*, float*, float*,
                       float*, float*, int, int, int, int, int, int, int, int, int, const int32_t*, const int32_t*, const uint8_t*,
                       const uint8_t*, int, int, float, int64_t, int64_t) {
  set_error("tr_bsa_bwd", __FILE__, __LINE__, "the cuda backward needs the transposed layout: call tr_bsa_bwd_t");
}
