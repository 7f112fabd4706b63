// Softmax, layer norm (forward and backward) and tanh-GELU with the semantics of
// kernels/native/src/fused.cpp. Row kernels use one block per row and fixed-order reductions.
#include "common.cuh"

using namespace tr;

namespace {
// Sum (or max) over the block, the same tree every time; blockDim.x a power of two <= 1024.
template <bool MAX>
__device__ float block_reduce(float v, float* sh) {
  for (int o = 16; o > 0; o >>= 1) {
    const float w = __shfl_xor_sync(0xffffffff, v, o);
    v = MAX ? fmaxf(v, w) : v + w;
  }
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, nw = blockDim.x / 32;
  __syncthreads();
  if (lane == 0) sh[warp] = v;
  __syncthreads();
  if (warp == 0) {
    v = lane < nw ? sh[lane] : (MAX ? -INFINITY : 0.0f);
    for (int o = 16; o > 0; o >>= 1) {
      const float w = __shfl_xor_sync(0xffffffff, v, o);
      v = MAX ? fmaxf(v, w) : v + w;
    }
    if (lane == 0) sh[0] = v;
  }
  __syncthreads();
  return sh[0];
}

int row_threads(int64_t cols) { return cols >= 512 ? 256 : cols >= 128 ? 128 : 32; }

__global__ void softmax_k(const float* x, float* y, int64_t cols) {
  __shared__ float sh[32];
  const float* p = x + blockIdx.x * cols;
  float* q = y + blockIdx.x * cols;
  float m = -INFINITY;
  for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) m = fmaxf(m, p[j]);
  m = block_reduce<true>(m, sh);
  float s = 0;
  for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) s += expf(p[j] - m);
  s = block_reduce<false>(s, sh);
  const float inv = 1.0f / s;
  for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) q[j] = expf(p[j] - m) * inv;
}

__global__ void layernorm_fwd_k(const float* x, const float* g, const float* b, float* y, float* mean, float* rstd, int64_t cols, float eps) {
  __shared__ float sh[32];
  const int64_t r = blockIdx.x;
  const float* p = x + r * cols;
  float s = 0;
  for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) s += p[j];
  const float mu = block_reduce<false>(s, sh) / cols;
  float v = 0;
  for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) v += (p[j] - mu) * (p[j] - mu);
  const float rs = rsqrtf(block_reduce<false>(v, sh) / cols + eps);
  float* q = y + r * cols;
  for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) q[j] = (p[j] - mu) * rs * g[j] + b[j];
  if (threadIdx.x == 0) {
    mean[r] = mu;
    rstd[r] = rs;
  }
}

__global__ void layernorm_bwd_dx_k(const float* dy, const float* x, const float* g, const float* mean, const float* rstd, float* dx,
                                   int64_t cols) {
  __shared__ float sh[32];
  const int64_t r = blockIdx.x;
  const float* pdy = dy + r * cols;
  const float* px = x + r * cols;
  const float mu = mean[r], rs = rstd[r];
  float s1 = 0, s2 = 0;
  for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) {
    const float d = pdy[j] * g[j];
    s1 += d;
    s2 += d * (px[j] - mu) * rs;
  }
  s1 = block_reduce<false>(s1, sh) / cols;
  s2 = block_reduce<false>(s2, sh) / cols;
  float* q = dx + r * cols;
  for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) q[j] = rs * (pdy[j] * g[j] - s1 - (px[j] - mu) * rs * s2);
}

// dgamma/dbeta partial sums over a chunk of rows (blockIdx.y), then a fixed-order final pass.
__global__ void layernorm_bwd_dg_k(const float* dy, const float* x, const float* mean, const float* rstd, float* part, int64_t rows,
                                   int64_t cols, int64_t per) {
  const int64_t c = blockIdx.y;
  const int64_t r0 = c * per, r1 = min(rows, r0 + per);
  GRID_STRIDE(j, cols) {
    float ag = 0, ab = 0;
    for (int64_t r = r0; r < r1; r++) {
      const float d = dy[r * cols + j];
      ag += d * (x[r * cols + j] - mean[r]) * rstd[r];
      ab += d;
    }
    part[(c * 2) * cols + j] = ag;
    part[(c * 2 + 1) * cols + j] = ab;
  }
}

__global__ void layernorm_bwd_dg_final_k(const float* part, float* dg, float* db, int64_t cols, int64_t chunks) {
  GRID_STRIDE(j, cols) {
    float ag = 0, ab = 0;
    for (int64_t c = 0; c < chunks; c++) {
      ag += part[(c * 2) * cols + j];
      ab += part[(c * 2 + 1) * cols + j];
    }
    dg[j] = ag;
    db[j] = ab;
  }
}

constexpr float kSqrt2OverPi = 0.7978845608028654f;
constexpr float kGeluC = 0.044715f;

__global__ void gelu_fwd_k(const float* x, float* y, int64_t n) {
  GRID_STRIDE(i, n) {
    const float v = x[i];
    y[i] = 0.5f * v * (1.0f + tanhf(kSqrt2OverPi * (v + kGeluC * v * v * v)));
  }
}

__global__ void gelu_bwd_k(const float* dy, const float* x, float* dx, int64_t n) {
  GRID_STRIDE(i, n) {
    const float v = x[i];
    const float t = tanhf(kSqrt2OverPi * (v + kGeluC * v * v * v));
    const float dt = (1.0f - t * t) * kSqrt2OverPi * (1.0f + 3.0f * kGeluC * v * v);
    dx[i] = dy[i] * (0.5f * (1.0f + t) + 0.5f * v * dt);
  }
}
}  // namespace

TR_API void tr_softmax(const float* x, float* y, int64_t rows, int64_t cols) {
  if (rows <= 0 || cols <= 0) return;
  softmax_k<<<rows, row_threads(cols), 0, stream()>>>(x, y, cols);
  TR_LAUNCHED("softmax");
}

TR_API void tr_layernorm_fwd(const float* x, const float* g, const float* b, float* y, float* mean, float* rstd, int64_t rows,
                             int64_t cols, float eps) {
  if (rows <= 0) return;
  layernorm_fwd_k<<<rows, row_threads(cols), 0, stream()>>>(x, g, b, y, mean, rstd, cols, eps);
  TR_LAUNCHED("layernorm_fwd");
}

TR_API void tr_layernorm_bwd(const float* dy, const float* x, const float* g, const float* mean, const float* rstd, float* dx,
                             float* dg, float* db, int64_t rows, int64_t cols) {
  if (cols <= 0) return;
  auto st = stream();
  if (rows > 0) layernorm_bwd_dx_k<<<rows, row_threads(cols), 0, st>>>(dy, x, g, mean, rstd, dx, cols);
  int64_t chunks = 1;
  while (chunks < 256 && cols * chunks < (1 << 16) && rows / (chunks * 2) >= 16) chunks *= 2;
  const int64_t per = (rows + chunks - 1) / chunks;
  float* part = nullptr;
  TR_CUDA(cudaMallocAsync((void**)&part, chunks * 2 * cols * 4, st));
  if (has_error()) return;
  layernorm_bwd_dg_k<<<dim3((unsigned)blocks_for(cols, 128), (unsigned)chunks), 128, 0, st>>>(dy, x, mean, rstd, part, rows, cols, per);
  layernorm_bwd_dg_final_k<<<blocks_for(cols), 256, 0, st>>>(part, dg, db, cols, chunks);
  TR_LAUNCHED("layernorm_bwd");
  TR_CUDA(cudaFreeAsync(part, st));
}

TR_API void tr_gelu_fwd(const float* x, float* y, int64_t n) {
  if (n <= 0) return;
  gelu_fwd_k<<<blocks_for(n), 256, 0, stream()>>>(x, y, n);
  TR_LAUNCHED("gelu_fwd");
}

TR_API void tr_gelu_bwd(const float* dy, const float* x, float* dx, int64_t n) {
  if (n <= 0) return;
  gelu_bwd_k<<<blocks_for(n), 256, 0, stream()>>>(dy, x, dx, n);
  TR_LAUNCHED("gelu_bwd");
}
