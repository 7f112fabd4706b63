// Standalone check and timing of the bf16 block-sparse forwards (mma.sync and sm_90a wgmma) without
// Node: built by kernels/cuda/check/run.sh from the library's own sources, run on the GPU machine.
// Correctness: every output and LSE against a float64 host reference on the same bf16-rounded inputs
// (dense; causal with a partial last block and key bias; per-head random layouts with token masks and
// empty rows over an odd number of query blocks; window), outputs poisoned with NaN before each run,
// two runs compared bit for bit. Timing: the anchor shapes (B*L = 16384 tokens, H = 16, D = 64) for
// dense, window |i-j| <= 256 and BigBird layouts, CUDA events, median of 7 batches of launches.
#include <cuda_runtime.h>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <thread>
#include <unistd.h>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <utility>
#include <vector>

extern "C" {
void* tr_malloc(int64_t bytes);
void tr_free(void* p);
void tr_h2d(void* dst, const void* src, int64_t bytes);
void tr_d2h(void* dst, const void* src, int64_t bytes);
void tr_sync();
const char* tr_error();
void tr_bsa_set_kernel(int which);
int tr_bsa_num_variants();
const char* tr_bsa_fwd_kernel();
void tr_bsa_fwd_bf16(const void* q, const void* k, const void* v, const float* kb, float* out, float* lse, int B, int H, int Lq, int Lk,
                     int D, int Dv, int Bq, int Bk, int LH, const int32_t* row_ptr, const int32_t* col_idx, const uint8_t* full,
                     const uint8_t* mask, int causal, int window, float scale, int64_t kb_sb, int64_t kb_sh);
void tr_timer_start();
float tr_timer_stop();
// runtime.cu's tr_info reads gemm.cu's TF32 switch; this program links no cuBLAS, so no gemm.cu
int tr_tf32_enabled() { return 0; }
}

namespace {
constexpr int T = 64;

void check_error(const char* where) {
  const char* e = tr_error();
  if (e && *e) {
    fprintf(stderr, "FAIL %s: %s\n", where, e);
    exit(1);
  }
}

uint16_t to_bf16(float x) {  // round to nearest even
  uint32_t u;
  memcpy(&u, &x, 4);
  u += 0x7FFF + ((u >> 16) & 1);
  return (uint16_t)(u >> 16);
}
float from_bf16(uint16_t h) {
  uint32_t u = (uint32_t)h << 16;
  float x;
  memcpy(&x, &u, 4);
  return x;
}

// A hung kernel (a wait on a barrier that never completes) cannot be stopped from the host: give it
// a deadline, then report which kernel hung and end the process, so one bad variant costs seconds.
void sync_or_die(const char* what) {
  std::atomic<bool> done{false};
  std::thread t([&] {
    tr_sync();
    done = true;
  });
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (!done && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  if (!done) {
    fprintf(stderr, "FAIL %s (%s): no completion within 20 s (hung)\n", what, tr_bsa_fwd_kernel());
    fflush(stdout);
    _exit(3);
  }
  t.join();
}

struct Layout {
  int nQ = 0, LH = 1;
  std::vector<int32_t> rp, ci;  // rp[h * (nQ + 1) + i]: absolute offsets into ci
  std::vector<uint8_t> full, mask;  // mask: T*T bytes per listed block, or empty
};

// rows(h, i) -> sorted-or-not list of (key block, full flag)
template <class F>
Layout build(int nQ, int LH, F rows) {
  Layout l;
  l.nQ = nQ;
  l.LH = LH;
  for (int h = 0; h < LH; h++) {
    for (int i = 0; i < nQ; i++) {
      l.rp.push_back((int32_t)l.ci.size());
      std::vector<std::pair<int, int>> r = rows(h, i);
      std::sort(r.begin(), r.end());
      for (auto& e : r) {
        l.ci.push_back(e.first);
        l.full.push_back((uint8_t)e.second);
      }
    }
    l.rp.push_back((int32_t)l.ci.size());
  }
  return l;
}

struct Problem {
  std::string name;
  int B, H, Lq, Lk, causal, window;
  bool kb;
  Layout l;
};

// float64 reference with the kernels' token rule for partial blocks
void reference(const Problem& p, const std::vector<float>& q, const std::vector<float>& k, const std::vector<float>& v,
               const std::vector<float>& kb, float scale, std::vector<double>& out, std::vector<double>& lse) {
  out.assign((size_t)p.B * p.H * p.Lq * T, 0.0);
  lse.assign((size_t)p.B * p.H * p.Lq, -INFINITY);
  std::vector<double> sc;
  std::vector<int> cols;
  for (int b = 0; b < p.B; b++)
    for (int h = 0; h < p.H; h++) {
      const int lh = p.l.LH == 1 ? 0 : h;
      const size_t bh = (size_t)b * p.H + h;
      for (int r = 0; r < p.Lq; r++) {
        const int i = r / T, qi = r + (p.Lk - p.Lq);
        sc.clear();
        cols.clear();
        for (int pi = p.l.rp[lh * (p.l.nQ + 1) + i]; pi < p.l.rp[lh * (p.l.nQ + 1) + i + 1]; pi++) {
          const int j0 = p.l.ci[pi] * T;
          const bool full = p.l.full[pi] && j0 + T <= p.Lk;
          for (int cc = 0; cc < T; cc++) {
            const int c = j0 + cc;
            if (!full) {
              int lo = p.window >= 0 ? std::max(0, qi - p.window) : 0, hi = p.causal ? qi : p.Lk - 1;
              if (p.window >= 0) hi = std::min(hi, qi + p.window);
              if (c >= p.Lk || c < lo || c > hi) continue;
              if (!p.l.mask.empty() && !p.l.mask[(size_t)pi * T * T + (r - i * T) * T + cc]) continue;
            }
            double s = 0;
            for (int d = 0; d < T; d++) s += (double)q[(bh * p.Lq + r) * T + d] * k[(bh * p.Lk + c) * T + d];
            s = s * scale + (p.kb ? kb[(size_t)b * p.H * p.Lk + h * p.Lk + c] : 0.0);
            sc.push_back(s);
            cols.push_back(c);
          }
        }
        if (sc.empty()) continue;
        const double m = *std::max_element(sc.begin(), sc.end());
        double sum = 0;
        for (double& s : sc) sum += (s = std::exp(s - m));
        double* o = &out[(bh * p.Lq + r) * T];
        for (size_t x = 0; x < sc.size(); x++)
          for (int d = 0; d < T; d++) o[d] += sc[x] / sum * v[(bh * p.Lk + cols[x]) * T + d];
        lse[bh * p.Lq + r] = m + std::log(sum);
      }
    }
}

struct Dev {
  void *q, *k, *v;
  float *kb, *out, *lse;
  int32_t *rp, *ci;
  uint8_t *full, *mask;
};

void* upload(const void* src, size_t bytes) {
  void* d = tr_malloc((int64_t)std::max<size_t>(bytes, 16));
  if (bytes) tr_h2d(d, src, (int64_t)bytes);
  return d;
}

void launch(const Problem& p, const Dev& d, float scale) {
  tr_bsa_fwd_bf16(d.q, d.k, d.v, p.kb ? d.kb : nullptr, d.out, d.lse, p.B, p.H, p.Lq, p.Lk, T, T, T, T, p.l.LH, d.rp, d.ci, d.full,
                  p.l.mask.empty() ? nullptr : d.mask, p.causal, p.window, scale, (int64_t)p.H * p.Lk, p.Lk);
}

Dev make_dev(const Problem& p, std::mt19937& rng, std::vector<float>& q, std::vector<float>& k, std::vector<float>& v,
             std::vector<float>& kb) {
  std::normal_distribution<float> nd(0.0f, 1.0f);
  auto fill = [&](std::vector<float>& x, size_t n, std::vector<uint16_t>& bits) {
    x.resize(n);
    bits.resize(n);
    for (size_t i = 0; i < n; i++) {
      bits[i] = to_bf16(nd(rng));
      x[i] = from_bf16(bits[i]);
    }
  };
  std::vector<uint16_t> qb, kbits, vb;
  fill(q, (size_t)p.B * p.H * p.Lq * T, qb);
  fill(k, (size_t)p.B * p.H * p.Lk * T, kbits);
  fill(v, (size_t)p.B * p.H * p.Lk * T, vb);
  kb.resize((size_t)p.B * p.H * p.Lk);
  for (float& x : kb) x = nd(rng);
  Dev d;
  d.q = upload(qb.data(), qb.size() * 2);
  d.k = upload(kbits.data(), kbits.size() * 2);
  d.v = upload(vb.data(), vb.size() * 2);
  d.kb = (float*)upload(kb.data(), kb.size() * 4);
  d.out = (float*)tr_malloc((int64_t)p.B * p.H * p.Lq * T * 4);
  d.lse = (float*)tr_malloc((int64_t)p.B * p.H * p.Lq * 4);
  d.rp = (int32_t*)upload(p.l.rp.data(), p.l.rp.size() * 4);
  d.ci = (int32_t*)upload(p.l.ci.data(), p.l.ci.size() * 4);
  d.full = (uint8_t*)upload(p.l.full.data(), p.l.full.size());
  d.mask = (uint8_t*)upload(p.l.mask.data(), p.l.mask.size());
  return d;
}

void free_dev(Dev& d) {
  for (void* x : {d.q, d.k, d.v, (void*)d.kb, (void*)d.out, (void*)d.lse, (void*)d.rp, (void*)d.ci, (void*)d.full, (void*)d.mask}) tr_free(x);
}

// Runs one kernel choice on p; returns false when it misses the bounds.
bool check(const Problem& p, const Dev& d, int kernel, const std::vector<double>& ro, const std::vector<double>& rl, float scale) {
  tr_bsa_set_kernel(kernel);
  const size_t no = (size_t)p.B * p.H * p.Lq * T, nl = (size_t)p.B * p.H * p.Lq;
  std::vector<float> nan(no, NAN), o1(no), o2(no), l1(nl), l2(nl);
  bool ok = true;
  for (int run = 0; run < 2; run++) {
    tr_h2d(d.out, nan.data(), (int64_t)no * 4);
    tr_h2d(d.lse, nan.data(), (int64_t)nl * 4);
    launch(p, d, scale);
    sync_or_die(p.name.c_str());
    check_error("launch");
    tr_d2h(run ? o2.data() : o1.data(), d.out, (int64_t)no * 4);
    tr_d2h(run ? l2.data() : l1.data(), d.lse, (int64_t)nl * 4);
  }
  double num = 0, den = 0, lerr = 0;
  size_t nans = 0, lbad = 0;
  for (size_t i = 0; i < no; i++) {
    if (std::isnan(o1[i])) nans++;
    num += (o1[i] - ro[i]) * (o1[i] - ro[i]);
    den += ro[i] * ro[i];
  }
  for (size_t i = 0; i < nl; i++) {
    if (std::isinf(rl[i])) {
      if (!(std::isinf(l1[i]) && l1[i] < 0)) lbad++;
    } else {
      lerr = std::max(lerr, std::fabs(l1[i] - rl[i]));
    }
    if (std::isnan(l1[i])) nans++;
  }
  const bool same = !memcmp(o1.data(), o2.data(), no * 4) && !memcmp(l1.data(), l2.data(), nl * 4);
  const double rel = std::sqrt(num / std::max(den, 1e-300));
  // bf16 operands (P rounded to bf16 too): relative error ~ 1e-3..1e-2; LSE only sees the fp32 QK^T
  ok = nans == 0 && lbad == 0 && rel < 1e-2 && lerr < 2e-2 && same;
  printf("%-34s %-12s rel %.2e  lse max|d| %.2e  nan %zu  -inf rows bad %zu  repeat %s  %s\n", p.name.c_str(), tr_bsa_fwd_kernel(), rel, lerr, nans,
         lbad, same ? "same" : "DIFFERS", ok ? "ok" : "FAIL");
  return ok;
}

std::vector<std::pair<int, int>> window_row(int i, int nB, int wb) {
  std::vector<std::pair<int, int>> r;
  for (int j = std::max(0, i - wb); j <= std::min(nB - 1, i + wb); j++) r.push_back({j, std::abs(i - j) < wb});
  return r;
}

double block_flops(const Problem& p) {  // 4 * 64^3 per listed block pair (QK^T and PV), over batch and heads
  const double per = 4.0 * T * T * T;
  return per * (double)p.B * (p.l.LH == 1 ? p.H * (double)p.l.ci.size() : (double)p.l.ci.size());
}
}  // namespace

int main(int argc, char** argv) {
  const bool timeOnly = argc > 1 && !strcmp(argv[1], "--time-only"), checkOnly = argc > 1 && !strcmp(argv[1], "--check-only");
  std::mt19937 rng(1234);
  int fails = 0;
  if (!timeOnly) {
    std::vector<Problem> ps;
    {
      const int L = 1024, n = L / T;
      ps.push_back({"dense L1024 B2 H2", 2, 2, L, L, 0, -1, false, build(n, 1, [&](int, int) {
                      std::vector<std::pair<int, int>> r;
                      for (int j = 0; j < n; j++) r.push_back({j, 1});
                      return r;
                    })});
    }
    {
      const int L = 1000, n = (L + T - 1) / T;
      ps.push_back({"causal+kb L1000 B1 H3", 1, 3, L, L, 1, -1, true, build(n, 1, [&](int, int i) {
                      std::vector<std::pair<int, int>> r;
                      for (int j = 0; j <= i; j++) r.push_back({j, j < i});
                      return r;
                    })});
    }
    {
      const int L = 960, n = L / T, H = 3;  // 15 query blocks: the last CTA has one warpgroup's rows
      std::mt19937 lr(7);
      Problem p{"random+mask+empty L960 H3", 2, H, L, L, 0, -1, true, build(n, H, [&](int, int i) {
                  std::vector<std::pair<int, int>> r;
                  if (i % 5 == 3) return r;  // empty rows: zeros, LSE -inf
                  for (int j = 0; j < n; j++)
                    if (lr() % 3 == 0 || j == i) r.push_back({j, (int)(lr() % 2)});
                  return r;
                })};
      p.l.mask.resize(p.l.ci.size() * T * T);
      for (auto& m : p.l.mask) m = lr() % 4 != 0;
      ps.push_back(p);
    }
    {
      const int L = 2048, n = L / T;
      ps.push_back({"window256 L2048 B1 H2", 1, 2, L, L, 0, 256, false, build(n, 1, [&](int, int i) { return window_row(i, n, 4); })});
    }
    {
      const int Lq = 448, Lk = 1024, nq = Lq / T, nk = Lk / T;  // Lq < Lk: queries aligned to the end
      ps.push_back({"causal Lq448 Lk1024 H2", 1, 2, Lq, Lk, 1, -1, false, build(nq, 1, [&](int, int i) {
                      std::vector<std::pair<int, int>> r;
                      for (int j = 0; j < nk; j++)
                        if (j * T <= i * T + T - 1 + (Lk - Lq)) r.push_back({j, (j + 1) * T - 1 <= i * T + (Lk - Lq)});
                      return r;
                    })});
    }
    for (Problem& p : ps) {
      std::vector<float> q, k, v, kb;
      Dev d = make_dev(p, rng, q, k, v, kb);
      const float scale = 0.125f;
      std::vector<double> ro, rl;
      reference(p, q, k, v, kb, scale, ro, rl);
      for (int kernel = 1; kernel <= 1 + tr_bsa_num_variants(); kernel++) fails += !check(p, d, kernel, ro, rl, scale);
      free_dev(d);
    }
  }
  // timing at the anchor shapes
  printf("\n%-10s %-7s %-12s %10s %10s\n", "layout", "L", "kernel", "ms", "TFLOP/s");
  for (int L : {4096, 16384}) {
    if (checkOnly) break;
    const int B = 16384 / L, H = 16, n = L / T;
    std::vector<Problem> ps;
    ps.push_back({"dense", B, H, L, L, 0, -1, false, build(n, 1, [&](int, int) {
                    std::vector<std::pair<int, int>> r;
                    for (int j = 0; j < n; j++) r.push_back({j, 1});
                    return r;
                  })});
    ps.push_back({"window256", B, H, L, L, 0, 256, false, build(n, 1, [&](int, int i) { return window_row(i, n, 4); })});
    std::mt19937 lr(11);
    ps.push_back({"bigbird", B, H, L, L, 0, -1, false, build(n, H, [&](int, int i) {
                    // window 4 blocks each side (full), global blocks 0..1 (both ways), 2 random blocks
                    std::vector<std::pair<int, int>> r;
                    if (i < 2) {
                      for (int j = 0; j < n; j++) r.push_back({j, 1});
                      return r;
                    }
                    for (int j = std::max(0, i - 4); j <= std::min(n - 1, i + 4); j++) r.push_back({j, 1});
                    for (int j = 0; j < 2; j++)
                      if (std::abs(i - j) > 4) r.push_back({j, 1});
                    for (int x = 0; x < 2; x++) {
                      int j = (int)(lr() % n);
                      bool dup = false;
                      for (auto& e : r) dup |= e.first == j;
                      if (!dup) r.push_back({j, 1});
                    }
                    return r;
                  })});
    for (Problem& p : ps) {
      std::vector<float> q, k, v, kb;
      Dev d = make_dev(p, rng, q, k, v, kb);
      for (int kernel = 1; kernel <= 1 + tr_bsa_num_variants(); kernel++) {
        tr_bsa_set_kernel(kernel);
        for (int w = 0; w < 3; w++) launch(p, d, 0.125f);
        sync_or_die(p.name.c_str());
        const int reps = L == 16384 && p.name == "dense" ? 5 : 20;
        std::vector<float> ms;
        for (int x = 0; x < 7; x++) {
          tr_timer_start();
          for (int r = 0; r < reps; r++) launch(p, d, 0.125f);
          ms.push_back(tr_timer_stop() / reps);
        }
        check_error("timing");
        std::sort(ms.begin(), ms.end());
        printf("%-10s %-7d %-12s %10.3f %10.1f\n", p.name.c_str(), L, tr_bsa_fwd_kernel(), ms[3], block_flops(p) / (ms[3] * 1e-3) / 1e12);
      }
      free_dev(d);
    }
  }
  printf(fails ? "\n%d checks FAILED\n" : "\nall checks passed\n", fails);
  return fails ? 1 : 0;
}
