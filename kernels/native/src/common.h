// Shared helpers of the native kernels. Everything is exported with a plain C ABI (see api.h).
#pragma once
#include <cstdint>
#include <cstddef>
#include <cmath>
#ifdef _OPENMP
#include <omp.h>
#endif

namespace tr {
enum DType : int { F32 = 0, I32 = 1, U8 = 2 };

// Below this many elements the OpenMP fork/join costs more than it saves.
constexpr int64_t kParallelGrain = 1 << 15;

// exp(x) by range reduction and a degree-6 polynomial (Cephes expf), rel. error < 2e-7; unlike libm's
// expf it vectorises, which makes softmax/GELU/sigmoid loops several times faster.
inline float fast_exp(float x) {
  x = x < -87.3f ? -87.3f : (x > 88.3f ? 88.3f : x);
  const float n = std::floor(x * 1.44269504088896341f + 0.5f);
  float r = x - n * 0.693359375f;
  r = r + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const int32_t bits = (int32_t)(n + 127.0f) << 23;
  return p * __builtin_bit_cast(float, bits);
}

// tanh through fast_exp; exact to ~3e-7 absolute.
inline float fast_tanh(float x) {
  const float e = fast_exp(-2.0f * std::fabs(x));
  const float t = (1.0f - e) / (1.0f + e);
  return x < 0 ? -t : t;
}

inline int dtype_size(int dt) { return dt == U8 ? 1 : 4; }
}  // namespace tr

#define TR_PARALLEL_FOR(n) _Pragma("omp parallel for schedule(static) if((n) > tr::kParallelGrain)")

namespace tr {
// Split [0, n) into one contiguous chunk per thread and call f(begin, end). The chunk body is a plain
// loop the compiler vectorises (OpenMP-outlined loop bodies often are not).
template <class F>
inline void parallel_chunks(int64_t n, F&& f) {
#ifdef _OPENMP
  if (n > kParallelGrain) {
    #pragma omp parallel
    {
      const int64_t t = omp_get_thread_num(), T = omp_get_num_threads();
      f(n * t / T, n * (t + 1) / T);
    }
    return;
  }
#endif
  f(0, n);
}
}  // namespace tr
