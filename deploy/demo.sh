#!/usr/bin/env bash
# The main job, end to end on one machine: installs what is missing, builds,
# starts two vfio-migd daemons (a source and a destination host) on the
# bundled sim devices, lists the devices on both, shows the migration plan
# for a P2P group and for a group that is blocked, live-migrates the P2P
# group with pre-copy, and checks that every destination device now holds
# exactly the state its source device had when it stopped.
set -euo pipefail
cd "$(dirname "$0")/.."

bash deploy/install-deps.sh
cmake -G Ninja -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
ninja -C build vfio-migd vfio-migctl

run=$(mktemp -d /tmp/vfio-migd-demo.XXXXXX)
src="unix:$run/source.sock"
dst="unix:$run/destination.sock"
group=gpu0,gpu1,nic0
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$run"
}
trap cleanup EXIT

show_logs() {
  for side in source destination; do
    echo "--- $side vfio-migd log ---"
    sed 's/^/  /' "$run/$side.log"
  done
}

# One daemon per "host". The destination serves the peer API on the same
# socket; the source dials it there.
start_daemon() {  # side config socket
  build/daemon/vfio-migd --listen "$3" --backend sim --sim-config "$2" \
    --state-dir "$run/$1-state" --log-level info 2>"$run/$1.log" &
  pids+=($!)
}
start_daemon source deploy/sim/source.json "$src"
start_daemon destination deploy/sim/destination.json "$dst"

ctl() { build/client/vfio-migctl "$@"; }
for target in "$src" "$dst"; do
  for _ in $(seq 100); do
    ctl --server "$target" devices --no-digest >/dev/null 2>&1 && continue 2
    sleep 0.1
  done
  echo "demo: vfio-migd at $target did not start" >&2
  show_logs
  exit 1
done

step() { printf '\n\033[1m$ vfio-migctl %s\033[0m\n' "$*"; }
step fsm path --features stop_copy,p2p,pre_copy RUNNING STOP_COPY
ctl fsm path --features stop_copy,p2p,pre_copy RUNNING STOP_COPY
step "--server $src devices   # the source host"
ctl --server "$src" devices
step "--server $dst devices   # the destination: same devices, other content"
ctl --server "$dst" devices
step plan --devices "$group"
ctl --server "$src" plan --devices "$group"
step plan --devices gpu0,nic0,accel0
ctl --server "$src" plan --devices gpu0,nic0,accel0 || true

step migrate --devices "$group" --to "$dst"
status=0
ctl --server "$src" migrate --devices "$group" --to "$dst" || status=$?
if ((status != 0)); then
  echo "demo: the migration failed (exit $status)" >&2
  show_logs
  exit 1
fi
step migrations
ctl --server "$src" migrations

# The verdict: content digests (XXH3 over every block of device state) of
# each source device, frozen in STOP, against its destination twin, now
# RUNNING. Equal digests mean byte-identical state.
digests() {  # server -> "id state digest" lines
  ctl --server "$1" devices --json | awk -F'"' '
    /"id":/ {id = $4} /"state":/ {state = $4}
    /"digest":/ {print id, state, $4}'
}
declare -A src_digest src_state dst_digest dst_state
while read -r id state digest; do
  src_digest[$id]=$digest src_state[$id]=$state
done < <(digests "$src")
while read -r id state digest; do
  dst_digest[$id]=$digest dst_state[$id]=$state
done < <(digests "$dst")

printf '\n\033[1mComparing source and destination devices\033[0m\n'
printf '  %-6s  %-28s  %-28s  %s\n' DEVICE "SOURCE (state, digest)" \
  "DESTINATION (state, digest)" RESULT
ok=0 bad=0
for id in ${group//,/ }; do
  result=identical
  if [[ -z "${src_digest[$id]:-}" ||
        "${src_digest[$id]}" != "${dst_digest[$id]:-}" ]]; then
    result="DIFFERENT"
  elif [[ "${src_state[$id]}" != STOP ||
          "${dst_state[$id]}" != RUNNING ]]; then
    result="wrong states"
  fi
  [[ $result == identical ]] && ok=$((ok + 1)) || bad=$((bad + 1))
  printf '  %-6s  %-7s %-20s  %-7s %-20s  %s\n' "$id" \
    "${src_state[$id]:-?}" "${src_digest[$id]:-?}" \
    "${dst_state[$id]:-?}" "${dst_digest[$id]:-?}" "$result"
done
if ((bad == 0)); then
  printf '\n\033[1;32mVERDICT: PASS\033[0m - all %d devices migrated: %s\n' \
    "$ok" "each destination device runs with exactly the state its source
device had when it stopped."
else
  printf '\n\033[1;31mVERDICT: FAIL\033[0m - %d of %d devices differ.\n' \
    "$bad" $((ok + bad))
  show_logs
  exit 1
fi
