// Fused block-sparse attention over a BSR layout (see kernels/layout.ts):
//   forward: online softmax over the listed key blocks of each query block, no Lq x Lk buffer;
//   backward: FlashAttention-2 style, probabilities recomputed from the saved log-sum-exp.
// Full blocks skip the token rule; partial blocks mask outside each row's allowed key interval
// (causal, window, sequence end). Tile products (S = QK^T, O += PV, and the four backward ones) go
// through tile_gemm: the BLAS, single-threaded inside our OpenMP tasks, or plain loops without one.
#include "api.h"
#include "common.h"
#include <algorithm>
#include <vector>
#ifdef TR_HAVE_CBLAS
#include <cblas.h>
#endif

using namespace tr;

namespace {
// C[m,n] = alpha * op(A) op(B) + beta * C, row-major, op = transpose when t* is set.
void tile_gemm(bool ta, bool tb, int m, int n, int k, float alpha, const float* A, int lda, const float* B, int ldb, float beta,
               float* C, int ldc) {
  if (m <= 0 || n <= 0) return;
#ifdef TR_HAVE_CBLAS
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n, k, alpha, A, lda, B, ldb, beta,
              C, ldc);
#else
  for (int i = 0; i < m; i++) {
    float* c = C + (int64_t)i * ldc;
    if (beta == 0.0f) std::fill(c, c + n, 0.0f);
    else if (beta != 1.0f) for (int j = 0; j < n; j++) c[j] *= beta;
    for (int p = 0; p < k; p++) {
      const float a = alpha * (ta ? A[(int64_t)p * lda + i] : A[(int64_t)i * lda + p]);
      if (a == 0.0f) continue;
      if (!tb) {
        const float* b = B + (int64_t)p * ldb;
        for (int j = 0; j < n; j++) c[j] += a * b[j];
      } else {
        for (int j = 0; j < n; j++) c[j] += a * B[(int64_t)j * ldb + p];
      }
    }
  }
#endif
}

struct Problem {
  int B, H, Lq, Lk, D, Dv, Bq, Bk, LH;
  const int32_t *row_ptr, *col_idx;
  const uint8_t* full;
  bool causal;
  int window;  // < 0: none
  float scale;

  int nQ() const { return (Lq + Bq - 1) / Bq; }
  // Token rule of query row i: the allowed keys form one interval [lo, hi].
  void interval(int i, int& lo, int& hi) const {
    const int qi = i + (Lk - Lq);
    lo = window >= 0 ? std::max(0, qi - window) : 0;
    hi = causal ? qi : Lk - 1;
    if (window >= 0) hi = std::min(hi, qi + window);
  }
};

// S = scale * Q K^T (+ key bias), masked outside each row's interval for partial blocks. s is [rows, Bk].
void scores(const Problem& p, const float* q, const float* k, const float* kb, int i0, int rows, int j0, int cols, bool full,
            const uint8_t* bits, float* s) {
  tile_gemm(false, true, rows, cols, p.D, p.scale, q + (int64_t)i0 * p.D, p.D, k + (int64_t)j0 * p.D, p.D, 0.0f, s, p.Bk);
  for (int r = 0; r < rows; r++) {
    float* sr = s + r * p.Bk;
    if (kb)
      for (int c = 0; c < cols; c++) sr[c] += kb[j0 + c];
    if (!full) {
      int lo, hi;
      p.interval(i0 + r, lo, hi);
      const int c_lo = std::min(cols, std::max(0, lo - j0));
      const int c_hi = std::max(-1, std::min(cols - 1, hi - j0));
      for (int c = 0; c < c_lo; c++) sr[c] = -INFINITY;
      for (int c = std::max(c_hi + 1, c_lo); c < cols; c++) sr[c] = -INFINITY;
      if (c_hi < c_lo)
        for (int c = 0; c < cols; c++) sr[c] = -INFINITY;
      if (bits)  // the block's explicit token mask (layout.mask)
        for (int c = 0; c < cols; c++)
          if (!bits[r * p.Bk + c]) sr[c] = -INFINITY;
    }
  }
}
}  // namespace

TR_API void tr_bsa_fwd(const float* q, const float* k, const float* v, const float* kb, float* out, float* lse, int B, int H,
                       int Lq, int Lk, int D, int Dv, int Bq, int Bk, int LH, const int32_t* row_ptr, const int32_t* col_idx,
                       const uint8_t* full, const uint8_t* mask, int causal, int window, float scale, int64_t kb_sb, int64_t kb_sh) {
  const Problem p{B, H, Lq, Lk, D, Dv, Bq, Bk, LH, row_ptr, col_idx, full, causal != 0, window, scale};
  const int nQ = p.nQ();
  const int64_t tasks = (int64_t)B * H * nQ;
  #pragma omp parallel
  {
    std::vector<float> s(Bq * Bk), acc(Bq * Dv), m(Bq), l(Bq);
    #pragma omp for schedule(dynamic)
    for (int64_t t = 0; t < tasks; t++) {
      const int i = t % nQ;
      const int h = (t / nQ) % H;
      const int b = t / ((int64_t)nQ * H);
      const int lh = LH == 1 ? 0 : h;
      const int64_t bh = (int64_t)b * H + h;
      const float* qb = q + bh * Lq * D;
      const float* kbh = k + bh * Lk * D;
      const float* vbh = v + bh * Lk * Dv;
      const float* kbias = kb ? kb + b * kb_sb + h * kb_sh : nullptr;
      const int i0 = i * Bq, rows = std::min(Bq, Lq - i0);
      std::fill(acc.begin(), acc.end(), 0.0f);
      std::fill(m.begin(), m.end(), -INFINITY);
      std::fill(l.begin(), l.end(), 0.0f);
      const int32_t a = row_ptr[lh * (nQ + 1) + i], e = row_ptr[lh * (nQ + 1) + i + 1];
      for (int32_t pidx = a; pidx < e; pidx++) {
        const int j = col_idx[pidx];
        const int j0 = j * Bk, cols = std::min(Bk, Lk - j0);
        scores(p, qb, kbh, kbias, i0, rows, j0, cols, full[pidx] != 0, mask ? mask + (int64_t)pidx * Bq * Bk : nullptr, s.data());
        // Online softmax: rescale the running sums to the new row maximum, P overwrites S.
        for (int r = 0; r < rows; r++) {
          float* sr = s.data() + r * Bk;
          float mx = m[r];
          for (int c = 0; c < cols; c++) mx = std::max(mx, sr[c]);
          if (mx == -INFINITY) {
            for (int c = 0; c < cols; c++) sr[c] = 0.0f;
            continue;
          }
          const float corr = fast_exp(m[r] - mx);
          float sum = 0.0f;
          for (int c = 0; c < cols; c++) {
            const float e2 = sr[c] == -INFINITY ? 0.0f : fast_exp(sr[c] - mx);
            sr[c] = e2;
            sum += e2;
          }
          float* ar = acc.data() + r * Dv;
          if (corr != 1.0f)
            for (int d = 0; d < Dv; d++) ar[d] *= corr;
          l[r] = l[r] * corr + sum;
          m[r] = mx;
        }
        tile_gemm(false, false, rows, Dv, cols, 1.0f, s.data(), Bk, vbh + (int64_t)j0 * Dv, Dv, 1.0f, acc.data(), Dv);
      }
      for (int r = 0; r < rows; r++) {
        float* o = out + (bh * Lq + i0 + r) * Dv;
        const float inv = l[r] > 0 ? 1.0f / l[r] : 0.0f;  // empty rows give zeros
        for (int d = 0; d < Dv; d++) o[d] = acc[r * Dv + d] * inv;
        lse[bh * Lq + i0 + r] = l[r] > 0 ? m[r] + std::log(l[r]) : -INFINITY;
      }
    }
  }
}

// dq, dk, dv like q, k, v; dkb [B, H, Lk] (per batch and head; the caller sums broadcast axes).
TR_API void tr_bsa_bwd(const float* q, const float* k, const float* v, const float* kb, const float* out, const float* lse,
                       const float* dout, float* dq, float* dk, float* dv, float* dkb, int B, int H, int Lq, int Lk, int D,
                       int Dv, int Bq, int Bk, int LH, const int32_t* row_ptr, const int32_t* col_idx, const uint8_t* full,
                       const uint8_t* mask, int causal, int window, float scale, int64_t kb_sb, int64_t kb_sh) {
  const Problem p{B, H, Lq, Lk, D, Dv, Bq, Bk, LH, row_ptr, col_idx, full, causal != 0, window, scale};
  const int nQ = p.nQ();
  // One task per (batch, head): dK and dV of a head are accumulated by one thread, so no atomics.
  #pragma omp parallel
  {
    std::vector<float> s(Bq * Bk), dp(Bq * Bk), delta(Bq);
    #pragma omp for schedule(dynamic)
    for (int64_t bh = 0; bh < (int64_t)B * H; bh++) {
      const int h = bh % H, b = bh / H;
      const int lh = LH == 1 ? 0 : h;
      const float* qb = q + bh * Lq * D;
      const float* kbh = k + bh * Lk * D;
      const float* vbh = v + bh * Lk * Dv;
      const float* ob = out + bh * Lq * Dv;
      const float* gb = dout + bh * Lq * Dv;
      const float* kbias = kb ? kb + b * kb_sb + h * kb_sh : nullptr;
      float* dqb = dq + bh * Lq * D;
      float* dkh = dk + bh * Lk * D;
      float* dvh = dv + bh * Lk * Dv;
      float* dkbh = dkb ? dkb + bh * Lk : nullptr;
      std::fill(dqb, dqb + (int64_t)Lq * D, 0.0f);
      std::fill(dkh, dkh + (int64_t)Lk * D, 0.0f);
      std::fill(dvh, dvh + (int64_t)Lk * Dv, 0.0f);
      if (dkbh) std::fill(dkbh, dkbh + Lk, 0.0f);
      for (int i = 0; i < nQ; i++) {
        const int i0 = i * Bq, rows = std::min(Bq, Lq - i0);
        for (int r = 0; r < rows; r++) {  // delta = rowsum(dO * O)
          const float* o = ob + (int64_t)(i0 + r) * Dv;
          const float* g = gb + (int64_t)(i0 + r) * Dv;
          float acc = 0;
          for (int d = 0; d < Dv; d++) acc += o[d] * g[d];
          delta[r] = acc;
        }
        const int32_t a = row_ptr[lh * (nQ + 1) + i], e = row_ptr[lh * (nQ + 1) + i + 1];
        for (int32_t pidx = a; pidx < e; pidx++) {
          const int j = col_idx[pidx];
          const int j0 = j * Bk, cols = std::min(Bk, Lk - j0);
          scores(p, qb, kbh, kbias, i0, rows, j0, cols, full[pidx] != 0, mask ? mask + (int64_t)pidx * Bq * Bk : nullptr, s.data());
          for (int r = 0; r < rows; r++) {  // P = exp(S - lse)
            const float L = lse[bh * Lq + i0 + r];
            float* sr = s.data() + r * Bk;
            for (int c = 0; c < cols; c++) sr[c] = (L == -INFINITY || sr[c] == -INFINITY) ? 0.0f : fast_exp(sr[c] - L);
          }
          // dV += P^T dO ; dP = dO V^T
          tile_gemm(true, false, cols, Dv, rows, 1.0f, s.data(), Bk, gb + (int64_t)i0 * Dv, Dv, 1.0f, dvh + (int64_t)j0 * Dv, Dv);
          tile_gemm(false, true, rows, cols, Dv, 1.0f, gb + (int64_t)i0 * Dv, Dv, vbh + (int64_t)j0 * Dv, Dv, 0.0f, dp.data(), Bk);
          for (int r = 0; r < rows; r++) {  // dS = P * (dP - delta), into s
            float* sr = s.data() + r * Bk;
            const float* dr = dp.data() + r * Bk;
            for (int c = 0; c < cols; c++) sr[c] = sr[c] * (dr[c] - delta[r]);
            if (dkbh)
              for (int c = 0; c < cols; c++) dkbh[j0 + c] += sr[c];
          }
          // dQ += scale dS K ; dK += scale dS^T Q
          tile_gemm(false, false, rows, D, cols, scale, s.data(), Bk, kbh + (int64_t)j0 * D, D, 1.0f, dqb + (int64_t)i0 * D, D);
          tile_gemm(true, false, cols, D, rows, scale, s.data(), Bk, qb + (int64_t)i0 * D, D, 1.0f, dkh + (int64_t)j0 * D, D);
        }
      }
    }
  }
}
