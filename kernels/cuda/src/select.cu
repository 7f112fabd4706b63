// tr_select_blocks on the device (see api.h), with the semantics of kernels/native/src/select.cpp:
// the layout never visits the host. Three launches: rank and mark each row's blocks (one thread block
// per row; a block's rank is the count of better-scored blocks, so no sort is needed at nQ <= a few
// thousand), offsets (one thread: H*nQ additions), then pack each row in ascending order (one warp).
#include "common.cuh"

using namespace tr;

namespace {
__global__ void mark_rows_k(const float* scores, int nQ, int mode, int n, double gamma, uint8_t* flags, int32_t* counts) {
  extern __shared__ float s[];
  __shared__ int cnt;
  const int64_t r = blockIdx.x;
  const int i = (int)(r % nQ), m = i + 1;
  const float* row = scores + r * nQ;
  for (int j = threadIdx.x; j < m; j += blockDim.x) s[j] = mode == 0 && j == i ? INFINITY : row[j];
  if (threadIdx.x == 0) cnt = 0;
  __syncthreads();
  double total = 0;  // the same index order as the CPU, in double
  if (mode == 1) for (int j = 0; j < m; j++) total += fmaxf(0.0f, s[j]);
  int local = 0;
  for (int j = threadIdx.x; j < m; j += blockDim.x) {
    const float v = s[j];
    int rank = 0;
    double before = 0;  // the scores ranked above j: what the CPU's running sum holds when it reaches j
    for (int t = 0; t < m; t++) {
      const float u = s[t];
      if (u > v || (u == v && t < j)) rank++, before += fmaxf(0.0f, u);
    }
    const bool sel = mode == 0 ? rank < n : (rank == 0 || before < gamma * total || j == i);
    flags[r * nQ + j] = sel ? 1 : 0;
    local += sel ? 1 : 0;
  }
  atomicAdd(&cnt, local);
  __syncthreads();
  if (threadIdx.x == 0) counts[r] = cnt;
}

__global__ void offsets_k(const int32_t* counts, int H, int nQ, int32_t* row_ptr) {
  int32_t p = 0;
  for (int h = 0; h < H; h++) {
    row_ptr[h * (nQ + 1)] = p;
    for (int i = 0; i < nQ; i++) row_ptr[h * (nQ + 1) + i + 1] = (p += counts[h * nQ + i]);
  }
}

__global__ void pack_rows_k(const uint8_t* flags, const int32_t* row_ptr, int nQ, int L, int B, int32_t* col_idx, uint8_t* full) {
  const int64_t r = blockIdx.x;
  const int h = (int)(r / nQ), i = (int)(r % nQ), lane = threadIdx.x;
  int64_t p = row_ptr[h * (nQ + 1) + i];
  const bool row_complete = (int64_t)(i + 1) * B <= L;
  for (int base = 0; base <= i; base += 32) {
    const int j = base + lane;
    const bool f = j <= i && flags[r * nQ + j];
    const unsigned bits = __ballot_sync(0xffffffffu, f);
    if (f) {
      const int64_t at = p + __popc(bits & ((1u << lane) - 1u));
      col_idx[at] = j;
      full[at] = j < i && row_complete ? 1 : 0;
    }
    p += __popc(bits);
  }
}
}  // namespace

TR_API void tr_select_blocks(const float* scores, int H, int nQ, int L, int B, int mode, int n, double gamma, int32_t* row_ptr,
                             int32_t* col_idx, uint8_t* full, uint8_t* flags, int32_t* counts) {
  const int64_t rows = (int64_t)H * nQ;
  if (rows == 0) return;
  const size_t smem = (size_t)nQ * sizeof(float);
  if (smem > 48 * 1024) {
    set_error("tr_select_blocks", __FILE__, __LINE__, "more than 12288 query blocks per row");
    return;
  }
  mark_rows_k<<<(unsigned)rows, 256, smem, stream()>>>(scores, nQ, mode, n, gamma, flags, counts);
  TR_LAUNCHED("mark_rows_k");
  offsets_k<<<1, 1, 0, stream()>>>(counts, H, nQ, row_ptr);
  TR_LAUNCHED("offsets_k");
  pack_rows_k<<<(unsigned)rows, 32, 0, stream()>>>(flags, row_ptr, nQ, L, B, col_idx, full);
  TR_LAUNCHED("pack_rows_k");
}
