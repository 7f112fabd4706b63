// Block-sparse attention forward for Hopper (sm_90a) on wgmma: bf16 q/k/v, fp32 accumulation, softmax
// statistics and output, the same arguments and results as attention_tc.cu's mma.sync kernel.
// One warpgroup per CTA owns one 64-row query block (wgmma's M = 64). The default for short rows runs
// 4 CTAs per SM (128 registers, rings of 2 K and 3 V tiles: 48 KB); its 3-CTA twins keep 4-deep rings.
// K/V tiles are in the 128-byte swizzled layout that wgmma's descriptors read (the same swizzle the
// mma.sync kernel uses for ldmatrix), moved by the TMA copy engine (one thread issues, an mbarrier per
// tile) or, in the fallback kernel, by cp.async. S = QK^T reads Q and K from shared memory; O += PV
// takes P from registers (the S accumulators, rounded to bf16) and V from shared memory through the
// descriptor's transpose; the softmax denominators are summed on the ALUs or, in the tcsum twins, as
// the same bf16 P times a tile of ones on the tensor cores. Softmax is attention_tc.cuh's, since
// wgmma's accumulator layout per warp is mma.sync's m16n8 layout repeated along N. Long rows go to
// the 128-key kernel below (three query blocks per CTA sharing one K/V ring).
#include "wgmma.cuh"
#include "heuristics.cuh"
#include <cuda.h>  // CUtensorMap and its enums only: the encoder comes through the runtime's driver entry point
#include <cudaTypedefs.h>
#include <algorithm>
#include <type_traits>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <cstdio>

using namespace tr;
using namespace tr::tc;

namespace {
// A forward CTA's shared memory: the Q tile, rings of kKS K tiles and kVS V tiles, then 512 bf16 ones
// (the row-sum operand) and, in the TMA kernels, the mbarriers.
template <int kKS, int kVS>
struct FwdSmem {
  __nv_bfloat16 *Qs, *Ks, *Vs, *ones;
  __device__ __forceinline__ explicit FwdSmem(uint8_t* raw)
      : Qs(smem_base(raw)), Ks(Qs + kTile), Vs(Ks + kKS * kTile), ones(Vs + kVS * kTile) {}
};
// How many tiles ahead the rings refill: K of tile it-1 is free once S(it-1) landed, V of tile it-2
// once PV(it-2) did, both known at step it's CTA barrier.
__host__ __device__ constexpr int ring_lead(int kKS, int kVS) { return kKS - 1 < kVS - 2 ? kKS - 1 : kVS - 2; }

// One query block's row of n tiles, one warpgroup: FlashAttention-3's intra-warpgroup overlap, the
// PV product of tile it-1 on the tensor cores while the softmax of tile it runs (the output
// correction waits for that PV to land). next_tile(it) makes tile it's K/V stage readable and may
// refill the stage of tile it-2, whose PV landed in the previous step.
// kTcSum: softmax denominators summed on the tensor cores (P times a 1 KB tile of ones, m64n8k16,
// issued with the PV product) instead of ~34 adds and shuffles per tile on the ALUs.
// A value every lane of the warp holds, through lane 0: the compiler then knows it is warp-uniform
// (as CUTLASS's canonical_warp_group_idx does), so loop control, layout indices and the branch on
// them stay in uniform registers and need no reconvergence.
__device__ __forceinline__ int uniform(int x) { return __shfl_sync(0xffffffff, x, 0); }

// O (and the tensor-core row sums, when kept) rescaled by the softmax update's correction; skipped
// warp-wide when no row's maximum moved, which after the first tiles is nearly every tile.
template <bool kTcSum>
__device__ __forceinline__ void correct_output(float (&o)[8][4], float (&lacc)[4], const float (&corr)[2]) {
  if (__any_sync(0xffffffff, corr[0] != 1.0f || corr[1] != 1.0f)) {
    rescale(o, corr);
    if (kTcSum) lacc[0] *= corr[0], lacc[1] *= corr[0], lacc[2] *= corr[1], lacc[3] *= corr[1];
  }
}

struct RowState {
  float o[8][4], mrow[2], lrow[2];
};
template <int kKS, int kVS, bool kTcSum, class NextTile>
__device__ __forceinline__ void attend_row(const Args& p, RowState& r, NextTile next_tile, uint32_t qaddr, int a, int n, uint32_t kaddr0,
                                           uint32_t vaddr0, uint32_t dones, const float* kb, int i0, int rowa, int t) {
  float(&o)[8][4] = r.o;
  zero(o);
  r.mrow[0] = r.mrow[1] = -INFINITY;
  r.lrow[0] = r.lrow[1] = 0.0f;
  if (n == 0) return;
  const float sl2 = p.scale * kLog2e;
  float corr[2], lacc[4] = {0.0f, 0.0f, 0.0f, 0.0f};  // lacc: kTcSum's row sums (rows g, g, g+8, g+8)
  uint32_t pa[4][4];  // P of the deferred PV, bf16 pairs in wgmma's A-fragment layout
  auto pv = [&](uint32_t vaddr) {  // O += P V (and the row sums), one commit group
    issue_pv(o, pa, vaddr);
    if (kTcSum)
#pragma unroll
      for (int kk = 0; kk < 4; kk++) wgmma_rs_n8(lacc, pa[kk], dones);
    wg_commit();
  };
  auto kst = [](int it) { return (uint32_t)(it % kKS) * kTile * 2; };
  auto vst = [](int it) { return (uint32_t)(it % kVS) * kTile * 2; };
  next_tile(0);
  {
    float s[8][4];
    wg_fence();
    issue_s(s, qaddr, kaddr0 + kst(0));
    wg_commit();
    wg_wait<0>();
    pin(s);
    softmax_update<!kTcSum>(p, s, corr, r.mrow, r.lrow, kb, a, i0, rowa, t, sl2);  // o is still zero: no correction
    pack_p(s, pa);
  }
  for (int it = 1; it < n; it++) {
    next_tile(it);
    float s[8][4];
    pin(o);
    pin4(lacc);
    wg_fence();
    issue_s(s, qaddr, kaddr0 + kst(it));
    wg_commit();
    pv(vaddr0 + vst(it - 1));
    // The rest of the step twice, for plain tiles and for the others: with one copy the two softmax
    // paths met with S in different registers and ptxas added 32 moves per tile on the plain path.
    auto rest = [&](auto plain) {
      wg_wait<1>();  // S of tile it is in; PV of tile it-1 may still run
      pin(s);
      softmax_update<!kTcSum, decltype(plain)::value>(p, s, corr, r.mrow, r.lrow, kb, a + it, i0, rowa, t, sl2);
      wg_wait<0>();
      pin(o);
      pin4(lacc);
      correct_output<kTcSum>(o, lacc, corr);
      pack_p(s, pa);
    };
    if (uniform(tile_plain(p, a + it, kb))) rest(std::integral_constant<int, 1>{});
    else rest(std::integral_constant<int, 0>{});
  }
  pin(o);
  pin4(lacc);
  wg_fence();
  pv(vaddr0 + vst(n - 1));
  wg_wait<0>();
  pin(o);
  pin4(lacc);
  if (kTcSum) r.lrow[0] = lacc[0], r.lrow[1] = lacc[2];
}

// One warpgroup (128 threads) per CTA and 64-row query block, 3 CTAs per SM; K/V through a
// kStages-deep cp.async ring in the 128-byte swizzle that wgmma's descriptors read.
template <int kStages, bool kTcSum>
__global__ void __launch_bounds__(128, 3) bsa_fwd_wgmma_pipe_k(Args p, const __nv_bfloat16* q, const __nv_bfloat16* k, const __nv_bfloat16* v,
                                                            const float* kbias, float* out, float* lse) {
#ifdef TR_WGMMA
  static_assert(kStages >= 3, "the ring refills kStages - 2 tiles ahead");
  extern __shared__ __align__(1024) uint8_t smraw[];
  const FwdSmem<kStages, kStages> sm(smraw);
  __nv_bfloat16 *Qs = sm.Qs, *Ks = sm.Ks, *Vs = sm.Vs, *ones = sm.ones;  // ones: used when kTcSum
  if (kTcSum)  // 512 bf16 ones, visible to wgmma after next_tile(0)'s fence
    reinterpret_cast<uint2*>(ones)[threadIdx.x] = make_uint2(0x3F803F80u, 0x3F803F80u);
  const int i = blockIdx.x, h = blockIdx.y, b = blockIdx.z;
  const int lh = p.LH == 1 ? 0 : h;
  const int64_t bh = (int64_t)b * p.H + h;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
  const int32_t* rp = p.row_ptr + lh * (p.nQ + 1) + i;
  const int a = uniform(rp[0]), n = uniform(rp[1]) - a;
  const __nv_bfloat16* kbh = k + bh * p.Lk * T;
  const __nv_bfloat16* vbh = v + bh * p.Lk * T;
  const float* kb = kbias ? kbias + b * p.kb_sb + h * p.kb_sh : nullptr;
  auto load = [&](int f) {  // tile f of the row into its stage
    const int j = __ldg(p.col_idx + a + f) * T, st = f % kStages;
    load_tile<128>(Ks + st * kTile, kbh, j, p.Lk);
    load_tile<128>(Vs + st * kTile, vbh, j, p.Lk);
  };
  load_tile<128>(Qs, q + bh * p.Lq * T, i * T, p.Lq);
#pragma unroll
  for (int f = 0; f < kStages - 2; f++) {
    if (f < n) load(f);
    cp_commit();
  }
  auto next_tile = [&](int it) {
    cp_wait<kStages - 3>();
    fence_proxy_async();  // cp.async writes through the generic proxy; wgmma reads through the async one
    __syncthreads();
    if (it + kStages - 2 < n) load(it + kStages - 2);
    cp_commit();
  };
  const int i0 = i * T, rowa = i0 + warp * 16 + g;
  RowState r;
  attend_row<kStages, kStages, kTcSum>(p, r, next_tile, saddr(Qs), a, n, saddr(Ks), saddr(Vs), ones_lo(saddr(ones)), kb, i0, rowa, t);
  cp_wait<0>();
  store_rows(p, r.o, r.mrow, r.lrow, out, lse, bh, rowa, t);
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

// kCtas CTAs per SM: 3 with 4-deep rings (2 tiles ahead); 4 with rings of 2 K and 3 V tiles (1 tile
// ahead, 48 KB per CTA) and the registers capped at 128 (the 4th CTA: +11% on window's 9-tile rows,
// where a row's fixed latency is what one CTA cannot hide).
template <int kKS, int kVS, bool kTcSum, int kCtas>
__global__ void __launch_bounds__(128, kCtas) bsa_fwd_wgmma_tma_k(Args p, const __grid_constant__ TmaMaps m, const float* kbias, float* out, float* lse) {
#ifdef TR_WGMMA
  constexpr int kLead = ring_lead(kKS, kVS), kBars = kKS > kVS ? kKS : kVS;
  static_assert(kLead >= 1, "the rings must refill at least one tile ahead");
  extern __shared__ __align__(1024) uint8_t smraw[];
  const FwdSmem<kKS, kVS> sm(smraw);
  __nv_bfloat16 *Qs = sm.Qs, *Ks = sm.Ks, *Vs = sm.Vs, *ones = sm.ones;
  const uint32_t bar0 = saddr(ones + 512), qbar = bar0 + 8 * kBars;  // [kBars] tile barriers, then Q's
  const int i = blockIdx.x, h = blockIdx.y, b = blockIdx.z;
  const int lh = p.LH == 1 ? 0 : h;
  const int64_t bh = (int64_t)b * p.H + h;
  const int i0 = i * T;
  const uint32_t kaddr0 = saddr(Ks), vaddr0 = saddr(Vs), qaddr = saddr(Qs);
  if (threadIdx.x == 0) {
    for (int x = 0; x <= kBars; x++) mbar_init(bar0 + 8 * x, 1);
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
    // Q first: it needs no layout lookup, so its latency overlaps the row_ptr/col_idx reads.
    mbar_expect(qbar, kTile * sizeof(__nv_bfloat16));
    tma_load(qaddr, &m.q, i0, (int)bh, qbar);
  }
  if (kTcSum) reinterpret_cast<uint2*>(ones)[threadIdx.x] = make_uint2(0x3F803F80u, 0x3F803F80u);  // 512 bf16 ones
  fence_proxy_async();  // the ones tile is read by wgmma
  __syncthreads();
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
  const int a = uniform(p.row_ptr[lh * (p.nQ + 1) + i]), n = uniform(p.row_ptr[lh * (p.nQ + 1) + i + 1]) - a;
  const float* kb = kbias ? kbias + b * p.kb_sb + h * p.kb_sh : nullptr;
  const int rowa = i0 + warp * 16 + g;
  auto issue = [&](int f) {  // thread 0: tile f of this row into its stages, on barrier f % kBars
    const uint32_t bar = bar0 + 8 * (f % kBars);
    const int j = __ldg(p.col_idx + a + f) * T;
    mbar_expect(bar, 2 * kTile * sizeof(__nv_bfloat16));
    tma_load(kaddr0 + (f % kKS) * kTile * 2, &m.k, j, (int)bh, bar);
    tma_load(vaddr0 + (f % kVS) * kTile * 2, &m.v, j, (int)bh, bar);
  };
  if (threadIdx.x == 0)
    for (int f = 0; f < kLead && f < n; f++) issue(f);
  auto next_tile = [&](int it) {
    __syncthreads();
    if (threadIdx.x == 0 && it + kLead < n) issue(it + kLead);
    mbar_wait(bar0 + 8 * (it % kBars), (it / kBars) & 1);
    if (it == 0) mbar_wait(qbar, 0);
  };
  RowState r;
  attend_row<kKS, kVS, kTcSum>(p, r, next_tile, qaddr, a, n, kaddr0, vaddr0, ones_lo(saddr(ones)), kb, i0, rowa, t);
  if (n == 0) mbar_wait(qbar, 0);  // no copy may land after the CTA has gone
  store_rows(p, r.o, r.mrow, r.lrow, out, lse, bh, rowa, t);
#endif
}

// ---- Three consumer warpgroups and a producer warp per CTA: FlashAttention-3's structure for head
// dim 64 (192 query rows per CTA). The CTA walks the union of its three query blocks' key lists
// once (each list is sorted ascending, so a three-way merge); K/V tiles land once in a ring and serve
// every warpgroup that lists them. The producer warp alone issues the copies; a slot goes back to it
// through its own mbarrier (one arrival per consumer warp), not a CTA barrier per tile. A warpgroup
// that meets a slot it does not list first completes its deferred PV product (so it never holds a
// slot while it waits for a later one: with the ring full of other groups' tiles that would
// deadlock; modelled in kernels/cuda/check/ws3_protocol.py), then hands the slot back.
// Registers: 512 threads start at 128 each; the producer warpgroup gives up to 24 and the consumers
// take 160 (setmaxnreg), as FlashAttention-3 splits them for three consumer warpgroups.
constexpr int kWsGroups = 3, kWsThreads = (kWsGroups + 1) * 128;
__device__ __forceinline__ void mbar_arrive(uint32_t bar) { asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(bar) : "memory"); }
template <int N>
__device__ __forceinline__ void regs_dec() {
#ifdef TR_WGMMA
  asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(N));
#endif
}
template <int N>
__device__ __forceinline__ void regs_inc() {
#ifdef TR_WGMMA
  asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(N));
#endif
}

// ---- ws3 with 128-key steps: FlashAttention-3's head-dim-64 tile (192 query rows x 128 keys per
// step). A slot holds two consecutive tiles of the CTA's union walk (two TMA boxes each for K and
// V); a group takes a slot when it lists either tile and sees the other as masked (-inf scores).
// Per slot in meta: the first tile's key block (-1: the end of the walk), per group the list index
// of each tile or -1, and a bit per group for a plain slot (the producer reads the layout, so the
// consumers need no global load per step). Plain slots (both tiles listed, full, no key bias) take one FFMA per
// score; the others build log2-domain scores tile by tile (scaled_scores) and share the softmax.
constexpr int kW2Stages = 6, kW2Meta = 8;
constexpr size_t kW2Smem = smem_bytes(kWsGroups, 2 * kW2Stages) + 1024 + 8 * (2 * kW2Stages + kWsGroups) + 4 * kW2Meta * kW2Stages;
__global__ void __launch_bounds__(kWsThreads, 1) bsa_fwd_wgmma_ws3k128_k(Args p, const __grid_constant__ TmaMaps m, const float* kbias, float* out, float* lse) {
#ifdef TR_WGMMA
  constexpr int S = kW2Stages;
  extern __shared__ __align__(1024) uint8_t smraw[];
  __nv_bfloat16* Qs = smem_base(smraw);
  __nv_bfloat16* Ks = Qs + kWsGroups * kTile;
  __nv_bfloat16* Vs = Ks + 2 * S * kTile;
  __nv_bfloat16* ones = Vs + 2 * S * kTile;
  const uint32_t full0 = saddr(ones + 512), empty0 = full0 + 8 * S, qbar0 = empty0 + 8 * S;
  int* meta = reinterpret_cast<int*>(ones + 512 + 4 * (2 * S + kWsGroups));
  const int h = blockIdx.y, b = blockIdx.z;
  const int lh = p.LH == 1 ? 0 : h;
  const int64_t bh = (int64_t)b * p.H + h;
  const int warp = __shfl_sync(0xffffffff, threadIdx.x >> 5, 0), lane = threadIdx.x & 31, grp = warp >> 2;
  const int32_t* rp = p.row_ptr + lh * (p.nQ + 1);
  if (threadIdx.x == 0) {
    for (int x = 0; x < S; x++) {
      mbar_init(full0 + 8 * x, 1);
      mbar_init(empty0 + 8 * x, 4 * kWsGroups);
    }
    for (int x = 0; x < kWsGroups; x++) mbar_init(qbar0 + 8 * x, 1);
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
  }
  if (threadIdx.x < 128) reinterpret_cast<uint2*>(ones)[threadIdx.x] = make_uint2(0x3F803F80u, 0x3F803F80u);
  fence_proxy_async();
  __syncthreads();
  if (grp == kWsGroups) {  // the producer: lane 0 of its first warp merges the lists, pairs the tiles, issues every copy
    regs_dec<24>();
    if (warp != 4 * kWsGroups || lane != 0) return;
    int ptr[kWsGroups], end[kWsGroups];
#pragma unroll
    for (int w = 0; w < kWsGroups; w++) {
      const int i = blockIdx.x * kWsGroups + w;
      ptr[w] = end[w] = 0;
      if (i < p.nQ) {
        ptr[w] = rp[i], end[w] = rp[i + 1];
        mbar_expect(qbar0 + 8 * w, kTile * sizeof(__nv_bfloat16));
        tma_load(saddr(Qs + w * kTile), &m.q, i * T, (int)bh, qbar0 + 8 * w);
      }
    }
    for (int f = 0;; f++) {
      int c[2], at[2][kWsGroups];
#pragma unroll
      for (int x = 0; x < 2; x++) {  // the next two tiles of the union walk
        int cx = INT_MAX, col[kWsGroups];
#pragma unroll
        for (int w = 0; w < kWsGroups; w++) {
          col[w] = ptr[w] < end[w] ? __ldg(p.col_idx + ptr[w]) : INT_MAX;
          cx = min(cx, col[w]);
        }
#pragma unroll
        for (int w = 0; w < kWsGroups; w++) {
          at[x][w] = cx != INT_MAX && col[w] == cx ? ptr[w] : -1;
          if (at[x][w] >= 0) ptr[w]++;
        }
        c[x] = cx;
      }
      const int st = f % S;
      if (f >= S) mbar_wait(empty0 + 8 * st, (f / S - 1) & 1);
      int* mt = meta + kW2Meta * st;
      if (c[0] == INT_MAX) {
        mt[0] = -1;
        mbar_arrive(full0 + 8 * st);  // releases the meta write to the consumers' acquiring wait
        return;
      }
      mt[0] = c[0];
#pragma unroll
      for (int w = 0; w < kWsGroups; w++) mt[1 + 2 * w] = at[0][w], mt[2 + 2 * w] = at[1][w];
      // bit w: group w lists both tiles and both are plain (its consumers read this, not the layout)
      int plain = 0;
#pragma unroll
      for (int w = 0; w < kWsGroups; w++)
        if (at[0][w] >= 0 && at[1][w] >= 0 && tile_plain(p, at[0][w], kbias) && tile_plain(p, at[1][w], kbias)) plain |= 1 << w;
      mt[7] = plain;
      // the walk's last slot may hold one tile: the second box repeats it, and no group lists it
      const int c1 = c[1] == INT_MAX ? c[0] : c[1];
      mbar_expect(full0 + 8 * st, 4 * kTile * sizeof(__nv_bfloat16));
      tma_load(saddr(Ks + (2 * st) * kTile), &m.k, c[0] * T, (int)bh, full0 + 8 * st);
      tma_load(saddr(Ks + (2 * st + 1) * kTile), &m.k, c1 * T, (int)bh, full0 + 8 * st);
      tma_load(saddr(Vs + (2 * st) * kTile), &m.v, c[0] * T, (int)bh, full0 + 8 * st);
      tma_load(saddr(Vs + (2 * st + 1) * kTile), &m.v, c1 * T, (int)bh, full0 + 8 * st);
    }
  }
  // a consumer warpgroup: query block i, FlashAttention-3's intra-warpgroup overlap over 128-key steps
  regs_inc<160>();
  const int w = grp, i = blockIdx.x * kWsGroups + w;
  const int g = lane >> 2, t = lane & 3, i0 = i * T, rowa = i0 + (warp & 3) * 16 + g;
  const float* kb = kbias ? kbias + b * p.kb_sb + h * p.kb_sh : nullptr;
  const uint32_t qaddr = saddr(Qs + w * kTile), kaddr0 = saddr(Ks), vaddr0 = saddr(Vs), dones = ones_lo(saddr(ones));
  auto off = [](int f, int half) { return (uint32_t)(2 * (f % S) + half) * kTile * 2; };
  if (i < p.nQ) mbar_wait(qbar0 + 8 * w, 0);
  const float sl2 = p.scale * kLog2e;
  float o[8][4], mrow[2] = {-INFINITY, -INFINITY}, corr[2] = {1.0f, 1.0f}, lacc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
  zero(o);
  uint32_t pa[2][4][4];  // P of the deferred PV, both tiles
  int cur = 0, prev = 0;
  bool pending = false;
  auto release = [&](int f) {
    __syncwarp();
    if (lane == 0) mbar_arrive(empty0 + 8 * (f % S));
  };
  auto pv = [&](int f) {  // O += P V over both tiles, and the row sums, one commit group
    issue_pv(o, pa[0], vaddr0 + off(f, 0));
    issue_pv(o, pa[1], vaddr0 + off(f, 1));
#pragma unroll
    for (int x = 0; x < 2; x++)
#pragma unroll
      for (int kk = 0; kk < 4; kk++) wgmma_rs_n8(lacc, pa[x][kk], dones);
    wg_commit();
  };
  auto flush = [&]() {
    pin(o);
    pin4(lacc);
    wg_fence();
    pv(prev);
    wg_wait<0>();
    pin(o);
    pin4(lacc);
    release(prev);
    pending = false;
  };
  // The online-softmax update over 128 columns: raw scores times mul (plain slots) or scores already
  // in log2 units (mul 1; -inf where masked, and a row with nothing yet keeps a zero P).
  auto softmax2 = [&](float(&sa)[8][4], float(&sb)[8][4], auto plain) {
    constexpr bool kPlain = decltype(plain)::value;
    const float mul = kPlain ? sl2 : 1.0f;
#pragma unroll
    for (int hf = 0; hf < 2; hf++) {
      float tr[8];
#pragma unroll
      for (int nt = 0; nt < 8; nt++) tr[nt] = fmaxf(fmaxf(sa[nt][2 * hf], sa[nt][2 * hf + 1]), fmaxf(sb[nt][2 * hf], sb[nt][2 * hf + 1]));
      const float mnew = lazy_max(row_max(tr) * mul, mrow[hf], corr[hf]);
      const float neg = kPlain || mnew != -INFINITY ? -mnew : 0.0f;
#pragma unroll
      for (int nt = 0; nt < 8; nt++) {
        sa[nt][2 * hf] = ex2(fmaf(sa[nt][2 * hf], mul, neg));
        sa[nt][2 * hf + 1] = ex2(fmaf(sa[nt][2 * hf + 1], mul, neg));
        sb[nt][2 * hf] = ex2(fmaf(sb[nt][2 * hf], mul, neg));
        sb[nt][2 * hf + 1] = ex2(fmaf(sb[nt][2 * hf + 1], mul, neg));
      }
      mrow[hf] = mnew;
    }
  };
  // a tile's scores in log2 units, or all -inf when this group does not list it
  auto tile_scores = [&](float(&s)[8][4], int pi) {
    if (pi >= 0) {
      scaled_scores(p, s, kb, pi, i0, rowa, t, sl2);
    } else {
#pragma unroll
      for (int nt = 0; nt < 8; nt++)
#pragma unroll
        for (int e = 0; e < 4; e++) s[nt][e] = -INFINITY;
    }
  };
  for (;; cur++) {
    const int st = cur % S;
    mbar_wait(full0 + 8 * st, (cur / S) & 1);
    const int* mt = meta + kW2Meta * st;
    if (__shfl_sync(0xffffffff, mt[0], 0) < 0) break;
    const int pi0 = __shfl_sync(0xffffffff, mt[1 + 2 * w], 0), pi1 = __shfl_sync(0xffffffff, mt[2 + 2 * w], 0);
    if (pi0 < 0 && pi1 < 0) {  // a slot this group does not list: finish the deferred PV first (ws3's rule)
      if (pending) flush();
      release(cur);
      continue;
    }
    float sa[8][4], sb[8][4];
    if (pending) {  // S of this slot with the deferred PV in flight
      const bool plain = (__shfl_sync(0xffffffff, mt[7], 0) >> w) & 1;
      pin(o);
      pin4(lacc);
      wg_fence();
      issue_s(sa, qaddr, kaddr0 + off(cur, 0));
      issue_s(sb, qaddr, kaddr0 + off(cur, 1));
      wg_commit();
      pv(prev);
      // The rest of the step twice, for plain slots and for the others (as attend_row, so that the
      // two softmax paths do not meet with S in different registers).
      // Partial slots wait for the PV too before building their scores: with P of the previous slot
      // still held, the masks' index math pushed the consumers past their registers (596 bytes of spills).
      auto rest = [&](auto plain_c) {
        if (decltype(plain_c)::value) wg_wait<1>();
        else wg_wait<0>();
        pin(sa);
        pin(sb);
        if (!decltype(plain_c)::value) {
          tile_scores(sa, pi0);
          tile_scores(sb, pi1);
        }
        softmax2(sa, sb, plain_c);
        if (decltype(plain_c)::value) wg_wait<0>();
        pin(o);
        pin4(lacc);
        correct_output<true>(o, lacc, corr);
        pack_p(sa, pa[0]);
        pack_p(sb, pa[1]);
      };
      if (plain) rest(std::integral_constant<bool, true>{});
      else rest(std::integral_constant<bool, false>{});
      release(prev);
    } else {  // the group's first slot, or the first after a flush
      issue_s2_wait(sa, qaddr, kaddr0 + off(cur, 0), sb, qaddr, kaddr0 + off(cur, 1));
      tile_scores(sa, pi0);
      tile_scores(sb, pi1);
      softmax2(sa, sb, std::integral_constant<bool, false>{});
      correct_output<true>(o, lacc, corr);
      pack_p(sa, pa[0]);
      pack_p(sb, pa[1]);
    }
    prev = cur;
    pending = true;
  }
  if (pending) flush();
  const float lsum[2] = {lacc[0], lacc[2]};
  store_rows(p, o, mrow, lsum, out, lse, bh, rowa, t);
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

int g_hopper = -1;  // whether this GPU runs the wgmma kernels
const char* g_last = nullptr;  // the kernel the last bf16 forward ran

using Kernel = void (*)(Args, const __nv_bfloat16*, const __nv_bfloat16*, const __nv_bfloat16*, const float*, float*, float*);
using TmaKernel = void (*)(Args, TmaMaps, const float*, float*, float*);
constexpr size_t kTmaExtra = 1024 + 64;  // the ones tile and the barriers
// a TMA kernel's shared memory: Q, kKS K and kVS V tiles, alignment slack, ones and barriers
constexpr size_t tma_smem(int kKS, int kVS) { return sizeof(__nv_bfloat16) * kTile * (1 + kKS + kVS) + 1024 + kTmaExtra; }
struct Variant {
  const char* name;
  Kernel fn;  // cp.async loads, or, when null, the TMA kernel
  TmaKernel tma;
  size_t smem;
  int rows = 1, threads = 128;  // query blocks and threads per CTA
};
// The library's wgmma forwards, indexed by heuristics.cuh's Bf16Forward (minus one).
// Measured slower and removed (docs/kernels-history.md): 2 warpgroups sharing K/V, several query blocks
// per CTA, persistent grids walking rows with one K/V ring (cp.async; TMA with Q in registers), S from
// Q in registers, the whole ring filled at a row's start; 4 CTAs per SM with the row sums on the
// tensor cores (spills at 128 registers, window -1.5%) and rings of 2 K / 3 V tiles at 3 CTAs per SM
// (the same as 4-deep rings: one tile ahead suffices).
const Variant kForwards[] = {
    {"wgmma-tma-k2v3-c4", nullptr, bsa_fwd_wgmma_tma_k<2, 3, false, 4>, tma_smem(2, 3)},
    {"wgmma-pipe1-s4-tcsum", bsa_fwd_wgmma_pipe_k<4, true>, nullptr, smem_bytes(1, 4) + 1024},
    {"wgmma-ws3-k128", nullptr, bsa_fwd_wgmma_ws3k128_k, kW2Smem, kWsGroups, kWsThreads},
};
#ifdef TR_KERNEL_EXPERIMENTS
// Built only into kernels/cuda/check (run.sh defines TR_KERNEL_EXPERIMENTS): the runners-up of the
// choices above, kept so that a new GPU or compiler can re-measure them.
const Variant kExperiments[] = {
    {"wgmma-tma-s4-tcsum", nullptr, bsa_fwd_wgmma_tma_k<4, 4, true, 3>, tma_smem(4, 4)},
    {"wgmma-tma-s4", nullptr, bsa_fwd_wgmma_tma_k<4, 4, false, 3>, tma_smem(4, 4)},
    {"wgmma-pipe1-s4", bsa_fwd_wgmma_pipe_k<4, false>, nullptr, smem_bytes(1, 4)},
};
int g_forced = -1;  // check program only: -1 the heuristics, 0 mma.sync, 1.. kForwards then kExperiments
constexpr int kNumForwards = sizeof(kForwards) / sizeof(kForwards[0]);
#endif

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
  auto allow = [](const Variant& v) {
    TR_CUDA(cudaFuncSetAttribute(v.fn ? (const void*)v.fn : (const void*)v.tma, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)v.smem));
  };
  if (h == 1) {
    for (const Variant& v : kForwards) allow(v);
#ifdef TR_KERNEL_EXPERIMENTS
    for (const Variant& v : kExperiments) allow(v);
#endif
  }
  g_hopper = h == 1 && !has_error() ? 1 : 0;
  return g_hopper == 1;
}

// Launches v; false when it needs tensor maps that could not be made.
bool launch(const Variant& v, const Args& p, int B, const __nv_bfloat16* q, const __nv_bfloat16* k, const __nv_bfloat16* v_, const float* kb,
            float* out, float* lse, const TmaMaps* maps) {
  const dim3 grid((p.nQ + v.rows - 1) / v.rows, p.H, B);
  if (v.tma) {
    if (!maps) return false;
    v.tma<<<grid, v.threads, v.smem, stream()>>>(p, *maps, kb, out, lse);
  } else {
    v.fn<<<grid, v.threads, v.smem, stream()>>>(p, q, k, v_, kb, out, lse);
  }
  TR_LAUNCHED("bsa_fwd_wgmma");
  g_last = v.name;
  return true;
}
}  // namespace

namespace tr {
namespace tc {
bool hopper_available() { return hopper_ready(); }

bool hopper_bsa_fwd_bf16(const Args& p, int B, const __nv_bfloat16* q, const __nv_bfloat16* k, const __nv_bfloat16* v, const float* kb,
                         float* out, float* lse, int64_t nnz) {
  const bool wgmma = hopper_ready();
  TmaMaps m;
  const int64_t BH = (int64_t)B * p.H;
  const bool maps = wgmma && tensor_map(&m.q, q, BH, p.Lq) && tensor_map(&m.k, k, BH, p.Lk) && tensor_map(&m.v, v, BH, p.Lk);
#ifdef TR_KERNEL_EXPERIMENTS
  if (g_forced >= 0) {
    if (g_forced == 0) return g_last = "mma.sync", false;
    if (!wgmma) return set_error("tr_bsa_fwd_bf16", __FILE__, __LINE__, "the wgmma kernels need an sm_90 GPU and a build with sm_90a"), true;
    const Variant& x = g_forced <= kNumForwards ? kForwards[g_forced - 1] : kExperiments[g_forced - 1 - kNumForwards];
    if (!launch(x, p, B, q, k, v, kb, out, lse, maps ? &m : nullptr))
      set_error("tr_bsa_fwd_bf16", __FILE__, __LINE__, "cuTensorMapEncodeTiled failed (or the driver lacks it)");
    return true;
  }
#endif
  const Bf16Forward pick = pick_bf16_forward(wgmma, maps, nnz, p.LH, p.nQ);
  if (pick == Bf16Forward::MmaSync) return g_last = "mma.sync", false;
  launch(kForwards[(int)pick - 1], p, B, q, k, v, kb, out, lse, maps ? &m : nullptr);
  return true;
}

// tr_info's description of the rule.
const char* bf16_forward_rule() {
  static char rule[160];
  if (!hopper_ready()) return "mma.sync";
  std::snprintf(rule, sizeof rule, "%s (%s without TMA), %s from %d tiles per row", kForwards[0].name, kForwards[1].name, kForwards[2].name,
                kLongRowTiles);
  return rule;
}
}  // namespace tc

#ifdef TR_KERNEL_EXPERIMENTS
namespace experiments {
int bf16_forward_count() { return 1 + kNumForwards + (int)(sizeof(kExperiments) / sizeof(kExperiments[0])); }
const char* bf16_forward_name(int i) {
  if (i == 0) return "mma.sync";
  return i <= kNumForwards ? kForwards[i - 1].name : kExperiments[i - 1 - kNumForwards].name;
}
void force_bf16_forward(int i) { g_forced = i; }
}  // namespace experiments
#endif
}  // namespace tr

// The kernel the last bf16 forward ran (recorded with each kernels-suite result).
TR_API const char* tr_bsa_last_fwd_kernel() { return g_last ? g_last : ""; }

TR_API int tr_bsa_wgmma_available() { return tr::tc::hopper_available() ? 1 : 0; }
