// wgmma building blocks shared by the Hopper (sm_90a) attention kernels (attention_hopper.cu forward,
// attention_hopper_bwd.cu backward): shared-memory matrix descriptors for the 128-byte-swizzled
// 64 x 64 bf16 tiles of attention_tc.cuh, the m64n64k16 products (both operands in shared memory;
// A in registers with B transposed), fences, commits, waits. Every body is empty below sm_90a.
#pragma once
#include "attention_tc.cuh"

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define TR_WGMMA 1
#endif

namespace tr {
namespace tc {
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
// D (64 x 64) = A B^T over the 64-wide inner dim, A and B K-major tiles in shared memory, 4 k-steps of
// 16: S = Q K^T; the backward's dO V^T, K Q^T and V dO^T.
__device__ __forceinline__ void issue_s(float (&s)[8][4], uint32_t qaddr, uint32_t kaddr) {
  const uint32_t dq = desc_lo(qaddr), dk = desc_lo(kaddr);
#pragma unroll
  for (int kk = 0; kk < 4; kk++) wgmma_ss(s, dq + kk * (32 >> 4), dk + kk * (32 >> 4), kk);  // k-steps: 32 bytes
}
// Two products of issue_s's shape in one commit group, waited for: S and dP (the backward's dQ
// pass, and transposed in its dK/dV pass), or two key tiles' S (the 128-key forward's first step).
__device__ __forceinline__ void issue_s2_wait(float (&d1)[8][4], uint32_t a1, uint32_t b1, float (&d2)[8][4], uint32_t a2, uint32_t b2) {
  wg_fence();
  issue_s(d1, a1, b1);
  issue_s(d2, a2, b2);
  wg_commit();
  wg_wait<0>();
  pin(d1);
  pin(d2);
}
// D += A B over 64 inner rows: A from registers (pack_p's layout), B (inner x 64) from shared memory
// through the descriptor's transpose: O += P V; the backward's dQ += dS K, dV += P^T dO, dK += dS^T Q.
__device__ __forceinline__ void issue_pv(float (&o)[8][4], const uint32_t (&pa)[4][4], uint32_t vaddr) {
  const uint32_t dv = desc_lo(vaddr);
#pragma unroll
  for (int kk = 0; kk < 4; kk++) wgmma_rs_t(o, pa[kk], dv + kk * (16 * 128 >> 4));  // k-steps: 16 key rows
}
}  // namespace tc
}  // namespace tr
