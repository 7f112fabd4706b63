// Reductions with the semantics of kernels/native/src/reduce.cpp. Every reduction has a fixed order
// (tree within a block, partial rows then a second pass), so results do not vary between runs.
#include "common.cuh"
#include <cfloat>
#include <climits>
#include <algorithm>

using namespace tr;

namespace {
enum Reduce { SUM, MAX, MIN, PROD, MEAN, ARGMAX, ARGMIN, ANY, ALL };

template <class T> __device__ T lowest();
template <> __device__ float lowest<float>() { return -INFINITY; }
template <> __device__ int32_t lowest<int32_t>() { return INT_MIN; }
template <> __device__ uint8_t lowest<uint8_t>() { return 0; }
template <class T> __device__ T highest();
template <> __device__ float highest<float>() { return INFINITY; }
template <> __device__ int32_t highest<int32_t>() { return INT_MAX; }
template <> __device__ uint8_t highest<uint8_t>() { return 1; }

__device__ __forceinline__ bool nan_or(float a, bool c) { return c || isnan(a); }
__device__ __forceinline__ bool nan_or(int32_t, bool c) { return c; }
__device__ __forceinline__ bool nan_or(uint8_t, bool c) { return c; }

// One block per row of [outer, inner], or per chunk of a row when blockIdx.y spans several (then
// the block's result goes to part[row * chunks + chunk] for reduce_chunks_k); sums in double.
template <class T>
__global__ void reduce_rows_k(int op, const T* x, void* y, int64_t inner, double* part, int64_t per) {
  const int64_t r = blockIdx.x, c0 = blockIdx.y * per;
  const T* p = x + r * inner + c0;
  if (part) inner = min(per, inner - c0);  // this chunk's length
  __shared__ double sd[256];
  __shared__ int64_t si[256];
  double acc;
  int64_t best = -1;
  if (op == SUM || op == MEAN || op == ANY) acc = 0;
  else if (op == PROD || op == ALL) acc = 1;
  else acc = 0;
  T m = op == MAX ? lowest<T>() : highest<T>();
  for (int64_t j = threadIdx.x; j < inner; j += blockDim.x) {
    const T v = p[j];
    switch (op) {
      case SUM: case MEAN: acc += (double)v; break;
      case PROD: acc *= (double)v; break;
      case ANY: acc = (acc != 0 || v != 0) ? 1 : 0; break;
      case ALL: acc = (acc != 0 && v != 0) ? 1 : 0; break;
      case MAX: if (nan_or(v, v > m)) m = v; break;
      case MIN: if (nan_or(v, v < m)) m = v; break;
      case ARGMAX: if (best < 0 || v > p[best]) best = j; break;
      case ARGMIN: if (best < 0 || v < p[best]) best = j; break;
    }
  }
  if (op == MAX || op == MIN) acc = (double)m;
  sd[threadIdx.x] = acc;
  si[threadIdx.x] = best;
  __syncthreads();
  for (int s = blockDim.x / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s) {
      const double a = sd[threadIdx.x], b = sd[threadIdx.x + s];
      switch (op) {
        case SUM: case MEAN: sd[threadIdx.x] = a + b; break;
        case PROD: sd[threadIdx.x] = a * b; break;
        case ANY: sd[threadIdx.x] = (a != 0 || b != 0); break;
        case ALL: sd[threadIdx.x] = (a != 0 && b != 0); break;
        case MAX: sd[threadIdx.x] = (b > a || isnan(b)) ? b : a; break;
        case MIN: sd[threadIdx.x] = (b < a || isnan(b)) ? b : a; break;
        case ARGMAX: case ARGMIN: {
          const int64_t i = si[threadIdx.x], k = si[threadIdx.x + s];
          // The first index wins ties, as in the sequential loop.
          if (k >= 0 && (i < 0 || (op == ARGMAX ? p[k] > p[i] : p[k] < p[i]) || (p[k] == p[i] && k < i))) si[threadIdx.x] = k;
          break;
        }
      }
    }
    __syncthreads();
  }
  if (threadIdx.x == 0 && part) {
    part[r * gridDim.y + blockIdx.y] = sd[0];
  } else if (threadIdx.x == 0) {
    if (op == ARGMAX || op == ARGMIN) ((int32_t*)y)[r] = (int32_t)(si[0] < 0 ? 0 : si[0]);
    else if (op == ANY || op == ALL) ((uint8_t*)y)[r] = sd[0] != 0;
    else if (op == MEAN) ((T*)y)[r] = (T)(sd[0] / (double)inner);
    else ((T*)y)[r] = (T)sd[0];
  }
}

// The chunks of each row folded in order (the same tree order every run), then written as
// reduce_rows_k writes a whole row.
template <class T>
__global__ void reduce_chunks_k(int op, const double* part, void* y, int64_t outer, int64_t chunks, int64_t inner) {
  const int64_t r = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
  if (r >= outer) return;
  const double* q = part + r * chunks;
  double a = q[0];
  for (int64_t c = 1; c < chunks; c++) {
    const double b = q[c];
    switch (op) {
      case SUM: case MEAN: a += b; break;
      case PROD: a *= b; break;
      case ANY: a = (a != 0 || b != 0); break;
      case ALL: a = (a != 0 && b != 0); break;
      case MAX: a = (b > a || isnan(b)) ? b : a; break;
      case MIN: a = (b < a || isnan(b)) ? b : a; break;
    }
  }
  if (op == ANY || op == ALL) ((uint8_t*)y)[r] = a != 0;
  else if (op == MEAN) ((T*)y)[r] = (T)(a / (double)inner);
  else ((T*)y)[r] = (T)a;
}

__device__ __forceinline__ float combine(int op, float a, float q) {
  switch (op) {
    case MAX: return (q > a || isnan(q)) ? q : a;
    case MIN: return (q < a || isnan(q)) ? q : a;
    case PROD: return a * q;
    default: return a + q;
  }
}
__device__ __forceinline__ float init_of(int op) { return op == MAX ? -INFINITY : op == MIN ? INFINITY : op == PROD ? 1.0f : 0.0f; }

// [outer, red, inner] -> partial[chunk, outer, inner] over rows [chunk*per, (chunk+1)*per); chunk = blockIdx.y.
__global__ void reduce_mid_partial_k(int op, const float* x, float* part, int64_t outer, int64_t red, int64_t inner, int64_t per) {
  const int64_t c = blockIdx.y;
  const int64_t r0 = c * per, r1 = min(red, (c + 1) * per);
  GRID_STRIDE(e, outer * inner) {
    const int64_t o = e / inner, i = e % inner;
    float acc = init_of(op);
    for (int64_t r = r0; r < r1; r++) acc = combine(op, acc, x[(o * red + r) * inner + i]);
    part[c * outer * inner + e] = acc;
  }
}

__global__ void reduce_mid_final_k(int op, const float* part, float* y, int64_t outer, int64_t inner, int64_t chunks, int64_t red) {
  GRID_STRIDE(e, outer * inner) {
    float acc = init_of(op);
    for (int64_t c = 0; c < chunks; c++) acc = combine(op, acc, part[c * outer * inner + e]);
    y[e] = op == MEAN ? acc / (float)red : acc;
  }
}

template <class T>
__global__ void cumsum_k(const T* x, T* y, int64_t outer, int64_t len, int64_t inner, int exclusive, int reverse) {
  GRID_STRIDE(e, outer * inner) {
    const int64_t o = e / inner, i = e % inner;
    double acc = 0;
    for (int64_t t = 0; t < len; t++) {
      const int64_t tt = reverse ? len - 1 - t : t;
      const int64_t idx = (o * len + tt) * inner + i;
      const double v = x[idx];
      if (exclusive) {
        y[idx] = (T)acc;
        acc += v;
      } else {
        acc += v;
        y[idx] = (T)acc;
      }
    }
  }
}

template <class T>
void reduce_rows(int op, const T* x, void* y, int64_t outer, int64_t inner) {
  auto st = stream();
  const int threads = inner >= 256 ? 256 : inner >= 64 ? 64 : 32;
  // Few long rows (a loss summed to a scalar: one row of 16M) would leave one block per row doing
  // all the work (25 ms for 64 MB on an H200): split them into chunks of >= 8K, ~1K blocks in all.
  // arg-reductions keep one block per row (their partial results would need indices).
  int64_t chunks = 1;
  if (op != ARGMAX && op != ARGMIN)
    chunks = std::max<int64_t>(1, std::min<int64_t>((1024 + outer - 1) / outer, inner / 8192));
  if (chunks == 1) {
    reduce_rows_k<T><<<(unsigned)outer, threads, 0, st>>>(op, x, y, inner, nullptr, inner);
    return;
  }
  const int64_t per = (inner + chunks - 1) / chunks;
  chunks = (inner + per - 1) / per;
  double* part = nullptr;
  TR_CUDA(cudaMallocAsync((void**)&part, outer * chunks * sizeof(double), st));
  if (has_error()) return;
  reduce_rows_k<T><<<dim3((unsigned)outer, (unsigned)chunks), threads, 0, st>>>(op, x, y, inner, part, per);
  reduce_chunks_k<T><<<(unsigned)blocks_for(outer, 128), 128, 0, st>>>(op, part, y, outer, chunks, inner);
  TR_CUDA(cudaFreeAsync(part, st));
}
}  // namespace

TR_API void tr_reduce(int op, int dtype, const void* x, void* y, int64_t outer, int64_t inner) {
  if (outer <= 0) return;
  if (dtype == F32) reduce_rows(op, (const float*)x, y, outer, inner);
  else if (dtype == I32) reduce_rows(op, (const int32_t*)x, y, outer, inner);
  else reduce_rows(op, (const uint8_t*)x, y, outer, inner);
  TR_LAUNCHED("reduce");
}

TR_API void tr_reduce_mid(int op, const float* x, float* y, int64_t outer, int64_t red, int64_t inner) {
  if (outer * inner <= 0) return;
  auto st = stream();
  // Enough partial rows that small outer*inner still fills the GPU; each chunk is summed in order.
  int64_t chunks = 1;
  while (chunks < 256 && outer * inner * chunks < (1 << 16) && red / (chunks * 2) >= 16) chunks *= 2;
  const int64_t per = (red + chunks - 1) / chunks;
  float* part = nullptr;
  TR_CUDA(cudaMallocAsync((void**)&part, chunks * outer * inner * 4, st));
  if (has_error()) return;
  dim3 grid((unsigned)blocks_for(outer * inner, 128), (unsigned)chunks);
  reduce_mid_partial_k<<<grid, 128, 0, st>>>(op, x, part, outer, red, inner, per);
  reduce_mid_final_k<<<blocks_for(outer * inner), 256, 0, st>>>(op, part, y, outer, inner, chunks, red);
  TR_LAUNCHED("reduce_mid");
  TR_CUDA(cudaFreeAsync(part, st));
}

TR_API void tr_cumsum(int dtype, const void* x, void* y, int64_t outer, int64_t len, int64_t inner, int exclusive, int reverse) {
  const int64_t n = outer * inner;
  if (n <= 0 || len <= 0) return;
  if (dtype == F32) cumsum_k<<<blocks_for(n), 256, 0, stream()>>>((const float*)x, (float*)y, outer, len, inner, exclusive, reverse);
  else cumsum_k<<<blocks_for(n), 256, 0, stream()>>>((const int32_t*)x, (int32_t*)y, outer, len, inner, exclusive, reverse);
  TR_LAUNCHED("cumsum");
}
