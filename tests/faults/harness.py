"""Shared pieces of the fault and load suites: real vfio-migd daemons on sim
devices that survive the daemon (persist_state), driven and inspected through
the real vfio-migctl, and the invariant check.

The invariant (daemon/migration/PROTOCOL.md): once a migration is over, every
device of the group runs on exactly one side, that side's daemon knows it,
and both daemons' control APIs say which. With sim devices that do not dirty
(dirty_bytes_per_s 0) "runs the group's state" is checkable from outside:

  group on the source:       every source device RUNNING with the content it
                             had before (its power-on content if it was
                             reset, which the report must say); every
                             destination device RUNNING with its own content
                             (never the source's);
  group on the destination:  every destination device RUNNING with the
                             source device's content (or, if it was reset
                             after the commit point, reported, its power-on
                             content); every source device stopped.

and both daemons' Migration records are final, agree on `running_side`, and
list the device states the devices really have.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

# The helpers the integration tests share (polling, stopping a daemon).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "integration"))
from daemons import stop_process, wait_until  # noqa: E402

MiB = 1 << 20


def clean_env():
    return {k: v for k, v in os.environ.items()
            if k not in ("VFIO_MIGCTL_SERVER", "VFIOMIG_CRASH_AT")}


class Ctl:
    """vfio-migctl, JSON in and out."""

    def __init__(self, migctl):
        self.migctl = migctl

    def cmd(self, server, *args):
        return [self.migctl, "--server", server, *args]

    def run(self, server, *args, timeout=60):
        return subprocess.run(self.cmd(server, *args), capture_output=True,
                              text=True, timeout=timeout, env=clean_env())

    def popen(self, server, *args):
        return subprocess.Popen(self.cmd(server, *args),
                                stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True,
                                env=clean_env())

    def json(self, server, *args, timeout=60):
        proc = self.run(server, *args, timeout=timeout)
        if proc.returncode != 0:
            raise AssertionError(
                f"`{' '.join(proc.args)}` rc={proc.returncode}: "
                f"{proc.stderr.strip()[-2000:]}")
        return json.loads(proc.stdout)

    def devices(self, daemon, digests=True):
        args = ["devices", "--json"] + ([] if digests else ["--no-digest"])
        return {d["id"]: d for d in self.json(daemon.server, *args)}

    def migrations(self, daemon):
        return {m["id"]: m for m in self.json(daemon.server, "migrations",
                                              "--json")}


class Daemon:
    """One vfio-migd with sim devices that keep their state across its
    restarts, and a state dir that keeps its journal."""

    def __init__(self, migd, ctl, tmp, name, devices, extra=()):
        self.name = name
        self.ctl = ctl
        self.config = os.path.join(tmp, f"{name}.json")
        with open(self.config, "w") as f:
            json.dump({"persist_state": True, "devices": devices}, f)
        self.server = "unix:" + os.path.join(tmp, f"{name}.sock")
        self.state_dir = os.path.join(tmp, f"{name}-state")
        self.log_path = os.path.join(tmp, f"{name}.log")
        self.args = [migd, "--listen", self.server, "--backend", "sim",
                     "--sim-config", self.config, "--state-dir",
                     self.state_dir, "--log-level", "debug", *extra]
        self.proc = None
        self.log = None

    def start(self, crash_at=None):
        env = clean_env()
        if crash_at:
            env["VFIOMIG_CRASH_AT"] = crash_at
        self.log = open(self.log_path, "a")
        self.proc = subprocess.Popen(self.args, stdout=self.log,
                                     stderr=subprocess.STDOUT, env=env)
        return self

    def wait_up(self, timeout=30):
        def up():
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.name} exited "
                                     f"{self.proc.returncode}:\n{self.tail()}")
            return self.ctl.run(self.server, "--timeout", "1", "devices",
                                "--no-digest").returncode == 0
        wait_until(up, timeout, f"{self.name} daemon to answer", 0.05)
        return self

    def wait_killed(self, timeout=60):
        """Waits for the armed crash point to kill the daemon."""
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{self.name} did not reach its crash "
                                 f"point within {timeout}s:\n{self.tail()}")
        if rc != -signal.SIGKILL:
            raise AssertionError(f"{self.name} exited {rc}, not by SIGKILL:"
                                 f"\n{self.tail()}")
        self.log.close()

    def stop(self):
        stop_process(self.proc, grace=20)
        if self.log is not None and not self.log.closed:
            self.log.close()

    def tail(self, lines=60):
        try:
            with open(self.log_path) as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return "(no log)"


def twin(devices, seed=1000):
    """The destination's devices for a source group: same ids, features
    and sizes, other content, quick arcs."""
    return [{"id": d["id"], "features": d["features"],
             "state_bytes": d.get("state_bytes", MiB),
             "arc_latency_ms": 1, "drain_ms": 1, "seed": seed + i}
            for i, d in enumerate(devices)]


def final(migration):
    return migration is not None and migration["outcome"] != "IN_PROGRESS"


def wait_final(ctl, src, dst, migration_id, timeout=60):
    """Both daemons' records of the migration, once both are final."""
    records = {}

    def done():
        for daemon in (src, dst):
            records[daemon.name] = ctl.migrations(daemon).get(migration_id)
        return all(final(r) for r in records.values())
    try:
        wait_until(done, timeout, f"migration {migration_id} to end on both "
                   "sides", 0.1)
    except AssertionError:
        raise AssertionError(
            f"not final after {timeout}s: "
            + json.dumps({k: (v and {x: v[x] for x in (
                "outcome", "phase", "error", "handed_over", "running_side")})
                for k, v in records.items()}))
    return records[src.name], records[dst.name]


def check_invariant(ctl, src, dst, migration_id, before, power_on,
                    expect_side=None):
    """Asserts the invariant for `migration_id`; returns (side, notes).

    `before`: {"src": {id: digest}, "dst": {id: digest}} before the
    migration; `power_on`: the same for the devices' power-on content (what
    a reset leaves); with dirty-free sims both are equal."""
    s, d = wait_final(ctl, src, dst, migration_id)
    side = s["running_side"]
    problems = []
    if side not in ("source", "destination"):
        problems.append(f"source reports running_side {side!r}: "
                        f"{s['error']}")
    if d["running_side"] != side:
        problems.append(f"source says {side!r}, destination says "
                        f"{d['running_side']!r}")
    if expect_side and side != expect_side:
        problems.append(f"expected the group on the {expect_side}, the "
                        f"source reports {side!r} ({s['outcome']}: "
                        f"{s['error']})")
    want_outcome = "SUCCEEDED" if side == "destination" else None
    if want_outcome and (s["outcome"] != want_outcome or
                         d["outcome"] != want_outcome):
        problems.append(f"on the destination but outcomes {s['outcome']} / "
                        f"{d['outcome']}")
    if side == "source" and (s["outcome"] == "SUCCEEDED" or
                             d["outcome"] == "SUCCEEDED"):
        problems.append(f"on the source but outcomes {s['outcome']} / "
                        f"{d['outcome']}")
    if side == "source" and d["handed_over"]:
        problems.append("the destination recorded a commit, yet the group "
                        "runs on the source")

    src_now = ctl.devices(src)
    dst_now = ctl.devices(dst)
    notes = []
    for dev in s["devices"]:
        sid, tid = dev["device"], dev["target"]
        sd, td = src_now[sid], dst_now[tid]
        dst_rec = next(x for x in d["devices"] if x["target"] == tid)
        # The reports match the devices.
        if dev.get("source_state") != sd["state"]:
            problems.append(f"source reports {sid} {dev.get('source_state')},"
                            f" the device is {sd['state']}")
        if dst_rec.get("destination_state") != td["state"]:
            problems.append(f"destination reports {tid} "
                            f"{dst_rec.get('destination_state')}, the device"
                            f" is {td['state']}")
        if side == "source":
            if sd["state"] != "RUNNING":
                problems.append(f"source {sid} is {sd['state']}")
            want = power_on["src"][sid] if dev["was_reset"] else \
                before["src"][sid]
            if sd["digest"] != want:
                problems.append(f"source {sid} content changed "
                                f"({sd['digest']} != {want})")
            if td["state"] != "RUNNING":
                problems.append(f"idle destination {tid} is {td['state']}")
            if td["digest"] != before["dst"][tid]:
                problems.append(f"destination {tid} holds foreign state "
                                f"while the group runs on the source")
            if dev["was_reset"]:
                notes.append(f"{sid} reset")
        elif side == "destination":
            if sd["state"] == "RUNNING":
                problems.append(f"SPLIT BRAIN: source {sid} RUNNING")
            if td["state"] != "RUNNING":
                problems.append(f"destination {tid} is {td['state']}")
            if dst_rec["was_reset"]:
                notes.append(f"{tid} reset after commit")
                if td["digest"] != power_on["dst"][tid]:
                    problems.append(f"reset destination {tid} has "
                                    f"{td['digest']}")
            elif td["digest"] != sd["digest"]:
                problems.append(f"destination {tid} {td['digest']} != source"
                                f" {sd['digest']}")
    if problems:
        raise AssertionError("invariant broken:\n  " + "\n  ".join(problems)
                             + f"\nsource record: {json.dumps(s)[:3000]}"
                             + f"\ndestination record: "
                             + json.dumps(d)[:3000])
    return side, s, d, notes


class Proxy:
    """A unix-socket proxy between a source and a destination daemon that
    can stall (stop moving bytes, keep every connection open) or drop
    (close every open connection, keep accepting new ones)."""

    def __init__(self, path, upstream_path):
        self.path = path
        self.upstream = upstream_path
        self.lock = threading.Lock()
        self.stalled = threading.Event()
        self.forwarded = 0  # bytes source -> destination
        self.stall_after = None
        self.conns = []
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(64)
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def target(self):
        return "unix:" + self.path

    def _accept(self):
        while not self.closed:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            up = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                up.connect(self.upstream)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.conns.append((client, up))
            threading.Thread(target=self._pump, args=(client, up, True),
                             daemon=True).start()
            threading.Thread(target=self._pump, args=(up, client, False),
                             daemon=True).start()

    def _pump(self, a, b, outbound):
        while True:
            try:
                data = a.recv(65536)
            except OSError:
                data = b""
            if not data:
                break
            # A stall holds the bytes: neither side sees them, nor a close.
            while self.stalled.is_set() and not self.closed:
                time.sleep(0.01)
            try:
                b.sendall(data)
            except OSError:
                break
            if outbound:
                with self.lock:
                    self.forwarded += len(data)
                    if (self.stall_after is not None and
                            self.forwarded >= self.stall_after[0]):
                        action = self.stall_after[1]
                        self.stall_after = None
                        threading.Thread(target=action, daemon=True).start()
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def after_bytes(self, n, action):
        with self.lock:
            self.stall_after = (n, action)

    def stall(self):
        self.stalled.set()

    def resume(self):
        self.stalled.clear()

    def drop(self):
        with self.lock:
            conns, self.conns = self.conns, []
        for pair in conns:
            for s in pair:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                    s.close()
                except OSError:
                    pass

    def close(self):
        self.closed = True
        self.resume()
        self.drop()
        self.sock.close()
