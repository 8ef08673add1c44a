#!/usr/bin/env bash
# The test command: installs what is missing (Debian 12, as root), builds,
# runs every test with ctest and the benchmark suite's quick mode, then
# builds and runs the unit tests again under AddressSanitizer +
# UndefinedBehaviorSanitizer.
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
UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan -L unit --output-on-failure -j "$jobs"
