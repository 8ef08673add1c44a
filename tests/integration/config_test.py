#!/usr/bin/python3
"""The config file of real vfio-migd processes, driven by the real
vfio-migctl.

  serve      a daemon configured only by its file (listen, backend, devices,
             log level) serves what the file says; flags override the file.
  refuse     a wrong file stops the daemon at once with FILE:LINE:COLUMN
             and the reason, before it listens.
  drivers    [drivers.sim] gives the sim driver's devices longer drains than
             the daemon's default, on both sides of a migration (the
             destination runs with the deadlines the source sends); a
             migration's own --drain-timeout-ms still beats it.
  policy     migration.policy is the policy of a request that names none.

Usage: config_test.py --migd build/daemon/vfio-migd
                      --migctl build/client/vfio-migctl
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemons import stop_process, wait_until  # noqa: E402


class Env:
    def __init__(self, migd, migctl, tmp):
        self.migd, self.migctl, self.tmp = migd, migctl, tmp
        self.daemons = []

    def write(self, name, text):
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def sim(self, name, devices):
        return self.write(f"{name}.json", json.dumps({"devices": devices}))

    def start(self, name, args):
        log = open(os.path.join(self.tmp, f"{name}.log"), "w+")
        # Each daemon its own journal (two cannot share a --state-dir).
        proc = subprocess.Popen(
            [self.migd, "--state-dir",
             os.path.join(self.tmp, f"{name}-state"), *args],
            stdout=log, stderr=subprocess.STDOUT)
        self.daemons.append((proc, log))
        return proc, log

    def ctl(self, server, *args, timeout=60):
        env = {k: v for k, v in os.environ.items()
               if k != "VFIO_MIGCTL_SERVER"}
        return subprocess.run([self.migctl, "--server", server, *args],
                              capture_output=True, text=True,
                              timeout=timeout, env=env)

    def wait_serving(self, proc, log, server):
        def up():
            if proc.poll() is not None:
                log.seek(0)
                raise AssertionError(f"daemon exited {proc.returncode}:\n"
                                     f"{log.read()}")
            return self.ctl(server, "--timeout", "1", "devices",
                            "--no-digest").returncode == 0
        wait_until(up, 30, f"daemon on {server}")

    def stop_all(self):
        for proc, log in self.daemons:
            stop_process(proc)
            log.close()
        self.daemons = []


def device(id, drain_ms=0):
    return {"id": id, "features": ["stop_copy", "p2p"],
            "state_bytes": "256KiB", "arc_latency_ms": 1,
            "drain_ms": drain_ms}


def test_serve(env):
    sock = os.path.join(env.tmp, "serve.sock")
    sim = env.sim("serve", [device("gpu0"), device("gpu1"), device("nic0")])
    config = env.write("serve.toml", f"""
# Everything from the file; nothing on the command line but --config.
[server]
listen = ["unix:{sock}"]
[log]
level = "debug"
[backend]
name = "sim"
sim_config = "{sim}"
devices = ["gpu0", "nic0"]
""")
    proc, log = env.start("serve", ["--config", config])
    env.wait_serving(proc, log, "unix:" + sock)
    listed = json.loads(env.ctl("unix:" + sock, "devices", "--json",
                                "--no-digest").stdout)
    assert sorted(d["id"] for d in listed) == ["gpu0", "nic0"], listed
    log.seek(0)
    text = log.read()
    assert f"read config file {config}" in text, text
    assert " debug " in text, "log.level = debug did not apply:\n" + text
    env.stop_all()

    # A flag beats the file's key: --devices replaces backend.devices and
    # --log-level replaces log.level.
    proc, log = env.start("serve2", ["--config", config, "--devices", "gpu1",
                                     "--log-level", "warn"])
    env.wait_serving(proc, log, "unix:" + sock)
    listed = json.loads(env.ctl("unix:" + sock, "devices", "--json",
                                "--no-digest").stdout)
    assert [d["id"] for d in listed] == ["gpu1"], listed
    log.seek(0)
    text = log.read()
    assert " info " not in text and " debug " not in text, text
    env.stop_all()
    return "file alone serves; --devices and --log-level override it"


def test_refuse(env):
    sock = os.path.join(env.tmp, "refuse.sock")
    config = env.write("refuse.toml", f"""[server]
listen = ["unix:{sock}"]

[migration]
drain_timeout_ms = 5000
arc_timeout_ms = "10s"
""")
    start = time.monotonic()
    proc = subprocess.run([env.migd, "--config", config], capture_output=True,
                          text=True, timeout=30)
    elapsed = time.monotonic() - start
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    want = (f"vfio-migd: {config}:6:18: migration.arc_timeout_ms: must be an "
            f"integer, not a string\n")
    assert proc.stderr == want, repr(proc.stderr)
    assert not os.path.exists(sock), "it listened before refusing"
    return f"refused in {elapsed:.2f}s: {proc.stderr.strip()}"


def migrate(env, src, dst, *args):
    proc = env.ctl(src, "migrate", "--to", dst, "--json", *args, timeout=120)
    try:
        result = json.loads(proc.stdout)
    except json.JSONDecodeError:
        raise AssertionError(f"rc {proc.returncode}\nstdout {proc.stdout}\n"
                             f"stderr {proc.stderr}")
    return proc.returncode, result


def states(env, server):
    listed = json.loads(env.ctl(server, "devices", "--json",
                                "--no-digest").stdout)
    return {d["id"]: d["state"] for d in listed}


def pair(env, name, source_toml, source_drain, destination_drain):
    """A source configured by `source_toml` and a destination whose default
    drain deadline is 300 ms, each with nic0 draining for the given time."""
    src_sock = "unix:" + os.path.join(env.tmp, f"{name}-src.sock")
    dst_sock = "unix:" + os.path.join(env.tmp, f"{name}-dst.sock")
    src_sim = env.sim(f"{name}-src", [device("nic0", source_drain)])
    dst_sim = env.sim(f"{name}-dst", [device("nic0", destination_drain)])
    config = env.write(f"{name}.toml", f"""
[server]
listen = ["{src_sock}"]
[backend]
name = "sim"
sim_config = "{src_sim}"
{source_toml}
""")
    src = env.start(f"{name}-src", ["--config", config])
    dst = env.start(f"{name}-dst", ["--listen", dst_sock, "--backend", "sim",
                                    "--sim-config", dst_sim,
                                    "--drain-timeout-ms", "300"])
    env.wait_serving(*src, src_sock)
    env.wait_serving(*dst, dst_sock)
    return src_sock, dst_sock, src[1]


def test_drivers(env):
    src, dst, src_log = pair(env, "drivers", """
[migration]
drain_timeout_ms = 300
[drivers.sim]
drain_timeout_ms = 10000
""", source_drain=800, destination_drain=800)
    src_log.seek(0)
    assert "driver sim: drain timeout 10000 ms" in src_log.read()

    # The request's own deadline beats the driver's: the 800 ms drain of
    # nic0 passes 300 ms, and the group rolls back (sla).
    rc, result = migrate(env, src, dst, "--devices", "nic0",
                         "--drain-timeout-ms", "300")
    assert rc != 0 and result["outcome"] != "SUCCEEDED", result
    assert "300" in result.get("error", ""), result
    wait_until(lambda: states(env, src) == {"nic0": "RUNNING"}, 10,
               "nic0 RUNNING on the source again")

    # No deadline in the request: the driver's 10 s apply to the source's
    # drains and, sent along, to the destination's, whose own default is
    # 300 ms: an 800 ms drain on either side would fail the migration.
    start = time.monotonic()
    rc, result = migrate(env, src, dst, "--devices", "nic0")
    elapsed = time.monotonic() - start
    assert rc == 0 and result["outcome"] == "SUCCEEDED", result
    assert result["drain_timeout_ms"] == 300, result
    assert states(env, dst) == {"nic0": "RUNNING"}
    env.stop_all()
    return (f"request 300 ms: rolled back; driver 10 s: succeeded in "
            f"{elapsed:.1f}s through 800 ms drains on both sides")


def test_policy(env):
    src, dst, _ = pair(env, "policy", """
[migration]
policy = "mandatory"
drain_timeout_ms = 300
""", source_drain=600, destination_drain=0)
    rc, result = migrate(env, src, dst, "--devices", "nic0")
    assert rc == 0 and result["outcome"] == "SUCCEEDED", result
    assert result["policy"] == "mandatory", result
    assert any("nic0" in w for w in result["warnings"]), result
    env.stop_all()
    return "unspecified request ran mandatory: late drain warned, succeeded"


TESTS = [test_serve, test_refuse, test_drivers, test_policy]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--migd", required=True)
    parser.add_argument("--migctl", required=True)
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="vmd-config-")
    env = Env(args.migd, args.migctl, tmp)
    failed = 0
    try:
        for test in TESTS:
            try:
                print(f"{test.__name__}: {test(env)}")
            except Exception:
                failed += 1
                import traceback
                traceback.print_exc()
                for proc, log in env.daemons:
                    log.seek(0)
                    print(f"--- daemon {proc.args} ---\n{log.read()[-3000:]}")
            finally:
                env.stop_all()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("FAILED" if failed else "OK")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
