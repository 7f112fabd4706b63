#!/bin/bash
# Builds and runs bsa_fwd_check (the bf16 forwards without Node or cuBLAS) on a GPU machine:
#   bash kernels/cuda/check/run.sh [--time-only | --check-only | --backward] [--only dense:4096] [--kernel NAME] [--reps N] [--band]
# The build defines TR_KERNEL_EXPERIMENTS: the library's sources then also carry the runners-up of its
# kernel choices (experiments.h), which the library itself never contains.
# Extra nvcc flags through NVFLAGS (e.g. "-lineinfo"); WRAP runs the program under a tool, e.g.
# WRAP="compute-sanitizer --tool racecheck" bash kernels/cuda/check/run.sh --check-only.
# Prints the resource report of the kernels too.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=${OUT:-/tmp}/bsa_fwd_check
nvcc -std=c++17 -O3 -DTR_KERNEL_EXPERIMENTS -gencode arch=compute_80,code=sm_80 -gencode arch=compute_90a,code=sm_90a -Xptxas -v ${NVFLAGS:-} \
  "$here/bsa_fwd_check.cu" "$here/../src/runtime.cu" "$here/../src/attention_tc.cu" "$here/../src/attention_hopper.cu" \
  "$here/../src/attention.cu" "$here/../src/attention_tc_bwd.cu" "$here/../src/attention_hopper_bwd.cu" -o "$out" 2> "$out.ptxas.log" \
  || { cat "$out.ptxas.log"; exit 1; }
grep -A2 "bsa_fwd_.*_k" "$out.ptxas.log" | grep -E "registers|spill" | head -6
${WRAP:-} "$out" "$@"
