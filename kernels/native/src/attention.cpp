// Fused block-sparse attention over a BSR layout (see kernels/layout.ts):
//   forward: online softmax over the listed key blocks of each query block, no Lq x Lk buffer;
//   backward: FlashAttention-2 style, probabilities recomputed from the saved log-sum-exp.
// Full blocks skip the token rule; partial blocks apply it (causal, window, sequence ends).
// Tiles: a query block of Bq rows against one key block of Bk columns; K and V tiles are packed
// transposed so the inner loops run over contiguous columns and vectorise.
#include "api.h"
#include "common.h"
#include <algorithm>
#include <vector>

using namespace tr;

namespace {
struct Problem {
  const float *q, *k, *v, *kb;
  int B, H, Lq, Lk, D, Dv, Bq, Bk, LH;
  const int32_t *row_ptr, *col_idx;
  const uint8_t* full;
  bool causal;
  int window;  // < 0: none
  float scale;
  int64_t kb_sb, kb_sh;  // key-bias strides over batch and head (0 = broadcast)

  int nQ() const { return (Lq + Bq - 1) / Bq; }
  bool allowed(int i, int j) const {  // token rule
    const int qi = i + (Lk - Lq);
    if (causal && j > qi) return false;
    if (window >= 0 && (qi - j > window || j - qi > window)) return false;
    return true;
  }
};

// Scores of query rows [i0, i0+rows) against key block [j0, j0+cols): s[r*Bk + c].
void scores(const Problem& p, const float* q, const float* kT, const float* kb, int i0, int rows, int j0, int cols, bool full,
            float* s) {
  for (int r = 0; r < rows; r++) {
    float* sr = s + r * p.Bk;
    for (int c = 0; c < cols; c++) sr[c] = 0.0f;
    const float* qr = q + (int64_t)(i0 + r) * p.D;
    for (int d = 0; d < p.D; d++) {
      const float a = qr[d] * p.scale;
      const float* kd = kT + d * p.Bk;
      for (int c = 0; c < cols; c++) sr[c] += a * kd[c];
    }
    if (kb)
      for (int c = 0; c < cols; c++) sr[c] += kb[j0 + c];
    if (!full)
      for (int c = 0; c < cols; c++)
        if (!p.allowed(i0 + r, j0 + c)) sr[c] = -INFINITY;
  }
}

void pack_transposed(const float* x, int rows, int width, int ld_out, float* xT) {
  for (int c = 0; c < rows; c++)
    for (int d = 0; d < width; d++) xT[d * ld_out + c] = x[(int64_t)c * width + d];
}
}  // namespace

TR_API void tr_bsa_fwd(const float* q, const float* k, const float* v, const float* kb, float* out, float* lse, int B, int H,
                       int Lq, int Lk, int D, int Dv, int Bq, int Bk, int LH, const int32_t* row_ptr, const int32_t* col_idx,
                       const uint8_t* full, int causal, int window, float scale, int64_t kb_sb, int64_t kb_sh) {
  const Problem p{q, k, v, kb, B, H, Lq, Lk, D, Dv, Bq, Bk, LH, row_ptr, col_idx, full, causal != 0, window, scale, kb_sb, kb_sh};
  const int nQ = p.nQ();
  const int64_t tasks = (int64_t)B * H * nQ;
  #pragma omp parallel
  {
    std::vector<float> s(Bq * Bk), kT(D * Bk), acc(Bq * Dv), m(Bq), l(Bq);
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
        pack_transposed(kbh + (int64_t)j0 * D, cols, D, Bk, kT.data());
        scores(p, qb, kT.data(), kbias, i0, rows, j0, cols, full[pidx] != 0, s.data());
        for (int r = 0; r < rows; r++) {
          float* sr = s.data() + r * Bk;
          float mx = m[r];
          for (int c = 0; c < cols; c++) mx = std::max(mx, sr[c]);
          if (mx == -INFINITY) continue;  // nothing allowed yet in this row
          const float corr = fast_exp(m[r] - mx);
          float sum = 0.0f;
          for (int c = 0; c < cols; c++) {
            sr[c] = sr[c] == -INFINITY ? 0.0f : fast_exp(sr[c] - mx);
            sum += sr[c];
          }
          float* ar = acc.data() + r * Dv;
          if (corr != 1.0f)
            for (int d = 0; d < Dv; d++) ar[d] *= corr;
          for (int c = 0; c < cols; c++) {
            const float pc = sr[c];
            if (pc == 0.0f) continue;
            const float* vc = vbh + (int64_t)(j0 + c) * Dv;
            for (int d = 0; d < Dv; d++) ar[d] += pc * vc[d];
          }
          l[r] = l[r] * corr + sum;
          m[r] = mx;
        }
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
                       int causal, int window, float scale, int64_t kb_sb, int64_t kb_sh) {
  const Problem p{q, k, v, kb, B, H, Lq, Lk, D, Dv, Bq, Bk, LH, row_ptr, col_idx, full, causal != 0, window, scale, kb_sb, kb_sh};
  const int nQ = p.nQ();
  // One task per (batch, head): dK and dV of a head are accumulated by one thread, so no atomics.
  #pragma omp parallel
  {
    std::vector<float> s(Bq * Bk), kT(D * Bk), vT(Dv * Bk), delta(Bq);
    #pragma omp for schedule(dynamic)
    for (int64_t bh = 0; bh < (int64_t)B * H; bh++) {
      const int h = bh % H, b = bh / H;
      const int lh = LH == 1 ? 0 : h;
      const float* qb = q + bh * Lq * D;
      const float* kbh = k + bh * Lk * D;
      const float* vbh = v + bh * Lk * Dv;
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
        for (int r = 0; r < rows; r++) {
          const float* o = out + (bh * Lq + i0 + r) * Dv;
          const float* g = dout + (bh * Lq + i0 + r) * Dv;
          float acc = 0;
          for (int d = 0; d < Dv; d++) acc += o[d] * g[d];
          delta[r] = acc;
        }
        const int32_t a = row_ptr[lh * (nQ + 1) + i], e = row_ptr[lh * (nQ + 1) + i + 1];
        for (int32_t pidx = a; pidx < e; pidx++) {
          const int j = col_idx[pidx];
          const int j0 = j * Bk, cols = std::min(Bk, Lk - j0);
          pack_transposed(kbh + (int64_t)j0 * D, cols, D, Bk, kT.data());
          pack_transposed(vbh + (int64_t)j0 * Dv, cols, Dv, Bk, vT.data());
          scores(p, qb, kT.data(), kbias, i0, rows, j0, cols, full[pidx] != 0, s.data());
          for (int r = 0; r < rows; r++) {
            const float L = lse[bh * Lq + i0 + r];
            float* sr = s.data() + r * Bk;
            if (L == -INFINITY) {
              for (int c = 0; c < cols; c++) sr[c] = 0.0f;
              continue;
            }
            for (int c = 0; c < cols; c++) sr[c] = sr[c] == -INFINITY ? 0.0f : fast_exp(sr[c] - L);  // P
            const float* g = dout + (bh * Lq + i0 + r) * Dv;
            // dV += P^T dO
            for (int c = 0; c < cols; c++) {
              const float pc = sr[c];
              if (pc == 0.0f) continue;
              float* dvc = dvh + (int64_t)(j0 + c) * Dv;
              for (int d = 0; d < Dv; d++) dvc[d] += pc * g[d];
            }
            // dP = dO V^T, then dS = P * (dP - delta), stored back into s
            float dp[512];
            float* dpr = cols <= 512 ? dp : nullptr;
            std::vector<float> big;
            if (!dpr) {
              big.resize(cols);
              dpr = big.data();
            }
            for (int c = 0; c < cols; c++) dpr[c] = 0.0f;
            for (int d = 0; d < Dv; d++) {
              const float gd = g[d];
              const float* vd = vT.data() + d * Bk;
              for (int c = 0; c < cols; c++) dpr[c] += gd * vd[c];
            }
            for (int c = 0; c < cols; c++) sr[c] = sr[c] * (dpr[c] - delta[r]);
            if (dkbh)
              for (int c = 0; c < cols; c++) dkbh[j0 + c] += sr[c];
            // dQ += scale dS K ; dK += scale dS^T Q
            float* dqr = dqb + (int64_t)(i0 + r) * D;
            const float* qr = qb + (int64_t)(i0 + r) * D;
            for (int c = 0; c < cols; c++) {
              const float ds = sr[c] * scale;
              if (ds == 0.0f) continue;
              const float* kc = kbh + (int64_t)(j0 + c) * D;
              float* dkc = dkh + (int64_t)(j0 + c) * D;
              for (int d = 0; d < D; d++) {
                dqr[d] += ds * kc[d];
                dkc[d] += ds * qr[d];
              }
            }
          }
        }
      }
    }
  }
}
