// Element-wise kernels: unary math, broadcasting binary ops, select, cast, fill.
#include "api.h"
#include "common.h"
#include <algorithm>
#include <cstring>

using namespace tr;

namespace {
enum Unary { NEG, EXP, LOG, SQRT, RSQRT, SQUARE, TANH, SIGMOID, RELU, ABS, SIN, COS, ERF, FLOOR, CEIL, ROUND, SIGN,
             RECIPROCAL, LOG1P, EXPM1, STEP, ELU, SOFTPLUS, RELU6, LEAKY_RELU, ISNAN, LOGICAL_NOT };

template <class T, class F>
void map(const T* __restrict x, T* __restrict y, int64_t n, F f) {
  parallel_chunks(n, [=](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; i++) y[i] = f(x[i]);
  });
}

// Banker's rounding, as tfjs' Round does.
inline float round_half_even(float v) {
  float r = std::nearbyint(v);
  return r;
}
}  // namespace

TR_API void tr_unary(int op, int dtype, const void* xv, void* yv, int64_t n, float alpha) {
  if (dtype == I32) {
    auto x = static_cast<const int32_t*>(xv);
    auto y = static_cast<int32_t*>(yv);
    switch (op) {
      case NEG: map(x, y, n, [](int32_t v) { return -v; }); return;
      case ABS: map(x, y, n, [](int32_t v) { return v < 0 ? -v : v; }); return;
      case SQUARE: map(x, y, n, [](int32_t v) { return v * v; }); return;
      case SIGN: map(x, y, n, [](int32_t v) { return (int32_t)((v > 0) - (v < 0)); }); return;
      case RELU: map(x, y, n, [](int32_t v) { return v > 0 ? v : 0; }); return;
      default: break;
    }
  }
  if (dtype == U8 && op == LOGICAL_NOT) {
    map(static_cast<const uint8_t*>(xv), static_cast<uint8_t*>(yv), n, [](uint8_t v) { return (uint8_t)!v; });
    return;
  }
  auto x = static_cast<const float*>(xv);
  if (op == ISNAN) {
    auto y = static_cast<uint8_t*>(yv);
    TR_PARALLEL_FOR(n)
    for (int64_t i = 0; i < n; i++) y[i] = std::isnan(x[i]);
    return;
  }
  auto y = static_cast<float*>(yv);
  switch (op) {
    case NEG: map(x, y, n, [](float v) { return -v; }); break;
    case EXP: map(x, y, n, [](float v) { return std::isnan(v) ? v : fast_exp(v); }); break;
    case LOG: map(x, y, n, [](float v) { return std::log(v); }); break;
    case SQRT: map(x, y, n, [](float v) { return std::sqrt(v); }); break;
    case RSQRT: map(x, y, n, [](float v) { return 1.0f / std::sqrt(v); }); break;
    case SQUARE: map(x, y, n, [](float v) { return v * v; }); break;
    case TANH: map(x, y, n, [](float v) { return std::isnan(v) ? v : fast_tanh(v); }); break;
    case SIGMOID: map(x, y, n, [](float v) { return 1.0f / (1.0f + fast_exp(-v)); }); break;
    case RELU: map(x, y, n, [](float v) { return v > 0 ? v : 0.0f; }); break;
    case ABS: map(x, y, n, [](float v) { return std::fabs(v); }); break;
    case SIN: map(x, y, n, [](float v) { return std::sin(v); }); break;
    case COS: map(x, y, n, [](float v) { return std::cos(v); }); break;
    case ERF: map(x, y, n, [](float v) { return std::erf(v); }); break;
    case FLOOR: map(x, y, n, [](float v) { return std::floor(v); }); break;
    case CEIL: map(x, y, n, [](float v) { return std::ceil(v); }); break;
    case ROUND: map(x, y, n, [](float v) { return round_half_even(v); }); break;
    case SIGN: map(x, y, n, [](float v) { return (float)((v > 0) - (v < 0)); }); break;
    case RECIPROCAL: map(x, y, n, [](float v) { return 1.0f / v; }); break;
    case LOG1P: map(x, y, n, [](float v) { return std::log1p(v); }); break;
    case EXPM1: map(x, y, n, [](float v) { return std::expm1(v); }); break;
    case STEP: map(x, y, n, [alpha](float v) { return std::isnan(v) ? NAN : (v > 0 ? 1.0f : alpha); }); break;
    case ELU: map(x, y, n, [](float v) { return v >= 0 ? v : std::expm1(v); }); break;
    case SOFTPLUS: map(x, y, n, [](float v) { return v > 20 ? v : std::log1p(std::exp(v)); }); break;
    case RELU6: map(x, y, n, [](float v) { return std::min(std::max(v, 0.0f), 6.0f); }); break;
    case LEAKY_RELU: map(x, y, n, [alpha](float v) { return v < 0 ? alpha * v : v; }); break;
    default: break;
  }
}

namespace {
enum Binary { ADD, SUB, MUL, DIV, MAXIMUM, MINIMUM, POW, SQDIFF, FLOORDIV, MOD, ATAN2,
              EQ = 20, NE, GT, GE, LT, LE, AND, OR };

constexpr int kMaxRank = 8;

// Broadcast loop: the last dimension is the inner loop; strides are in elements, 0 where broadcast.
template <class TI, class TO, class F>
void broadcast(const TI* a, const TI* b, TO* out, int rank, const int32_t* shape, const int32_t* as, const int32_t* bs, F f) {
  int64_t total = 1;
  for (int d = 0; d < rank; d++) total *= shape[d];
  if (total == 0) return;
  const int64_t inner = rank ? shape[rank - 1] : 1;
  const int64_t sa = rank ? as[rank - 1] : 0, sb = rank ? bs[rank - 1] : 0;
  const int64_t rows = total / inner;
  #pragma omp parallel for schedule(static) if (total > kParallelGrain)
  for (int64_t r = 0; r < rows; r++) {
    int64_t offa = 0, offb = 0, rem = r;
    for (int d = rank - 2; d >= 0; d--) {
      const int64_t i = rem % shape[d];
      rem /= shape[d];
      offa += i * as[d];
      offb += i * bs[d];
    }
    const TI* pa = a + offa;
    const TI* pb = b + offb;
    TO* po = out + r * inner;
    if (sa == 1 && sb == 1) {
      for (int64_t j = 0; j < inner; j++) po[j] = f(pa[j], pb[j]);
    } else if (sa == 1 && sb == 0) {
      const TI vb = pb[0];
      for (int64_t j = 0; j < inner; j++) po[j] = f(pa[j], vb);
    } else if (sa == 0 && sb == 1) {
      const TI va = pa[0];
      for (int64_t j = 0; j < inner; j++) po[j] = f(va, pb[j]);
    } else {
      for (int64_t j = 0; j < inner; j++) po[j] = f(pa[j * sa], pb[j * sb]);
    }
  }
}

template <class T>
void arith(int op, const T* a, const T* b, T* o, int rank, const int32_t* s, const int32_t* as, const int32_t* bs) {
  switch (op) {
    case ADD: broadcast(a, b, o, rank, s, as, bs, [](T x, T y) { return x + y; }); break;
    case SUB: broadcast(a, b, o, rank, s, as, bs, [](T x, T y) { return x - y; }); break;
    case MUL: broadcast(a, b, o, rank, s, as, bs, [](T x, T y) { return x * y; }); break;
    case DIV: broadcast(a, b, o, rank, s, as, bs, [](T x, T y) { return (T)((float)x / (float)y); }); break;
    case MAXIMUM: broadcast(a, b, o, rank, s, as, bs, [](T x, T y) { return x > y ? x : y; }); break;
    case MINIMUM: broadcast(a, b, o, rank, s, as, bs, [](T x, T y) { return x < y ? x : y; }); break;
    case POW: broadcast(a, b, o, rank, s, as, bs, [](T x, T y) { return (T)std::pow((float)x, (float)y); }); break;
    case SQDIFF: broadcast(a, b, o, rank, s, as, bs, [](T x, T y) { return (x - y) * (x - y); }); break;
    case FLOORDIV: broadcast(a, b, o, rank, s, as, bs, [](T x, T y) { return (T)std::floor((float)x / (float)y); }); break;
    case MOD:
      broadcast(a, b, o, rank, s, as, bs, [](T x, T y) {
        T r = (T)std::fmod((float)x, (float)y);
        return (r != 0 && ((r < 0) != (y < 0))) ? r + y : r;
      });
      break;
    case ATAN2: broadcast(a, b, o, rank, s, as, bs, [](T x, T y) { return (T)std::atan2((float)x, (float)y); }); break;
    default: break;
  }
}

template <class T>
void compare(int op, const T* a, const T* b, uint8_t* o, int rank, const int32_t* s, const int32_t* as, const int32_t* bs) {
  switch (op) {
    case EQ: broadcast(a, b, o, rank, s, as, bs, [](T x, T y) { return (uint8_t)(x == y); }); break;
    case NE: broadcast(a, b, o, rank, s, as, bs, [](T x, T y) { return (uint8_t)(x != y); }); break;
    case GT: broadcast(a, b, o, rank, s, as, bs, [](T x, T y) { return (uint8_t)(x > y); }); break;
    case GE: broadcast(a, b, o, rank, s, as, bs, [](T x, T y) { return (uint8_t)(x >= y); }); break;
    case LT: broadcast(a, b, o, rank, s, as, bs, [](T x, T y) { return (uint8_t)(x < y); }); break;
    case LE: broadcast(a, b, o, rank, s, as, bs, [](T x, T y) { return (uint8_t)(x <= y); }); break;
    case AND: broadcast(a, b, o, rank, s, as, bs, [](T x, T y) { return (uint8_t)(x && y); }); break;
    case OR: broadcast(a, b, o, rank, s, as, bs, [](T x, T y) { return (uint8_t)(x || y); }); break;
    default: break;
  }
}
}  // namespace

TR_API void tr_binary(int op, int dtype, const void* a, const void* b, void* out, int rank, const int32_t* shape,
                      const int32_t* as, const int32_t* bs) {
  if (op >= EQ) {
    auto o = static_cast<uint8_t*>(out);
    if (dtype == F32) compare(op, (const float*)a, (const float*)b, o, rank, shape, as, bs);
    else if (dtype == I32) compare(op, (const int32_t*)a, (const int32_t*)b, o, rank, shape, as, bs);
    else compare(op, (const uint8_t*)a, (const uint8_t*)b, o, rank, shape, as, bs);
    return;
  }
  if (dtype == F32) arith(op, (const float*)a, (const float*)b, (float*)out, rank, shape, as, bs);
  else if (dtype == I32) arith(op, (const int32_t*)a, (const int32_t*)b, (int32_t*)out, rank, shape, as, bs);
}

TR_API void tr_select(const uint8_t* cond, const void* a, const void* b, void* out, int64_t n, int elem_size) {
  if (elem_size == 4) {
    auto pa = (const uint32_t*)a, pb = (const uint32_t*)b;
    auto po = (uint32_t*)out;
    TR_PARALLEL_FOR(n)
    for (int64_t i = 0; i < n; i++) po[i] = cond[i] ? pa[i] : pb[i];
  } else {
    auto pa = (const uint8_t*)a, pb = (const uint8_t*)b;
    auto po = (uint8_t*)out;
    for (int64_t i = 0; i < n; i++) po[i] = cond[i] ? pa[i] : pb[i];
  }
}

namespace {
template <class S, class D>
void cast_loop(const S* x, D* y, int64_t n) {
  TR_PARALLEL_FOR(n)
  for (int64_t i = 0; i < n; i++) y[i] = (D)x[i];
}
template <class S>
void cast_from(const S* x, int dst, void* y, int64_t n) {
  if (dst == F32) cast_loop(x, (float*)y, n);
  else if (dst == I32) cast_loop(x, (int32_t*)y, n);
  else {
    auto o = (uint8_t*)y;
    for (int64_t i = 0; i < n; i++) o[i] = x[i] != 0;
  }
}
}  // namespace

TR_API void tr_cast(int src, int dst, const void* x, void* y, int64_t n) {
  if (src == F32) {
    if (dst == I32) {  // tfjs truncates toward zero
      auto px = (const float*)x;
      auto py = (int32_t*)y;
      TR_PARALLEL_FOR(n)
      for (int64_t i = 0; i < n; i++) py[i] = (int32_t)std::trunc(px[i]);
    } else cast_from((const float*)x, dst, y, n);
  } else if (src == I32) cast_from((const int32_t*)x, dst, y, n);
  else cast_from((const uint8_t*)x, dst, y, n);
}

TR_API void tr_fill(int dtype, void* y, int64_t n, double value) {
  if (dtype == F32) std::fill((float*)y, (float*)y + n, (float)value);
  else if (dtype == I32) std::fill((int32_t*)y, (int32_t*)y + n, (int32_t)value);
  else std::memset(y, value != 0, n);
}
