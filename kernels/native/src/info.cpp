// Library identity and thread control, reported in every run's fingerprint.
#include "api.h"
#include "common.h"
#include <cstdio>
#include <xmmintrin.h>
#include <pmmintrin.h>
#ifdef TR_HAVE_CBLAS
extern "C" void openblas_set_num_threads(int) __attribute__((weak));
extern "C" char* openblas_get_config() __attribute__((weak));
#endif

namespace {
// Flush denormals to zero on every worker thread: optimizer moments decay into the denormal range,
// where x86 arithmetic is ~100x slower. (tfjs-cpu keeps denormals; differences stay < 1e-38.)
void flush_denormals_everywhere() {
  _MM_SET_FLUSH_ZERO_MODE(_MM_FLUSH_ZERO_ON);
  _MM_SET_DENORMALS_ZERO_MODE(_MM_DENORMALS_ZERO_ON);
#ifdef _OPENMP
  #pragma omp parallel
  {
    _MM_SET_FLUSH_ZERO_MODE(_MM_FLUSH_ZERO_ON);
    _MM_SET_DENORMALS_ZERO_MODE(_MM_DENORMALS_ZERO_ON);
  }
#endif
}
struct Init {
  Init() {
#ifdef TR_HAVE_CBLAS
    // The BLAS runs inside our OpenMP workers (see gemm.cpp), single-threaded.
    if (openblas_set_num_threads) openblas_set_num_threads(1);
#endif
    flush_denormals_everywhere();
  }
} init;
}  // namespace

TR_API const char* tr_info() {
  static char buf[512];
  const char* blas = "builtin";
#ifdef TR_HAVE_CBLAS
  blas = openblas_get_config ? openblas_get_config() : "cblas";
#endif
  int threads = 1;
#ifdef _OPENMP
  threads = omp_get_max_threads();
#endif
  std::snprintf(buf, sizeof buf, "blas=%s;threads=%d;simd=%s", blas, threads,
#if defined(__AVX512F__)
                "avx512"
#elif defined(__AVX2__)
                "avx2"
#else
                "baseline"
#endif
  );
  return buf;
}

TR_API void tr_set_num_threads(int n) {
#ifdef _OPENMP
  omp_set_num_threads(n);
#endif
  flush_denormals_everywhere();
}

TR_API int tr_get_num_threads() {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}
