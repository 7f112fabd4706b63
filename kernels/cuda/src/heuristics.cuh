// Which kernel runs, per precision: the one place where a shape or a GPU picks among the operator's
// kernels (the part FlashAttention-3's heuristics.h plays). Which precision runs is decided before any
// of this, in TypeScript (kernels/precision.ts); the C functions do what they are told or fail.
//   fp32: one forward (attention.cu), one pair of backward passes.
//   tf32: one forward (attention_tc.cu), one pair of backward passes (attention_tc_bwd.cu).
//   bf16: the forward below; the backward is the wgmma pair (attention_hopper_bwd.cu), sm_90a only.
// Kernels kept only to re-measure these choices build into kernels/cuda/check, not into the library.
#pragma once
#include <cstdint>

namespace tr {
namespace tc {
enum class Bf16Forward : int {
  MmaSync = 0,       // any sm_80+ GPU: mma.sync m16n8k16 (attention_tc.cu)
  WgmmaTma = 1,      // sm_90a: wgmma, TMA loads, 4 CTAs per SM (short rows)
  WgmmaCpAsync = 2,  // sm_90a: the same on cp.async, where no TMA descriptor can be made
  WgmmaLongRows = 3, // sm_90a: 128-key steps shared by three query blocks (long rows)
};

// Rows of this many listed tiles and more go to the 128-key kernel: it wins on long rows and loses on
// short ones (H200, docs/kernels-history.md: dense at 64 and 256 tiles per row +0-5% over the 4-CTA
// kernel; window's 9 and BigBird's ~14 tiles per row -25%).
constexpr int kLongRowTiles = 32;

// wgmma: this GPU and build run sm_90a code; tensor_maps: TMA descriptors could be made for q, k, v;
// listed: the layout's listed blocks over its LH heads of nQ query-block rows.
inline Bf16Forward pick_bf16_forward(bool wgmma, bool tensor_maps, int64_t listed, int LH, int nQ) {
  if (!wgmma) return Bf16Forward::MmaSync;
  if (!tensor_maps) return Bf16Forward::WgmmaCpAsync;
  return listed >= (int64_t)kLongRowTiles * LH * nQ ? Bf16Forward::WgmmaLongRows : Bf16Forward::WgmmaTma;
}
}  // namespace tc
}  // namespace tr
