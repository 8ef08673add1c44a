#!/usr/bin/env bash
# Installs what building and testing vfio-migd needs on Debian 12, as root.
# Idempotent: packages already present are not fetched again.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libspdlog-dev libfmt-dev libabsl-dev libgtest-dev libgmock-dev
  nlohmann-json3-dev libcli11-dev libxxhash-dev libtomlplusplus-dev
  libsqlite3-dev
  # sd_notify and the journal (libsystemd); systemd-analyze, journald and
  # unshare for tests/deploy.
  libsystemd-dev systemd util-linux
  # cmake --install, cpack's .deb (dpkg-shlibdeps, file) and the man page
  # and completion tests (tests/deploy).
  dpkg-dev file man-db groff-base bash
  # Prometheus metrics: prometheus-cpp (registry, text format) and
  # cpp-httplib (listener); promtool (from prometheus) and the Python
  # client's parser check the format in tests/integration/metrics_test.py.
  prometheus-cpp-dev libcpp-httplib-dev prometheus python3-prometheus-client
  python3-grpcio python3-grpc-tools python3-protobuf
  # tests/vm (a real kernel with mtty under QEMU; the kernel packages
  # themselves are fetched by tests/vm/run.sh with apt-get download)
  qemu-system-x86 busybox-static dwarves cpio xz-utils
  libxml2-dev
  # Tests: the libvirt hook under a real libvirtd (no libvirt-daemon-system:
  # no service is started); qemu-system-x86 above also serves the qmp tests.
  libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients
  # Mutual TLS: OpenSSL checks the TLS files; openssl makes test certificates
  # (deploy/make-test-certs.sh).
  libssl-dev openssl
  # libFuzzer targets (tests/fuzz): clang 14 and its runtimes (libFuzzer,
  # ASan, UBSan live in libclang-rt-14-dev).
  clang-14 libclang-rt-14-dev
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
    || missing+=("$p")
done

if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
echo "install-deps: all build and test packages present"
