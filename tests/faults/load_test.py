#!/usr/bin/python3
"""Load: many migrations at once between two real daemons, with readers
hammering the control API meanwhile, and every outcome checked.

GROUPS groups of DEVICES sim devices each (pre-copy and P2P, dirtying while
they run) migrate concurrently from one daemon to the other, each started
by its own `vfio-migctl migrate`. Meanwhile READERS threads list devices and
migrations and get single migrations on both daemons as fast as they can.
Then: every migration SUCCEEDED on both sides with the group on the
destination, every destination device runs its source's final content, no
reader call failed, and after both daemons restart the history still lists
every migration (the journal). Prints the figures.

Usage: load_test.py --migctl PATH --migd PATH [--groups N] [--devices N]
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import MiB  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--migctl", required=True)
    parser.add_argument("--migd", required=True)
    parser.add_argument("--groups", type=int, default=16)
    parser.add_argument("--devices", type=int, default=4)
    parser.add_argument("--readers", type=int, default=4)
    args = parser.parse_args()
    ctl = harness.Ctl(args.migctl)
    tmp = tempfile.mkdtemp(prefix="vfiomig-load-")
    groups = [[f"g{g}d{d}" for d in range(args.devices)]
              for g in range(args.groups)]
    src_devices = []
    for group in groups:
        for i, dev in enumerate(group):
            src_devices.append(
                {"id": dev, "features": ["stop_copy", "p2p", "pre_copy"]
                 if i % 2 == 0 else ["stop_copy", "p2p"],
                 "state_bytes": 2 * MiB, "dirty_bytes_per_s": 1 * MiB,
                 "arc_latency_ms": 1, "drain_ms": 5})
    src = harness.Daemon(args.migd, ctl, tmp, "src", src_devices)
    dst = harness.Daemon(args.migd, ctl, tmp, "dst",
                         harness.twin(src_devices))
    ok = False
    try:
        src.start().wait_up()
        dst.start().wait_up()

        stop = threading.Event()
        reads = {"calls": 0, "errors": []}
        lock = threading.Lock()

        def reader(n):
            calls = [("devices", "--json", "--no-digest"),
                     ("migrations", "--json")]
            i = 0
            while not stop.is_set():
                daemon = (src, dst)[i % 2]
                call = calls[(i // 2) % len(calls)]
                i += 1
                proc = ctl.run(daemon.server, "--timeout", "10", *call)
                with lock:
                    reads["calls"] += 1
                    if proc.returncode != 0:
                        reads["errors"].append(
                            f"{daemon.name} {call[0]}: {proc.stderr[-300:]}")

        readers = [threading.Thread(target=reader, args=(n,))
                   for n in range(args.readers)]
        for t in readers:
            t.start()

        start = time.monotonic()
        procs = [ctl.popen(src.server, "migrate", "--devices",
                           ",".join(group), "--to", dst.server, "--json")
                 for group in groups]
        results = []
        for group, proc in zip(groups, procs):
            out, err = proc.communicate(timeout=600)
            results.append((group, proc.returncode, out, err))
        elapsed = time.monotonic() - start
        stop.set()
        for t in readers:
            t.join()

        problems = []
        for group, rc, out, err in results:
            if rc != 0:
                problems.append(f"{group}: rc {rc}: {err.strip()[-300:]}")
        src_list = ctl.migrations(src)
        dst_list = ctl.migrations(dst)
        if len(src_list) != len(groups):
            problems.append(f"source lists {len(src_list)} migrations")
        for mid, m in src_list.items():
            d = dst_list.get(mid)
            if (m["outcome"] != "SUCCEEDED" or d is None or
                    d["outcome"] != "SUCCEEDED" or
                    m["running_side"] != "destination" or
                    d["running_side"] != "destination"):
                problems.append(
                    f"{mid}: source {m['outcome']} {m['running_side']}, "
                    f"destination {d and d['outcome']} "
                    f"{d and d['running_side']}: {m['error']}")
        src_now = ctl.devices(src)
        dst_now = ctl.devices(dst)
        for dev, s in src_now.items():
            t = dst_now[dev]
            if s["state"] != "STOP" or t["state"] != "RUNNING" or \
                    s["digest"] != t["digest"]:
                problems.append(f"{dev}: source {s['state']} {s['digest']},"
                                f" destination {t['state']} {t['digest']}")
        problems += reads["errors"][:10]

        # The history outlives both daemons.
        for daemon in (src, dst):
            daemon.stop()
            daemon.start().wait_up()
        for daemon, before in ((src, src_list), (dst, dst_list)):
            after = ctl.migrations(daemon)
            for mid, m in before.items():
                a = after.get(mid)
                if a is None or a["outcome"] != m["outcome"] or \
                        a["bytes_sent"] != m["bytes_sent"]:
                    problems.append(f"{daemon.name} history lost {mid}")

        total = sum(m["bytes_sent"] for m in src_list.values())
        downtimes = sorted(m["downtime_ms"] for m in src_list.values())
        print(f"{len(groups)} groups x {args.devices} devices: "
              f"{total / MiB:.0f} MiB in {elapsed:.1f} s "
              f"({total / MiB / elapsed:.1f} MiB/s aggregate); downtime "
              f"median {downtimes[len(downtimes) // 2]} ms, max "
              f"{downtimes[-1]} ms; {reads['calls']} reader calls, "
              f"{len(reads['errors'])} failed")
        if problems:
            print("PROBLEMS:\n  " + "\n  ".join(problems[:40]))
            return 1
        ok = True
        print("every migration SUCCEEDED; every destination device runs its "
              "source's content; history survived a restart")
        return 0
    finally:
        for daemon in (src, dst):
            daemon.stop()
        if not ok:
            for daemon in (src, dst):
                print(f"--- {daemon.name} log (tail) ---\n{daemon.tail(40)}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
