#!/usr/bin/python3
"""Live migration end to end: two real vfio-migd daemons, driven by the real
vfio-migctl.

Each scenario starts a source and a destination daemon (sim backend, temp
configs, unix sockets in a temp dir; the destination's socket is the
`--to` target the source dials) and checks what an operator would:

  group      a 3-device P2P group with pre-copy migrates (one device to a
             differently named target, --map); every destination device
             RUNNING with its source's final digest, every source device
             STOP; bytes, downtime and throughput are reported. A blocked
             group is refused with its blockers.
  drain      a drain that takes 6 s against a 300 ms deadline fails fast,
             naming the device and the arc, and both sides return to
             RUNNING; under --policy mandatory it succeeds with a warning.
  peer_kill  SIGKILL of the destination in the middle of a multi-GiB stream:
             the source fails within seconds, its group RUNNING again, its
             memory bounded.
  watch      `watch ID` shows progress while a migration runs;
             `migrations` lists it; `cancel ID` and Ctrl-C on `migrate`
             roll a running migration back on both sides.

Prints the measured throughput and downtime. Usage:
  migration_test.py --migctl PATH --migd PATH [-k NAME]
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemons import stop_process, wait_until  # noqa: E402

MiB = 1 << 20
GiB = 1 << 30
# Exit codes documented in `vfio-migctl --help`.
EXIT_NOT_MIGRATABLE, EXIT_FAILED, EXIT_CANCELLED = 3, 4, 5
EXIT_ALREADY_ENDED = 7
# The source daemon must not hold device states in memory: it streams them.
RSS_LIMIT_KIB = 256 * 1024

RESULTS = {}  # figures for the lead, printed at the end


def describe(proc, wanted):
    return (f"wanted {wanted}; `{' '.join(proc.args)}` gave rc="
            f"{proc.returncode}\nstdout: {proc.stdout[-4000:]!r}\n"
            f"stderr: {proc.stderr[-2000:]!r}")


class Daemon:
    def __init__(self, migd, tmp, name, devices, extra=()):
        self.name = name
        self.config = os.path.join(tmp, f"{name}.json")
        with open(self.config, "w") as f:
            json.dump({"devices": devices}, f)
        self.server = "unix:" + os.path.join(tmp, f"{name}.sock")
        self.log_path = os.path.join(tmp, f"{name}.log")
        self.args = [migd, "--listen", self.server, "--backend", "sim",
                     "--sim-config", self.config, "--log-level", "info",
                     "--state-dir", os.path.join(tmp, f"{name}-state"),
                     *extra]
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(self.args, stdout=self.log,
                                     stderr=subprocess.STDOUT)

    def restart(self, ctl):
        """SIGTERM, then the same daemon again (same state dir), once it
        answers."""
        self.stop()
        self.log = open(self.log_path, "a")
        self.proc = subprocess.Popen(self.args, stdout=self.log,
                                     stderr=subprocess.STDOUT)
        wait_until(lambda: self.proc.poll() is None and ctl.run(
            self.server, "--timeout", "1", "devices", "--no-digest"
        ).returncode == 0, 30, f"{self.name} to answer after a restart", 0.1)

    def status_kib(self, key):
        """VmRSS / VmHWM of the daemon, in KiB."""
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
        raise AssertionError(f"no {key} in /proc/{self.proc.pid}/status")

    def stop(self):
        stop_process(self.proc)
        self.log.close()

    def tail(self, lines=40):
        with open(self.log_path) as f:
            return "".join(f.readlines()[-lines:])


class Ctl:
    def __init__(self, migctl):
        self.migctl = migctl

    def cmd(self, server, *args):
        return [self.migctl, "--server", server, *args]

    def run(self, server, *args, timeout=120):
        return subprocess.run(self.cmd(server, *args), capture_output=True,
                              text=True, timeout=timeout, env=clean_env())

    def popen(self, server, *args, stdout=subprocess.PIPE):
        return subprocess.Popen(self.cmd(server, *args), stdout=stdout,
                                stderr=subprocess.PIPE, text=True,
                                env=clean_env())

    def json(self, server, *args, expect_rc=0, timeout=120):
        proc = self.run(server, *args, timeout=timeout)
        assert proc.returncode == expect_rc, describe(proc, f"rc {expect_rc}")
        try:
            return json.loads(proc.stdout)
        except json.JSONDecodeError as e:
            raise AssertionError(describe(proc, f"JSON ({e})"))

    def devices(self, daemon, digests=False):
        args = ["devices", "--json"] + ([] if digests else ["--no-digest"])
        return {d["id"]: d for d in self.json(daemon.server, *args)}

    def states(self, daemon, ids):
        devices = self.devices(daemon)
        return {i: devices[i]["state"] for i in ids}

    def migrations(self, daemon):
        return {m["id"]: m for m in self.json(daemon.server, "migrations",
                                              "--json")}

    def running_migration(self, daemon, min_bytes=1):
        """The id of the daemon's in-progress migration once it has sent
        `min_bytes`, else None."""
        for m in self.migrations(daemon).values():
            if m["outcome"] == "IN_PROGRESS" and m["bytes_sent"] >= min_bytes:
                return m["id"]
        return None


def clean_env():
    return {k: v for k, v in os.environ.items() if k != "VFIO_MIGCTL_SERVER"}


def destination_of(devices, seed=1000):
    """The destination twin of a source config: same ids, features and
    sizes; other content (seed); idle (no dirtying, short drains), so that
    its digests stay put once it runs."""
    out = []
    for i, d in enumerate(devices):
        out.append({"id": d["id"], "features": d["features"],
                    "state_bytes": d.get("state_bytes", MiB),
                    "arc_latency_ms": 1, "drain_ms": 2, "seed": seed + i})
    return out


class Pair:
    """A source and a destination daemon, stopped on exit whatever
    happens."""

    def __init__(self, env, name, source_devices, destination_devices=None):
        self.env = env
        self.tmp = tempfile.mkdtemp(prefix=f"{name}-", dir=env.tmp)
        self.src = self.dst = None
        self.source_devices = source_devices
        self.destination_devices = (destination_devices or
                                    destination_of(source_devices))

    def __enter__(self):
        self.src = Daemon(self.env.migd, self.tmp, "src", self.source_devices)
        self.dst = Daemon(self.env.migd, self.tmp, "dst",
                          self.destination_devices)
        for daemon in (self.src, self.dst):
            def up(daemon=daemon):
                if daemon.proc.poll() is not None:
                    raise AssertionError(
                        f"{daemon.name} exited {daemon.proc.returncode}:\n"
                        f"{daemon.tail()}")
                return self.env.ctl.run(daemon.server, "--timeout", "1",
                                        "devices", "--no-digest"
                                        ).returncode == 0
            wait_until(up, 30, f"{daemon.name} daemon to answer", 0.1)
        return self

    def __exit__(self, exc_type, exc, tb):
        for daemon in (self.src, self.dst):
            if daemon is not None:
                daemon.stop()
        if exc_type is not None:
            for daemon in (self.src, self.dst):
                if daemon is not None:
                    print(f"--- {daemon.name} log (tail) ---\n{daemon.tail()}")
        return False

    def migrate(self, *args, **kwargs):
        return self.env.ctl.run(self.src.server, "migrate", "--to",
                                self.dst.server, *args, **kwargs)

    def all_running(self, ids):
        ctl = self.env.ctl
        src, dst = ctl.states(self.src, ids), ctl.states(self.dst, ids)
        return (all(s == "RUNNING" for s in src.values()) and
                all(s == "RUNNING" for s in dst.values()))

    def wait_all_running(self, ids, timeout=10):
        start = time.monotonic()
        try:
            wait_until(lambda: self.all_running(ids), timeout,
                       f"{ids} RUNNING on both sides", 0.1)
        except AssertionError:
            ctl = self.env.ctl
            raise AssertionError(
                f"not all RUNNING after {timeout}s: source "
                f"{ctl.states(self.src, ids)}, destination "
                f"{ctl.states(self.dst, ids)}")
        return time.monotonic() - start


def pre_copy(id, size, **extra):
    return {"id": id, "features": ["stop_copy", "p2p", "pre_copy"],
            "state_bytes": size, **extra}


def p2p_only(id, size, **extra):
    return {"id": id, "features": ["stop_copy", "p2p"], "state_bytes": size,
            **extra}


# --- scenarios --------------------------------------------------------------

def test_group(env):
    devices = [
        pre_copy("gpu0", "32MiB", precopy_bytes="24MiB",
                 dirty_bytes_per_s="8MiB", arc_latency_ms=2, drain_ms=10),
        pre_copy("gpu1", "24MiB", dirty_bytes_per_s="4MiB", arc_latency_ms=2,
                 drain_ms=10),
        p2p_only("nic0", "16MiB", arc_latency_ms=1, drain_ms=5),
        {"id": "acc0", "features": ["stop_copy"], "state_bytes": "1MiB"},
    ]
    group = ["gpu0", "gpu1", "nic0"]
    # gpu1 lands on a destination device of another name (--map); the
    # others keep their ids.
    target = {"gpu0": "gpu0", "gpu1": "gpu1b", "nic0": "nic0"}
    destination = destination_of(devices)
    destination[1]["id"] = "gpu1b"
    ctl = env.ctl
    with Pair(env, "group", devices, destination) as pair:
        # A group with a device that lacks P2P is refused, with the reason,
        # before anything is touched.
        proc = pair.migrate("--devices", "gpu0,acc0", "--json")
        assert proc.returncode == EXIT_NOT_MIGRATABLE, describe(proc, "rc 3")
        assert "acc0" in proc.stderr and "P2P" in proc.stderr, proc.stderr
        assert proc.stdout == "", describe(proc, "nothing on stdout (--json)")
        assert pair.all_running(["gpu0", "acc0"])

        proc = pair.migrate("--devices", ",".join(group), "--map",
                            "gpu1=gpu1b", "--json")
        assert proc.returncode == 0, describe(proc, "rc 0")
        result = json.loads(proc.stdout)
        assert result["outcome"] == "SUCCEEDED", result
        assert result["phase"] == "DONE", result
        assert result["error"] == "" and result["failed_device"] == "", result
        assert [d["device"] for d in result["devices"]] == group, result
        for d in result["devices"]:
            assert d["target"] == target[d["device"]], d
            assert d["source_state"] == "STOP", d
            assert d["destination_state"] == "RUNNING", d
            assert d["bytes_sent"] > 0, d
        total = (32 + 24 + 16) * MiB
        assert result["bytes_sent"] >= total, result
        assert result["downtime_ms"] > 0, result
        assert result["throughput_mib_s"] > 0, result
        assert result["devices"][0]["pre_copy_bytes"] >= 24 * MiB, result

        # Content: each destination device now holds its source's final
        # state (the source is STOP, so its content no longer changes).
        src = ctl.devices(pair.src, digests=True)
        dst = ctl.devices(pair.dst, digests=True)
        for device in group:
            twin = dst[target[device]]
            assert src[device]["state"] == "STOP", src[device]
            assert twin["state"] == "RUNNING", twin
            assert twin["digest"] == src[device]["digest"], \
                f"{device}: destination {twin['id']} digest " \
                f"{twin['digest']} != source {src[device]['digest']}"
        assert src["acc0"]["state"] == "RUNNING", src["acc0"]

        listed = ctl.migrations(pair.src)
        assert listed[result["id"]]["outcome"] == "SUCCEEDED", listed
        assert listed[result["id"]]["role"] == "source", listed
        incoming = ctl.migrations(pair.dst)
        assert incoming[result["id"]]["role"] == "destination", incoming

        # The history survives a restart of both daemons (the journal in
        # --state-dir), with the outcome and the figures.
        for daemon in (pair.src, pair.dst):
            daemon.restart(ctl)
        again = ctl.migrations(pair.src)[result["id"]]
        for key in ("outcome", "role", "bytes_sent", "downtime_ms",
                    "started_unix_ms", "finished_unix_ms"):
            assert again[key] == listed[result["id"]][key], (key, again)
        again = ctl.migrations(pair.dst)[result["id"]]
        assert again["outcome"] == "SUCCEEDED", again
        assert again["role"] == "destination", again
        RESULTS["group"] = (
            f"{result['bytes_sent'] / MiB:.1f} MiB in "
            f"{result['duration_ms']} ms, throughput "
            f"{result['throughput_mib_s']:.1f} MiB/s, downtime "
            f"{result['downtime_ms']} ms (predicted "
            f"{result['predicted_downtime_ms']} ms)")


def test_drain(env):
    devices = [
        pre_copy("gpu0", "8MiB", arc_latency_ms=1, drain_ms=5),
        # 6 s: far beyond the 300 ms deadline, so that "fails fast" and
        # "mandatory waits" stay distinguishable on a loaded machine.
        p2p_only("nic0", "4MiB", arc_latency_ms=1, drain_ms=6000),
    ]
    group = ["gpu0", "nic0"]
    ctl = env.ctl
    with Pair(env, "drain", devices) as pair:
        before = ctl.devices(pair.src, digests=True)
        start = time.monotonic()
        proc = pair.migrate("--devices", "gpu0,nic0", "--drain-timeout-ms",
                            "300", "--json")
        elapsed = time.monotonic() - start
        assert proc.returncode == EXIT_FAILED, describe(proc, "rc 4")
        assert elapsed < 4.5, f"failed after {elapsed:.2f}s, not well under " \
            f"the 6 s drain"
        result = json.loads(proc.stdout)
        # FAILED once rolled back; the hung drain holds the rollback for
        # 6 s, and the CLI does not wait that long for the verdict.
        assert result["outcome"] == "FAILED" or (
            result["outcome"] == "IN_PROGRESS" and
            result["phase"] == "ROLLING_BACK" and
            result.get("rollback_pending") is True), result
        assert result["failed_device"] == "nic0", result
        assert result["failed_arc"] == "RUNNING>RUNNING_P2P", result
        assert "nic0" in result["error"], result
        # The one-line error names the device and the arc too.
        assert "nic0" in proc.stderr and "RUNNING>RUNNING_P2P" in \
            proc.stderr, proc.stderr
        recovered = pair.wait_all_running(group, timeout=30)
        after = ctl.devices(pair.src, digests=True)
        for device in group:
            assert after[device]["digest"] == before[device]["digest"], \
                f"{device} content changed by the rolled-back migration"
        RESULTS["drain"] = (f"failed after {elapsed:.2f}s; both sides "
                            f"RUNNING {recovered:.1f}s later")

        # Mandatory: the late drain only warns; the migration goes through.
        start = time.monotonic()
        proc = pair.migrate("--devices", "gpu0,nic0", "--drain-timeout-ms",
                            "300", "--policy", "mandatory", "--json")
        elapsed = time.monotonic() - start
        assert proc.returncode == 0, describe(proc, "rc 0 (mandatory)")
        result = json.loads(proc.stdout)
        assert result["outcome"] == "SUCCEEDED", result
        assert result["policy"] == "mandatory", result
        assert any("nic0" in w for w in result["warnings"]), \
            f"no warning about the late nic0 drain: {result['warnings']}"
        assert elapsed >= 5.5, f"mandatory finished in {elapsed:.2f}s: did " \
            f"it wait for the drain at all?"
        src = ctl.devices(pair.src, digests=True)
        dst = ctl.devices(pair.dst, digests=True)
        for device in group:
            assert dst[device]["digest"] == src[device]["digest"], device


def test_peer_kill(env):
    devices = [
        pre_copy("big0", "4GiB", arc_latency_ms=1, drain_ms=2),
        p2p_only("nic0", "1MiB", arc_latency_ms=1, drain_ms=2),
    ]
    group = ["big0", "nic0"]
    ctl = env.ctl
    with Pair(env, "peer-kill", devices) as pair:
        out_path = os.path.join(pair.tmp, "migrate.out")
        with open(out_path, "w") as out:
            migrate = ctl.popen(pair.src.server, "migrate", "--devices",
                                ",".join(group), "--to", pair.dst.server,
                                stdout=out)
        try:
            rss = {"src": 0, "dst": 0}

            def moved_enough():
                rss["src"] = max(rss["src"], pair.src.status_kib("VmRSS"))
                rss["dst"] = max(rss["dst"], pair.dst.status_kib("VmRSS"))
                assert migrate.poll() is None, \
                    f"migrate ended early: rc {migrate.returncode}"
                return ctl.running_migration(pair.src, min_bytes=GiB)
            migration_id = wait_until(moved_enough, 60, "1 GiB to stream",
                                      0.05)
            moved = ctl.migrations(pair.src)[migration_id]["bytes_sent"]
            pair.dst.proc.kill()  # SIGKILL: no Abort, sockets just close
            pair.dst.proc.wait()
            killed = time.monotonic()
            rc = migrate.wait(timeout=60)
            reported = time.monotonic() - killed
            stderr = migrate.stderr.read()
        finally:
            if migrate.poll() is None:
                migrate.kill()
                migrate.wait()
        with open(out_path) as f:
            stdout = f.read()
        assert rc == EXIT_FAILED, f"rc {rc}\nstdout: {stdout[-3000:]}\n" \
            f"stderr: {stderr}"
        assert reported < 10, \
            f"failure reported {reported:.1f}s after the kill"
        assert "FAILED" in stdout and "Devices were left in" in stdout, stdout
        assert "destination states unknown" in stdout, stdout
        assert migration_id in stderr, stderr
        src_states = wait_until(
            lambda: (lambda s: s if all(v == "RUNNING" for v in s.values())
                     else None)(ctl.states(pair.src, group)),
            10, "the source group RUNNING again", 0.1)
        assert set(src_states.values()) == {"RUNNING"}, src_states
        final = ctl.migrations(pair.src)[migration_id]
        assert final["outcome"] == "FAILED", final
        hwm = pair.src.status_kib("VmHWM")
        assert hwm < RSS_LIMIT_KIB, \
            f"source daemon peaked at {hwm // 1024} MiB while streaming 4 GiB"
        assert rss["dst"] < RSS_LIMIT_KIB, \
            f"destination daemon used {rss['dst'] // 1024} MiB"
        RESULTS["peer_kill"] = (
            f"killed after {moved / GiB:.2f} GiB; failure reported "
            f"{reported:.2f}s later; source VmHWM {hwm // 1024} MiB, "
            f"destination VmRSS before the kill {rss['dst'] // 1024} MiB")


def test_watch(env):
    devices = [
        pre_copy("slow0", "2GiB", arc_latency_ms=2, drain_ms=2),
        p2p_only("nic0", "1MiB", arc_latency_ms=300, drain_ms=2),
        pre_copy("slow1", "2GiB", arc_latency_ms=2, drain_ms=2),
        p2p_only("nic1", "1MiB", arc_latency_ms=2, drain_ms=2),
    ]
    ctl = env.ctl
    with Pair(env, "watch", devices) as pair:
        migrate = ctl.popen(pair.src.server, "migrate", "--devices",
                            "slow0,nic0", "--to", pair.dst.server, "--json")
        try:
            migration_id = wait_until(lambda: ctl.running_migration(pair.src),
                                      30, "the migration to start")
            # --timeout bounds connecting only: the watch outlives it.
            watch = ctl.run(pair.src.server, "--timeout", "1", "watch",
                            migration_id)
            stdout, stderr = migrate.communicate(timeout=120)
        finally:
            if migrate.poll() is None:
                migrate.kill()
                migrate.wait()
        assert watch.returncode == 0, describe(watch, "rc 0")
        lines = watch.stdout.splitlines()
        end = [i for i, line in enumerate(lines)
               if line.endswith("] SUCCEEDED")]
        assert end, describe(watch, "a SUCCEEDED line")
        progress = [line for line in lines[:end[0]] if "] progress " in line]
        events = [line for line in lines[:end[0]] if line.startswith("[")]
        assert len(progress) >= 2 and len(events) >= 8, \
            describe(watch, "several progress events before the end")
        assert f"Migration {migration_id} SUCCEEDED" in watch.stdout, \
            watch.stdout
        watched = float(lines[end[0]].split("]")[0].strip("[ s"))
        assert watched > 1.5, f"the migration took only {watched}s: too " \
            f"short to show that --timeout does not cut the watch"
        assert migrate.returncode == 0, f"migrate rc {migrate.returncode}: " \
            f"{stderr}"
        assert json.loads(stdout)["id"] == migration_id, stdout

        listed = ctl.migrations(pair.src)
        assert listed[migration_id]["outcome"] == "SUCCEEDED", listed
        table = ctl.run(pair.src.server, "migrations")
        assert table.returncode == 0, describe(table, "rc 0")
        assert table.stdout.split()[:8] == [
            "ID", "ROLE", "OUTCOME", "PHASE", "DEVICES", "BYTES", "DOWNTIME",
            "STARTED"], table.stdout
        row = [line for line in table.stdout.splitlines()
               if line.startswith(migration_id)]
        assert row and "SUCCEEDED" in row[0] and "slow0,nic0" in row[0], \
            table.stdout
        again = ctl.json(pair.src.server, "watch", migration_id, "--json")
        assert again["outcome"] == "SUCCEEDED", again
        late = ctl.run(pair.src.server, "cancel", migration_id)
        assert late.returncode == EXIT_ALREADY_ENDED, describe(late, "rc 7")
        unknown = ctl.run(pair.src.server, "watch", "no-such-migration")
        assert unknown.returncode == 2, describe(unknown, "rc 2")

        # cancel ID: rolled back on both sides.
        group = ["slow1", "nic1"]
        migrate = ctl.popen(pair.src.server, "migrate", "--devices",
                            ",".join(group), "--to", pair.dst.server, "--json")
        try:
            migration_id = wait_until(
                lambda: ctl.running_migration(pair.src, min_bytes=64 * MiB),
                30, "the second migration to stream")
            cancel = ctl.run(pair.src.server, "cancel", migration_id)
            stdout, stderr = migrate.communicate(timeout=60)
        finally:
            if migrate.poll() is None:
                migrate.kill()
                migrate.wait()
        assert cancel.returncode == 0, describe(cancel, "rc 0")
        assert f"Migration {migration_id} CANCELLED" in cancel.stdout, \
            cancel.stdout
        assert migrate.returncode == EXIT_CANCELLED, \
            f"migrate rc {migrate.returncode}: {stderr}"
        assert json.loads(stdout)["outcome"] == "CANCELLED", stdout
        pair.wait_all_running(group)

        # Ctrl-C on migrate: cancels, waits for the rollback, exits 5.
        migrate = ctl.popen(pair.src.server, "migrate", "--devices",
                            ",".join(group), "--to", pair.dst.server)
        try:
            migration_id = wait_until(
                lambda: ctl.running_migration(pair.src, min_bytes=64 * MiB),
                30, "the third migration to stream")
            migrate.send_signal(signal.SIGINT)
            stdout, stderr = migrate.communicate(timeout=60)
        finally:
            if migrate.poll() is None:
                migrate.kill()
                migrate.wait()
        assert migrate.returncode == EXIT_CANCELLED, \
            f"rc {migrate.returncode}\nstdout: {stdout}\nstderr: {stderr}"
        assert "cancelling migration" in stdout, stdout
        assert ctl.migrations(pair.src)[migration_id]["outcome"] == \
            "CANCELLED"
        pair.wait_all_running(group)


TESTS = [test_group, test_drain, test_peer_kill, test_watch]


class Env:
    def __init__(self, migctl, migd, tmp):
        self.ctl = Ctl(migctl)
        self.migd = migd
        self.tmp = tmp


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--migctl", required=True)
    parser.add_argument("--migd", required=True)
    parser.add_argument("-k", help="run only tests whose name contains this")
    args = parser.parse_args()

    failures = ran = 0
    with tempfile.TemporaryDirectory(prefix="migration-e2e-") as tmp:
        env = Env(args.migctl, args.migd, tmp)
        for test in TESTS:
            if args.k and args.k not in test.__name__:
                continue
            ran += 1
            start = time.monotonic()
            try:
                test(env)
                print(f"PASS {test.__name__} "
                      f"({time.monotonic() - start:.1f}s)", flush=True)
            except Exception:  # noqa: BLE001 - report every failure
                failures += 1
                print(f"FAIL {test.__name__}", flush=True)
                traceback.print_exc(file=sys.stdout)
    for name, figures in RESULTS.items():
        print(f"MEASURED {name}: {figures}")
    print(f"{ran} tests, {failures} failed")
    return 1 if failures or ran == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
