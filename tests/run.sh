#!/usr/bin/env bash
# The test command: installs what is missing (Debian 12, as root), builds,
# runs every test with ctest and the benchmark suite's quick mode, then
# builds and runs the unit tests again under AddressSanitizer +
# UndefinedBehaviorSanitizer, the engine's concurrency tests under
# ThreadSanitizer, and each fuzz target briefly.
set -euo pipefail
cd "$(dirname "$0")/.."

bash deploy/install-deps.sh

jobs=$(nproc)
echo "== build (RelWithDebInfo) =="
cmake -G Ninja -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
ninja -C build
echo "== all tests =="
ctest --test-dir build --output-on-failure -j "$jobs"

# Once, alone, so that it cannot rot: the benchmark suite's quick mode
# (about a minute; it fails only when a measured migration fails).
echo "== benchmark (quick) =="
bash tests/bench/run.sh --quick --build-dir build

echo "== VM test: real kernel VFIO devices (mtty) under QEMU =="
bash tests/vm/run.sh build

echo "== unit tests under ASan+UBSan =="
cmake -G Ninja -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug \
  -DVFIOMIG_SANITIZE=address,undefined >/dev/null
ninja -C build-asan
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
LSAN_OPTIONS="suppressions=$PWD/tests/asan/lsan.supp:print_suppressions=0" \
UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan -L unit --output-on-failure -j "$jobs"

# The engine's concurrency tests under ThreadSanitizer (ctest label `tsan`
# in this build): the executor and its device workers (engine_test), the
# sim devices' threads (sim_test), and the source and destination sessions
# with their streams, timers and watchers (migration_test). Only those
# targets are built. Debian's Abseil, gRPC and protobuf are not
# TSan-instrumented: tests/tsan/ says how the run copes, and its canary
# proves that a race in our code is still reported.
echo "== engine concurrency tests under ThreadSanitizer =="
cmake -G Ninja -S . -B build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DVFIOMIG_SANITIZE=thread >/dev/null
ninja -C build-tsan engine_test sim_test migration_test tsan_race_canary \
  tsan_await_condition
TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
  ctest --test-dir build-tsan -L tsan --output-on-failure -j "$jobs"

# libFuzzer targets of every parser of outside input (tests/fuzz): built
# alone with clang, then each runs briefly from its committed corpus. New
# inputs go to a scratch directory; a crash fails the run and leaves its
# input in build-fuzz/artifacts.
fuzz_seconds=${VFIOMIG_FUZZ_SECONDS:-30}
echo "== fuzz targets, ${fuzz_seconds}s each =="
cmake -G Ninja -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_COMPILER=clang++-14 -DVFIOMIG_FUZZ=ON >/dev/null
ninja -C build-fuzz fuzz_targets
mkdir -p build-fuzz/artifacts
for corpus in tests/fuzz/corpus/*/; do
  name=$(basename "$corpus")
  scratch=$(mktemp -d)
  seeds=("$corpus")
  [[ -d tests/fuzz/regressions/$name ]] && seeds+=("tests/fuzz/regressions/$name")
  log=build-fuzz/artifacts/$name.log
  if ! "build-fuzz/tests/fuzz/${name}_fuzz" -max_total_time="$fuzz_seconds" \
      -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
      -artifact_prefix="build-fuzz/artifacts/$name-" \
      "$scratch" "${seeds[@]}" >"$log" 2>&1; then
    tail -n 60 "$log"
    echo "fuzz target $name FAILED (input in build-fuzz/artifacts/)"
    exit 1
  fi
  echo "fuzz $name: $(grep -m1 -o 'stat::number_of_executed_units: *[0-9]*' \
    "$log" | grep -o '[0-9]*$') runs in ${fuzz_seconds}s, no crash"
  rm -rf "$scratch"
done
