// Decoding on the CPU (see api.h): one query per (batch, head) row over a KV cache [B, H, cap, D].
// A row reads either every cached token [0, len) or the tokens of its listed pages below its head's
// tail_from plus every token from tail_from on (the one selection interface of kernels/decode). Rows
// and splits of a row's tokens run in parallel; each split keeps an online-softmax partial
// (max, sum, acc[D]) that one combine step merges, as the CUDA split-KV kernel does.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>
#include "api.h"
#include "common.h"

namespace {
constexpr int kChunk = 64;  // scores computed per softmax rescale

// The tokens row r reads, as a map from a virtual index (listed pages first, then the tail) to a
// cache position, or -1 where a listed page runs past tail_from or len.
struct RowTokens {
  const int32_t* pages;
  int count, page, tail, len;
  int64_t size() const { return pages ? (int64_t)count * page + std::max(0, len - tail) : len; }
  int at(int64_t v) const {
    if (!pages) return (int)v;
    const int64_t listed = (int64_t)count * page;
    if (v >= listed) return tail + (int)(v - listed);
    const int t = pages[v / page] * page + (int)(v % page);
    return t < tail && t < len ? t : -1;
  }
};

struct Partial {
  float m = -1e30f, l = 0;
};

// Online softmax over virtual tokens [v0, v1) of one row; acc has D entries.
template <class KeyDot, class AddValue>
Partial attend_range(const RowTokens& rt, int64_t v0, int64_t v1, int D, float scale, KeyDot dot, AddValue add, float* acc) {
  Partial p;
  std::fill(acc, acc + D, 0.0f);
  float s[kChunk];
  int tok[kChunk];
  for (int64_t c0 = v0; c0 < v1; c0 += kChunk) {
    const int n = (int)std::min<int64_t>(kChunk, v1 - c0);
    float cm = -1e30f;
    for (int i = 0; i < n; i++) {
      tok[i] = rt.at(c0 + i);
      s[i] = tok[i] < 0 ? -INFINITY : scale * dot(tok[i]);
      cm = std::max(cm, s[i]);
    }
    if (cm > p.m) {
      const float c = tr::fast_exp(p.m - cm);
      p.l *= c;
      for (int d = 0; d < D; d++) acc[d] *= c;
      p.m = cm;
    }
    for (int i = 0; i < n; i++) {
      if (tok[i] < 0) continue;
      const float e = tr::fast_exp(s[i] - p.m);
      p.l += e;
      add(tok[i], e, acc);
    }
  }
  return p;
}

int threads() {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

// Runs row x split partials in parallel and merges them into out [rows, D].
template <class RowFn, class RangeFn>
void split_decode(int rows, int D, float* out, RowFn row_tokens, RangeFn range) {
  int64_t most = 1;
  for (int r = 0; r < rows; r++) most = std::max(most, row_tokens(r).size());
  const int T = threads();
  const int nsplit = (int)std::max<int64_t>(1, std::min<int64_t>((2 * T + rows - 1) / rows, (most + 511) / 512));
  std::vector<Partial> part((size_t)rows * nsplit);
  std::vector<float> acc((size_t)rows * nsplit * D);
  const int64_t jobs = (int64_t)rows * nsplit;
  #pragma omp parallel for schedule(dynamic, 1) if (jobs > 1)
  for (int64_t j = 0; j < jobs; j++) {
    const int r = (int)(j / nsplit), s = (int)(j % nsplit);
    const RowTokens rt = row_tokens(r);
    const int64_t n = rt.size(), v0 = n * s / nsplit, v1 = n * (s + 1) / nsplit;
    part[j] = range(r, rt, v0, v1, &acc[j * D]);
  }
  #pragma omp parallel for schedule(static) if (rows > 8)
  for (int r = 0; r < rows; r++) {
    float M = -1e30f;
    for (int s = 0; s < nsplit; s++) M = std::max(M, part[(size_t)r * nsplit + s].m);
    float L = 0;
    float* o = out + (int64_t)r * D;
    std::fill(o, o + D, 0.0f);
    for (int s = 0; s < nsplit; s++) {
      const Partial& p = part[(size_t)r * nsplit + s];
      if (p.l == 0) continue;
      const float c = tr::fast_exp(p.m - M);
      L += p.l * c;
      const float* a = &acc[((size_t)r * nsplit + s) * D];
      for (int d = 0; d < D; d++) o[d] += c * a[d];
    }
    if (L > 0) for (int d = 0; d < D; d++) o[d] /= L;
  }
}

inline uint32_t order_key(float x) {
  const uint32_t u = __builtin_bit_cast(uint32_t, x);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}
}  // namespace

TR_API void tr_kv_write(int fmt, const float* src, void* dst, int B, int H, int n, int D, int cap, int pos) {
  (void)fmt;  // the CPU caches are fp32 (kernels/decode rejects bf16 off cuda)
  float* d = static_cast<float*>(dst);
  for (int64_t r = 0; r < (int64_t)B * H; r++) std::memcpy(d + (r * cap + pos) * D, src + r * n * D, sizeof(float) * (size_t)n * D);
}

TR_API void tr_decode_attn(const float* q, const void* k, const void* v, float* out, int B, int H, int D, int cap, int len, int fmt,
                           float scale, const int32_t* pages, const int32_t* counts, const int32_t* tail_from, int maxp, int page,
                           int64_t vmax) {
  (void)fmt;
  (void)vmax;
  const float* K = static_cast<const float*>(k);
  const float* V = static_cast<const float*>(v);
  auto rt = [&](int r) {
    return RowTokens{pages ? pages + (int64_t)r * maxp : nullptr, pages ? counts[r] : 0, page, pages ? tail_from[r % H] : len, len};
  };
  split_decode(B * H, D, out, rt, [&](int r, const RowTokens& t, int64_t v0, int64_t v1, float* acc) {
    const float* qr = q + (int64_t)r * D;
    const float* Kr = K + (int64_t)r * cap * D;
    const float* Vr = V + (int64_t)r * cap * D;
    auto dot = [&](int tok) {
      const float* kk = Kr + (int64_t)tok * D;
      float s = 0;
      for (int d = 0; d < D; d++) s += qr[d] * kk[d];
      return s;
    };
    auto add = [&](int tok, float e, float* a) {
      const float* vv = Vr + (int64_t)tok * D;
      for (int d = 0; d < D; d++) a[d] += e * vv[d];
    };
    return attend_range(t, v0, v1, D, scale, dot, add, acc);
  });
}

TR_API void tr_topk_rows(const float* scores, int rows, int n, int k, int32_t* idx, int32_t* counts) {
  #pragma omp parallel for schedule(dynamic, 1) if (rows > 1)
  for (int r = 0; r < rows; r++) {
    const float* s = scores + (int64_t)r * n;
    int32_t* o = idx + (int64_t)r * k;
    std::vector<uint32_t> keys;
    keys.reserve(n);
    for (int j = 0; j < n; j++) if (s[j] > -INFINITY) keys.push_back(order_key(s[j]));  // -inf and NaN are never chosen
    const int take = std::min<int>(k, (int)keys.size());
    counts[r] = take;
    std::fill(o, o + k, -1);
    if (take == 0) continue;
    std::nth_element(keys.begin(), keys.begin() + (take - 1), keys.end(), std::greater<uint32_t>());
    const uint32_t T = keys[take - 1];
    int greater = 0;
    for (int j = 0; j < n; j++) if (s[j] > -INFINITY && order_key(s[j]) > T) greater++;
    int ties = take - greater, w = 0;
    for (int j = 0; j < n && w < take; j++) {
      if (!(s[j] > -INFINITY)) continue;
      const uint32_t key = order_key(s[j]);
      if (key > T || (key == T && ties-- > 0)) o[w++] = j;
    }
  }
}

TR_API void tr_page_minmax(const void* k, int fmt, float* kmin, float* kmax, int B, int H, int D, int cap, int page, int cap_pages,
                           int p0, int p1, int len) {
  (void)fmt;
  const float* K = static_cast<const float*>(k);
  const int64_t jobs = (int64_t)B * H * (p1 - p0);
  #pragma omp parallel for schedule(static) if (jobs > 64)
  for (int64_t j = 0; j < jobs; j++) {
    const int64_t r = j / (p1 - p0);
    const int p = p0 + (int)(j % (p1 - p0));
    float* mn = kmin + (r * cap_pages + p) * D;
    float* mx = kmax + (r * cap_pages + p) * D;
    std::fill(mn, mn + D, INFINITY);
    std::fill(mx, mx + D, -INFINITY);
    for (int t = p * page; t < std::min(len, (p + 1) * page); t++) {
      const float* kk = K + (r * cap + t) * D;
      for (int d = 0; d < D; d++) mn[d] = std::min(mn[d], kk[d]), mx[d] = std::max(mx[d], kk[d]);
    }
  }
}

TR_API void tr_quest_scores(const float* q, const float* kmin, const float* kmax, float* scores, int B, int H, int D, int cap_pages,
                            int n_pages, const int32_t* head_sink, int tail_page) {
  const int64_t jobs = (int64_t)B * H * n_pages;
  #pragma omp parallel for schedule(static) if (jobs > 256)
  for (int64_t j = 0; j < jobs; j++) {
    const int64_t r = j / n_pages;
    const int p = (int)(j % n_pages), sink = head_sink[r % H];
    if (sink >= 0) {  // a streaming head: its sink pages only
      scores[j] = p < sink ? INFINITY : -INFINITY;
      continue;
    }
    if (p >= tail_page) {
      scores[j] = -INFINITY;
      continue;
    }
    const float* qr = q + r * D;
    const float* mn = kmin + (r * cap_pages + p) * D;
    const float* mx = kmax + (r * cap_pages + p) * D;
    float s = 0;
    for (int d = 0; d < D; d++) s += std::max(qr[d] * mn[d], qr[d] * mx[d]);
    scores[j] = s;
  }
}

TR_API void tr_label_write(const float* src, float* label, const int32_t* channels, int B, int H, int n, int D, int r, int cap, int pos) {
  for (int64_t row = 0; row < (int64_t)B * H; row++) {
    const int32_t* ch = channels + (row % H) * r;
    for (int t = 0; t < n; t++) {
      const float* x = src + (row * n + t) * D;
      float* y = label + (row * cap + pos + t) * r;
      for (int j = 0; j < r; j++) y[j] = x[ch[j]];
    }
  }
}

TR_API void tr_label_scores(const float* q, const float* label, const int32_t* channels, float* scores, int B, int H, int D, int r,
                            int cap, int len, int tail_from) {
  const int64_t rows = (int64_t)B * H;
  #pragma omp parallel for schedule(static) if (rows * len > 4096)
  for (int64_t row = 0; row < rows; row++) {
    const int32_t* ch = channels + (row % H) * r;
    float qs[256];
    for (int j = 0; j < r; j++) qs[j] = q[row * D + ch[j]];
    for (int t = 0; t < len; t++) {
      if (t >= tail_from) {
        scores[row * len + t] = -INFINITY;
        continue;
      }
      const float* y = label + (row * cap + t) * r;
      float s = 0;
      for (int j = 0; j < r; j++) s += qs[j] * y[j];
      scores[row * len + t] = s;
    }
  }
}

// Mustafar's compressed rows: per token a D-bit bitmap (D/32 words) of the kept channels and the kept
// values in channel order; `keep` per token is fixed (per-token magnitude pruning to a target sparsity).
TR_API void tr_mustafar_compress(const float* src, uint32_t* bits, float* vals, int B, int H, int n, int D, int cap, int pos, int keep) {
  const int W = D / 32;
  const int64_t jobs = (int64_t)B * H * n;
  #pragma omp parallel for schedule(static) if (jobs > 256)
  for (int64_t j = 0; j < jobs; j++) {
    const int64_t row = j / n;
    const int t = (int)(j % n);
    const float* x = src + j * D;
    uint32_t* b = bits + (row * cap + pos + t) * W;
    float* v = vals + (row * cap + pos + t) * keep;
    uint32_t keyv[1024];
    for (int d = 0; d < D; d++) keyv[d] = __builtin_bit_cast(uint32_t, x[d]) & 0x7fffffffu;  // |x| orders as its bits
    std::vector<uint32_t> tmp(keyv, keyv + D);
    std::nth_element(tmp.begin(), tmp.begin() + (keep - 1), tmp.end(), std::greater<uint32_t>());
    const uint32_t T = tmp[keep - 1];
    int greater = 0;
    for (int d = 0; d < D; d++) greater += keyv[d] > T;
    int ties = keep - greater, w = 0;
    std::fill(b, b + W, 0u);
    for (int d = 0; d < D; d++) {
      if (keyv[d] > T || (keyv[d] == T && ties-- > 0)) {
        b[d >> 5] |= 1u << (d & 31);
        v[w++] = x[d];
      }
    }
  }
}

TR_API void tr_decode_attn_mustafar(const float* q, const uint32_t* kbits, const float* kvals, const uint32_t* vbits, const float* vvals,
                                    float* out, int B, int H, int D, int cap, int len, int keep_k, int keep_v, float scale) {
  const int W = D / 32;
  auto rt = [&](int) { return RowTokens{nullptr, 0, 1, len, len}; };
  split_decode(B * H, D, out, rt, [&](int r, const RowTokens& t, int64_t v0, int64_t v1, float* acc) {
    const float* qr = q + (int64_t)r * D;
    auto dot = [&](int tok) {
      const uint32_t* b = kbits + ((int64_t)r * cap + tok) * W;
      const float* x = kvals + ((int64_t)r * cap + tok) * keep_k;
      float s = 0;
      int i = 0;
      for (int w = 0; w < W; w++)
        for (uint32_t m = b[w]; m; m &= m - 1) s += qr[w * 32 + __builtin_ctz(m)] * x[i++];
      return s;
    };
    auto add = [&](int tok, float e, float* a) {
      const uint32_t* b = vbits + ((int64_t)r * cap + tok) * W;
      const float* x = vvals + ((int64_t)r * cap + tok) * keep_v;
      int i = 0;
      for (int w = 0; w < W; w++)
        for (uint32_t m = b[w]; m; m &= m - 1) a[w * 32 + __builtin_ctz(m)] += e * x[i++];
    };
    return attend_range(t, v0, v1, D, scale, dot, add, acc);
  });
}

// Host memory copy bandwidth (GB/s, bytes read + written per second) with every thread copying its
// share: what the CPU decode kernel's bandwidth is compared with.
TR_API double tr_copy_bandwidth(int64_t bytes, int reps) {
  std::vector<char> a((size_t)bytes, 1), b((size_t)bytes, 0);
  double best = 0;
  for (int rep = 0; rep <= reps; rep++) {
    const auto t0 = std::chrono::steady_clock::now();
    tr::parallel_chunks(bytes, [&](int64_t lo, int64_t hi) { std::memcpy(b.data() + lo, a.data() + lo, (size_t)(hi - lo)); });
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (rep > 0) best = std::max(best, 2.0 * (double)bytes / s / 1e9);
  }
  return best;
}
