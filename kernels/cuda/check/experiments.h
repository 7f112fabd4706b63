// Hooks that exist only in a build with TR_KERNEL_EXPERIMENTS (run.sh): every bf16 forward the check
// program can force, the library's own (heuristics.cuh) and the runners-up kept for re-measurement.
// The library's C ABI has none of this.
#pragma once
namespace tr {
namespace experiments {
int bf16_forward_count();  // 0 is mma.sync, then the library's wgmma forwards, then the experiments
const char* bf16_forward_name(int i);
void force_bf16_forward(int i);  // -1: back to the heuristics
}  // namespace experiments
}  // namespace tr
