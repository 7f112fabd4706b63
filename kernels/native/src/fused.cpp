// Fused kernels: softmax, layer norm (forward + backward), GELU tanh approximation (forward + backward).
#include "api.h"
#include "common.h"
#include <algorithm>
#include <vector>

using namespace tr;

TR_API void tr_softmax(const float* x, float* y, int64_t rows, int64_t cols) {
  #pragma omp parallel for schedule(static) if (rows * cols > kParallelGrain)
  for (int64_t r = 0; r < rows; r++) {
    const float* p = x + r * cols;
    float* q = y + r * cols;
    float m = -INFINITY;
    for (int64_t j = 0; j < cols; j++) m = std::max(m, p[j]);
    float s = 0;
    for (int64_t j = 0; j < cols; j++) {
      q[j] = fast_exp(p[j] - m);
      s += q[j];
    }
    const float inv = 1.0f / s;
    for (int64_t j = 0; j < cols; j++) q[j] *= inv;
  }
}

TR_API void tr_layernorm_fwd(const float* x, const float* g, const float* b, float* y, float* mean, float* rstd, int64_t rows,
                             int64_t cols, float eps) {
  #pragma omp parallel for schedule(static) if (rows * cols > kParallelGrain)
  for (int64_t r = 0; r < rows; r++) {
    const float* p = x + r * cols;
    float mu = 0;
    for (int64_t j = 0; j < cols; j++) mu += p[j];
    mu /= cols;
    float var = 0;
    for (int64_t j = 0; j < cols; j++) var += (p[j] - mu) * (p[j] - mu);
    var /= cols;
    const float rs = 1.0f / std::sqrt(var + eps);
    float* q = y + r * cols;
    for (int64_t j = 0; j < cols; j++) q[j] = (p[j] - mu) * rs * g[j] + b[j];
    mean[r] = mu;
    rstd[r] = rs;
  }
}

TR_API void tr_layernorm_bwd(const float* dy, const float* x, const float* g, const float* mean, const float* rstd, float* dx,
                             float* dg, float* db, int64_t rows, int64_t cols) {
  #pragma omp parallel for schedule(static) if (rows * cols > kParallelGrain)
  for (int64_t r = 0; r < rows; r++) {
    const float* pdy = dy + r * cols;
    const float* px = x + r * cols;
    const float mu = mean[r], rs = rstd[r];
    float s1 = 0, s2 = 0;
    for (int64_t j = 0; j < cols; j++) {
      const float dxh = pdy[j] * g[j];
      s1 += dxh;
      s2 += dxh * (px[j] - mu) * rs;
    }
    s1 /= cols;
    s2 /= cols;
    float* q = dx + r * cols;
    for (int64_t j = 0; j < cols; j++) q[j] = rs * (pdy[j] * g[j] - s1 - (px[j] - mu) * rs * s2);
  }
  std::fill(dg, dg + cols, 0.0f);
  std::fill(db, db + cols, 0.0f);
  #pragma omp parallel
  {
    std::vector<float> lg(cols, 0.0f), lb(cols, 0.0f);
    #pragma omp for schedule(static)
    for (int64_t r = 0; r < rows; r++) {
      const float* pdy = dy + r * cols;
      const float* px = x + r * cols;
      for (int64_t j = 0; j < cols; j++) {
        lg[j] += pdy[j] * (px[j] - mean[r]) * rstd[r];
        lb[j] += pdy[j];
      }
    }
    #pragma omp critical
    for (int64_t j = 0; j < cols; j++) {
      dg[j] += lg[j];
      db[j] += lb[j];
    }
  }
}

namespace {
constexpr float kSqrt2OverPi = 0.7978845608028654f;
constexpr float kGeluC = 0.044715f;
}  // namespace

TR_API void tr_gelu_fwd(const float* __restrict x, float* __restrict y, int64_t n) {
  parallel_chunks(n, [=](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; i++) {
      const float v = x[i];
      y[i] = 0.5f * v * (1.0f + fast_tanh(kSqrt2OverPi * (v + kGeluC * v * v * v)));
    }
  });
}

TR_API void tr_gelu_bwd(const float* __restrict dy, const float* __restrict x, float* __restrict dx, int64_t n) {
  parallel_chunks(n, [=](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; i++) {
      const float v = x[i];
      const float t = fast_tanh(kSqrt2OverPi * (v + kGeluC * v * v * v));
      const float dt = (1.0f - t * t) * kSqrt2OverPi * (1.0f + 3.0f * kGeluC * v * v);
      dx[i] = dy[i] * (0.5f * (1.0f + t) + 0.5f * v * dt);
    }
  });
}
