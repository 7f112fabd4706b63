// Reductions over the innermost axis of an [outer, inner] view (the TS side transposes other axes there).
#include "api.h"
#include "common.h"
#include <limits>

using namespace tr;

namespace {
enum Reduce { SUM, MAX, MIN, PROD, MEAN, ARGMAX, ARGMIN, ANY, ALL };

template <class T>
void reduce_rows(int op, const T* x, void* yv, int64_t outer, int64_t inner) {
  #pragma omp parallel for schedule(static) if (outer * inner > kParallelGrain)
  for (int64_t r = 0; r < outer; r++) {
    const T* p = x + r * inner;
    switch (op) {
      case SUM:
      case MEAN: {
        double s = 0;  // double accumulation: sums over long rows stay accurate
        for (int64_t j = 0; j < inner; j++) s += p[j];
        ((T*)yv)[r] = (T)(op == MEAN ? s / (double)inner : s);
        break;
      }
      case PROD: {
        double s = 1;
        for (int64_t j = 0; j < inner; j++) s *= p[j];
        ((T*)yv)[r] = (T)s;
        break;
      }
      case MAX: {
        T m = inner ? p[0] : std::numeric_limits<T>::lowest();
        for (int64_t j = 1; j < inner; j++) m = (p[j] > m || std::isnan((float)p[j])) ? p[j] : m;
        ((T*)yv)[r] = m;
        break;
      }
      case MIN: {
        T m = inner ? p[0] : std::numeric_limits<T>::max();
        for (int64_t j = 1; j < inner; j++) m = (p[j] < m || std::isnan((float)p[j])) ? p[j] : m;
        ((T*)yv)[r] = m;
        break;
      }
      case ARGMAX:
      case ARGMIN: {
        int64_t best = 0;
        for (int64_t j = 1; j < inner; j++) {
          if (op == ARGMAX ? p[j] > p[best] : p[j] < p[best]) best = j;
        }
        ((int32_t*)yv)[r] = (int32_t)best;
        break;
      }
      case ANY: {
        uint8_t v = 0;
        for (int64_t j = 0; j < inner; j++) v |= p[j] != 0;
        ((uint8_t*)yv)[r] = v;
        break;
      }
      case ALL: {
        uint8_t v = 1;
        for (int64_t j = 0; j < inner; j++) v &= p[j] != 0;
        ((uint8_t*)yv)[r] = v;
        break;
      }
    }
  }
}
}  // namespace

TR_API void tr_reduce(int op, int dtype, const void* x, void* y, int64_t outer, int64_t inner) {
  if (dtype == F32) reduce_rows(op, (const float*)x, y, outer, inner);
  else if (dtype == I32) reduce_rows(op, (const int32_t*)x, y, outer, inner);
  else reduce_rows(op, (const uint8_t*)x, y, outer, inner);
}

// Cumulative sum along the middle axis of [outer, len, inner].
TR_API void tr_cumsum(int dtype, const void* xv, void* yv, int64_t outer, int64_t len, int64_t inner, int exclusive, int reverse) {
  auto run = [&](auto* x, auto* y) {
    #pragma omp parallel for schedule(static) if (outer * len * inner > kParallelGrain)
    for (int64_t o = 0; o < outer; o++) {
      for (int64_t i = 0; i < inner; i++) {
        double acc = 0;
        for (int64_t t = 0; t < len; t++) {
          const int64_t tt = reverse ? len - 1 - t : t;
          const int64_t idx = (o * len + tt) * inner + i;
          if (exclusive) {
            const double v = x[idx];
            y[idx] = acc;
            acc += v;
          } else {
            acc += x[idx];
            y[idx] = acc;
          }
        }
      }
    }
  };
  if (dtype == F32) run((const float*)xv, (float*)yv);
  else run((const int32_t*)xv, (int32_t*)yv);
}

// Reduction over the middle axis of [outer, red, inner] (float32; sum, max, min, prod, mean): the
// layout of bias gradients and batch reductions, done without a transpose.
TR_API void tr_reduce_mid(int op, const float* x, float* y, int64_t outer, int64_t red, int64_t inner) {
  #pragma omp parallel for schedule(static) if (outer * red * inner > kParallelGrain && outer > 1)
  for (int64_t o = 0; o < outer; o++) {
    float* acc = y + o * inner;
    const float* p = x + o * red * inner;
    const float init = op == MAX ? -INFINITY : op == MIN ? INFINITY : op == PROD ? 1.0f : 0.0f;
    for (int64_t i = 0; i < inner; i++) acc[i] = init;
    for (int64_t r = 0; r < red; r++) {
      const float* q = p + r * inner;
      switch (op) {
        case MAX: for (int64_t i = 0; i < inner; i++) acc[i] = q[i] > acc[i] || std::isnan(q[i]) ? q[i] : acc[i]; break;
        case MIN: for (int64_t i = 0; i < inner; i++) acc[i] = q[i] < acc[i] || std::isnan(q[i]) ? q[i] : acc[i]; break;
        case PROD: for (int64_t i = 0; i < inner; i++) acc[i] *= q[i]; break;
        default: for (int64_t i = 0; i < inner; i++) acc[i] += q[i]; break;
      }
    }
    if (op == MEAN) for (int64_t i = 0; i < inner; i++) acc[i] /= (float)red;
  }
}
