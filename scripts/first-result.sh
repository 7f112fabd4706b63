#!/usr/bin/env bash
# The "first result in 10 minutes" benchmark: a fresh clone of this repository's HEAD in a temp
# folder, then the README's main command, timed as a whole and per part. Writes
# results/first-result.json (seconds, git sha, cores) and prints it. A benchmark, not a test: it
# reports the time, it does not assert it.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
sha=$(git -C "$root" rev-parse HEAD)
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
git clone -q "$root" "$dir/tabrecall"
cd "$dir/tabrecall"
t0=$(date +%s.%N)
bash scripts/setup.sh >/dev/null
t1=$(date +%s.%N)
npm ci >/dev/null 2>&1
t2=$(date +%s.%N)
npm run -s bench > bench.out 2> bench.err
t3=$(date +%s.%N)
mkdir -p "$root/results"
node -e '
const [sha, t0, t1, t2, t3] = process.argv.slice(1);
const s = (a, b) => +(Number(b) - Number(a)).toFixed(1);
const suites = [...require("fs").readFileSync("bench.out", "utf8").matchAll(/suite (\S+) on \S+: \d+ \S+ in ([\d.]+) s/g)].map((m) => ({ suite: m[1], seconds: Number(m[2]) }));
const r = { gitSha: sha, cores: require("os").cpus().length, cpu: require("os").cpus()[0].model, setupSeconds: s(t0, t1), npmCiSeconds: s(t1, t2), benchSeconds: s(t2, t3), totalSeconds: s(t0, t3), suites, measuredAt: new Date().toISOString() };
require("fs").writeFileSync(process.argv[6], JSON.stringify(r, null, 1));
console.log(JSON.stringify(r, null, 1));
' "$sha" "$t0" "$t1" "$t2" "$t3" "$root/results/first-result.json"
