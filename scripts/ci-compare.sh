#!/usr/bin/env bash
# The regression check's steps (docs/ci/tabrecall-regression.yml runs them on a CI runner; any CI
# can call them the same way):
#   ci-compare.sh base REF SUITE OUT    bench REF (checked out in a worktree) into OUT/base
#   ci-compare.sh head REF SUITE OUT    bench this checkout into OUT/head (REF is informational)
#   ci-compare.sh compare - SUITE OUT [COMPARE FLAGS...]
#                                       npm run compare OUT/base OUT/head, saved to OUT/compare.txt
# Both benches run on the same machine one after the other, so their latencies are comparable.
# A worktree whose package-lock.json equals this checkout's reuses its node_modules (and rebuilds
# the native library from the worktree's own sources).
set -euo pipefail
step=$1 ref=$2 suite=$3 out=$4
shift 4
root=$(pwd)
mkdir -p "$out"
case "$step" in
  base)
    wt="$out/worktree"
    rm -rf "$wt"; git worktree prune
    git worktree add --detach "$wt" "$ref" >/dev/null
    # A suite file given by path: use this checkout's copy, so both sides run the same suite.
    [ -f "$suite" ] && suite=$(cd "$(dirname "$suite")" && pwd)/$(basename "$suite")
    (
      cd "$wt"
      if cmp -s package-lock.json "$root/package-lock.json" && [ -d "$root/node_modules" ]; then
        ln -s "$root/node_modules" node_modules
        npm run -s build:native >/dev/null
      else
        npm ci >/dev/null
      fi
      npm run -s bench -- --suite "$suite" --out "$out/base"
    )
    git worktree remove --force "$wt"
    ;;
  head)
    npm run -s bench -- --suite "$suite" --out "$out/head"
    ;;
  compare)
    set +e
    npm run -s compare -- "$out/base/report.json" "$out/head/report.json" "$@" | tee "$out/compare.txt"
    code=${PIPESTATUS[0]}
    exit "$code"
    ;;
  *) echo "ci-compare.sh: step must be base, head or compare, got $step" >&2; exit 2 ;;
esac
