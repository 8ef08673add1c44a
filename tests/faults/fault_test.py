#!/usr/bin/python3
"""Fault injection on real daemons: every case breaks a migration on purpose
and then checks the invariant of daemon/migration/PROTOCOL.md - every device
of the group runs on exactly one side, both daemons know which, and their
control APIs say so and match the devices (harness.check_invariant).

Cases (each on a fresh source and destination daemon, sim devices that
survive the daemon's death, a 3-device P2P group with pre-copy):

  kill-src@POINT   SIGKILL of the source at a crash point (VFIOMIG_CRASH_AT),
                   then restart: pre-copy, switchover, quiesce, stop-copy
                   streaming, the stop waves, after Load, after the commit
                   point, after Commit.
  kill-dst@POINT   the same for the destination: prepared, pre-copy and
                   stop-copy streaming, loading, after its load record,
                   after its commit record, between the resume waves, after
                   the resume.
  fail-src/ARC, fail-dst/ARC
                   a sim device fails that arc (fail_arcs) - every distinct
                   arc of both plans, taken from `vfio-migctl plan`.
  rollback-fails   a failure, and then a device that fails its rollback arc
                   into ERROR: reset and reported.
  drain-src/ARC, drain-dst/ARC
                   a drain that outlasts its deadline (sla), in each wave
                   that drains.
  stall@stream, drop@stream, stall@commit, drop@commit
                   the peer connection (through a proxy) stops moving bytes
                   without closing, or is cut, mid-stream or after the commit
                   point.

Prints a table of cases, the side the group ended on and how long each took.
Usage: fault_test.py --migctl PATH --migd PATH [-k SUBSTRING] [--list]
"""

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import MiB  # noqa: E402

GROUP = ["gpu0", "gpu1", "nic0"]


def source_devices(**extra):
    """The group, plus per-device extra keys: {"gpu0": {"fail_arcs": ..}}."""
    devices = [
        {"id": "gpu0", "features": ["stop_copy", "p2p", "pre_copy"],
         "state_bytes": 6 * MiB, "precopy_bytes": 4 * MiB,
         "arc_latency_ms": 1, "drain_ms": 2},
        {"id": "gpu1", "features": ["stop_copy", "p2p", "pre_copy"],
         "state_bytes": 3 * MiB, "arc_latency_ms": 1, "drain_ms": 2},
        {"id": "nic0", "features": ["stop_copy", "p2p"],
         "state_bytes": 2 * MiB, "arc_latency_ms": 1, "drain_ms": 2},
    ]
    for d in devices:
        d.update(extra.get(d["id"], {}))
    return devices


def destination_devices(**extra):
    devices = harness.twin(source_devices())
    for d in devices:
        d.update(extra.get(d["id"], {}))
    return devices


class Case:
    def __init__(self, name, fault, run, expect):
        self.name, self.fault, self.run, self.expect = name, fault, run, expect


class Pair:
    """Source and destination daemons for one case, stopped whatever
    happens, their logs shown if the case fails."""

    def __init__(self, env, name, src_devices, dst_devices, src_extra=(),
                 dst_extra=()):
        self.env = env
        self.tmp = tempfile.mkdtemp(prefix=name.replace("/", "_")[:40] + "-",
                                    dir=env.tmp)
        ctl = env.ctl
        self.src = harness.Daemon(env.migd, ctl, self.tmp, "src", src_devices,
                                  ["--peer-timeout-ms", "2000", *src_extra])
        self.dst = harness.Daemon(env.migd, ctl, self.tmp, "dst", dst_devices,
                                  list(dst_extra))
        self.proxy = None
        self.migrate_proc = None

    def start(self, src_crash=None, dst_crash=None):
        self.src.start(src_crash)
        self.dst.start(dst_crash)
        self.src.wait_up()
        self.dst.wait_up()
        ctl = self.env.ctl
        # Power-on content: nothing has run yet and the sims do not dirty.
        self.before = {"src": {i: d["digest"] for i, d in
                               ctl.devices(self.src).items()},
                       "dst": {i: d["digest"] for i, d in
                               ctl.devices(self.dst).items()}}
        self.power_on = self.before
        return self

    def destination_target(self):
        return self.proxy.target() if self.proxy else self.dst.server

    def migrate(self, *args):
        self.migrate_proc = self.env.ctl.popen(
            self.src.server, "migrate", "--devices", ",".join(GROUP),
            "--to", self.destination_target(), "--json", *args)
        return self.migrate_proc

    def wait_migrate(self, timeout=120):
        try:
            out, err = self.migrate_proc.communicate(timeout=timeout)
        except Exception:
            self.migrate_proc.kill()
            raise
        return self.migrate_proc.returncode, out, err

    def migration_id(self):
        """The case's one migration, from whichever daemon lists it."""
        def find():
            for daemon in (self.src, self.dst):
                if daemon.proc.poll() is not None:
                    continue
                ids = list(self.env.ctl.migrations(daemon))
                if ids:
                    return ids[0]
            return None
        return harness.wait_until(find, 30, "the migration to be listed")

    def check(self, expect):
        mid = self.migration_id()
        return harness.check_invariant(self.env.ctl, self.src, self.dst, mid,
                                       self.before, self.power_on, expect)

    def close(self, failed):
        if self.migrate_proc and self.migrate_proc.poll() is None:
            self.migrate_proc.kill()
            self.migrate_proc.wait()
        if self.proxy:
            self.proxy.close()
        for d in (self.src, self.dst):
            d.stop()
        if failed:
            for d in (self.src, self.dst):
                print(f"--- {d.name} log (tail) ---\n{d.tail(80)}")
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)


# --- case bodies -------------------------------------------------------------

def kill_case(side, point, expect):
    def run(env, name):
        pair = Pair(env, name, source_devices(), destination_devices())
        try:
            pair.start(src_crash=point if side == "src" else None,
                       dst_crash=point if side == "dst" else None)
            pair.migrate()
            victim = pair.src if side == "src" else pair.dst
            victim.wait_killed()
            victim.start().wait_up()
            result = pair.check(expect)
            pair.close(False)
            return result
        except BaseException:
            pair.close(True)
            raise
    return run


def plain_case(src_extra, dst_extra, expect, migrate_args=()):
    def run(env, name):
        pair = Pair(env, name, source_devices(**src_extra),
                    destination_devices(**dst_extra))
        try:
            pair.start()
            pair.migrate(*migrate_args)
            pair.wait_migrate()
            result = pair.check(expect)
            pair.close(False)
            return result
        except BaseException:
            pair.close(True)
            raise
    return run


def link_case(fault, when, expect):
    """Stall or drop the peer link mid-stream (after 1 MiB went through)
    or after the commit point (the destination's resume is made slow so
    that the Commit call is in flight)."""
    def run(env, name):
        dst_extra = {}
        if when == "commit":
            dst_extra = {"nic0": {"slow_arcs": {"STOP>RUNNING_P2P": 2000}}}
        pair = Pair(env, name, source_devices(),
                    destination_devices(**dst_extra))
        try:
            pair.start()
            pair.proxy = harness.Proxy(os.path.join(pair.tmp, "proxy.sock"),
                                       pair.dst.server[len("unix:"):])
            proxy = pair.proxy
            if fault == "stall":
                def act():
                    proxy.stall()
            else:
                def act():
                    proxy.drop()
            if when == "stream":
                proxy.after_bytes(1 * MiB, act)
            pair.migrate("--drain-timeout-ms", "5000")
            if when == "commit":
                ctl = env.ctl

                def handed_over():
                    for m in ctl.migrations(pair.src).values():
                        if m["handed_over"]:
                            return True
                    return False
                harness.wait_until(handed_over, 60, "the commit point")
                act()
            if fault == "stall":
                # Long enough for keepalive to notice on both sides.
                time.sleep(12 if when == "stream" else 8)
                proxy.resume()
            pair.wait_migrate()
            result = pair.check(expect)
            pair.close(False)
            return result
        except BaseException:
            pair.close(True)
            raise
    return run


# --- the case list -----------------------------------------------------------

def plan_arcs(env):
    """Every distinct (device, from, to) of both plans, one device per
    distinct arc, from the real planner through `vfio-migctl plan`."""
    tmp = tempfile.mkdtemp(dir=env.tmp, prefix="plan-")
    daemon = harness.Daemon(env.migd, env.ctl, tmp, "plan", source_devices())
    try:
        daemon.start().wait_up()
        plan = env.ctl.json(daemon.server, "plan", "--devices",
                            ",".join(GROUP), "--json")
    finally:
        daemon.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    out = {}
    for side, key in (("src", "source"), ("dst", "destination")):
        seen = {}
        for arcs, phase in zip(plan[key], plan[key + "_phases"]):
            for arc in arcs:
                pair = (arc["from"], arc["to"])
                if pair not in seen:
                    seen[pair] = (arc["device"], phase["phase"])
        out[side] = seen
    return out


DRAIN_TARGETS = ("RUNNING_P2P", "PRE_COPY_P2P", "STOP")
# Destination arcs after the commit point: failures there roll forward.
AFTER_COMMIT = {("STOP", "RUNNING_P2P"), ("RUNNING_P2P", "RUNNING")}


def cases(env):
    out = []
    src_points = [
        ("source:frame:pre-copy", "pre-copy streaming", "source"),
        ("source:switchover", "switchover (workload paused)", "source"),
        ("source:wave:p2p-quiesce", "quiesce (P2P)", "source"),
        ("source:frame:stop-copy", "stop-copy streaming", "source"),
        ("source:wave:stop-after-copy", "stop-copy done", "source"),
        ("source:loaded", "commit: destination loaded", "source"),
        ("source:handed-over", "after the commit point", "destination"),
        ("source:committed", "after Commit answered", "destination"),
    ]
    for point, what, expect in src_points:
        out.append(Case(f"kill-src@{point.split(':', 1)[1]}",
                        f"SIGKILL source: {what}",
                        kill_case("src", point, expect), expect))
    dst_points = [
        ("destination:wave:resuming", "prepared (RESUMING)", "source"),
        ("destination:frame:pre-copy", "pre-copy streaming", "source"),
        ("destination:frame:stop-copy", "stop-copy streaming", "source"),
        ("destination:wave:resume-stop", "loading, not recorded", "source"),
        ("destination:loaded", "load recorded, not answered", "source"),
        ("destination:committed", "commit recorded, no arc yet",
         "destination"),
        ("destination:wave:p2p-restore", "between resume waves",
         "destination"),
        ("destination:resumed", "all RUNNING, not recorded",
         "destination"),
    ]
    for point, what, expect in dst_points:
        out.append(Case(f"kill-dst@{point.split(':', 1)[1]}",
                        f"SIGKILL destination: {what}",
                        kill_case("dst", point, expect), expect))

    arcs = plan_arcs(env)
    for (frm, to), (device, phase) in arcs["src"].items():
        arc = f"{frm}>{to}"
        out.append(Case(f"fail-src/{arc}", f"{device} fails {arc} ({phase})",
                        plain_case({device: {"fail_arcs": [arc]}}, {},
                                   "source"), "source"))
    for (frm, to), (device, phase) in arcs["dst"].items():
        arc = f"{frm}>{to}"
        expect = "destination" if (frm, to) in AFTER_COMMIT else "source"
        out.append(Case(f"fail-dst/{arc}",
                        f"{device} fails {arc} ({phase})",
                        plain_case({}, {device: {"fail_arcs": [arc]}},
                                   expect), expect))
    out.append(Case(
        "rollback-fails",
        "gpu0 fails PRE_COPY>PRE_COPY_P2P; nic0 fails its way back "
        "(RUNNING_P2P>RUNNING into ERROR)",
        plain_case({"gpu0": {"fail_arcs": ["PRE_COPY>PRE_COPY_P2P"]},
                    "nic0": {"fail_arcs": ["RUNNING_P2P>RUNNING:error"]}},
                   {}, "source"), "source"))

    for side in ("src", "dst"):
        for (frm, to), (device, phase) in arcs[side].items():
            if to not in DRAIN_TARGETS:
                continue
            arc = f"{frm}>{to}"
            slow = {device: {"slow_arcs": {arc: 1500}}}
            expect = ("destination" if side == "dst" and
                      (frm, to) in AFTER_COMMIT else "source")
            out.append(Case(
                f"drain-{side}/{arc}",
                f"{device} {arc} drains 1.5 s > 300 ms deadline ({phase})",
                plain_case(slow if side == "src" else {},
                           slow if side == "dst" else {}, expect,
                           ("--drain-timeout-ms", "300")), expect))

    for fault in ("stall", "drop"):
        for when, expect in (("stream", "source"),
                             ("commit", "destination")):
            out.append(Case(f"{fault}@{when}",
                            f"peer link {fault}s "
                            + ("mid-stream" if when == "stream"
                               else "after the commit point"),
                            link_case(fault, when, expect), expect))
    return out


class Env:
    def __init__(self, args):
        self.migd = args.migd
        self.ctl = harness.Ctl(args.migctl)
        self.tmp = tempfile.mkdtemp(prefix="vfiomig-faults-")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--migctl", required=True)
    parser.add_argument("--migd", required=True)
    parser.add_argument("-k", action="append", default=[],
                        help="run only cases whose name contains this")
    parser.add_argument("--list", action="store_true")
    args = parser.parse_args()
    env = Env(args)
    all_cases = cases(env)
    chosen = [c for c in all_cases
              if not args.k or any(k in c.name for k in args.k)]
    if args.list:
        for c in chosen:
            print(f"{c.name:34} {c.fault}")
        return 0
    rows = []
    failures = 0
    # CI shows only the head and tail of a long output: each failure's full
    # message is repeated after the table, where it cannot be cut away.
    failed = []
    for case in chosen:
        start = time.monotonic()
        print(f"=== {case.name}: {case.fault}", flush=True)
        try:
            side, s, d, notes = case.run(env, case.name)
            status = "ok"
            outcome = f"{s['outcome']}/{d['outcome']}"
            detail = ", ".join(notes + (["recovered"] if s["recovered"] or
                                        d["recovered"] else []))
        except Exception as e:  # noqa: BLE001 - reported in the table
            failures += 1
            status, side, outcome = "FAIL", "?", "?"
            detail = str(e).splitlines()[0][:80]
            traceback.print_exc()
            failed.append((case.name, f"{type(e).__name__}: {e}"))
        elapsed = time.monotonic() - start
        rows.append((case.name, case.fault, case.expect, side, outcome,
                     detail, elapsed, status))
        print(f"--- {case.name}: {status} ({elapsed:.1f} s)", flush=True)

    print("\nFault-injection cases (invariant: exactly one side runs the "
          "group, both daemons agree and match the devices)\n")
    header = ("case", "fault", "expected", "runs on", "src/dst outcome",
              "notes", "time", "result")
    widths = [max(len(str(r[i])) if i != 6 else 6 for r in rows + [header])
              for i in range(len(header))]
    widths[1] = min(widths[1], 60)

    def fmt(row):
        cells = []
        for i, v in enumerate(row):
            v = f"{v:.1f}s" if i == 6 and not isinstance(v, str) else str(v)
            cells.append(v[:widths[i]].ljust(widths[i]))
        return "  ".join(cells).rstrip()
    print(fmt(header))
    for r in rows:
        print(fmt(r))
    print(f"\n{len(rows) - failures}/{len(rows)} cases hold the invariant; "
          f"total {sum(r[6] for r in rows):.0f} s")
    for name, message in failed:
        print(f"\nFAILED {name}:\n{message[:4000]}")
    if failures == 0:
        shutil.rmtree(env.tmp, ignore_errors=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
