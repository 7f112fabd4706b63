// Shared by the cuda kernels: one stream for all work (kept asynchronous; only reads to the host
// synchronize), a sticky first error that the TypeScript side turns into an exception, launch helpers.
#pragma once
#include <cuda_runtime.h>
#include <cstdint>
#include <cmath>
#include "../../native/src/api.h"

namespace tr {
enum DType : int { F32 = 0, I32 = 1, U8 = 2 };
constexpr int kMaxRank = 8;

cudaStream_t stream();
// Records the first failure (call, file:line, CUDA's message); later calls keep it.
void set_error(const char* what, const char* file, int line, const char* msg);
bool has_error();

inline int64_t blocks_for(int64_t n, int threads = 256) {
  int64_t b = (n + threads - 1) / threads;
  return b < 1 ? 1 : (b > 65535 * 32 ? 65535 * 32 : b);
}

// Dims passed by value to kernels: the host arrays of the C ABI never reach the device.
struct Dims {
  int rank;
  int32_t v[kMaxRank];
};
inline Dims dims(int rank, const int32_t* p) {
  Dims d{rank, {}};
  for (int i = 0; i < rank && i < kMaxRank; i++) d.v[i] = p[i];
  return d;
}
}  // namespace tr

#define TR_CUDA(call)                                                                        \
  do {                                                                                       \
    cudaError_t e_ = (call);                                                                 \
    if (e_ != cudaSuccess) tr::set_error(#call, __FILE__, __LINE__, cudaGetErrorString(e_)); \
  } while (0)

// After every launch: a bad configuration shows here, a fault at the next synchronization.
#define TR_LAUNCHED(name) TR_CUDA(cudaPeekAtLastError())

#define GRID_STRIDE(i, n) for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < (n); i += (int64_t)gridDim.x * blockDim.x)
