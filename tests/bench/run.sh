#!/usr/bin/env bash
# The benchmark suite: builds what it needs, then measures vfio-migd against
# same-run baselines (tests/bench/bench.py says what and how) and writes
# results.json, whose path it prints last.
#
#   tests/bench/run.sh [--quick] [--repeat N] [--out DIR] [--build-dir DIR]
#
# --quick (small sizes, one run, about a minute) is what tests/run.sh runs,
# so the suite cannot rot; the full run takes a few minutes and keeps both
# cores busy: run it when the machine is otherwise quiet.
set -euo pipefail
cd "$(dirname "$0")/../.."

build=build
args=()
while (($#)); do
  case "$1" in
    --build-dir) build="$2"; shift 2 ;;
    *) args+=("$1"); shift ;;
  esac
done

if [[ ! -f "$build/CMakeCache.txt" ]]; then
  cmake -G Ninja -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
fi
ninja -C "$build" vfio-migd vfio-migctl vfiomig_bench >/dev/null
exec /usr/bin/python3 tests/bench/bench.py --build-dir "$build" "${args[@]}"
