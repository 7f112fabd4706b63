// Block-sparse attention forward for Hopper (sm_90a) on wgmma: bf16 q/k/v, fp32 accumulation, softmax
// statistics and output, the same arguments and results as attention_tc.cu's mma.sync kernel.
// One CTA = 2 warpgroups, each owning one 64-row query block (wgmma's M = 64), so a CTA covers 128
// query rows and each K/V tile it loads serves both: half the L2 -> shared-memory traffic per FLOP of a
// 64-row CTA. The two query blocks' sorted key-block lists are walked as one sorted union; a
// warpgroup whose list lacks the current block sits that step out (dense: never; window: 1 step in 10).
// K/V tiles stream through a 3-stage cp.async ring in the 128-byte swizzled layout that wgmma's
// descriptors read (the same swizzle the mma.sync kernel uses for ldmatrix). S = QK^T reads Q and K
// from shared memory; O += PV takes P from registers (the S accumulators, rounded to bf16) and V
// from shared memory through the descriptor's transpose. Softmax is attention_tc.cuh's mask_softmax,
// since wgmma's accumulator layout per warp is mma.sync's m16n8 layout repeated along N.
#include "attention_tc.cuh"
#include <cuda.h>  // CUtensorMap and its enums only: the encoder comes through the runtime's driver entry point
#include <cudaTypedefs.h>
#include <algorithm>
#include <climits>
#include <cstdlib>
#include <cstring>

using namespace tr;
using namespace tr::tc;

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define TR_WGMMA 1
#endif

namespace {
constexpr int kTile = T * T;  // elements of one 64 x 64 tile (8 KB)
// Q tiles + a K/V ring, + slack to align the swizzle atoms to 1024 bytes
constexpr size_t smem_bytes(int qTiles, int stages, bool slack = true) {
  return sizeof(__nv_bfloat16) * kTile * (qTiles + 2 * stages) + (slack ? 1024 : 0);
}
__device__ __forceinline__ __nv_bfloat16* smem_base(uint8_t* raw) {
  const uint32_t a = (uint32_t)__cvta_generic_to_shared(raw);
  return reinterpret_cast<__nv_bfloat16*>(raw + (((a + 1023) & ~1023u) - a));
}

// Shared-memory matrix descriptor: 128-byte swizzle; 8-row groups 1024 bytes apart (stride byte
// offset). The leading byte offset only counts when a tile spans several swizzle atoms along its
// contiguous dimension; ours are exactly one atom (64 bf16) wide.
// Kept as two words: the high one (stride byte offset, swizzle mode) is one constant, and stepping
// along a tile adds to the low one's address field (addresses < 256 KB never carry out of it), so the
// 16 descriptors of a tile cost one add each instead of a mask-shift-or sequence.
constexpr uint32_t kDescHi = (1024 >> 4) | (1u << 30);
__device__ __forceinline__ uint32_t desc_lo(uint32_t saddr) { return ((saddr & 0x3FFFF) >> 4) | (1u << 16); }
__device__ __forceinline__ uint32_t saddr(const void* p) { return (uint32_t)__cvta_generic_to_shared(p); }

// D (64 x 64, fp32) = A(smem, K-major) B(smem, K-major) (+ D when acc); descriptors by low word
__device__ __forceinline__ void wgmma_ss(float (&d)[8][4], uint32_t alo, uint32_t blo, int acc) {
#ifdef TR_WGMMA
  asm volatile(
      "{\n.reg .pred p;\n.reg .b64 da, db;\nsetp.ne.b32 p, %34, 0;\nmov.b64 da, {%32, %35};\nmov.b64 db, {%33, %35};\n"
      "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, da, db, p, 1, 1, 0, 0;\n}\n"
      : "+f"(d[0][0]), "+f"(d[0][1]), "+f"(d[0][2]), "+f"(d[0][3]), "+f"(d[1][0]), "+f"(d[1][1]), "+f"(d[1][2]), "+f"(d[1][3]), "+f"(d[2][0]), "+f"(d[2][1]), "+f"(d[2][2]), "+f"(d[2][3]), "+f"(d[3][0]), "+f"(d[3][1]), "+f"(d[3][2]), "+f"(d[3][3]), "+f"(d[4][0]), "+f"(d[4][1]), "+f"(d[4][2]), "+f"(d[4][3]), "+f"(d[5][0]), "+f"(d[5][1]), "+f"(d[5][2]), "+f"(d[5][3]), "+f"(d[6][0]), "+f"(d[6][1]), "+f"(d[6][2]), "+f"(d[6][3]), "+f"(d[7][0]), "+f"(d[7][1]), "+f"(d[7][2]), "+f"(d[7][3])
      : "r"(alo), "r"(blo), "r"(acc), "r"(kDescHi));
#endif
}
// D += A(registers, mma.sync's A-fragment layout per warp) B(smem, N contiguous: transposed)
__device__ __forceinline__ void wgmma_rs_t(float (&d)[8][4], const uint32_t (&a)[4], uint32_t blo) {
#ifdef TR_WGMMA
  asm volatile(
      "{\n.reg .pred p;\n.reg .b64 db;\nsetp.ne.b32 p, %37, 0;\nmov.b64 db, {%36, %38};\n"
      "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, {%32, %33, %34, %35}, db, p, 1, 1, 1;\n}\n"
      : "+f"(d[0][0]), "+f"(d[0][1]), "+f"(d[0][2]), "+f"(d[0][3]), "+f"(d[1][0]), "+f"(d[1][1]), "+f"(d[1][2]), "+f"(d[1][3]), "+f"(d[2][0]), "+f"(d[2][1]), "+f"(d[2][2]), "+f"(d[2][3]), "+f"(d[3][0]), "+f"(d[3][1]), "+f"(d[3][2]), "+f"(d[3][3]), "+f"(d[4][0]), "+f"(d[4][1]), "+f"(d[4][2]), "+f"(d[4][3]), "+f"(d[5][0]), "+f"(d[5][1]), "+f"(d[5][2]), "+f"(d[5][3]), "+f"(d[6][0]), "+f"(d[6][1]), "+f"(d[6][2]), "+f"(d[6][3]), "+f"(d[7][0]), "+f"(d[7][1]), "+f"(d[7][2]), "+f"(d[7][3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(blo), "r"(1), "r"(kDescHi));
#endif
}
__device__ __forceinline__ void wg_fence() {
#ifdef TR_WGMMA
  asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
#endif
}
__device__ __forceinline__ void wg_commit() {
#ifdef TR_WGMMA
  asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
#endif
}
template <int N>
__device__ __forceinline__ void wg_wait() {
#ifdef TR_WGMMA
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
#endif
}
// cp.async writes through the generic proxy; wgmma reads through the async proxy.
__device__ __forceinline__ void fence_proxy_async() { asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory"); }
// Keeps the compiler from moving accumulator reads or writes across an in-flight wgmma.
__device__ __forceinline__ void pin(float (&d)[8][4]) {
#pragma unroll
  for (int i = 0; i < 8; i++)
#pragma unroll
    for (int e = 0; e < 4; e++) asm volatile("" : "+f"(d[i][e])::"memory");
}

// D (64 x 8) += A(registers) B(smem, 16 x 8). With B all ones, every column of D is A's row sums: the
// softmax denominators of exactly the bf16 P that multiplies V, on the tensor cores.
constexpr uint32_t kOnesHi = 256 >> 4;  // no swizzle; stride byte offset 256
__device__ __forceinline__ uint32_t ones_lo(uint32_t saddr) { return ((saddr & 0x3FFFF) >> 4) | ((128 >> 4) << 16); }  // LBO 128
__device__ __forceinline__ void wgmma_rs_n8(float (&d)[4], const uint32_t (&a)[4], uint32_t blo) {
#ifdef TR_WGMMA
  asm volatile(
      "{\n.reg .pred p;\n.reg .b64 db;\nsetp.ne.b32 p, %9, 0;\nmov.b64 db, {%8, %10};\n"
      "wgmma.mma_async.sync.aligned.m64n8k16.f32.bf16.bf16 {%0, %1, %2, %3}, {%4, %5, %6, %7}, db, p, 1, 1, 0;\n}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(blo), "r"(1), "r"(kOnesHi));
#endif
}
__device__ __forceinline__ void pin4(float (&d)[4]) {
#pragma unroll
  for (int e = 0; e < 4; e++) asm volatile("" : "+f"(d[e])::"memory");
}

// S (64 x 64) = Q K^T over the head dim: 4 k-steps of 16, Q and K tiles from shared memory.
__device__ __forceinline__ void issue_s(float (&s)[8][4], uint32_t qaddr, uint32_t kaddr) {
  const uint32_t dq = desc_lo(qaddr), dk = desc_lo(kaddr);
#pragma unroll
  for (int kk = 0; kk < 4; kk++) wgmma_ss(s, dq + kk * (32 >> 4), dk + kk * (32 >> 4), kk);  // k-steps: 32 bytes
}
// O += P V over one 64-key tile: P from registers (pack_p), V (keys x head dim) from shared memory.
__device__ __forceinline__ void issue_pv(float (&o)[8][4], const uint32_t (&pa)[4][4], uint32_t vaddr) {
  const uint32_t dv = desc_lo(vaddr);
#pragma unroll
  for (int kk = 0; kk < 4; kk++) wgmma_rs_t(o, pa[kk], dv + kk * (16 * 128 >> 4));  // k-steps: 16 key rows
}
// The output correction once the PV in flight has landed; once the row maxima settle most steps
// change none, so the 32 multiplies are skipped warp-wide.
__device__ __forceinline__ void correct(float (&o)[8][4], const float (&corr)[2]) {
  if (__any_sync(0xffffffff, corr[0] != 1.0f || corr[1] != 1.0f)) rescale(o, corr);
}

// kWG warpgroups per CTA, each owning one 64-row query block (wgmma's M = 64): the CTA covers
// 64 * kWG query rows, and each K/V tile it loads serves every warpgroup whose list holds it (a 64-row
// CTA moves kWG times more bytes from L2 per FLOP). The query blocks' sorted key-block lists are
// walked as one sorted union; a warpgroup whose list lacks the current block sits that step out.
// Within a warpgroup, FlashAttention-3's overlap: the PV product of its previous tile runs on the
// tensor cores while the softmax of the current tile runs; the output correction waits for that PV to
// land. A deferred PV always belongs to the previous union step (a warpgroup that sits a step out
// flushes it then), so the K/V ring may refill the stage of step u-2 at step u: kStages - 2 tiles ahead.
template <int kWG, int kStages>
__global__ void __launch_bounds__(128 * kWG, kWG == 1 ? 3 : kWG == 2 ? 2 : 1)
    bsa_fwd_wgmma_k(Args p, const __nv_bfloat16* q, const __nv_bfloat16* k, const __nv_bfloat16* v, const float* kbias, float* out,
                    float* lse) {
#ifdef TR_WGMMA
  static_assert(kStages >= 3, "the ring refills kStages - 2 tiles ahead");
  extern __shared__ uint8_t smraw[];
  __nv_bfloat16* Qs = smem_base(smraw);  // [kWG][kTile]
  __nv_bfloat16* Ks = Qs + kWG * kTile;  // [kStages][kTile]
  __nv_bfloat16* Vs = Ks + kStages * kTile;  // [kStages][kTile]
  const int h = blockIdx.y, b = blockIdx.z;
  const int lh = p.LH == 1 ? 0 : h;
  const int64_t bh = (int64_t)b * p.H + h;
  // Warp-uniform by construction (a lane-0 broadcast): ptxas serializes every wgmma (C7520) when a
  // branch around them might diverge within a warp.
  const int wg = __shfl_sync(0xffffffff, threadIdx.x >> 7, 0);
  const int warp = (threadIdx.x >> 5) & 3, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
  const int qb0 = blockIdx.x * kWG;
  const int32_t* rp = p.row_ptr + (int64_t)lh * (p.nQ + 1);
  int la[kWG], ln[kWG], cu[kWG], lu[kWG];  // each list's start and length; compute and loader cursors
#pragma unroll
  for (int w = 0; w < kWG; w++) {
    const bool ok = qb0 + w < p.nQ;
    la[w] = ok ? rp[qb0 + w] : 0;
    ln[w] = ok ? rp[qb0 + w + 1] - la[w] : 0;
    cu[w] = lu[w] = 0;
  }
  // The next block of the union at cursors u (advanced past it); mine: whether warpgroup wg's list
  // holds it, and at which position of the layout. Unrolled selects: no run-time register indexing.
  auto union_next = [&](int (&u)[kWG], bool& mine, int& pi) {
    int jw[kWG], j = INT_MAX;
#pragma unroll
    for (int w = 0; w < kWG; w++) {
      jw[w] = u[w] < ln[w] ? __ldg(p.col_idx + la[w] + u[w]) : INT_MAX;
      j = min(j, jw[w]);
    }
    mine = false;
    pi = -1;
#pragma unroll
    for (int w = 0; w < kWG; w++) {
      const bool in = jw[w] == j;
      if (w == wg && in) {
        mine = true;
        pi = la[w] + u[w];
      }
      u[w] += in;
    }
    return j;
  };
  auto more = [&](const int (&u)[kWG]) {
    bool m = false;
#pragma unroll
    for (int w = 0; w < kWG; w++) m |= u[w] < ln[w];
    return m;
  };
  const __nv_bfloat16* qbh = q + bh * p.Lq * T;
  const __nv_bfloat16* kbh = k + bh * p.Lk * T;
  const __nv_bfloat16* vbh = v + bh * p.Lk * T;
  const float* kb = kbias ? kbias + b * p.kb_sb + h * p.kb_sh : nullptr;

#pragma unroll
  for (int w = 0; w < kWG; w++) load_tile<128 * kWG>(Qs + w * kTile, qbh, (qb0 + w) * T, p.Lq);
  bool xm;
  int xp;
#pragma unroll
  for (int st = 0; st < kStages - 2; st++) {
    if (more(lu)) {
      const int j = union_next(lu, xm, xp) * T;
      load_tile<128 * kWG>(Ks + st * kTile, kbh, j, p.Lk);
      load_tile<128 * kWG>(Vs + st * kTile, vbh, j, p.Lk);
    }
    cp_commit();
  }

  float o[8][4];
#pragma unroll
  for (int x = 0; x < 8; x++) o[x][0] = o[x][1] = o[x][2] = o[x][3] = 0.0f;
  float mrow[2] = {-INFINITY, -INFINITY}, lrow[2] = {0.0f, 0.0f}, corr[2];
  uint32_t pa[4][4];  // P of the deferred PV, bf16 pairs in wgmma's A-fragment layout
  bool pending = false;
  const float sl2 = p.scale * kLog2e;
  const int i0 = (qb0 + wg) * T;
  const int rowa = i0 + warp * 16 + g;  // this lane's rows: rowa, rowa + 8
  const uint32_t qaddr = saddr(Qs + wg * kTile), kaddr0 = saddr(Ks), vaddr0 = saddr(Vs);
  int st = 0, pst = 0, fst = kStages - 2;  // stage of this step, of the previous step, to refill
  auto flush = [&]() {  // the deferred PV, now
    pin(o);
    wg_fence();
    issue_pv(o, pa, vaddr0 + pst * kTile * 2);
    wg_commit();
    wg_wait<0>();
    pin(o);
    pending = false;
  };
  while (more(cu)) {
    bool mine;
    int pi;
    union_next(cu, mine, pi);
    mine = __shfl_sync(0xffffffff, mine, 0);
    cp_wait<kStages - 3>();
    fence_proxy_async();
    __syncthreads();  // this step's tile is in; every warpgroup is done with the stage of step u-2
    if (more(lu)) {
      const int j = union_next(lu, xm, xp) * T;
      load_tile<128 * kWG>(Ks + fst * kTile, kbh, j, p.Lk);
      load_tile<128 * kWG>(Vs + fst * kTile, vbh, j, p.Lk);
    }
    cp_commit();
    if (mine) {
      const uint32_t kaddr = kaddr0 + st * kTile * 2;
      float s[8][4];
      pin(o);
      wg_fence();
      issue_s(s, qaddr, kaddr);
      wg_commit();
      if (pending) issue_pv(o, pa, vaddr0 + pst * kTile * 2);
      wg_commit();  // (an empty group when nothing was pending: the waits stay unconditional)
      wg_wait<1>();  // S is in; the PV may still run
      pin(s);
      softmax_update(p, s, corr, mrow, lrow, kb, pi, i0, rowa, t, sl2);
      wg_wait<0>();
      pin(o);
      correct(o, corr);
      pack_p(s, pa);
      pending = true;
    } else if (pending) {  // the stage it reads is refilled next step
      flush();
    }
    pst = st;
    st = st + 1 == kStages ? 0 : st + 1;
    fst = fst + 1 == kStages ? 0 : fst + 1;
  }
  if (pending) flush();
  cp_wait<0>();
  if (qb0 + wg >= p.nQ) return;
  store_rows(p, o, mrow, lrow, out, lse, bh, rowa, t);
#endif
}

// One warpgroup per CTA, straight-line pipeline (no union, no sit-out branches): the first tile is
// peeled, so the loop body always issues S of tile it then PV of tile it-1.
// kTcSum: softmax denominators summed on the tensor cores (P times a 1 KB tile of ones, m64n8k16,
// issued with the PV product) instead of ~34 adds and shuffles per tile on the ALUs.
// kRows: consecutive query blocks per CTA, one after the other. Their key-block lists are one
// contiguous run of col_idx, so the K/V ring simply runs on across a row boundary: a short row
// (a window's 9 tiles) no longer pays the ring's fill and drain alone.
template <int kStages, int kMinBlocks = 3, bool kSlack = true, bool kTcSum = false, int kRows = 1>
__global__ void __launch_bounds__(128, kMinBlocks) bsa_fwd_wgmma_pipe_k(Args p, const __nv_bfloat16* q, const __nv_bfloat16* k, const __nv_bfloat16* v,
                                                            const float* kbias, float* out, float* lse) {
#ifdef TR_WGMMA
  static_assert(kStages >= 3, "the ring refills kStages - 2 tiles ahead");
  extern __shared__ __align__(1024) uint8_t smraw[];
  // Without the slack (4 CTAs per SM need every KB) the dynamic base must itself sit on 1024 bytes.
  if (!kSlack && (saddr(smraw) & 1023)) __trap();
  __nv_bfloat16* Qs = kSlack ? smem_base(smraw) : reinterpret_cast<__nv_bfloat16*>(smraw);  // [kRows][kTile]
  __nv_bfloat16* Ks = Qs + kRows * kTile;  // [kStages][kTile]
  __nv_bfloat16* Vs = Ks + kStages * kTile;  // [kStages][kTile]
  __nv_bfloat16* ones = Vs + kStages * kTile;  // [512] when kTcSum
  if (kTcSum)
    for (int x = threadIdx.x; x < 512; x += 128) ones[x] = __float2bfloat16(1.0f);  // visible after next_tile(0)'s fence
  const int ib = blockIdx.x * kRows, h = blockIdx.y, b = blockIdx.z;  // first query block
  const int lh = p.LH == 1 ? 0 : h;
  const int64_t bh = (int64_t)b * p.H + h;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
  const int32_t* rp = p.row_ptr + lh * (p.nQ + 1) + ib;
  const int rows = min(kRows, p.nQ - ib);
  const int a = rp[0], n = rp[rows] - a;  // every tile of the CTA's rows
  const __nv_bfloat16* kbh = k + bh * p.Lk * T;
  const __nv_bfloat16* vbh = v + bh * p.Lk * T;
  const float* kb = kbias ? kbias + b * p.kb_sb + h * p.kb_sh : nullptr;

#pragma unroll
  for (int r = 0; r < kRows; r++) load_tile<128>(Qs + r * kTile, q + bh * p.Lq * T, (ib + r) * T, p.Lq);
#pragma unroll
  for (int st = 0; st < kStages - 2; st++) {
    if (st < n) {
      const int j = __ldg(p.col_idx + a + st) * T;
      load_tile<128>(Ks + st * kTile, kbh, j, p.Lk);
      load_tile<128>(Vs + st * kTile, vbh, j, p.Lk);
    }
    cp_commit();
  }
  const float sl2 = p.scale * kLog2e;
  const uint32_t kaddr0 = saddr(Ks), vaddr0 = saddr(Vs), dones = ones_lo(saddr(ones));
  float o[8][4], mrow[2], lrow[2], corr[2], lacc[4];  // lacc: kTcSum's row sums (rows g, g, g+8, g+8)
  uint32_t pa[4][4];
  auto pv = [&](uint32_t vaddr) {  // O += P V (and the row sums), one commit group
    issue_pv(o, pa, vaddr);
    if (kTcSum)
#pragma unroll
      for (int kk = 0; kk < 4; kk++) wgmma_rs_n8(lacc, pa[kk], dones);
    wg_commit();
  };
  auto next_tile = [&](int it) {  // waits for tile it; refills the stage of tile it-2
    cp_wait<kStages - 3>();
    fence_proxy_async();
    __syncthreads();
    const int f = it + kStages - 2;
    if (f < n) {
      const int j = __ldg(p.col_idx + a + f) * T, st = f % kStages;
      load_tile<128>(Ks + st * kTile, kbh, j, p.Lk);
      load_tile<128>(Vs + st * kTile, vbh, j, p.Lk);
    }
    cp_commit();
  };
  int it = 0;  // position in the CTA's run of tiles; its stage is it % kStages
  for (int r = 0; r < rows; r++) {
    const int e = rp[r + 1] - a;  // this row's tiles end here
    const int i0 = (ib + r) * T, rowa = i0 + warp * 16 + g;
    const uint32_t qaddr = saddr(Qs + r * kTile);
#pragma unroll
    for (int x = 0; x < 8; x++) o[x][0] = o[x][1] = o[x][2] = o[x][3] = 0.0f;
    mrow[0] = mrow[1] = -INFINITY;
    lrow[0] = lrow[1] = 0.0f;
    lacc[0] = lacc[1] = lacc[2] = lacc[3] = 0.0f;
    if (it < e) {
      next_tile(it);
      float s[8][4];
      wg_fence();
      issue_s(s, qaddr, kaddr0 + (it % kStages) * kTile * 2);
      wg_commit();
      wg_wait<0>();
      pin(s);
      softmax_update<!kTcSum>(p, s, corr, mrow, lrow, kb, a + it, i0, rowa, t, sl2);  // o is still zero: no correction
      pack_p(s, pa);
      for (it++; it < e; it++) {
        next_tile(it);
        const uint32_t kaddr = kaddr0 + (it % kStages) * kTile * 2, vaddr = vaddr0 + ((it - 1) % kStages) * kTile * 2;
        float sn[8][4];
        pin(o);
        pin4(lacc);
        wg_fence();
        issue_s(sn, qaddr, kaddr);
        wg_commit();
        pv(vaddr);
        wg_wait<1>();  // S of tile it is in; PV of tile it-1 may still run
        pin(sn);
        softmax_update<!kTcSum>(p, sn, corr, mrow, lrow, kb, a + it, i0, rowa, t, sl2);
        wg_wait<0>();
        pin(o);
        pin4(lacc);
        if (__any_sync(0xffffffff, corr[0] != 1.0f || corr[1] != 1.0f)) {  // correct(), with the row sums
          rescale(o, corr);
          if (kTcSum) lacc[0] *= corr[0], lacc[1] *= corr[0], lacc[2] *= corr[1], lacc[3] *= corr[1];
        }
        pack_p(sn, pa);
      }
      pin(o);
      pin4(lacc);
      wg_fence();
      pv(vaddr0 + ((it - 1) % kStages) * kTile * 2);
      wg_wait<0>();
      pin(o);
      pin4(lacc);
    }
    if (kTcSum) lrow[0] = lacc[0], lrow[1] = lacc[2];
    store_rows(p, o, mrow, lrow, out, lse, bh, rowa, t);
  }
  cp_wait<0>();
#endif
}

// ---- TMA variant: the copy engine moves K/V/Q tiles (one thread issues them), an mbarrier per stage
// says when a tile has landed. No per-thread address arithmetic and no proxy fence per tile.
struct TmaMaps {
  CUtensorMap q, k, v;  // [B*H, L, 64] bf16, 64 x 64 boxes, 128-byte swizzle
};
__device__ __forceinline__ void mbar_init(uint32_t bar, int count) { asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(count)); }
__device__ __forceinline__ void mbar_expect(uint32_t bar, uint32_t bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(bar), "r"(bytes) : "memory");
}
__device__ __forceinline__ void mbar_wait(uint32_t bar, uint32_t parity) {
  asm volatile(
      "{\n.reg .pred P1;\nLAB_WAIT:\nmbarrier.try_wait.parity.shared::cta.b64 P1, [%0], %1;\n@P1 bra DONE;\nbra LAB_WAIT;\nDONE:\n}\n" ::"r"(bar),
      "r"(parity)
      : "memory");
}
__device__ __forceinline__ void tma_load(uint32_t dst, const CUtensorMap* map, int row, int bh, uint32_t bar) {
  asm volatile(
      "cp.async.bulk.tensor.3d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3, %4}], [%5];\n" ::"r"(dst),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(0), "r"(row), "r"(bh), "r"(bar)
      : "memory");
}

template <int kStages, bool kTcSum>
__global__ void __launch_bounds__(128, 3) bsa_fwd_wgmma_tma_k(Args p, const __grid_constant__ TmaMaps m, const float* kbias, float* out, float* lse) {
#ifdef TR_WGMMA
  static_assert(kStages >= 3, "the ring refills kStages - 2 tiles ahead");
  extern __shared__ __align__(1024) uint8_t smraw[];
  __nv_bfloat16* Qs = smem_base(smraw);
  __nv_bfloat16* Ks = Qs + kTile;  // [kStages][kTile]
  __nv_bfloat16* Vs = Ks + kStages * kTile;  // [kStages][kTile]
  __nv_bfloat16* ones = Vs + kStages * kTile;  // [512]
  const uint32_t bar0 = saddr(ones + 512);  // [kStages] stage barriers, then Q's
  if (threadIdx.x == 0) {
    for (int x = 0; x <= kStages; x++) mbar_init(bar0 + 8 * x, 1);
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
  }
  if (kTcSum)
    for (int x = threadIdx.x; x < 512; x += 128) ones[x] = __float2bfloat16(1.0f);
  fence_proxy_async();  // the ones tile is read by wgmma
  __syncthreads();
  const int i = blockIdx.x, h = blockIdx.y, b = blockIdx.z;
  const int lh = p.LH == 1 ? 0 : h;
  const int64_t bh = (int64_t)b * p.H + h;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
  const int a = p.row_ptr[lh * (p.nQ + 1) + i], n = p.row_ptr[lh * (p.nQ + 1) + i + 1] - a;
  const float* kb = kbias ? kbias + b * p.kb_sb + h * p.kb_sh : nullptr;
  const int i0 = i * T, rowa = i0 + warp * 16 + g;
  const uint32_t kaddr0 = saddr(Ks), vaddr0 = saddr(Vs), qaddr = saddr(Qs), dones = ones_lo(saddr(ones));
  auto issue = [&](int f) {  // thread 0: tile f of this row into its stage
    const int st = f % kStages;
    const uint32_t bar = bar0 + 8 * st;
    const int j = __ldg(p.col_idx + a + f) * T;
    mbar_expect(bar, 2 * kTile * sizeof(__nv_bfloat16));
    tma_load(kaddr0 + st * kTile * 2, &m.k, j, (int)bh, bar);
    tma_load(vaddr0 + st * kTile * 2, &m.v, j, (int)bh, bar);
  };
  if (threadIdx.x == 0 && n > 0) {
    mbar_expect(bar0 + 8 * kStages, kTile * sizeof(__nv_bfloat16));
    tma_load(qaddr, &m.q, i0, (int)bh, bar0 + 8 * kStages);
    for (int f = 0; f < kStages - 2 && f < n; f++) issue(f);
  }
  float o[8][4];
#pragma unroll
  for (int x = 0; x < 8; x++) o[x][0] = o[x][1] = o[x][2] = o[x][3] = 0.0f;
  float mrow[2] = {-INFINITY, -INFINITY}, lrow[2] = {0.0f, 0.0f}, corr[2], lacc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
  const float sl2 = p.scale * kLog2e;
  uint32_t pa[4][4];
  auto pv = [&](uint32_t vaddr) {
    issue_pv(o, pa, vaddr);
    if (kTcSum)
#pragma unroll
      for (int kk = 0; kk < 4; kk++) wgmma_rs_n8(lacc, pa[kk], dones);
    wg_commit();
  };
  auto next_tile = [&](int it) {  // refills the stage of tile it-2 (free: its PV landed last step), waits for tile it
    __syncthreads();
    if (threadIdx.x == 0 && it + kStages - 2 < n) issue(it + kStages - 2);
    mbar_wait(bar0 + 8 * (it % kStages), (it / kStages) & 1);
  };
  if (n > 0) {
    next_tile(0);
    mbar_wait(bar0 + 8 * kStages, 0);
    float s[8][4];
    wg_fence();
    issue_s(s, qaddr, kaddr0);
    wg_commit();
    wg_wait<0>();
    pin(s);
    softmax_update<!kTcSum>(p, s, corr, mrow, lrow, kb, a, i0, rowa, t, sl2);
    pack_p(s, pa);
    for (int it = 1; it < n; it++) {
      next_tile(it);
      const uint32_t kaddr = kaddr0 + (it % kStages) * kTile * 2, vaddr = vaddr0 + ((it - 1) % kStages) * kTile * 2;
      float sn[8][4];
      pin(o);
      pin4(lacc);
      wg_fence();
      issue_s(sn, qaddr, kaddr);
      wg_commit();
      pv(vaddr);
      wg_wait<1>();
      pin(sn);
      softmax_update<!kTcSum>(p, sn, corr, mrow, lrow, kb, a + it, i0, rowa, t, sl2);
      wg_wait<0>();
      pin(o);
      pin4(lacc);
      if (__any_sync(0xffffffff, corr[0] != 1.0f || corr[1] != 1.0f)) {
        rescale(o, corr);
        if (kTcSum) lacc[0] *= corr[0], lacc[1] *= corr[0], lacc[2] *= corr[1], lacc[3] *= corr[1];
      }
      pack_p(sn, pa);
    }
    pin(o);
    pin4(lacc);
    wg_fence();
    pv(vaddr0 + ((n - 1) % kStages) * kTile * 2);
    wg_wait<0>();
    pin(o);
    pin4(lacc);
  }
  if (kTcSum) lrow[0] = lacc[0], lrow[1] = lacc[2];
  store_rows(p, o, mrow, lrow, out, lse, bh, rowa, t);
#endif
}

// ---- persistent rows: a grid of (SMs x 3) CTAs, each walking query blocks blockIdx.x, + gridDim.x, ...
// with one K/V ring across all of them, so a short row (a window's 9 tiles) never pays the ring's fill
// and drain; Q tiles ride in the group of their row's first tile, in a ring of kStages - 1 slots.
struct RowCursor {  // one walk over the CTA's rows, skipping empty ones
  int m = -1, row = 0, a = 0, n = 0, u = 0, k = -1;  // row ordinal, row id, its tiles, next tile, non-empty ordinal
  int64_t bh = 0;
  __device__ __forceinline__ bool advance(const Args& p, int B) {  // to the next non-empty row; false when none
    const int R = B * p.H * p.nQ;
    for (;;) {
      row = blockIdx.x + (++m) * gridDim.x;
      if (row >= R) return false;
      const int i = row % p.nQ;
      bh = row / p.nQ;
      const int lh = p.LH == 1 ? 0 : (int)(bh % p.H);
      a = p.row_ptr[lh * (p.nQ + 1) + i];
      n = p.row_ptr[lh * (p.nQ + 1) + i + 1] - a;
      u = 0;
      if (n > 0) {
        k++;
        return true;
      }
    }
  }
};

template <int kStages>
__global__ void __launch_bounds__(128, 3) bsa_fwd_wgmma_rows_k(Args p, int B, const __nv_bfloat16* q, const __nv_bfloat16* k, const __nv_bfloat16* v,
                                                           const float* kbias, float* out, float* lse) {
#ifdef TR_WGMMA
  static_assert(kStages >= 3, "the ring refills kStages - 2 tiles ahead");
  constexpr int kQ = kStages - 1;  // the loader runs kStages - 2 tiles, so as many non-empty rows, ahead
  extern __shared__ __align__(1024) uint8_t smraw[];
  __nv_bfloat16* Qs = smem_base(smraw);  // [kQ][kTile]
  __nv_bfloat16* Ks = Qs + kQ * kTile;  // [kStages][kTile]
  __nv_bfloat16* Vs = Ks + kStages * kTile;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
  const float sl2 = p.scale * kLog2e;
  const uint32_t kaddr0 = saddr(Ks), vaddr0 = saddr(Vs);
  RowCursor ld;  // the loader's walk
  bool more = ld.advance(p, B);
  int f = 0;  // tiles issued
  auto load_next = [&]() {  // the next tile of the walk (and its row's Q first), as one cp.async group
    if (more) {
      if (ld.u == 0) load_tile<128>(Qs + (ld.k % kQ) * kTile, q + ld.bh * p.Lq * T, (ld.row % p.nQ) * T, p.Lq);
      const int j = __ldg(p.col_idx + ld.a + ld.u) * T, st = f % kStages;
      load_tile<128>(Ks + st * kTile, k + ld.bh * p.Lk * T, j, p.Lk);
      load_tile<128>(Vs + st * kTile, v + ld.bh * p.Lk * T, j, p.Lk);
      f++;
      if (++ld.u == ld.n) more = ld.advance(p, B);
    }
    cp_commit();
  };
#pragma unroll
  for (int x = 0; x < kStages - 2; x++) load_next();
  auto next_tile = [&](int it) {  // waits for tile it; refills the stage of tile it-2
    cp_wait<kStages - 3>();
    fence_proxy_async();
    __syncthreads();
    load_next();
  };
  float o[8][4], mrow[2], lrow[2], corr[2];
  uint32_t pa[4][4];
  int it = 0, kq = 0;  // tiles computed, non-empty rows begun (their Q slot: kq % kQ)
  const int R = B * p.H * p.nQ;
  for (int m = 0;; m++) {
    const int row = blockIdx.x + m * gridDim.x;
    if (row >= R) break;
    const int i = row % p.nQ;
    const int64_t bh = row / p.nQ;
    const int h = (int)(bh % p.H), b = (int)(bh / p.H), lh = p.LH == 1 ? 0 : h;
    const int a = p.row_ptr[lh * (p.nQ + 1) + i], n = p.row_ptr[lh * (p.nQ + 1) + i + 1] - a;
    const float* kb = kbias ? kbias + b * p.kb_sb + h * p.kb_sh : nullptr;
    const int i0 = i * T, rowa = i0 + warp * 16 + g;
#pragma unroll
    for (int x = 0; x < 8; x++) o[x][0] = o[x][1] = o[x][2] = o[x][3] = 0.0f;
    mrow[0] = mrow[1] = -INFINITY;
    lrow[0] = lrow[1] = 0.0f;
    if (n > 0) {
      const uint32_t qaddr = saddr(Qs + (kq++ % kQ) * kTile);
      next_tile(it);
      float s[8][4];
      wg_fence();
      issue_s(s, qaddr, kaddr0 + (it % kStages) * kTile * 2);
      wg_commit();
      wg_wait<0>();
      pin(s);
      softmax_update(p, s, corr, mrow, lrow, kb, a, i0, rowa, t, sl2);  // o is still zero: no correction
      pack_p(s, pa);
      it++;
      for (int u = 1; u < n; u++, it++) {
        next_tile(it);
        const uint32_t kaddr = kaddr0 + (it % kStages) * kTile * 2, vaddr = vaddr0 + ((it - 1) % kStages) * kTile * 2;
        float sn[8][4];
        pin(o);
        wg_fence();
        issue_s(sn, qaddr, kaddr);
        wg_commit();
        issue_pv(o, pa, vaddr);
        wg_commit();
        wg_wait<1>();
        pin(sn);
        softmax_update(p, sn, corr, mrow, lrow, kb, a + u, i0, rowa, t, sl2);
        wg_wait<0>();
        pin(o);
        correct(o, corr);
        pack_p(sn, pa);
      }
      pin(o);
      wg_fence();
      issue_pv(o, pa, vaddr0 + ((it - 1) % kStages) * kTile * 2);
      wg_commit();
      wg_wait<0>();
      pin(o);
    }
    store_rows(p, o, mrow, lrow, out, lse, bh, rowa, t);
  }
  cp_wait<0>();
#endif
}

// 1 when this build carries the sm_90a kernel body (the only target that can run wgmma).
__global__ void wgmma_probe_k(int* out) {
#ifdef TR_WGMMA
  *out = 1;
#else
  *out = 0;
#endif
}

int g_choice = -1;  // -1 unset, 0 auto, 1 mma.sync, 2 wgmma (the default variant), 3.. a named variant
int g_hopper = -1;  // whether this GPU runs the wgmma kernels

using Kernel = void (*)(Args, const __nv_bfloat16*, const __nv_bfloat16*, const __nv_bfloat16*, const float*, float*, float*);
using TmaKernel = void (*)(Args, TmaMaps, const float*, float*, float*);
using RowsKernel = void (*)(Args, int, const __nv_bfloat16*, const __nv_bfloat16*, const __nv_bfloat16*, const float*, float*, float*);
constexpr size_t kTmaExtra = 1024 + 64;  // the ones tile and the barriers
struct Variant {
  const char* name;
  Kernel fn;  // or, when null, tma or rowsFn
  TmaKernel tma;
  RowsKernel rowsFn;
  int rows;  // query rows per CTA
  int threads;
  size_t smem;
};
// [0] is the default ("wgmma"); the others stay selectable for comparisons (bsa_fwd_check).
const Variant kVariants[] = {
    {"wgmma-pipe1-s4", bsa_fwd_wgmma_pipe_k<4>, nullptr, nullptr, 64, 128, smem_bytes(1, 4)},
    {"wgmma-pipe1-s3x4", bsa_fwd_wgmma_pipe_k<3, 4, false>, nullptr, nullptr, 64, 128, smem_bytes(1, 3, false)},
    {"wgmma-pipe1-s4x4", bsa_fwd_wgmma_pipe_k<4, 4>, nullptr, nullptr, 64, 128, smem_bytes(1, 4)},
    {"wgmma-pipe1-s4-tcsum", bsa_fwd_wgmma_pipe_k<4, 3, true, true>, nullptr, nullptr, 64, 128, smem_bytes(1, 4) + 1024},
    {"wgmma-pipe2rows-s3", bsa_fwd_wgmma_pipe_k<3, 3, true, false, 2>, nullptr, nullptr, 128, 128, smem_bytes(2, 3)},
    {"wgmma-pipe2rows-s4", bsa_fwd_wgmma_pipe_k<4, 2, true, false, 2>, nullptr, nullptr, 128, 128, smem_bytes(2, 4)},
    {"wgmma-pipe4rows-s3", bsa_fwd_wgmma_pipe_k<3, 2, true, false, 4>, nullptr, nullptr, 256, 128, smem_bytes(4, 3)},
    {"wgmma-2wg-s4", bsa_fwd_wgmma_k<2, 4>, nullptr, nullptr, 128, 256, smem_bytes(2, 4)},
    {"wgmma-tma-s4", nullptr, bsa_fwd_wgmma_tma_k<4, false>, nullptr, 64, 128, smem_bytes(1, 4) + kTmaExtra},
    {"wgmma-rows-s3", nullptr, nullptr, bsa_fwd_wgmma_rows_k<3>, 64, 128, smem_bytes(2, 3)},
    {"wgmma-tma-s4-tcsum", nullptr, bsa_fwd_wgmma_tma_k<4, true>, nullptr, 64, 128, smem_bytes(1, 4) + kTmaExtra},
};
constexpr int kNumVariants = sizeof(kVariants) / sizeof(kVariants[0]);

// [BH, L, 64] bf16 as a 3-D tensor map, 64 x 64 boxes, 128-byte swizzle (the wgmma tile layout);
// rows past L read as zeros.
bool tensor_map(CUtensorMap* m, const void* base, int64_t BH, int L) {
  static PFN_cuTensorMapEncodeTiled_v12000 encode = nullptr;
  if (!encode) {
    cudaDriverEntryPointQueryResult found{};
    if (cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", (void**)&encode, 12000, cudaEnableDefault, &found) != cudaSuccess ||
        found != cudaDriverEntryPointSuccess)
      encode = nullptr;
    if (!encode) return false;
  }
  const cuuint64_t dims[3] = {(cuuint64_t)T, (cuuint64_t)L, (cuuint64_t)BH};
  const cuuint64_t strides[2] = {(cuuint64_t)T * 2, (cuuint64_t)L * T * 2};
  const cuuint32_t box[3] = {T, T, 1}, elem[3] = {1, 1, 1};
  return encode(m, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, 3, const_cast<void*>(base), dims, strides, box, elem, CU_TENSOR_MAP_INTERLEAVE_NONE,
                CU_TENSOR_MAP_SWIZZLE_128B, CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE) == CUDA_SUCCESS;
}

bool hopper_ready() {
  if (g_hopper >= 0) return g_hopper == 1;
  g_hopper = 0;
  int dev = 0, major = 0, minor = 0;
  TR_CUDA(cudaGetDevice(&dev));
  TR_CUDA(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev));
  TR_CUDA(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev));
  if (major != 9 || minor != 0) return false;
  int* d = nullptr;
  int h = 0;
  TR_CUDA(cudaMallocAsync(&d, sizeof(int), stream()));
  wgmma_probe_k<<<1, 1, 0, stream()>>>(d);
  TR_LAUNCHED("wgmma_probe");
  TR_CUDA(cudaMemcpyAsync(&h, d, sizeof(int), cudaMemcpyDeviceToHost, stream()));
  TR_CUDA(cudaStreamSynchronize(stream()));  // once per process
  TR_CUDA(cudaFreeAsync(d, stream()));
  if (h == 1)
    for (const Variant& v : kVariants)
      TR_CUDA(cudaFuncSetAttribute(v.fn ? (const void*)v.fn : v.tma ? (const void*)v.tma : (const void*)v.rowsFn,
                                   cudaFuncAttributeMaxDynamicSharedMemorySize, (int)v.smem));
  g_hopper = h == 1 && !has_error() ? 1 : 0;
  return g_hopper == 1;
}
}  // namespace

namespace tr {
namespace tc {
// Which bf16 forward runs: TABRECALL_BSA_KERNEL (auto | mma | wgmma | a variant's name) unless
// tr_bsa_set_kernel chose.
int bf16_kernel_choice() {
  if (g_choice < 0) {
    const char* e = getenv("TABRECALL_BSA_KERNEL");
    g_choice = 0;
    if (e && !strcmp(e, "mma")) g_choice = 1;
    if (e && !strcmp(e, "wgmma")) g_choice = 2;
    for (int i = 0; e && i < kNumVariants; i++)
      if (!strcmp(e, kVariants[i].name)) g_choice = 2 + i;
  }
  return g_choice;
}

bool hopper_bsa_fwd_bf16(const Args& p, int B, const __nv_bfloat16* q, const __nv_bfloat16* k, const __nv_bfloat16* v, const float* kb,
                         float* out, float* lse) {
  const int choice = bf16_kernel_choice();
  if (choice == 1) return false;
  if (!hopper_ready()) {
    if (choice >= 2) set_error("tr_bsa_fwd_bf16", __FILE__, __LINE__, "the wgmma kernels need an sm_90 GPU and a build with sm_90a");
    return choice >= 2;
  }
  const Variant& x = kVariants[choice >= 2 ? choice - 2 : 0];
  const int nQ = (p.Lq + x.rows - 1) / x.rows;
  if (x.fn) {
    x.fn<<<dim3(nQ, p.H, B), x.threads, x.smem, stream()>>>(p, q, k, v, kb, out, lse);
  } else if (x.rowsFn) {
    static int sms = 0;
    if (!sms) TR_CUDA(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
    const int rows = B * p.H * p.nQ;  // query blocks in all
    x.rowsFn<<<std::min(rows, 3 * std::max(sms, 1)), x.threads, x.smem, stream()>>>(p, B, q, k, v, kb, out, lse);
  } else {
    TmaMaps m;
    if (!tensor_map(&m.q, q, (int64_t)B * p.H, p.Lq) || !tensor_map(&m.k, k, (int64_t)B * p.H, p.Lk) || !tensor_map(&m.v, v, (int64_t)B * p.H, p.Lk)) {
      set_error("tr_bsa_fwd_bf16", __FILE__, __LINE__, "cuTensorMapEncodeTiled failed (or the driver lacks it)");
      return true;
    }
    x.tma<<<dim3(nQ, p.H, B), x.threads, x.smem, stream()>>>(p, m, kb, out, lse);
  }
  TR_LAUNCHED("bsa_fwd_wgmma");
  return true;
}
}  // namespace tc
}  // namespace tr

// 0: pick (wgmma on sm_90 when built for sm_90a, else mma.sync); 1: mma.sync; 2: wgmma (an error
// elsewhere); 3.. the other wgmma variants, for comparisons.
TR_API void tr_bsa_set_kernel(int which) { g_choice = which < 0 || which >= 2 + kNumVariants ? 0 : which; }

// How many wgmma variants tr_bsa_set_kernel can pick (2 .. 1 + this).
TR_API int tr_bsa_num_variants() { return kNumVariants; }

// The bf16 forward that runs now: a wgmma variant's name or "mma.sync".
TR_API const char* tr_bsa_fwd_kernel() {
  const int c = tr::tc::bf16_kernel_choice();
  return c != 1 && hopper_ready() ? kVariants[c >= 2 ? c - 2 : 0].name : "mma.sync";
}
