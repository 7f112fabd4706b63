// Matrix products through cuBLAS (row-major operands mapped onto its column-major interface).
// TF32 tensor-core math is on unless TABRECALL_TF32=0; the choice is reported in tr_info().
#include "common.cuh"
#include <cublas_v2.h>
#include <cstdlib>

using namespace tr;

namespace {
cublasHandle_t g_handle = nullptr;
int g_tf32 = -1;

const char* status_name(cublasStatus_t s) {
  switch (s) {
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    default: return "cuBLAS error";
  }
}
#define TR_CUBLAS(call)                                                                 \
  do {                                                                                  \
    cublasStatus_t s_ = (call);                                                         \
    if (s_ != CUBLAS_STATUS_SUCCESS) set_error(#call, __FILE__, __LINE__, status_name(s_)); \
  } while (0)

cublasHandle_t handle() {
  if (!g_handle) {
    TR_CUBLAS(cublasCreate(&g_handle));
    if (!g_handle) return nullptr;
    TR_CUBLAS(cublasSetStream(g_handle, stream()));
    const char* env = std::getenv("TABRECALL_TF32");
    g_tf32 = !(env && env[0] == '0');
    TR_CUBLAS(cublasSetMathMode(g_handle, g_tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH));
  }
  return g_handle;
}

__global__ void zero_k(float* p, int64_t n) {
  GRID_STRIDE(i, n) p[i] = 0.0f;
}
}  // namespace

TR_API int tr_tf32_enabled() {
  handle();
  return g_tf32;
}

TR_API void tr_matmul(const float* a, const float* b, float* c, int64_t batch, int64_t a_batch, int64_t b_batch, int64_t m, int64_t n,
                      int64_t k, int ta, int tb) {
  if (m == 0 || n == 0 || batch == 0) return;
  if (k == 0) {
    zero_k<<<blocks_for(batch * m * n), 256, 0, stream()>>>(c, batch * m * n);
    TR_LAUNCHED("zero");
    return;
  }
  cublasHandle_t h = handle();
  if (!h) return;
  const float one = 1.0f, zero = 0.0f;
  // Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T.
  const int lda = ta ? (int)m : (int)k;
  const int ldb = tb ? (int)k : (int)n;
  TR_CUBLAS(cublasSgemmStridedBatched(h, tb ? CUBLAS_OP_T : CUBLAS_OP_N, ta ? CUBLAS_OP_T : CUBLAS_OP_N, (int)n, (int)m, (int)k, &one, b,
                                      ldb, b_batch == 1 ? 0 : k * n, a, lda, a_batch == 1 ? 0 : m * k, &zero, c, (int)n, m * n,
                                      (int)batch));
}

TR_API void tr_gemm_builtin(const float* a, const float* b, float* c, int64_t m, int64_t n, int64_t k, int ta, int tb) {
  tr_matmul(a, b, c, 1, 1, 1, m, n, k, ta, tb);
}
