// Data movement with the semantics of kernels/native/src/shape.cpp.
#include "common.cuh"
#include <cub/cub.cuh>

using namespace tr;

namespace {
template <class T>
__global__ void transpose_k(const T* x, T* y, int64_t n, Dims out_shape, Dims in_strides_perm) {
  GRID_STRIDE(i, n) {
    int64_t off = 0, rem = i;
    for (int d = out_shape.rank - 1; d >= 0; d--) {
      off += (rem % out_shape.v[d]) * in_strides_perm.v[d];
      rem /= out_shape.v[d];
    }
    y[i] = x[off];
  }
}

template <class T>
__global__ void slice_k(const T* x, T* y, int64_t n, Dims size, Dims begin, Dims step, Dims in_strides) {
  GRID_STRIDE(i, n) {
    int64_t off = 0, rem = i;
    for (int d = size.rank - 1; d >= 0; d--) {
      off += (begin.v[d] + (rem % size.v[d]) * (int64_t)step.v[d]) * in_strides.v[d];
      rem /= size.v[d];
    }
    y[i] = x[off];
  }
}

// Every output element: the input element it comes from, or the constant.
template <class T>
__global__ void pad_k(const T* x, T* y, int64_t n, Dims out_shape, Dims in_shape, Dims before, T constant) {
  GRID_STRIDE(i, n) {
    int64_t off = 0, rem = i, s = 1;
    bool inside = true;
    for (int d = out_shape.rank - 1; d >= 0; d--) {
      const int64_t c = rem % out_shape.v[d] - before.v[d];
      rem /= out_shape.v[d];
      if (c < 0 || c >= in_shape.v[d]) inside = false;
      off += c * s;
      s *= in_shape.v[d];
    }
    y[i] = inside ? x[off] : constant;
  }
}

template <class T>
__global__ void concat_k(const T* x, T* y, int64_t outer, int64_t inner_x, int64_t inner_y, int64_t offset) {
  GRID_STRIDE(i, outer * inner_x) {
    const int64_t r = i / inner_x, c = i % inner_x;
    y[r * inner_y + offset + c] = x[i];
  }
}

template <class T>
__global__ void tile_k(const T* x, T* y, int64_t n, Dims in_shape, Dims out_shape) {
  GRID_STRIDE(i, n) {
    int64_t off = 0, rem = i, s = 1;
    for (int d = out_shape.rank - 1; d >= 0; d--) {
      off += ((rem % out_shape.v[d]) % in_shape.v[d]) * s;
      rem /= out_shape.v[d];
      s *= in_shape.v[d];
    }
    y[i] = x[off];
  }
}

template <class T>
__global__ void gather_k(const T* x, const int32_t* idx, T* y, int64_t n, int64_t outer, int64_t axis, int64_t inner, int64_t n_idx) {
  GRID_STRIDE(e, n) {
    const int64_t c = e % inner, r = e / inner;
    const int64_t i = r % n_idx, bo = r / n_idx, b = bo / outer;
    const int64_t k = idx[b * n_idx + i];
    y[e] = (k < 0 || k >= axis) ? (T)0 : x[((bo * axis) + k) * inner + c];  // tfjs-cpu errors; we zero-fill
  }
}

__global__ void iota_k(int32_t* p, int64_t n) {
  GRID_STRIDE(i, n) p[i] = (int32_t)i;
}

// After a stable sort by segment: the first row of each run sums its run, in row order (deterministic,
// no atomics).
template <class T>
__global__ void segment_runs_k(const T* x, const int32_t* seg_sorted, const int32_t* pos_sorted, T* y, int64_t n, int64_t inner,
                               int64_t num_segments) {
  GRID_STRIDE(e, n * inner) {
    const int64_t i = e / inner, c = e % inner;
    const int32_t s = seg_sorted[i];
    if (s < 0 || s >= num_segments || (i > 0 && seg_sorted[i - 1] == s)) continue;
    T acc = 0;
    for (int64_t k = i; k < n && seg_sorted[k] == s; k++) acc += x[(int64_t)pos_sorted[k] * inner + c];
    y[s * inner + c] = acc;
  }
}

template <class T>
__global__ void one_hot_k(const int32_t* idx, T* y, int64_t n, int64_t depth, T on, T off) {
  GRID_STRIDE(e, n * depth) y[e] = idx[e / depth] == e % depth ? on : off;
}

}  // namespace

TR_API void tr_transpose(int es, const void* x, void* y, int rank, const int32_t* shape, const int32_t* perm) {
  int64_t in_strides[kMaxRank], s = 1, n = 1;
  for (int d = rank - 1; d >= 0; d--) {
    in_strides[d] = s;
    s *= shape[d];
  }
  Dims out{rank, {}}, st{rank, {}};
  for (int d = 0; d < rank; d++) {
    out.v[d] = shape[perm[d]];
    st.v[d] = (int32_t)in_strides[perm[d]];
    n *= out.v[d];
  }
  if (n <= 0) return;
  if (es == 4) transpose_k<<<blocks_for(n), 256, 0, stream()>>>((const uint32_t*)x, (uint32_t*)y, n, out, st);
  else transpose_k<<<blocks_for(n), 256, 0, stream()>>>((const uint8_t*)x, (uint8_t*)y, n, out, st);
  TR_LAUNCHED("transpose");
}

TR_API void tr_slice(int es, const void* x, void* y, int rank, const int32_t* shape, const int32_t* begin, const int32_t* size,
                     const int32_t* step) {
  Dims st{rank, {}};
  int64_t s = 1, n = 1;
  for (int d = rank - 1; d >= 0; d--) {
    st.v[d] = (int32_t)s;
    s *= shape[d];
    n *= size[d];
  }
  if (n <= 0) return;
  const Dims sz = dims(rank, size), bg = dims(rank, begin), sp = dims(rank, step);
  if (es == 4) slice_k<<<blocks_for(n), 256, 0, stream()>>>((const uint32_t*)x, (uint32_t*)y, n, sz, bg, sp, st);
  else slice_k<<<blocks_for(n), 256, 0, stream()>>>((const uint8_t*)x, (uint8_t*)y, n, sz, bg, sp, st);
  TR_LAUNCHED("slice");
}

TR_API void tr_pad(int es, const void* x, void* y, int rank, const int32_t* in_shape, const int32_t* before,
                   const int32_t* out_shape, double constant, int dtype) {
  int64_t n = 1;
  for (int d = 0; d < rank; d++) n *= out_shape[d];
  if (n <= 0) return;
  const Dims o = dims(rank, out_shape), in = dims(rank, in_shape), bf = dims(rank, before);
  if (es == 4) {
    uint32_t c;
    if (dtype == F32) {
      float f = (float)constant;
      memcpy(&c, &f, 4);
    } else {
      int32_t v = (int32_t)constant;
      memcpy(&c, &v, 4);
    }
    pad_k<<<blocks_for(n), 256, 0, stream()>>>((const uint32_t*)x, (uint32_t*)y, n, o, in, bf, c);
  } else {
    pad_k<<<blocks_for(n), 256, 0, stream()>>>((const uint8_t*)x, (uint8_t*)y, n, o, in, bf, (uint8_t)(constant != 0));
  }
  TR_LAUNCHED("pad");
}

TR_API void tr_concat2d(int es, const void* x, void* y, int64_t outer, int64_t inner_x, int64_t inner_y, int64_t offset) {
  const int64_t n = outer * inner_x;
  if (n <= 0) return;
  if (es == 4) concat_k<<<blocks_for(n), 256, 0, stream()>>>((const uint32_t*)x, (uint32_t*)y, outer, inner_x, inner_y, offset);
  else concat_k<<<blocks_for(n), 256, 0, stream()>>>((const uint8_t*)x, (uint8_t*)y, outer, inner_x, inner_y, offset);
  TR_LAUNCHED("concat");
}

TR_API void tr_tile(int es, const void* x, void* y, int rank, const int32_t* in_shape, const int32_t* out_shape) {
  int64_t n = 1;
  for (int d = 0; d < rank; d++) n *= out_shape[d];
  if (n <= 0) return;
  const Dims in = dims(rank, in_shape), out = dims(rank, out_shape);
  if (es == 4) tile_k<<<blocks_for(n), 256, 0, stream()>>>((const uint32_t*)x, (uint32_t*)y, n, in, out);
  else tile_k<<<blocks_for(n), 256, 0, stream()>>>((const uint8_t*)x, (uint8_t*)y, n, in, out);
  TR_LAUNCHED("tile");
}

TR_API void tr_gather(int es, const void* x, const int32_t* idx, void* y, int64_t batch, int64_t outer, int64_t axis, int64_t inner,
                      int64_t n_idx) {
  const int64_t n = batch * outer * n_idx * inner;
  if (n <= 0) return;
  if (es == 4) gather_k<<<blocks_for(n), 256, 0, stream()>>>((const uint32_t*)x, idx, (uint32_t*)y, n, outer, axis, inner, n_idx);
  else gather_k<<<blocks_for(n), 256, 0, stream()>>>((const uint8_t*)x, idx, (uint8_t*)y, n, outer, axis, inner, n_idx);
  TR_LAUNCHED("gather");
}

// Deterministic: a stable radix sort of (segment, row) with CUB, then one summing thread per run and column.
TR_API void tr_unsorted_segment_sum(int dtype, const void* x, const int32_t* seg, void* y, int64_t n, int64_t inner,
                                    int64_t num_segments) {
  tr_fill(dtype, y, num_segments * inner, 0.0);
  if (n <= 0 || inner <= 0) return;
  auto st = stream();
  int32_t *pos = nullptr, *seg_sorted = nullptr, *pos_sorted = nullptr;
  void* temp = nullptr;
  size_t temp_bytes = 0;
  cub::DeviceRadixSort::SortPairs(nullptr, temp_bytes, seg, seg_sorted, pos, pos_sorted, (int)n, 0, 32, st);
  TR_CUDA(cudaMallocAsync((void**)&pos, n * 4, st));
  TR_CUDA(cudaMallocAsync((void**)&seg_sorted, n * 4, st));
  TR_CUDA(cudaMallocAsync((void**)&pos_sorted, n * 4, st));
  TR_CUDA(cudaMallocAsync(&temp, temp_bytes, st));
  if (has_error()) return;
  iota_k<<<blocks_for(n), 256, 0, st>>>(pos, n);
  TR_CUDA(cub::DeviceRadixSort::SortPairs(temp, temp_bytes, seg, seg_sorted, pos, pos_sorted, (int)n, 0, 32, st));
  if (dtype == F32) segment_runs_k<<<blocks_for(n * inner), 256, 0, st>>>((const float*)x, seg_sorted, pos_sorted, (float*)y, n, inner, num_segments);
  else segment_runs_k<<<blocks_for(n * inner), 256, 0, st>>>((const int32_t*)x, seg_sorted, pos_sorted, (int32_t*)y, n, inner, num_segments);
  TR_LAUNCHED("segment_sum");
  for (void* p : {(void*)pos, (void*)seg_sorted, (void*)pos_sorted, temp}) TR_CUDA(cudaFreeAsync(p, st));
}

TR_API void tr_one_hot(const int32_t* idx, void* y, int dtype, int64_t n, int64_t depth, double on, double off) {
  const int64_t total = n * depth;
  if (total <= 0) return;
  if (dtype == F32) one_hot_k<<<blocks_for(total), 256, 0, stream()>>>(idx, (float*)y, n, depth, (float)on, (float)off);
  else if (dtype == I32) one_hot_k<<<blocks_for(total), 256, 0, stream()>>>(idx, (int32_t*)y, n, depth, (int32_t)on, (int32_t)off);
  else one_hot_k<<<blocks_for(total), 256, 0, stream()>>>(idx, (uint8_t*)y, n, depth, (uint8_t)(on != 0), (uint8_t)(off != 0));
  TR_LAUNCHED("one_hot");
}
