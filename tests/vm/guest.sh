#!/bin/bash
# The scenarios of the VM test, run inside the guest (init.sh chroots into
# the host's root, so these are the host-built binaries on the guest's
# kernel). Four mtty mdevs exist: A, B and D of type mtty-2, C of type
# mtty-1. Three vfio-migd --backend vfio daemons share them (--devices):
# a owns A and D, b owns B, c owns C; each has a control socket and a peer
# port on loopback. Device content is set and checked
# through `vfio-migctl open` (the hand-off side channel) and mtty_io.
#
# Prints "vm: ok NAME" or "vm: FAIL NAME: why" per scenario; run.sh counts.
set -u
build=$1
# Bash here-strings need a writable TMPDIR; /tmp may be the host's
# (read-only) when the repository lives there.
export TMPDIR=/run/tmp
mkdir -p "$TMPDIR"
repo=$(cd "$(dirname "$0")/../.." && pwd)
migd=$build/daemon/vfio-migd
ctl=$build/client/vfio-migctl
mtty_io=/run/mtty_io  # init.sh copies it there (tests/vm/mtty_io.c)
A=11111111-0000-0000-0000-00000000000a
B=11111111-0000-0000-0000-00000000000b
C=11111111-0000-0000-0000-00000000000c
D=11111111-0000-0000-0000-00000000000d
declare -A devices=([a]=$A,$D [b]=$B [c]=$C) port=([a]=7101 [b]=7102 [c]=7103)
declare -A pid

# Flags other features may make necessary: plain TCP on loopback, and a
# state directory in the guest's tmpfs.
help=$("$migd" --help 2>&1)
extra=()
grep -q -- '--insecure' <<<"$help" && extra+=(--insecure)
# vfio-migctl too: `migrate` asks the destination daemon (over TCP) for the
# states of its devices, and without --insecure it would insist on mTLS.
ctl_extra=()
"$ctl" --help 2>&1 | grep -q -- '--insecure' && ctl_extra+=(--insecure)

# The sockets in a directory of their own: the guest's /run is a tmpfs of
# mode 1777, and vfio-migd refuses a world-writable socket directory (the
# daemon creates this one, 0750).
sockets=/run/vfio-migd
start() {  # start NAME: the daemon that owns device[NAME]
  local name=$1 state=()
  grep -q -- '--state-dir' <<<"$help" && state=(--state-dir "/run/state-$name")
  "$migd" --backend vfio --devices "${devices[$name]}" \
    --listen "unix:$sockets/$name.sock" --listen "127.0.0.1:${port[$name]}" \
    "${extra[@]}" "${state[@]}" --log-level debug >>"/run/$name.log" 2>&1 &
  pid[$name]=$!
  for _ in $(seq 100); do
    ctl "$name" devices --no-digest >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "daemon $name did not come up:"; tail -20 "/run/$name.log"
  return 1
}
stop() {  # stop NAME: SIGTERM and wait
  kill -TERM "${pid[$1]}" && wait "${pid[$1]}"
}
# Every call is bounded, so a hang fails its scenario instead of the VM.
ctl() {
  local name=$1; shift
  echo "+ [$SECONDS s] vfio-migctl ($name) $*" >&2
  timeout 60 "$ctl" --server "unix:$sockets/$name.sock" "${ctl_extra[@]}" "$@"
}
io() {  # io NAME DEVICE ARGS...: mtty_io on a device of daemon NAME
  local name=$1 dev=$2; shift 2
  ctl "$name" open "$dev" -- "$mtty_io" "$@"
}
# has TEXT LINE...: every LINE (a fixed string, e.g. '"state": "RUNNING"')
# occurs in TEXT; sets $why to the first one missing.
has() {
  local text=$1 line; shift
  for line in "$@"; do
    grep -qF -- "$line" <<<"$text" || { why="missing $line in: $(tr -s ' \n' ' ' <<<"$text" | cut -c1-600)"; return 1; }
  done
}
state_of() {  # state_of NAME DEVICE
  ctl "$1" devices --json --no-digest \
    | sed -n "/\"id\": \"$2\"/,/^  }/s/^ *\"state\": \"\(.*\)\",\{0,1\}\$/\1/p"
}

passed=0 failed=0
result() {  # result NAME STATUS DETAIL
  if [ "$2" = 0 ]; then
    echo "vm: ok   $1"; passed=$((passed + 1))
  else
    echo "vm: FAIL $1: $3"; failed=$((failed + 1))
  fi
}
check() {  # check WHAT GOT WANT: sets $why on mismatch
  [ "$2" = "$3" ] && return 0
  why="$1: got '$2', want '$3'"; return 1
}

for name in a b c; do start "$name" || result "start daemon $name" 1 "see its log"; done

# 1. Discovery and capabilities of a real kernel device.
scenario_discovery() {
  local d
  d=$(ctl a devices --json --no-digest) || { why="devices failed"; return 1; }
  has "$d" "\"id\": \"$A\"" '"driver": "mtty"' '"mdev_type": "mtty-2"' \
    '"mdev_parent": "mtty"' '"migration_flags": 7' '"migratable": true' \
    '"mig_data_size": true' '"stop_copy_bytes": 96' '"state": "RUNNING"' \
    '"access": "group /dev/vfio/' || return 1
  d=$(ctl a devices --json --all --no-digest) || { why="devices --all failed"; return 1; }
  has "$d" "\"id\": \"$D\"" '"host_devices": [' "\"id\": \"$B\"" "\"id\": \"$C\"" \
    "not selected by this daemon's --devices" || return 1
}
why=""; scenario_discovery; result "discovery: mtty mdev with flags, size, access" $? "$why"

# 2. Live migration A -> B with known device content, over gRPC on
# loopback; mtty has PRE_COPY, so the plan pre-copies (24 initial bytes)
# before the stop-copy rest.
scenario_migrate() {
  io a "$A" write 0 "hello-vfio" 5a && io a "$A" write 1 "port-1" a5 || { why="write through hand-off failed"; return 1; }
  local m
  m=$(ctl a migrate --devices "$A" --to "127.0.0.1:${port[b]}" --map "$A=$B" --json) \
    || { why="migrate failed: $m"; return 1; }
  has "$m" '"outcome": "SUCCEEDED"' '"destination_state": "RUNNING"' \
    '"pre_copy_bytes": 24' '"bytes_sent": 96' || return 1
  check "port 0 on B" "$(io b "$B" read 0)" "hello-vfio 5a" || return 1
  check "port 1 on B" "$(io b "$B" read 1)" "port-1 a5" || return 1
  check "B state" "$(state_of b "$B")" "RUNNING" || return 1
}
why=""; scenario_migrate; result "pre-copy migration A->B over gRPC: FIFO and scratch arrive on B" $? "$why"

# 3. To a device of another mdev type: the destination refuses the stream
# header before C enters RESUMING; the source runs on with its content.
scenario_other_type() {
  io b "$B" write 0 "stay" 33 || { why="write failed"; return 1; }
  local m
  if m=$(ctl b migrate --devices "$B" --to "127.0.0.1:${port[c]}" --map "$B=$C" --json); then
    why="the migration to another mdev type succeeded"; return 1
  fi
  has "$m" '"outcome": "FAILED"' 'different mdev type: stream has \"mtty-2\", target has \"mtty-1\"' || return 1
  check "C state" "$(state_of c "$C")" "RUNNING" || return 1
  if ctl c migrations --json | grep -q '"was_reset": true'; then why="C was reset"; return 1; fi
  check "B state" "$(state_of b "$B")" "RUNNING" || return 1
  check "B content" "$(io b "$B" read 0)" "stay 33" || return 1
}
why=""; scenario_other_type; result "migrate B->C (mtty-1): refused by the header check, B runs on" $? "$why"

# 4. Restart the daemon holding B: the device, its state and its content
# outlive the daemon, and the new daemon migrates it to D (a RUNNING
# mtty-2; A stays in STOP after its migration, as a source should).
scenario_restart() {
  io b "$B" write 0 "persist" 44 || { why="write failed"; return 1; }
  stop b || { why="daemon b did not stop cleanly"; return 1; }
  start b || { why="daemon b did not restart"; return 1; }
  check "B after restart" "$(state_of b "$B")" "RUNNING" || return 1
  local m
  m=$(ctl b migrate --devices "$B" --to "127.0.0.1:${port[a]}" --map "$B=$D" --json) \
    || { why="migrate B->D failed: $m"; return 1; }
  has "$m" '"outcome": "SUCCEEDED"' || return 1
  check "D content" "$(io a "$D" read 0)" "persist 44" || return 1
  check "A stays stopped" "$(state_of a "$A")" "STOP" || return 1
}
why=""; scenario_restart; result "restart the daemon holding B, then migrate B->D" $? "$why"

for name in a b c; do
  kill -TERM "${pid[$name]}" 2>/dev/null
  wait "${pid[$name]}" 2>/dev/null
done
if [ "$failed" != 0 ]; then
  for name in a b c; do echo "--- daemon $name log (tail)"; tail -25 "/run/$name.log"; done
fi
echo "guest: scenarios took $SECONDS s (guest.sh, in the VM)"
[ "$failed" = 0 ]
