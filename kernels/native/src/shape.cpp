// Data movement: transpose, slice, pad, concat, tile, gather, segment sum, one-hot.
#include "api.h"
#include "common.h"
#include <cstring>
#include <vector>

using namespace tr;

namespace {
template <class T>
void transpose_impl(const T* x, T* y, int rank, const int32_t* shape, const int32_t* perm) {
  int64_t in_strides[8], out_shape[8], total = 1;
  int64_t s = 1;
  for (int d = rank - 1; d >= 0; d--) {
    in_strides[d] = s;
    s *= shape[d];
  }
  for (int d = 0; d < rank; d++) {
    out_shape[d] = shape[perm[d]];
    total *= out_shape[d];
  }
  if (total == 0) return;
  const int64_t inner = out_shape[rank - 1];
  const int64_t inner_stride = in_strides[perm[rank - 1]];
  const int64_t rows = total / inner;
  #pragma omp parallel for schedule(static) if (total > kParallelGrain)
  for (int64_t r = 0; r < rows; r++) {
    int64_t off = 0, rem = r;
    for (int d = rank - 2; d >= 0; d--) {
      off += (rem % out_shape[d]) * in_strides[perm[d]];
      rem /= out_shape[d];
    }
    T* o = y + r * inner;
    const T* p = x + off;
    if (inner_stride == 1) std::memcpy(o, p, inner * sizeof(T));
    else for (int64_t j = 0; j < inner; j++) o[j] = p[j * inner_stride];
  }
}
}  // namespace

TR_API void tr_transpose(int es, const void* x, void* y, int rank, const int32_t* shape, const int32_t* perm) {
  if (es == 4) transpose_impl((const uint32_t*)x, (uint32_t*)y, rank, shape, perm);
  else transpose_impl((const uint8_t*)x, (uint8_t*)y, rank, shape, perm);
}

TR_API void tr_slice(int es, const void* xv, void* yv, int rank, const int32_t* shape, const int32_t* begin,
                     const int32_t* size, const int32_t* step) {
  int64_t in_strides[8], total = 1, s = 1;
  for (int d = rank - 1; d >= 0; d--) {
    in_strides[d] = s;
    s *= shape[d];
  }
  for (int d = 0; d < rank; d++) total *= size[d];
  if (total == 0) return;
  const int64_t inner = size[rank - 1];
  const int64_t rows = total / inner;
  const int64_t st = step[rank - 1];
  auto x = (const uint8_t*)xv;
  auto y = (uint8_t*)yv;
  #pragma omp parallel for schedule(static) if (total > kParallelGrain)
  for (int64_t r = 0; r < rows; r++) {
    int64_t off = 0, rem = r;
    for (int d = rank - 2; d >= 0; d--) {
      off += (begin[d] + (rem % size[d]) * (int64_t)step[d]) * in_strides[d];
      rem /= size[d];
    }
    off += begin[rank - 1];
    if (st == 1) std::memcpy(y + r * inner * es, x + off * es, inner * es);
    else for (int64_t j = 0; j < inner; j++) std::memcpy(y + (r * inner + j) * es, x + (off + j * st) * es, es);
  }
}

TR_API void tr_pad(int es, const void* xv, void* yv, int rank, const int32_t* in_shape, const int32_t* before,
                   const int32_t* out_shape, double constant, int dtype) {
  int64_t out_total = 1, in_total = 1;
  for (int d = 0; d < rank; d++) {
    out_total *= out_shape[d];
    in_total *= in_shape[d];
  }
  tr_fill(dtype, yv, out_total, constant);
  if (in_total == 0) return;
  int64_t out_strides[8], s = 1;
  for (int d = rank - 1; d >= 0; d--) {
    out_strides[d] = s;
    s *= out_shape[d];
  }
  const int64_t inner = in_shape[rank - 1];
  const int64_t rows = in_total / inner;
  auto x = (const uint8_t*)xv;
  auto y = (uint8_t*)yv;
  for (int64_t r = 0; r < rows; r++) {
    int64_t off = before[rank - 1], rem = r;
    for (int d = rank - 2; d >= 0; d--) {
      off += ((rem % in_shape[d]) + before[d]) * out_strides[d];
      rem /= in_shape[d];
    }
    std::memcpy(y + off * es, x + r * inner * es, inner * es);
  }
}

TR_API void tr_concat2d(int es, const void* xv, void* yv, int64_t outer, int64_t inner_x, int64_t inner_y, int64_t offset) {
  auto x = (const uint8_t*)xv;
  auto y = (uint8_t*)yv;
  #pragma omp parallel for schedule(static) if (outer * inner_x > kParallelGrain)
  for (int64_t r = 0; r < outer; r++) std::memcpy(y + (r * inner_y + offset) * es, x + r * inner_x * es, inner_x * es);
}

TR_API void tr_tile(int es, const void* xv, void* yv, int rank, const int32_t* in_shape, const int32_t* out_shape) {
  int64_t total = 1, in_strides[8], s = 1;
  for (int d = rank - 1; d >= 0; d--) {
    in_strides[d] = s;
    s *= in_shape[d];
  }
  for (int d = 0; d < rank; d++) total *= out_shape[d];
  auto x = (const uint8_t*)xv;
  auto y = (uint8_t*)yv;
  for (int64_t i = 0; i < total; i++) {
    int64_t off = 0, rem = i;
    for (int d = rank - 1; d >= 0; d--) {
      off += ((rem % out_shape[d]) % in_shape[d]) * in_strides[d];
      rem /= out_shape[d];
    }
    std::memcpy(y + i * es, x + off * es, es);
  }
}

// x viewed as [batch, outer, axis, inner]; idx as [batch, n_idx] -> y [batch, outer, n_idx, inner].
TR_API void tr_gather(int es, const void* xv, const int32_t* idx, void* yv, int64_t batch, int64_t outer, int64_t axis,
                      int64_t inner, int64_t n_idx) {
  auto x = (const uint8_t*)xv;
  auto y = (uint8_t*)yv;
  const int64_t rows = batch * outer * n_idx;
  #pragma omp parallel for schedule(static) if (rows * inner > kParallelGrain)
  for (int64_t r = 0; r < rows; r++) {
    const int64_t i = r % n_idx, bo = r / n_idx, b = bo / outer;
    int64_t k = idx[b * n_idx + i];
    uint8_t* dst = y + r * inner * es;
    if (k < 0 || k >= axis) std::memset(dst, 0, inner * es);  // tfjs-cpu errors; we zero-fill
    else std::memcpy(dst, x + ((bo * axis) + k) * inner * es, inner * es);
  }
}

TR_API void tr_unsorted_segment_sum(int dtype, const void* xv, const int32_t* seg, void* yv, int64_t n, int64_t inner,
                                    int64_t num_segments) {
  tr_fill(dtype, yv, num_segments * inner, 0.0);
  if (dtype == F32) {
    auto x = (const float*)xv;
    auto y = (float*)yv;
    // Parallel over the inner axis: no two threads write the same element.
    #pragma omp parallel for schedule(static) if (n * inner > kParallelGrain && inner >= 16)
    for (int64_t j = 0; j < inner; j++)
      for (int64_t i = 0; i < n; i++) {
        const int32_t s = seg[i];
        if (s >= 0 && s < num_segments) y[s * inner + j] += x[i * inner + j];
      }
  } else {
    auto x = (const int32_t*)xv;
    auto y = (int32_t*)yv;
    for (int64_t i = 0; i < n; i++) {
      const int32_t s = seg[i];
      if (s >= 0 && s < num_segments)
        for (int64_t j = 0; j < inner; j++) y[s * inner + j] += x[i * inner + j];
    }
  }
}

TR_API void tr_one_hot(const int32_t* idx, void* yv, int dtype, int64_t n, int64_t depth, double on, double off) {
  tr_fill(dtype, yv, n * depth, off);
  for (int64_t i = 0; i < n; i++) {
    const int32_t k = idx[i];
    if (k < 0 || k >= depth) continue;
    if (dtype == F32) ((float*)yv)[i * depth + k] = (float)on;
    else if (dtype == I32) ((int32_t*)yv)[i * depth + k] = (int32_t)on;
    else ((uint8_t*)yv)[i * depth + k] = on != 0;
  }
}
