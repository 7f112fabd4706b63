#!/bin/bash
# One device call: unpack node, build both libraries inside the offline bundle, then run the steps
# named in $STEPS (test, kernels, anchors, check[:args], suite:<name>:<filter>, pretrain, bg:<suite>:<filter>:<tag>). Logs and reports go
# to $OUT (SAVE=1: bg suites save their trained models to $OUT/models-<tag>). Usage on the device: STEPS="test kernels" bash scripts/device/run.sh
set -u
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT" /tmp/res
xz -dc .gpu/node.xz > /tmp/node && chmod +x /tmp/node && export PATH=/tmp:$PATH
B=dist/tabrecall
export TABRECALL_GIT_SHA=$(node -e "console.log(require('./$B/package.json').gitSha)")
# PREBUILT_CUDA=1: the carried bundle holds cuda/build/libtabrecall_cuda.so, built elsewhere with the same nvcc (saves ~40 s of device time)
( [ -n "${SKIP_NATIVE:-}" ] || node $B/native/build.mjs; [ -n "${PREBUILT_CUDA:-}" ] && [ -f $B/cuda/build/libtabrecall_cuda.so ] && echo "cuda: prebuilt library" || node $B/cuda/build.mjs --strict) 2>&1 | tail -5 | tee "$OUT/build.log"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm,temperature.gpu,utilization.gpu --format=csv | tee -a "$OUT/build.log"
# Training runs started as bg steps share the GPU: their step times say so (metrics.trainStep.concurrentRuns).
export TABRECALL_CONCURRENT_RUNS=$(for s in ${STEPS:-test}; do case $s in bg:*) echo x;; esac; done | wc -l)
for s in ${STEPS:-test}; do
  case $s in
    test|test:*) a=${s#test}; a=${a#:}; timeout ${T_TEST:-300} node $B/bin/test-gpu.mjs ${a//,/ } > "$OUT/test-gpu.log" 2>&1; echo "test-gpu exit $?"; tail -4 "$OUT/test-gpu.log";;
    kernels) timeout ${T_KERNELS:-400} node $B/bin/bench.mjs --suite kernels-gpu --backend cuda --out /tmp/res/kernels-gpu ${KFILTER:+--filter "$KFILTER"} > "$OUT/kernels.log" 2>&1; echo "kernels exit $?"; tail -25 "$OUT/kernels.log"; cp /tmp/res/kernels-gpu/report.json "$OUT/kernels-gpu.json" 2>/dev/null;;
    check|check:*) a=${s#check}; a=${a#:}; OUT=/tmp timeout ${T_CHECK:-240} bash kernels/cuda/check/run.sh $a > "$OUT/check$a.log" 2>&1; echo "check $a exit $?"; grep -E "FAIL|checks|registers|spill| ok$" "$OUT/check$a.log" | tail -40; sed -n '/^layout/,$p' "$OUT/check$a.log";;
    anchors) PYTHONUNBUFFERED=1 timeout ${T_ANCHORS:-300} python3 scripts/device/anchors.py ${ALENGTHS:-1024,4096,16384} "$OUT/anchors.json" > "$OUT/anchors.log" 2>&1; echo "anchors exit $?"; tail -12 "$OUT/anchors.log";;
    suite:*) IFS=: read -r _ name filter <<< "$s"; timeout ${T_SUITE:-400} node $B/bin/bench.mjs --suite "$name" --backend cuda --resume --out /tmp/res/$name ${filter:+--filter "$filter"} > "$OUT/$name.log" 2>&1; echo "suite $name exit $?"; tail -30 "$OUT/$name.log"; cp /tmp/res/$name/report.json "$OUT/$name.json" 2>/dev/null;;
    pretrain) # concurrent ICL pretraining runs sharing the GPU (each is bound by its own JS thread):
      # RUNS="tag1|args1;tag2|args2" (pretrain flags), UNTIL=<epoch seconds> when to stop them. A run
      # resumes from carried/<tag>.tar when the call carries one; its checkpoint returns as $OUT/<tag>.tar.
      left=$(( ${UNTIL:?UNTIL: epoch seconds} - $(date +%s) )); echo "pretrain: ${left}s for training"
      IFS=';' read -ra runs <<< "${RUNS:?RUNS: tag|args;...}"; pids=()
      for r in "${runs[@]}"; do
        tag=${r%%|*}; args=${r#*|}
        (
          mkdir -p /tmp/pt/$tag; resume=""
          if [ -f carried/$tag.tar ]; then tar -xf carried/$tag.tar -C /tmp/pt/$tag; resume=--resume; fi
          eval "timeout $left node $B/bin/pretrain.mjs --model orion-msp --backend cuda --out /tmp/pt/$tag $resume $args" > "$OUT/$tag.log" 2>&1
          echo "$tag exit $?"; grep "step" "$OUT/$tag.log" | tail -2
          tar -cf "$OUT/$tag.tar" -C /tmp/pt/$tag .
        ) &
        pids+=($!)
      done
      wait "${pids[@]}";;
    bg:*) # bg:<suite>:<filter>:<tag>: runs beside the other bg steps (they share the GPU); report only
      IFS=: read -r _ name filter tag <<< "$s"
      (timeout ${T_SUITE:-400} node $B/bin/bench.mjs --suite "$name" --backend cuda --out /tmp/res/$name-$tag --filter "$filter" ${SAVE:+--save-models $OUT/models-$tag} > /tmp/res/$name-$tag.log 2>&1; echo "bg $tag exit $?"; grep -E "done:" /tmp/res/$name-$tag.log; cp /tmp/res/$name-$tag/report.json "$OUT/$name-$tag.json" 2>/dev/null) &;;
  esac
done
wait
