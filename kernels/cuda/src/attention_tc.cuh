// Device helpers shared by the tensor-core attention forwards (attention_tc.cu: mma.sync, sm_80 up;
// attention_hopper.cu: wgmma, sm_90a): tile constants, the swizzled 64 x 64 bf16 tile and its
// cp.async loader, the block-sparse arguments, and the masked online-softmax update of a 16-row
// slice of scores in the mma/wgmma accumulator layout.
#pragma once
#include "common.cuh"
#include <cuda_bf16.h>

namespace tr {
namespace tc {
constexpr int T = 64;  // rows of a query block, keys of a key block, head dim
constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;
constexpr float kMaxSlack = 8.0f;  // see softmax_update

// An accumulator tile (mma/wgmma layout) set to zero.
__device__ __forceinline__ void zero(float (&a)[8][4]) {
#pragma unroll
  for (int x = 0; x < 8; x++) a[x][0] = a[x][1] = a[x][2] = a[x][3] = 0.0f;
}
__device__ __forceinline__ int swz(int row, int col) { return row * T + ((((col >> 3) ^ (row & 7)) << 3) | (col & 7)); }

__device__ __forceinline__ void cp_async16(void* smem, const void* gmem, bool valid) {
  const unsigned s = (unsigned)__cvta_generic_to_shared(smem);
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(s), "l"(gmem), "r"(valid ? 16 : 0));
}
__device__ __forceinline__ void cp_commit() { asm volatile("cp.async.commit_group;\n"); }
template <int N>
__device__ __forceinline__ void cp_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N)); }

__device__ __forceinline__ void ldsm_x4(uint32_t (&r)[4], const void* p) {
  const unsigned s = (unsigned)__cvta_generic_to_shared(p);
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n" : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(s));
}
__device__ __forceinline__ void ldsm_x4_t(uint32_t (&r)[4], const void* p) {
  const unsigned s = (unsigned)__cvta_generic_to_shared(p);
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(s));
}
__device__ __forceinline__ void mma(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
__device__ __forceinline__ uint32_t pack(float lo, float hi) {
  __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<uint32_t*>(&v);
}

// Rows [row0, row0+64) of a [len, 64] bf16 matrix into a swizzled tile by the NT threads of the CTA;
// rows past len read as zeros. Each thread moves the same 16-byte chunk of every (NT/8)-th row, so its
// swizzled offset is one constant and the copies unroll with immediate offsets (a run-time strided loop
// cost the wgmma kernel a third of its instructions).
template <int NT>
__device__ __forceinline__ void load_tile(__nv_bfloat16* tile, const __nv_bfloat16* base, int row0, int len) {
  static_assert(NT >= 64 && (T * 8) % NT == 0, "rows per pass must keep row % 8 per thread");
  constexpr int kStep = NT / 8, kPasses = T * 8 / NT;
  const int r = threadIdx.x / 8 % kStep, ch = threadIdx.x & 7;
  __nv_bfloat16* dst = tile + r * T + ((ch ^ (r & 7)) << 3);
  const __nv_bfloat16* src = base + (int64_t)(row0 + r) * T + ch * 8;
  if (row0 + T <= len) {
#pragma unroll
    for (int x = 0; x < kPasses; x++) cp_async16(dst + x * kStep * T, src + x * kStep * T, true);
  } else {
#pragma unroll
    for (int x = 0; x < kPasses; x++) {
      const bool ok = row0 + r + x * kStep < len;
      cp_async16(dst + x * kStep * T, ok ? src + x * kStep * T : base, ok);
    }
  }
}

// fp32 -> tf32 (round to nearest, ties away) and the tf32 tensor-core product m16n8k8.
__device__ __forceinline__ uint32_t tf32(float x) {
  uint32_t r;
  asm("cvt.rna.tf32.f32 %0, %1;\n" : "=r"(r) : "f"(x));
  return r;
}
__device__ __forceinline__ void mma_tf32(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
// tf32 A fragments (mma m16n8k8) of rows r0..r0+15 of a row-major fp32 tile X with row stride LD,
// all 64 columns: Q in the tf32 forward; the pinned operands of the tf32 backward.
template <int LD>
__device__ __forceinline__ void frag_a(uint32_t (&f)[8][4], const float* X, int r0, int g, int t) {
#pragma unroll
  for (int kk = 0; kk < 8; kk++) {
    f[kk][0] = tf32(X[(r0 + g) * LD + kk * 8 + t]);
    f[kk][1] = tf32(X[(r0 + g + 8) * LD + kk * 8 + t]);
    f[kk][2] = tf32(X[(r0 + g) * LD + kk * 8 + t + 4]);
    f[kk][3] = tf32(X[(r0 + g + 8) * LD + kk * 8 + t + 4]);
  }
}

struct Args {
  int H, Lq, Lk, LH, nQ;
  const int32_t *row_ptr, *col_idx;
  const uint8_t *full, *mask;
  int causal, window;
  float scale;
  int64_t kb_sb, kb_sh;
};

__device__ __forceinline__ float ex2(float x) {  // 2^x; ex2.approx(-inf) = +0
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
}

// Scores of a partial tile: -inf outside this lane's rows' key ranges [lo, hi] (and, kBits, where the
// block's byte mask is 0; bits points at row rowa, column 2t of it), else scale * s + key bias in
// log2 units (kKb), scale * s (kScale) or s as it is (the caller scales, as for plain tiles). c0: the
// key of column 2t. The range test compares each column's constant offset with the row's bounds
// relative to c0: two compares with immediates and a select per score.
template <bool kBits, bool kKb, bool kScale>
__device__ __forceinline__ void mask_scores(float (&s)[8][4], const int (&lo)[2], const int (&hi)[2], int c0, const uint8_t* bits,
                                            const float* kb, int Lk, float sl2) {
#pragma unroll
  for (int hf = 0; hf < 2; hf++) {
    const int lo_r = lo[hf] - c0, hi_r = hi[hf] - c0;
#pragma unroll
    for (int nt = 0; nt < 8; nt++) {
      const uint32_t pair = kBits ? *reinterpret_cast<const uint16_t*>(bits + hf * 8 * T + nt * 8) : 0x0101u;
#pragma unroll
      for (int x = 0; x < 2; x++) {
        const int k = nt * 8 + x;
        const bool in = k >= lo_r && k <= hi_r && (!kBits || ((pair >> (8 * x)) & 0xFF));
        float& v = s[nt][2 * hf + x];
        const float kept = kKb ? fmaf(v, sl2, kb[min(c0 + k, Lk - 1)] * kLog2e) : kScale ? v * sl2 : v;
        v = in ? kept : -INFINITY;
      }
    }
  }
}

// A partial tile's scores in log2 units (kRaw: unscaled where there is no key bias): the token rule
// as one key range per row, then per score a compare pair and a select. The earlier per-score form
// (range, byte mask and key bias in one expression) compiled to ~580 branchy instructions per tile: a
// third of window's time went to its two edge tiles per row.
template <bool kRaw = false>
__device__ __forceinline__ void partial_scores(const Args& p, float (&s)[8][4], const float* kb, int pi, int j0, int i0, int rowa, int t,
                                               float sl2) {
  int lo[2], hi[2];
#pragma unroll
  for (int hf = 0; hf < 2; hf++) {
    const int qi = rowa + hf * 8 + (p.Lk - p.Lq);
    lo[hf] = p.window >= 0 ? max(0, qi - p.window) : 0;
    int h = p.causal ? qi : p.Lk - 1;
    if (p.window >= 0) h = min(h, qi + p.window);
    hi[hf] = min(h, p.Lk - 1);
  }
  const uint8_t* bits = p.mask ? p.mask + (int64_t)pi * T * T + (rowa - i0) * T + 2 * t : nullptr;
  const int c0 = j0 + 2 * t;
  if (bits) {
    if (kb) mask_scores<true, true, true>(s, lo, hi, c0, bits, kb, p.Lk, sl2);
    else mask_scores<true, false, !kRaw>(s, lo, hi, c0, bits, kb, p.Lk, sl2);
  } else {
    if (kb) mask_scores<false, true, true>(s, lo, hi, c0, bits, kb, p.Lk, sl2);
    else mask_scores<false, false, !kRaw>(s, lo, hi, c0, bits, kb, p.Lk, sl2);
  }
}

// A tile's scores in log2 units, scaled: the partial-tile rule, else the key bias, else the scale.
__device__ __forceinline__ void scaled_scores(const Args& p, float (&s)[8][4], const float* kb, int pi, int i0, int rowa, int t, float sl2) {
  const int j0 = p.col_idx[pi] * T;
  if (!(p.full[pi] != 0 && j0 + T <= p.Lk)) {
    partial_scores(p, s, kb, pi, j0, i0, rowa, t, sl2);
    return;
  }
#pragma unroll
  for (int nt = 0; nt < 8; nt++)
#pragma unroll
    for (int e = 0; e < 4; e++) s[nt][e] = kb ? fmaf(s[nt][e], sl2, kb[j0 + nt * 8 + 2 * t + (e & 1)] * kLog2e) : s[nt][e] * sl2;
}
// The token rule inside a partial block: may query row `row` (absolute) see key c? (as attention.cu)
__device__ __forceinline__ bool allowed(const Args& p, int row, int c, const uint8_t* bits, int bit) {
  if (c >= p.Lk) return false;
  const int qi = row + (p.Lk - p.Lq);
  int lo = p.window >= 0 ? max(0, qi - p.window) : 0;
  int hi = p.causal ? qi : p.Lk - 1;
  if (p.window >= 0) hi = min(hi, qi + p.window);
  return c >= lo && c <= hi && (!bits || bits[bit]);
}
// Accumulator-layout results (16 rows x 64, rows r and r + 8 for this lane) into a [rows, 64] matrix.
__device__ __forceinline__ void store_acc(float* dst, const float (&acc)[8][4], int rowa, int len, float mul, int t) {
#pragma unroll
  for (int hf = 0; hf < 2; hf++) {
    const int row = rowa + hf * 8;
    if (row >= len) continue;
#pragma unroll
    for (int nt = 0; nt < 8; nt++)
      *reinterpret_cast<float2*>(dst + (int64_t)row * T + nt * 8 + 2 * t) = make_float2(acc[nt][2 * hf] * mul, acc[nt][2 * hf + 1] * mul);
  }
}

// The maximum over a row of this lane's quad: 8 partial maxima by a tree, then the 4 lanes.
__device__ __forceinline__ float row_max(float (&tr)[8]) {
#pragma unroll
  for (int w = 4; w > 0; w >>= 1)
#pragma unroll
    for (int x = 0; x < w; x++) tr[x] = fmaxf(tr[x], tr[x + w]);
  float mx = tr[0];
  mx = fmaxf(mx, __shfl_xor_sync(0xffffffff, mx, 1));
  return fmaxf(mx, __shfl_xor_sync(0xffffffff, mx, 2));
}
// The running maximum moves only when a tile's maximum mt passes it by more than kMaxSlack (log2
// units), so P may reach 2^kMaxSlack (harmless in fp32 and bf16) and the output correction is
// skipped on nearly every tile. Any maximum gives the same softmax: the row sum and the lse use
// the one the numerators did. Returns the new maximum; corr: the factor for the output so far.
__device__ __forceinline__ float lazy_max(float mt, float m, float& corr) {
  const float mnew = mt > m + kMaxSlack ? mt : m;
  corr = mnew == m ? 1.0f : ex2(m - mnew);
  return mnew;
}

// Token rule (partial blocks), scale, key bias and the online-softmax update of one 16 x 64 tile of
// raw scores held in mma accumulator layout (s[n-tile][c0..c3]: rows g and g+8, columns 2t, 2t+1);
// P overwrites S; corr receives the factor the output rows must be scaled by (rescale() below; the
// wgmma kernel applies it only once the PV product in flight has landed). Statistics in log2 units. Full
// blocks without key bias (the bulk of dense, window and BigBird) take one FFMA per score.
// kSum false: the caller sums P elsewhere (on the tensor cores) and lrow is left alone.
// kPlain: 1 when the caller knows the tile is plain (tile_plain), 0 when it knows it is not, -1 to
// decide here.
__device__ __forceinline__ bool tile_plain(const Args& p, int pi, const float* kb) {
  return !kb && p.full[pi] != 0 && (p.col_idx[pi] + 1) * T <= p.Lk;
}
template <bool kSum = true, int kPlain = -1>
__device__ __forceinline__ void softmax_update(const Args& p, float (&s)[8][4], float (&corr)[2], float (&mrow)[2], float (&lrow)[2],
                                               const float* kb, int pi, int i0, int rowa, int t, float sl2) {
  const int j0 = kPlain == 1 ? 0 : p.col_idx[pi] * T;
  const bool full = kPlain == 1 || (p.full[pi] != 0 && j0 + T <= p.Lk);
  // Two separate loops, so that no per-score test reads `full`: with one loop ptxas kept 32 copies of
  // that predicate as bits in registers, ~70 integer instructions per tile on the plain path too.
  if (!full) {
    partial_scores<true>(p, s, kb, pi, j0, i0, rowa, t, sl2);
  } else if (kb) {
#pragma unroll
    for (int nt = 0; nt < 8; nt++)
#pragma unroll
      for (int e = 0; e < 4; e++) s[nt][e] = s[nt][e] * sl2 + kb[j0 + nt * 8 + 2 * t + (e & 1)] * kLog2e;
  }
  const float mul = kPlain == 1 || !kb ? sl2 : 1.0f;  // raw scores (plain tiles, partial ones without key bias) need the scale
#pragma unroll
  for (int hf = 0; hf < 2; hf++) {
    // Tree reductions (max, then sum): a 16-long dependent chain stalls the warp on every step.
    float tr[8];
#pragma unroll
    for (int nt = 0; nt < 8; nt++) tr[nt] = fmaxf(s[nt][2 * hf], s[nt][2 * hf + 1]);
    const float mnew = lazy_max(row_max(tr) * mul, mrow[hf], corr[hf]);
    const float neg = mnew == -INFINITY ? 0.0f : -mnew;  // a fully masked row so far: every p is 0
#pragma unroll
    for (int nt = 0; nt < 8; nt++) {
      s[nt][2 * hf] = ex2(fmaf(s[nt][2 * hf], mul, neg));
      s[nt][2 * hf + 1] = ex2(fmaf(s[nt][2 * hf + 1], mul, neg));
      if (kSum) tr[nt] = s[nt][2 * hf] + s[nt][2 * hf + 1];
    }
    if (kSum) {
#pragma unroll
      for (int w = 4; w > 0; w >>= 1)
#pragma unroll
        for (int x = 0; x < w; x++) tr[x] += tr[x + w];
      float sum = tr[0];
      sum += __shfl_xor_sync(0xffffffff, sum, 1);
      sum += __shfl_xor_sync(0xffffffff, sum, 2);
      lrow[hf] = lrow[hf] * corr[hf] + sum;
    }
    mrow[hf] = mnew;
  }
}

// Output rows rescaled by the softmax update's correction (the output accumulators layout: as s).
__device__ __forceinline__ void rescale(float (&o)[8][4], const float (&corr)[2]) {
#pragma unroll
  for (int nt = 0; nt < 8; nt++) {
    o[nt][0] *= corr[0];
    o[nt][1] *= corr[0];
    o[nt][2] *= corr[1];
    o[nt][3] *= corr[1];
  }
}

__device__ __forceinline__ void mask_softmax(const Args& p, float (&s)[8][4], float (&o)[8][4], float (&mrow)[2], float (&lrow)[2],
                                             const float* kb, int pi, int i0, int rowa, int t, float sl2) {
  float corr[2];
  softmax_update(p, s, corr, mrow, lrow, kb, pi, i0, rowa, t, sl2);
  rescale(o, corr);
}

// P (softmax numerators in the accumulator layout) as bf16 pairs in the A-fragment layout of
// mma.sync m16n8k16 / wgmma (register A): pa[kk] covers keys 16kk..16kk+15.
__device__ __forceinline__ void pack_p(const float (&s)[8][4], uint32_t (&pa)[4][4]) {
#pragma unroll
  for (int kk = 0; kk < 4; kk++) {
    pa[kk][0] = pack(s[2 * kk][0], s[2 * kk][1]);
    pa[kk][1] = pack(s[2 * kk][2], s[2 * kk][3]);
    pa[kk][2] = pack(s[2 * kk + 1][0], s[2 * kk + 1][1]);
    pa[kk][3] = pack(s[2 * kk + 1][2], s[2 * kk + 1][3]);
  }
}

// The dQ passes' statistics of this lane's rows (rowa, rowa + 8): the log2-domain LSE (-inf for an
// empty row or one past Lq) and delta.
__device__ __forceinline__ void row_stats(const Args& p, const float* lse, const float* delta, int64_t bh, int rowa, float (&l2)[2],
                                          float (&dl)[2]) {
#pragma unroll
  for (int hf = 0; hf < 2; hf++) {
    const int row = rowa + hf * 8;
    l2[hf] = row < p.Lq ? lse[bh * p.Lq + row] * kLog2e : -INFINITY;
    dl[hf] = row < p.Lq ? delta[bh * p.Lq + row] : 0.0f;
  }
}

// The dK/dV passes' key bias for this lane's keys (keya, keya + 8), in log2 units (0 without one or
// past Lk).
__device__ __forceinline__ void key_bias2(const Args& p, const float* kb, int keya, float (&kb2)[2]) {
#pragma unroll
  for (int hf = 0; hf < 2; hf++) kb2[hf] = kb && keya + hf * 8 < p.Lk ? kb[keya + hf * 8] * kLog2e : 0.0f;
}
// The dK/dV passes' results for this lane's keys (keya, keya + 8): dK (scaled), dV and, with a key
// bias, its gradient (the lane's partial sums over the block's queries, reduced across the quad).
__device__ __forceinline__ void store_dkdv(const Args& p, const float (&dka)[8][4], const float (&dva)[8][4], const float (&dbs)[2], float* dk,
                                           float* dv, float* dkb, int64_t bh, int keya, int t) {
  store_acc(dk + bh * p.Lk * T, dka, keya, p.Lk, p.scale, t);
  store_acc(dv + bh * p.Lk * T, dva, keya, p.Lk, 1.0f, t);
  if (dkb) {
#pragma unroll
    for (int hf = 0; hf < 2; hf++) {
      float sum = dbs[hf];
      sum += __shfl_xor_sync(0xffffffff, sum, 1);
      sum += __shfl_xor_sync(0xffffffff, sum, 2);
      if (t == 0 && keya + hf * 8 < p.Lk) dkb[bh * p.Lk + keya + hf * 8] = sum;
    }
  }
}

// This lane's two output rows (rowa, rowa + 8) of a 16 x 64 slice normalized by the row sums, and
// their log-sum-exp; rows past Lq are skipped, empty rows give zeros and -inf.
__device__ __forceinline__ void store_rows(const Args& p, const float (&o)[8][4], const float (&mrow)[2], const float (&lrow)[2], float* out,
                                           float* lse, int64_t bh, int rowa, int t) {
#pragma unroll
  for (int hf = 0; hf < 2; hf++) {
    const int row = rowa + hf * 8;
    if (row >= p.Lq) continue;
    const float inv = lrow[hf] > 0 ? 1.0f / lrow[hf] : 0.0f;
    float* orow = out + (bh * p.Lq + row) * T;
#pragma unroll
    for (int nt = 0; nt < 8; nt++)
      *reinterpret_cast<float2*>(orow + nt * 8 + 2 * t) = make_float2(o[nt][2 * hf] * inv, o[nt][2 * hf + 1] * inv);
    if (t == 0) lse[bh * p.Lq + row] = lrow[hf] > 0 ? mrow[hf] * kLn2 + logf(lrow[hf]) : -INFINITY;
  }
}

// attention_hopper.cu: launches the wgmma forward heuristics.cuh picks; false when it picks the
// mma.sync kernel, which the caller runs.
// nnz: the layout's listed blocks over all its heads (the pick reads the mean row length).
bool hopper_bsa_fwd_bf16(const Args& p, int B, const __nv_bfloat16* q, const __nv_bfloat16* k, const __nv_bfloat16* v, const float* kb,
                         float* out, float* lse, int64_t nnz);

// attention_hopper.cu: whether this GPU and build run the sm_90a wgmma kernels (probed once).
bool hopper_available();
// attention_hopper_bwd.cu: the bf16 wgmma backward (q, k, v, dO converted on entry); false where
// hopper_available() is not (the caller checks first).
bool hopper_bsa_bwd_bf16(const Args& p, int B, int nK, const float* q, const float* k, const float* v, const float* kb, const float* lse,
                         const float* delta, const float* dout, const int32_t* col_ptr, const int32_t* row_idx, const int32_t* src_idx,
                         float* dq, float* dk, float* dv, float* dkb);
// attention_tc_bwd.cu: the tf32 tensor-core backward. delta = rowsum(dO * O), computed by the caller.
void tf32_bsa_bwd(const Args& p, int B, int nK, const float* q, const float* k, const float* v, const float* kb, const float* lse,
                  const float* delta, const float* dout, const int32_t* col_ptr, const int32_t* row_idx, const int32_t* src_idx, float* dq,
                  float* dk, float* dv, float* dkb);
}  // namespace tc
}  // namespace tr
