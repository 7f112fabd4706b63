// Matrix multiplication: a BLAS (OpenBLAS/MKL via cblas) when linked, else a built-in blocked GEMM.
// Small per-batch products (attention heads) run one per thread through the built-in kernel, where a
// BLAS call's threading overhead would dominate.
#include "api.h"
#include "common.h"
#include <algorithm>
#include <cstring>
#include <vector>
#ifdef TR_HAVE_CBLAS
#include <cblas.h>
#endif

using namespace tr;

namespace {
constexpr int64_t kBlockK = 256;
constexpr int64_t kBlockN = 512;
constexpr int64_t kSmallGemm = 1 << 18;  // m*n*k below which batches go one per thread

// C[m,n] = A[m,k] B[k,n], all row-major and contiguous; the j loop vectorises.
void gemm_nn(const float* A, const float* B, float* C, int64_t m, int64_t n, int64_t k) {
  std::memset(C, 0, sizeof(float) * m * n);
  for (int64_t p0 = 0; p0 < k; p0 += kBlockK) {
    const int64_t p1 = std::min(k, p0 + kBlockK);
    for (int64_t j0 = 0; j0 < n; j0 += kBlockN) {
      const int64_t j1 = std::min(n, j0 + kBlockN);
      for (int64_t i = 0; i < m; i++) {
        float* __restrict c = C + i * n;
        const float* a = A + i * k;
        for (int64_t p = p0; p < p1; p++) {
          const float av = a[p];
          const float* __restrict b = B + p * n;
          for (int64_t j = j0; j < j1; j++) c[j] += av * b[j];
        }
      }
    }
  }
}

void transpose2d(const float* x, float* y, int64_t rows, int64_t cols) {
  for (int64_t i = 0; i < rows; i++)
    for (int64_t j = 0; j < cols; j++) y[j * rows + i] = x[i * cols + j];
}

// Built-in GEMM with transposes handled by packing into the nn layout.
void gemm_builtin(const float* a, const float* b, float* c, int64_t m, int64_t n, int64_t k, bool ta, bool tb,
                  std::vector<float>& scratch) {
  const float* A = a;
  const float* B = b;
  scratch.resize((ta ? m * k : 0) + (tb ? k * n : 0));
  float* s = scratch.data();
  if (ta) {  // a is [k, m]
    transpose2d(a, s, k, m);
    A = s;
    s += m * k;
  }
  if (tb) {  // b is [n, k]
    transpose2d(b, s, n, k);
    B = s;
  }
  gemm_nn(A, B, c, m, n, k);
}
}  // namespace

TR_API void tr_gemm_builtin(const float* a, const float* b, float* c, int64_t m, int64_t n, int64_t k, int ta, int tb) {
  std::vector<float> scratch;
  gemm_builtin(a, b, c, m, n, k, ta, tb, scratch);
}

TR_API void tr_matmul(const float* a, const float* b, float* c, int64_t batch, int64_t a_batch, int64_t b_batch, int64_t m,
                      int64_t n, int64_t k, int ta, int tb) {
  if (m == 0 || n == 0) return;
  if (k == 0) {
    std::memset(c, 0, sizeof(float) * batch * m * n);
    return;
  }
  auto A = [&](int64_t i) { return a + (a_batch == 1 ? 0 : i) * m * k; };
  auto B = [&](int64_t i) { return b + (b_batch == 1 ? 0 : i) * k * n; };
#ifdef TR_HAVE_CBLAS
  {
    // One thread pool (OpenMP) for everything: the BLAS runs single-threaded on row blocks, so its
    // threads never fight OpenMP's spinning workers for the cores.
    int threads = 1;
#ifdef _OPENMP
    threads = omp_get_max_threads();
#endif
    // Many small products (attention heads): one per task; few large ones: split rows too.
    const int64_t blocks_per_batch = batch >= threads ? 1 : std::max<int64_t>(1, std::min<int64_t>(threads, m / 16));
    const int64_t rows_per_block = (m + blocks_per_batch - 1) / blocks_per_batch;
    const int64_t tasks = batch * blocks_per_batch;
    #pragma omp parallel for schedule(static) if (tasks > 1 && m * n * k * batch > kSmallGemm)
    for (int64_t t = 0; t < tasks; t++) {
      const int64_t i = t / blocks_per_batch;
      const int64_t r0 = (t % blocks_per_batch) * rows_per_block;
      const int64_t rows = std::min(m, r0 + rows_per_block) - r0;
      if (rows <= 0) continue;
      // Rows r0.. of op(A): row-major A [m,k] starts at r0*k; transposed A [k,m] at column r0.
      const float* a0 = A(i) + (ta ? r0 : r0 * k);
      cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (int)rows, (int)n, (int)k, 1.0f,
                  a0, ta ? (int)m : (int)k, B(i), tb ? (int)k : (int)n, 0.0f, c + i * m * n + r0 * n, (int)n);
    }
    return;
  }
#endif
  #pragma omp parallel
  {
    std::vector<float> scratch;
    #pragma omp for schedule(dynamic)
    for (int64_t i = 0; i < batch; i++) gemm_builtin(A(i), B(i), c + i * m * n, m, n, k, ta, tb, scratch);
  }
}
