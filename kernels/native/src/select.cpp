// tr_select_blocks on the CPU (see api.h): rows in parallel, then one pass that packs them in order.
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <vector>
#include "api.h"
#include "common.h"

namespace {
// Marks row r's chosen key blocks in f[0..i] and returns how many.
int select_row(const float* s, int i, int mode, int n, double gamma, uint8_t* f) {
  const int m = i + 1;
  std::vector<int> idx(m);
  std::iota(idx.begin(), idx.end(), 0);
  auto score = [&](int j) { return mode == 0 && j == i ? std::numeric_limits<float>::infinity() : s[j]; };
  std::stable_sort(idx.begin(), idx.end(), [&](int a, int b) { return score(a) > score(b); });
  std::fill(f, f + m, 0);
  int count = 0;
  if (mode == 0) {
    for (int t = 0; t < std::min(n, m); t++) f[idx[t]] = 1, count++;
    return count;
  }
  double total = 0;
  for (int j = 0; j < m; j++) total += std::max(0.0f, s[j]);
  double sum = 0;
  for (int t = 0; t < m; t++) {
    if (t > 0 && sum >= gamma * total) break;
    f[idx[t]] = 1, count++;
    sum += std::max(0.0f, s[idx[t]]);
  }
  if (!f[i]) f[i] = 1, count++;
  return count;
}
}  // namespace

TR_API void tr_select_blocks(const float* scores, int H, int nQ, int L, int B, int mode, int n, double gamma, int32_t* row_ptr,
                             int32_t* col_idx, uint8_t* full, uint8_t* flags, int32_t* counts) {
  const int64_t rows = (int64_t)H * nQ;
  // A row costs O(nQ log nQ), and later rows more: dynamic chunks.
  #pragma omp parallel for schedule(dynamic, 4) if(rows >= 16)
  for (int64_t r = 0; r < rows; r++) counts[r] = select_row(scores + r * nQ, (int)(r % nQ), mode, n, gamma, flags + r * nQ);
  int64_t p = 0;
  for (int h = 0; h < H; h++) {
    row_ptr[h * (nQ + 1)] = (int32_t)p;
    for (int i = 0; i < nQ; i++) {
      const uint8_t* f = flags + ((int64_t)h * nQ + i) * nQ;
      const bool row_complete = (int64_t)(i + 1) * B <= L;
      for (int j = 0; j <= i; j++) {
        if (!f[j]) continue;
        col_idx[p] = j;
        full[p] = j < i && row_complete ? 1 : 0;  // j < i: block j is complete whenever row i exists
        p++;
      }
      row_ptr[h * (nQ + 1) + i + 1] = (int32_t)p;
    }
  }
}
