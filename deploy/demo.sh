#!/usr/bin/env bash
# The main job, end to end on one machine: installs what is missing, builds,
# starts vfio-migd on the bundled sim devices, lists them, and shows a
# migration plan for a P2P group and for a group that is blocked.
set -euo pipefail
cd "$(dirname "$0")/.."

bash deploy/install-deps.sh
cmake -G Ninja -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
ninja -C build vfio-migd vfio-migctl

run=$(mktemp -d /tmp/vfio-migd-demo.XXXXXX)
sock="unix:$run/vfio-migd.sock"
build/daemon/vfio-migd --listen "$sock" --backend sim \
  --sim-config deploy/sim/source.json --log-level info 2>"$run/vfio-migd.log" &
migd=$!
cleanup() {
  kill -TERM "$migd" 2>/dev/null || true
  wait "$migd" 2>/dev/null || true
  rm -rf "$run"
}
trap cleanup EXIT

ctl() { build/client/vfio-migctl --server "$sock" "$@"; }
for _ in $(seq 100); do
  ctl devices >/dev/null 2>&1 && break
  kill -0 "$migd" 2>/dev/null || { cat "$run/vfio-migd.log"; exit 1; }
  sleep 0.1
done

step() { printf '\n\033[1m$ vfio-migctl %s\033[0m\n' "$*"; }
step fsm path --features stop_copy,p2p,pre_copy RUNNING STOP_COPY
build/client/vfio-migctl fsm path --features stop_copy,p2p,pre_copy \
  RUNNING STOP_COPY
step devices
ctl devices
step plan --devices gpu0,gpu1,nic0
ctl plan --devices gpu0,gpu1,nic0
step plan --devices gpu0,nic0,accel0
ctl plan --devices gpu0,nic0,accel0 || true
echo
echo "daemon log:"
sed 's/^/  /' "$run/vfio-migd.log"
