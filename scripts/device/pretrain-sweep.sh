#!/bin/bash
# One device call: concurrent ICL pretraining runs on one GPU (each is launch-bound on its own CPU
# thread, so several share the GPU well). Usage on the device, after scripts/device/run.sh set it up:
#   RUNS="tag1|args1;tag2|args2" UNTIL=<epoch seconds> bash scripts/device/pretrain-sweep.sh
# Each run resumes from carried/<tag>.tar when present; its checkpoint comes back as $OUT/<tag>.tar.
set -u
OUT=${OUT:-/tmp/out}
export PATH=/tmp:$PATH
B=dist/tabrecall
export TABRECALL_GIT_SHA=$(node -e "console.log(require('./$B/package.json').gitSha)")
left=$(( ${UNTIL} - $(date +%s) ))
echo "pretrain-sweep: ${left}s for training"
nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv -l 20 > "$OUT/smi.log" 2>&1 &
smi=$!
IFS=';' read -ra runs <<< "$RUNS"
pids=()
for r in "${runs[@]}"; do
  tag=${r%%|*}; args=${r#*|}
  (
    mkdir -p /tmp/pt/$tag
    resume=""
    if [ -f carried/$tag.tar ]; then tar -xf carried/$tag.tar -C /tmp/pt/$tag; resume=--resume; fi
    eval "timeout $left node $B/bin/pretrain.mjs --model orion-msp --backend cuda --out /tmp/pt/$tag $resume $args" > "$OUT/$tag.log" 2>&1
    echo "$tag exit $?"; grep "pretrain \[\|step" "$OUT/$tag.log" | tail -2
    tar -cf "$OUT/$tag.tar" -C /tmp/pt/$tag .
  ) &
  pids+=($!)
done
wait "${pids[@]}"
kill $smi 2>/dev/null
