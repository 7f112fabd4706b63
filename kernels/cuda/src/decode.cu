// Decoding on the GPU (see api.h for the contract; kernels/native/src/decode.cpp is the same on the CPU).
// tr_decode_attn is split-KV (flash-decoding): the tokens a (batch, head) row reads are cut into
// splits, one thread block per (split, row) keeps an online-softmax partial (max, sum, acc[D]) and a
// second launch merges the splits. Decoding is bound by reading the cache, so the kernel is built
// around its loads: every lane loads 16 bytes of a key row (LPK lanes cover one row, a warp KPW rows
// side by side, so a warp load is contiguous), U rows per lane in flight before any arithmetic.
#include "common.cuh"
#include <cuda_bf16.h>
#include <cub/block/block_scan.cuh>
#include <algorithm>
#include <cstdio>

using namespace tr;

extern "C" void* tr_malloc(int64_t bytes);  // runtime.cu: the stream-ordered pool
extern "C" void tr_free(void* p);

namespace {
constexpr int kThreads = 128;

struct RowTokens {
  const int32_t* pages;
  int count, page, tail, len;
  __device__ int64_t size() const { return pages ? (int64_t)count * page + max(0, len - tail) : len; }
  __device__ int at(int64_t v) const {
    if (!pages) return (int)v;
    const int64_t listed = (int64_t)count * page;
    if (v >= listed) return tail + (int)(v - listed);
    const int t = __ldg(pages + v / page) * page + (int)(v % page);
    return t < tail && t < len ? t : -1;
  }
};

__device__ RowTokens row_tokens(int r, int H, int len, const int32_t* pages, const int32_t* counts, const int32_t* tail, int maxp, int page) {
  if (!pages) return RowTokens{nullptr, 0, 1, len, len};
  return RowTokens{pages + (int64_t)r * maxp, counts[r], page, tail[r % H], len};
}

// 16 bytes of a row as floats: 4 fp32 or 8 bf16.
template <bool BF16> struct Vec;
template <> struct Vec<false> {
  static constexpr int N = 4;
  __device__ static void get(const uint4& u, float* f) {
    f[0] = __uint_as_float(u.x), f[1] = __uint_as_float(u.y), f[2] = __uint_as_float(u.z), f[3] = __uint_as_float(u.w);
  }
};
template <> struct Vec<true> {
  static constexpr int N = 8;
  __device__ static void get(const uint4& u, float* f) {
    const uint32_t w[4] = {u.x, u.y, u.z, u.w};
#pragma unroll
    for (int i = 0; i < 4; i++) {
      const float2 p = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&w[i]));
      f[2 * i] = p.x, f[2 * i + 1] = p.y;
    }
  }
};

// Merges two online-softmax partials (m, l, acc) into the first.
template <int N>
__device__ void merge(float& m, float& l, float* acc, float m2, float l2, const float* acc2) {
  const float M = fmaxf(m, m2), a = __expf(m - M), b = __expf(m2 - M);
  l = l * a + l2 * b;
#pragma unroll
  for (int i = 0; i < N; i++) acc[i] = acc[i] * a + acc2[i] * b;
  m = M;
}

// The block's partial from its warps' (max, sum, acc[D]) in shared memory: written as acc[D], max, sum.
template <int NW, int D>
__device__ void write_partial(const float* sm, const float* sl, const float (*sacc)[D], float* out) {
  for (int d = threadIdx.x; d < D + 2; d += blockDim.x) {
    float M = -1e30f;
    for (int w = 0; w < NW; w++) M = fmaxf(M, sm[w]);
    float L = 0, A = 0;
    for (int w = 0; w < NW; w++) {
      const float c = __expf(sm[w] - M);
      L += sl[w] * c;
      if (d < D) A += sacc[w][d] * c;
    }
    out[d] = d < D ? A : (d == D ? M : L);
  }
}

template <int D, bool BF16, int U>
__global__ void __launch_bounds__(kThreads) decode_split_k(const float* __restrict__ q, const void* __restrict__ kc, const void* __restrict__ vc,
    float* part, int H, int cap, int len, float scale, const int32_t* pages, const int32_t* counts, const int32_t* tail, int maxp, int page,
    int64_t per_split) {
  constexpr int EPL = Vec<BF16>::N, LPK = D / EPL, KPW = 32 / LPK, NW = kThreads / 32;
  constexpr int ES = BF16 ? 2 : 4;  // bytes per element
  static_assert(LPK >= 1 && LPK <= 32 && 32 % LPK == 0, "head dim does not map onto a warp");
  const int r = blockIdx.y, s = blockIdx.x, nsplit = gridDim.x;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, kk = lane / LPK, sub = lane % LPK;
  const RowTokens rt = row_tokens(r, H, len, pages, counts, tail, maxp, page);
  const int64_t n = rt.size(), v0 = s * per_split, v1 = min(n, v0 + per_split);
  float qr[EPL];
#pragma unroll
  for (int i = 0; i < EPL; i++) qr[i] = q[(int64_t)r * D + sub * EPL + i] * scale;
  const char* K = static_cast<const char*>(kc) + (int64_t)r * cap * D * ES + sub * 16;
  const char* V = static_cast<const char*>(vc) + (int64_t)r * cap * D * ES + sub * 16;
  float m = -1e30f, l = 0, acc[EPL];
#pragma unroll
  for (int i = 0; i < EPL; i++) acc[i] = 0;
  for (int64_t base = v0; base < v1; base += (int64_t)NW * KPW * U) {
    uint4 kr[U], vr[U];
    int tok[U];
#pragma unroll
    for (int u = 0; u < U; u++) {
      const int64_t vi = base + (int64_t)(u * NW + warp) * KPW + kk;
      tok[u] = vi < v1 ? rt.at(vi) : -1;
      if (tok[u] >= 0) {
        kr[u] = __ldcs(reinterpret_cast<const uint4*>(K + (int64_t)tok[u] * D * ES));
        vr[u] = __ldcs(reinterpret_cast<const uint4*>(V + (int64_t)tok[u] * D * ES));
      } else {
        kr[u] = vr[u] = make_uint4(0, 0, 0, 0);
      }
    }
    float sc[U], mu = -1e30f;
#pragma unroll
    for (int u = 0; u < U; u++) {
      float f[EPL], d = 0;
      Vec<BF16>::get(kr[u], f);
#pragma unroll
      for (int i = 0; i < EPL; i++) d += qr[i] * f[i];
#pragma unroll
      for (int o = LPK / 2; o > 0; o /= 2) d += __shfl_xor_sync(0xffffffffu, d, o);
      sc[u] = tok[u] >= 0 ? d : -INFINITY;
      mu = fmaxf(mu, sc[u]);
    }
    if (mu > m) {
      const float c = __expf(m - mu);
      l *= c;
#pragma unroll
      for (int i = 0; i < EPL; i++) acc[i] *= c;
      m = mu;
    }
#pragma unroll
    for (int u = 0; u < U; u++) {
      const float p = __expf(sc[u] - m);  // 0 for -inf
      float f[EPL];
      Vec<BF16>::get(vr[u], f);
      l += p;
#pragma unroll
      for (int i = 0; i < EPL; i++) acc[i] += p * f[i];
    }
  }
  // key groups of a warp, then the warps of the block
#pragma unroll
  for (int o = LPK; o < 32; o *= 2) {
    float a2[EPL];
    const float m2 = __shfl_xor_sync(0xffffffffu, m, o), l2 = __shfl_xor_sync(0xffffffffu, l, o);
#pragma unroll
    for (int i = 0; i < EPL; i++) a2[i] = __shfl_xor_sync(0xffffffffu, acc[i], o);
    merge<EPL>(m, l, acc, m2, l2, a2);
  }
  __shared__ float sm[NW], sl[NW], sacc[NW][D];
  if (kk == 0) {
#pragma unroll
    for (int i = 0; i < EPL; i++) sacc[warp][sub * EPL + i] = acc[i];
    if (sub == 0) sm[warp] = m, sl[warp] = l;
  }
  __syncthreads();
  write_partial<NW, D>(sm, sl, sacc, part + ((int64_t)r * nsplit + s) * (D + 2));
}

// part [rows, nsplit, D + 2] (acc, max, sum) -> out [rows, D]
__global__ void decode_combine_k(const float* part, float* out, int nsplit, int D) {
  const int r = blockIdx.x;
  const float* p = part + (int64_t)r * nsplit * (D + 2);
  float M = -1e30f;
  for (int s = 0; s < nsplit; s++) M = fmaxf(M, p[s * (D + 2) + D]);
  for (int d = threadIdx.x; d < D; d += blockDim.x) {
    float L = 0, A = 0;
    for (int s = 0; s < nsplit; s++) {
      const float c = __expf(p[s * (D + 2) + D] - M);
      L += p[s * (D + 2) + D + 1] * c;
      A += p[s * (D + 2) + d] * c;
    }
    out[(int64_t)r * D + d] = L > 0 ? A / L : 0.0f;
  }
}

int g_sms = 0;
int sm_count() {
  if (!g_sms) cudaDeviceGetAttribute(&g_sms, cudaDevAttrMultiProcessorCount, 0);
  return g_sms > 0 ? g_sms : 80;
}

// Splits per row: enough blocks to fill the GPU several times over, none shorter than 256 tokens.
int splits_for(int rows, int64_t vmax) {
  const int64_t target = (int64_t)sm_count() * 16;
  int64_t ns = (target + rows - 1) / rows;
  ns = std::min<int64_t>(ns, (vmax + 255) / 256);
  return (int)std::max<int64_t>(1, std::min<int64_t>(ns, 1024));
}

// Split-KV around a split kernel: partials [rows, nsplit, D + 2] from split(part, grid, per), then the merge into out.
template <class Split>
void split_kv(int rows, int64_t vmax, int D, float* out, Split split) {
  const int nsplit = splits_for(rows, vmax);
  const int64_t per = (vmax + nsplit - 1) / nsplit;
  float* part = static_cast<float*>(tr_malloc((int64_t)rows * nsplit * (D + 2) * 4));
  if (!part) return;
  split(part, dim3(nsplit, rows), per);
  decode_combine_k<<<rows, 128, 0, stream()>>>(part, out, nsplit, D);
  TR_LAUNCHED("decode_combine_k");
  tr_free(part);
}

template <int D, bool BF16>
void launch_decode(const float* q, const void* k, const void* v, float* out, int B, int H, int cap, int len, float scale, const int32_t* pages,
                   const int32_t* counts, const int32_t* tail, int maxp, int page, int64_t vmax) {
  split_kv(B * H, vmax, D, out, [&](float* part, dim3 grid, int64_t per) {
    decode_split_k<D, BF16, 4><<<grid, kThreads, 0, stream()>>>(q, k, v, part, H, cap, len, scale, pages, counts, tail, maxp, page, per);
    TR_LAUNCHED("decode_split_k");
  });
}


__global__ void kv_write_k(int fmt, const float* src, void* dst, int64_t rows, int n, int D, int cap, int pos) {
  const int64_t total = rows * n * D;
  GRID_STRIDE(i, total) {
    const int64_t r = i / ((int64_t)n * D), rem = i % ((int64_t)n * D);
    const int64_t o = (r * cap + pos) * D + rem;
    if (fmt == 1) static_cast<__nv_bfloat16*>(dst)[o] = __float2bfloat16_rn(src[i]);
    else static_cast<float*>(dst)[o] = src[i];
  }
}

__device__ float load_elem(const void* k, int fmt, int64_t i) {
  return fmt == 1 ? __bfloat162float(static_cast<const __nv_bfloat16*>(k)[i]) : static_cast<const float*>(k)[i];
}

__global__ void page_minmax_k(const void* k, int fmt, float* kmin, float* kmax, int64_t rows, int D, int cap, int page, int cap_pages, int p0, int np, int len) {
  GRID_STRIDE(i, rows * np * D) {
    const int d = (int)(i % D);
    const int64_t j = i / D, r = j / np;
    const int p = p0 + (int)(j % np);
    float mn = INFINITY, mx = -INFINITY;
    for (int t = p * page; t < min(len, (p + 1) * page); t++) {
      const float x = load_elem(k, fmt, (r * cap + t) * D + d);
      mn = fminf(mn, x), mx = fmaxf(mx, x);
    }
    kmin[(r * cap_pages + p) * D + d] = mn;
    kmax[(r * cap_pages + p) * D + d] = mx;
  }
}

// One warp per (row, page).
__global__ void quest_scores_k(const float* q, const float* kmin, const float* kmax, float* scores, int H, int D, int cap_pages, int n_pages,
                               const int32_t* head_sink, int tail_page, int64_t total) {
  const int64_t j = (blockIdx.x * (int64_t)blockDim.x + threadIdx.x) / 32;
  const int lane = threadIdx.x % 32;
  if (j >= total) return;
  const int64_t r = j / n_pages;
  const int p = (int)(j % n_pages), sink = head_sink[r % H];
  if (sink >= 0 || p >= tail_page) {
    if (lane == 0) scores[j] = sink >= 0 && p < sink ? INFINITY : -INFINITY;
    return;
  }
  float s = 0;
  for (int d = lane; d < D; d += 32) {
    const float x = q[r * D + d];
    s += fmaxf(x * kmin[(r * cap_pages + p) * D + d], x * kmax[(r * cap_pages + p) * D + d]);
  }
  for (int o = 16; o > 0; o /= 2) s += __shfl_xor_sync(0xffffffffu, s, o);
  if (lane == 0) scores[j] = s;
}

__global__ void label_write_k(const float* src, float* label, const int32_t* channels, int H, int n, int D, int r, int cap, int pos, int64_t total) {
  GRID_STRIDE(i, total) {
    const int j = (int)(i % r);
    const int64_t rt = i / r, row = rt / n;
    const int t = (int)(rt % n);
    label[(row * cap + pos + t) * r + j] = src[rt * D + channels[(row % H) * r + j]];
  }
}

__global__ void label_scores_k(const float* q, const float* label, const int32_t* channels, float* scores, int H, int D, int r, int cap, int len,
                               int tail_from, int64_t total) {
  GRID_STRIDE(i, total) {
    const int64_t row = i / len;
    const int t = (int)(i % len);
    if (t >= tail_from) {
      scores[i] = -INFINITY;
      continue;
    }
    const int32_t* ch = channels + (row % H) * r;
    const float* y = label + (row * cap + t) * r;
    float s = 0;
    for (int j = 0; j < r; j++) s += q[row * D + ch[j]] * y[j];
    scores[i] = s;
  }
}

__device__ uint32_t order_key(float x) {
  const uint32_t u = __float_as_uint(x);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

// One block per row: the k-th largest key by four 8-bit radix passes, then an ordered compaction
// (ties to the lower index), as the CPU's nth_element + scan.
constexpr int kTopkThreads = 256;
__global__ void __launch_bounds__(kTopkThreads) topk_rows_k(const float* scores, int n, int k, int32_t* idx, int32_t* counts) {
  using Scan = cub::BlockScan<int, kTopkThreads>;
  __shared__ typename Scan::TempStorage scan;
  __shared__ int hist[256];
  __shared__ uint32_t s_prefix, s_mask;
  __shared__ int s_need, s_valid;
  const int64_t r = blockIdx.x;
  const float* s = scores + r * n;
  int32_t* o = idx + r * k;
  if (threadIdx.x == 0) s_valid = 0, s_prefix = 0, s_mask = 0;
  __syncthreads();
  int valid = 0;
  for (int j = threadIdx.x; j < n; j += blockDim.x) valid += s[j] > -INFINITY;
  atomicAdd(&s_valid, valid);
  __syncthreads();
  const int take = min(k, s_valid);
  if (threadIdx.x == 0) s_need = take;
  for (int j = threadIdx.x; j < k; j += blockDim.x) o[j] = -1;
  if (threadIdx.x == 0) counts[r] = take;
  if (take == 0) return;
  for (int shift = 24; shift >= 0; shift -= 8) {
    hist[threadIdx.x] = 0;
    __syncthreads();
    for (int j = threadIdx.x; j < n; j += blockDim.x) {
      const float x = s[j];
      if (!(x > -INFINITY)) continue;
      const uint32_t key = order_key(x);
      if ((key & s_mask) == s_prefix) atomicAdd(&hist[(key >> shift) & 255], 1);
    }
    __syncthreads();
    if (threadIdx.x == 0) {
      int cum = 0;
      for (int d = 255; d >= 0; d--) {
        if (cum + hist[d] >= s_need) {
          s_need -= cum;
          s_prefix |= (uint32_t)d << shift;
          s_mask |= 255u << shift;
          break;
        }
        cum += hist[d];
      }
    }
    __syncthreads();
  }
  const uint32_t T = s_prefix;
  int ties = s_need, w = 0;  // ties: how many keys equal to T are taken, lowest indices first
  for (int base = 0; base < n; base += blockDim.x) {
    const int j = base + threadIdx.x;
    const float x = j < n ? s[j] : -INFINITY;
    const bool ok = x > -INFINITY;
    const uint32_t key = ok ? order_key(x) : 0;
    int tieRank, tieTotal, pos, selTotal;
    Scan(scan).ExclusiveSum(ok && key == T ? 1 : 0, tieRank, tieTotal);
    __syncthreads();
    const int sel = ok && (key > T || (key == T && tieRank < ties)) ? 1 : 0;
    Scan(scan).ExclusiveSum(sel, pos, selTotal);
    __syncthreads();
    if (sel) o[w + pos] = j;
    w += selTotal;
    ties -= min(ties, tieTotal);
  }
}

// One thread per token row: rank every channel by magnitude (ties to the lower channel), keep the top.
__global__ void mustafar_compress_k(const float* src, uint32_t* bits, float* vals, int n, int D, int cap, int pos, int keep, int64_t total) {
  GRID_STRIDE(j, total) {
    const int64_t row = j / n;
    const int t = (int)(j % n), W = D / 32;
    const float* x = src + j * D;
    uint32_t* b = bits + (row * cap + pos + t) * W;
    float* v = vals + (row * cap + pos + t) * keep;
    int w = 0;
    for (int i = 0; i < W; i++) b[i] = 0;
    for (int d = 0; d < D; d++) {
      const float a = fabsf(x[d]);
      int rank = 0;
      for (int e = 0; e < D; e++) {
        const float c = fabsf(x[e]);
        rank += c > a || (c == a && e < d);
      }
      if (rank < keep) {
        b[d >> 5] |= 1u << (d & 31);
        v[w++] = x[d];
      }
    }
  }
}

// Attention on Mustafar's compressed rows, a warp per token row: lane l owns channels
// [l*CPL, (l+1)*CPL); it finds where its kept values start in the row from the bitmap (popcount of the
// bits before its channels), loads its few values (the warp's loads cover the row's packed values
// contiguously), and keeps its channels' accumulators in registers. U rows per warp in flight, in two
// rounds of loads: every row's K and V bitmaps, then every row's K and V values.
template <int W> struct Bits;
template <> struct Bits<1> { uint32_t w[1]; __device__ void load(const uint32_t* p) { w[0] = __ldcs(p); } };
template <> struct Bits<2> { uint32_t w[2]; __device__ void load(const uint32_t* p) { const uint2 u = __ldcs(reinterpret_cast<const uint2*>(p)); w[0] = u.x, w[1] = u.y; } };
template <> struct Bits<4> { uint32_t w[4]; __device__ void load(const uint32_t* p) { const uint4 u = __ldcs(reinterpret_cast<const uint4*>(p)); w[0] = u.x, w[1] = u.y, w[2] = u.z, w[3] = u.w; } };

template <int D, int U>
__global__ void __launch_bounds__(kThreads) mustafar_split_k(const float* q, const uint32_t* kbits, const float* kvals, const uint32_t* vbits,
    const float* vvals, float* part, int cap, int len, int keep_k, int keep_v, float scale, int64_t per_split) {
  constexpr int W = D / 32, CPL = D / 32, NW = kThreads / 32;
  const int r = blockIdx.y, s = blockIdx.x, nsplit = gridDim.x;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int c0 = lane * CPL, w0 = c0 / 32, b0 = c0 % 32;
  const uint32_t mine = CPL == 32 ? 0xffffffffu : ((1u << CPL) - 1u);
  float qr[CPL], acc[CPL];
#pragma unroll
  for (int i = 0; i < CPL; i++) qr[i] = q[(int64_t)r * D + c0 + i] * scale, acc[i] = 0;
  const int64_t v0 = s * per_split, v1 = min((int64_t)len, v0 + per_split);
  float m = -1e30f, l = 0;
  // where the lane's values start in a row, and which of its channels are kept
  auto locate = [&](const Bits<W>& b, int& start) -> uint32_t {
    start = 0;
#pragma unroll
    for (int i = 0; i < W; i++) if (i < w0) start += __popc(b.w[i]);
    uint32_t word = b.w[0];
#pragma unroll
    for (int i = 1; i < W; i++) if (i == w0) word = b.w[i];
    start += __popc(b0 ? (word & ((1u << b0) - 1u)) : 0u);
    return (word >> b0) & mine;
  };
  for (int64_t base = v0 + warp; base < v1; base += (int64_t)NW * U) {
    Bits<W> kb[U], vb[U];
#pragma unroll
    for (int u = 0; u < U; u++) {
      const int64_t t = base + (int64_t)u * NW;
      if (t < v1) {
        const int64_t row = (int64_t)r * cap + t;
        kb[u].load(kbits + row * W);
        vb[u].load(vbits + row * W);
      } else {
#pragma unroll
        for (int i = 0; i < W; i++) kb[u].w[i] = vb[u].w[i] = 0;
      }
    }
    float kx[U][CPL], vx[U][CPL];
    uint32_t vm[U];
#pragma unroll
    for (int u = 0; u < U; u++) {
      const int64_t row = (int64_t)r * cap + min(base + (int64_t)u * NW, v1 - 1);
      int ks, vs;
      const uint32_t km = locate(kb[u], ks);
      vm[u] = locate(vb[u], vs);
      const float* xk = kvals + row * keep_k + ks;
      const float* xv = vvals + row * keep_v + vs;
      int jk = 0, jv = 0;
#pragma unroll
      for (int i = 0; i < CPL; i++) {
        kx[u][i] = (km >> i) & 1u ? __ldcs(xk + jk++) : 0.0f;
        vx[u][i] = (vm[u] >> i) & 1u ? __ldcs(xv + jv++) : 0.0f;
      }
    }
    float sc[U], mu = -1e30f;
#pragma unroll
    for (int u = 0; u < U; u++) {
      float d = 0;
#pragma unroll
      for (int i = 0; i < CPL; i++) d += qr[i] * kx[u][i];
#pragma unroll
      for (int o = 16; o > 0; o /= 2) d += __shfl_xor_sync(0xffffffffu, d, o);
      sc[u] = base + (int64_t)u * NW < v1 ? d : -INFINITY;
      mu = fmaxf(mu, sc[u]);
    }
    if (mu > m) {
      const float c = __expf(m - mu);
      l *= c;
#pragma unroll
      for (int i = 0; i < CPL; i++) acc[i] *= c;
      m = mu;
    }
#pragma unroll
    for (int u = 0; u < U; u++) {
      const float p = __expf(sc[u] - m);  // 0 past the split
      l += p;
#pragma unroll
      for (int i = 0; i < CPL; i++) acc[i] += p * vx[u][i];
    }
  }
  __shared__ float sm[NW], sl[NW], sacc[NW][D];
#pragma unroll
  for (int i = 0; i < CPL; i++) sacc[warp][c0 + i] = acc[i];
  if (lane == 0) sm[warp] = m, sl[warp] = l;
  __syncthreads();
  write_partial<NW, D>(sm, sl, sacc, part + ((int64_t)r * nsplit + s) * (D + 2));
}

template <int D, int U>
void launch_mustafar(const float* q, const uint32_t* kbits, const float* kvals, const uint32_t* vbits, const float* vvals, float* out, int B, int H,
                     int cap, int len, int keep_k, int keep_v, float scale) {
  split_kv(B * H, len, D, out, [&](float* part, dim3 grid, int64_t per) {
    mustafar_split_k<D, U><<<grid, kThreads, 0, stream()>>>(q, kbits, kvals, vbits, vvals, part, cap, len, keep_k, keep_v, scale, per);
    TR_LAUNCHED("mustafar_split_k");
  });
}

bool bad_dim(const char* what, int D) {
  char msg[160];
  std::snprintf(msg, sizeof msg, "head dim %d is not one of the compiled ones (32, 64, 128; bf16 also 256)", D);
  set_error(what, __FILE__, __LINE__, msg);
  return false;
}
}  // namespace

TR_API void tr_kv_write(int fmt, const float* src, void* dst, int B, int H, int n, int D, int cap, int pos) {
  kv_write_k<<<blocks_for((int64_t)B * H * n * D), 256, 0, stream()>>>(fmt, src, dst, (int64_t)B * H, n, D, cap, pos);
  TR_LAUNCHED("kv_write_k");
}

TR_API void tr_decode_attn(const float* q, const void* k, const void* v, float* out, int B, int H, int D, int cap, int len, int fmt,
                           float scale, const int32_t* pages, const int32_t* counts, const int32_t* tail_from, int maxp, int page,
                           int64_t vmax) {
  if (B * H == 0 || vmax <= 0) return;
#define TR_DECODE(DD, BF) launch_decode<DD, BF>(q, k, v, out, B, H, cap, len, scale, pages, counts, tail_from, maxp, page, vmax)
  if (fmt == 1) {
    if (D == 64) TR_DECODE(64, true);
    else if (D == 128) TR_DECODE(128, true);
    else if (D == 256) TR_DECODE(256, true);
    else if (D == 32) TR_DECODE(32, true);
    else bad_dim("tr_decode_attn", D);
  } else {
    if (D == 64) TR_DECODE(64, false);
    else if (D == 128) TR_DECODE(128, false);
    else if (D == 32) TR_DECODE(32, false);
    else bad_dim("tr_decode_attn", D);
  }
#undef TR_DECODE
}

TR_API void tr_topk_rows(const float* scores, int rows, int n, int k, int32_t* idx, int32_t* counts) {
  if (rows == 0) return;
  topk_rows_k<<<rows, kTopkThreads, 0, stream()>>>(scores, n, k, idx, counts);
  TR_LAUNCHED("topk_rows_k");
}

TR_API void tr_page_minmax(const void* k, int fmt, float* kmin, float* kmax, int B, int H, int D, int cap, int page, int cap_pages,
                           int p0, int p1, int len) {
  if (p1 <= p0) return;
  const int64_t total = (int64_t)B * H * (p1 - p0) * D;
  page_minmax_k<<<blocks_for(total), 256, 0, stream()>>>(k, fmt, kmin, kmax, (int64_t)B * H, D, cap, page, cap_pages, p0, p1 - p0, len);
  TR_LAUNCHED("page_minmax_k");
}

TR_API void tr_quest_scores(const float* q, const float* kmin, const float* kmax, float* scores, int B, int H, int D, int cap_pages,
                            int n_pages, const int32_t* head_sink, int tail_page) {
  const int64_t total = (int64_t)B * H * n_pages;
  if (total == 0) return;
  quest_scores_k<<<(int)((total * 32 + 255) / 256), 256, 0, stream()>>>(q, kmin, kmax, scores, H, D, cap_pages, n_pages, head_sink, tail_page, total);
  TR_LAUNCHED("quest_scores_k");
}

TR_API void tr_label_write(const float* src, float* label, const int32_t* channels, int B, int H, int n, int D, int r, int cap, int pos) {
  const int64_t total = (int64_t)B * H * n * r;
  if (total == 0) return;
  label_write_k<<<blocks_for(total), 256, 0, stream()>>>(src, label, channels, H, n, D, r, cap, pos, total);
  TR_LAUNCHED("label_write_k");
}

TR_API void tr_label_scores(const float* q, const float* label, const int32_t* channels, float* scores, int B, int H, int D, int r,
                            int cap, int len, int tail_from) {
  const int64_t total = (int64_t)B * H * len;
  if (total == 0) return;
  label_scores_k<<<blocks_for(total), 256, 0, stream()>>>(q, label, channels, scores, H, D, r, cap, len, tail_from, total);
  TR_LAUNCHED("label_scores_k");
}

TR_API void tr_mustafar_compress(const float* src, uint32_t* bits, float* vals, int B, int H, int n, int D, int cap, int pos, int keep) {
  const int64_t total = (int64_t)B * H * n;
  if (total == 0) return;
  mustafar_compress_k<<<blocks_for(total, 128), 128, 0, stream()>>>(src, bits, vals, n, D, cap, pos, keep, total);
  TR_LAUNCHED("mustafar_compress_k");
}

TR_API void tr_decode_attn_mustafar(const float* q, const uint32_t* kbits, const float* kvals, const uint32_t* vbits, const float* vvals,
                                    float* out, int B, int H, int D, int cap, int len, int keep_k, int keep_v, float scale) {
  if (B * H == 0 || len <= 0) return;
  if (D == 64) launch_mustafar<64, 8>(q, kbits, kvals, vbits, vvals, out, B, H, cap, len, keep_k, keep_v, scale);
  else if (D == 128) launch_mustafar<128, 4>(q, kbits, kvals, vbits, vvals, out, B, H, cap, len, keep_k, keep_v, scale);
  else if (D == 32) launch_mustafar<32, 8>(q, kbits, kvals, vbits, vvals, out, B, H, cap, len, keep_k, keep_v, scale);
  else bad_dim("tr_decode_attn_mustafar", D);
}

TR_API double tr_copy_bandwidth(int64_t bytes, int reps) {
  void* a = tr_malloc(bytes);
  void* b = tr_malloc(bytes);
  if (!a || !b) return 0;
  cudaMemsetAsync(a, 1, (size_t)bytes, stream());
  cudaEvent_t e0, e1;
  cudaEventCreate(&e0);
  cudaEventCreate(&e1);
  double best = 0;
  for (int rep = 0; rep <= reps; rep++) {
    cudaEventRecord(e0, stream());
    cudaMemcpyAsync(b, a, (size_t)bytes, cudaMemcpyDeviceToDevice, stream());
    cudaEventRecord(e1, stream());
    cudaEventSynchronize(e1);
    float ms = 0;
    cudaEventElapsedTime(&ms, e0, e1);
    if (rep > 0 && ms > 0) best = std::max(best, 2.0 * (double)bytes / (ms / 1e3) / 1e9);
  }
  cudaEventDestroy(e0);
  cudaEventDestroy(e1);
  tr_free(a);
  tr_free(b);
  return best;
}
