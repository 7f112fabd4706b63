#!/usr/bin/env bash
# The system packages tabrecall needs, installed where this user can (root, or sudo without a
# password), else named with the command to install them. Debian/Ubuntu names:
#   g++ (the native backend), libopenblas-dev + pkg-config (its BLAS; without it a built-in GEMM
#   runs and numbers differ from reports made with OpenBLAS: the fingerprint's backendInfo.blas
#   says which), chromium (the leaderboard's headless-browser test), libxgboost-dev (the XGBoost
#   baseline of the tabular suites; without it those cases are skipped with one line), redis-server
#   (bench --queue's tests start a real one; a sweep farm needs one Redis somewhere, not on every worker).
# Idempotent: installs nothing when everything is there. `--check` only reports.
set -euo pipefail
need=()
command -v g++ >/dev/null || need+=(g++)
command -v pkg-config >/dev/null && pkg-config --exists openblas 2>/dev/null || need+=(libopenblas-dev pkg-config)
[ -x "${CHROMIUM_PATH:-/usr/bin/chromium}" ] || need+=(chromium)
compgen -G '/usr/lib/*/libxgboost.so' >/dev/null || compgen -G '/usr/*lib/libxgboost.so' >/dev/null || [ -n "${TABRECALL_XGBOOST_LIB:-}" ] || need+=(libxgboost-dev)
command -v redis-server >/dev/null || need+=(redis-server)
if ((${#need[@]} == 0)); then
  echo "setup: system packages present (g++, OpenBLAS, Chromium, libxgboost, redis-server)"
  exit 0
fi
if [ "${1:-}" = "--check" ]; then
  echo "setup: missing ${need[*]}"
  exit 1
fi
if [ "$(id -u)" = 0 ]; then sudo=(); elif sudo -n true 2>/dev/null; then sudo=(sudo -n); else
  echo "setup: missing ${need[*]}; install them with: sudo apt-get install -y ${need[*]}" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null; then
  echo "setup: missing ${need[*]} and no apt-get here; install the equivalents with your package manager" >&2
  exit 1
fi
echo "setup: installing ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
echo "setup: done"
