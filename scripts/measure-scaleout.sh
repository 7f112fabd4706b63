#!/usr/bin/env bash
# Queue-mode speed-up on this machine: the same slice of the standard suite through a local Redis
# with 1, 2 and 4 workers (each a separate `npm run worker` process, as separate machines would be).
# The standard suite's runs take 10-30 min each (hours in all), so the slice caps every run's
# training at MAX_STEPS steps: same models, sizes, data and evaluation, shorter training.
#   FILTER (default "L64 kv4 V8192"), MAX_STEPS (default 100), WORKERS (default "1 2 4")
# Threads: cores / workers per run (at least 1), so the workers together never oversubscribe the cores.
# Prints one line per worker count: wall time, speed-up over one worker, summed run time.
set -euo pipefail
cd "$(dirname "$0")/.."
FILTER=${FILTER:-"L64 kv4 V8192"}
MAX_STEPS=${MAX_STEPS:-100}
WORKERS=${WORKERS:-"1 2 4"}
work=$(mktemp -d)
port=$(node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")
redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no >"$work/redis.log" 2>&1 &
redis=$!
trap 'kill $redis 2>/dev/null' EXIT
echo "logs and reports: $work" >&2
sleep 0.5
node -e "
const s = JSON.parse(require('fs').readFileSync('suites/standard.json', 'utf8'));
s.name = 'standard-capped';
for (const e of s.entries) e.train = { ...e.train, maxSteps: Math.min(e.train.maxSteps ?? Infinity, $MAX_STEPS) };
require('fs').writeFileSync('$work/standard-capped.json', JSON.stringify(s));
"
cores=$(nproc)
base=""
echo "slice: standard runs matching \"$FILTER\", training capped at $MAX_STEPS steps; $cores cores; $(git rev-parse --short HEAD)"
db=0
for n in $WORKERS; do
  db=$((db + 1))
  url="redis://127.0.0.1:$port/$db"
  threads=$(( cores / n )); (( threads < 1 )) && threads=1
  npx tsx scripts/bench.ts --suite "$work/standard-capped.json" --filter "$FILTER" --backend native --queue "$url" --detach >/dev/null 2>"$work/submit.log" || { cat "$work/submit.log"; exit 1; }
  t0=$(date +%s.%N)
  pids=()
  for ((w = 0; w < n; w++)); do
    TABRECALL_THREADS=$threads npx tsx scripts/worker.ts --queue "$url" --idle-exit 1 2>"$work/worker-$n-$w.log" &
    pids+=($!)
  done
  npx tsx scripts/bench.ts --suite "$work/standard-capped.json" --filter "$FILTER" --backend native --queue "$url" --collect --out "$work/out-$n" >"$work/collect-$n.log" 2>&1 || { echo "collect with $n worker(s) failed (exit $?):"; tail -5 "$work/collect-$n.log"; kill "${pids[@]}" 2>/dev/null; exit 1; }
  t1=$(date +%s.%N)
  wait "${pids[@]}"
  wall=$(node -e "console.log(($t1 - $t0).toFixed(1))")
  [ -z "$base" ] && base=$wall
  node -e "
const r = require('$work/out-$n/report.json');
const sum = r.records.reduce((s, x) => s + x.wallTimeSeconds, 0);
const hosts = new Set(r.records.map((x) => x.fingerprint.backendInfo.queueWorker)).size;
console.log('$n worker(s), $threads thread(s) each: ' + r.records.length + ' runs in $wall s, speed-up ' + ($base / $wall).toFixed(2) + 'x; runs summed ' + sum.toFixed(1) + ' s; ' + hosts + ' worker(s) ran them');
"
done
