#!/usr/bin/python3
"""vfio-migctl against a real vfio-migd with the sim backend.

Starts vfio-migd on a temporary unix socket with a temporary sim config, then
checks `devices` (JSON and table), `plan` (migratable P2P group with its
barriers, blocked group, --allow-no-p2p, unknown id), the VFIO_MIGCTL_SERVER
variable and the unreachable-daemon error.

Usage: migctl_daemon_test.py --migctl PATH --migd PATH
"""

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kernel_fsm_reference as ref  # noqa: E402

SIM_DEVICES = [
    {"id": "gpu0", "features": ["stop_copy", "p2p", "pre_copy"],
     "state_bytes": 1048576},
    {"id": "gpu1", "features": ["stop_copy", "p2p"], "state_bytes": 2097152},
    {"id": "nic0", "features": ["stop_copy"], "state_bytes": 65536},
    {"id": "nic1", "features": ["stop_copy", "pre_copy"],
     "state_bytes": 65536},
]
FEATURES = {d["id"]: d["features"] for d in SIM_DEVICES}
FLAGS = {d["id"]: sum(bit for bit, name in ref.FEATURE_NAMES.items()
                      if name in d["features"]) for d in SIM_DEVICES}
STATE = {name: i for i, name in enumerate(ref.NAMES)}

# Exit codes documented in `vfio-migctl --help`.
EXIT_DAEMON, EXIT_USAGE, EXIT_NOT_MIGRATABLE = 1, 2, 3


class Env:
    def __init__(self, migctl, socket_path):
        self.migctl = migctl
        self.server = "unix:" + socket_path

    def run(self, *args, server=True, env=None, timeout=30):
        cmd = [self.migctl]
        if server:
            cmd += ["--server", self.server]
        proc = subprocess.run(cmd + list(args), capture_output=True,
                              text=True, timeout=timeout,
                              env=env if env is not None else clean_env())
        return proc

    def json(self, *args, expect_rc=0):
        proc = self.run(*args)
        assert proc.returncode == expect_rc, describe(proc, f"exit {expect_rc}")
        try:
            return json.loads(proc.stdout)
        except json.JSONDecodeError as e:
            raise AssertionError(describe(proc, f"valid JSON ({e})"))


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items() if k != "VFIO_MIGCTL_SERVER"}
    env.update(extra)
    return env


def describe(proc, wanted):
    return (f"wanted {wanted}; `{' '.join(proc.args)}` gave rc="
            f"{proc.returncode}\nstdout: {proc.stdout!r}\n"
            f"stderr: {proc.stderr!r}")


# --- plan checks -----------------------------------------------------------

def check_plan_shape(plan):
    for key in ("migratable", "blockers", "source", "destination"):
        assert key in plan, f"plan JSON lacks '{key}': {plan}"
    assert isinstance(plan["migratable"], bool)
    for blocker in plan["blockers"]:
        assert set(blocker) >= {"device", "reason"}, blocker
    for side in ("source", "destination"):
        assert isinstance(plan[side], list), plan[side]
        for wave in plan[side]:
            assert isinstance(wave, list) and wave, f"{side} wave {wave!r}"
            for arc in wave:
                assert set(arc) >= {"device", "from", "to"}, arc
                assert arc["from"] in STATE and arc["to"] in STATE, arc


def arcs_by_device(waves):
    """device -> [(wave index, from, to)], checking one arc per wave."""
    out = {}
    for index, wave in enumerate(waves):
        seen = set()
        for arc in wave:
            assert arc["device"] not in seen, \
                f"{arc['device']} has two arcs in wave {index}: {wave}"
            seen.add(arc["device"])
            out.setdefault(arc["device"], []).append(
                (index, arc["from"], arc["to"]))
    return out


def check_chains(waves, devices, start, must_visit, end):
    """Each device's arcs chain from `start` to `end` through `must_visit`,
    and every arc is a single arc of the kernel FSM for its features."""
    by_device = arcs_by_device(waves)
    assert set(by_device) == set(devices), \
        f"plan covers {sorted(by_device)}, expected {sorted(devices)}"
    for device, arcs in by_device.items():
        state = start
        visited = [state]
        for index, frm, to in arcs:
            assert frm == state, f"{device}: arc {frm}->{to} in wave " \
                f"{index} does not start at {state}"
            nxt = ref.next_state(FLAGS[device], STATE[frm], STATE[to])
            assert nxt == STATE[to], f"{device}: {frm}->{to} is not a " \
                f"single kernel arc for {FEATURES[device]}"
            state = to
            visited.append(state)
        assert must_visit in visited, f"{device}: never reaches {must_visit}"
        assert state == end, f"{device}: ends in {state}, expected {end}"
    return by_device


def check_source_barrier(waves, p2p_devices):
    """Every P2P device is quiesced (RUNNING_P2P / PRE_COPY_P2P) in a wave
    before any arc of any device goes into STOP or STOP_COPY."""
    by_device = arcs_by_device(waves)
    stops = [i for i, wave in enumerate(waves)
             for arc in wave if arc["to"] in ("STOP", "STOP_COPY")]
    assert stops, "source plan never stops a device"
    for device in p2p_devices:
        quiesce = [i for i, _, to in by_device[device]
                   if to in ("RUNNING_P2P", "PRE_COPY_P2P")]
        assert quiesce, f"{device} never enters a P2P state on the source"
        assert quiesce[0] < min(stops), \
            f"{device} quiesces in wave {quiesce[0]} but a device stops in " \
            f"wave {min(stops)}"


def check_destination_barrier(waves, p2p_devices):
    """After the data, every P2P device is in RUNNING_P2P in a wave before
    any device enters RUNNING."""
    by_device = arcs_by_device(waves)
    running = [i for i, wave in enumerate(waves)
               for arc in wave if arc["to"] == "RUNNING"]
    assert running, "destination plan never resumes a device"
    for device in p2p_devices:
        arcs = by_device[device]
        resumed = [k for k, (_, _, to) in enumerate(arcs) if to == "RESUMING"]
        assert resumed, f"{device} never enters RESUMING"
        restore = [i for i, _, to in arcs[resumed[-1]:] if to == "RUNNING_P2P"]
        assert restore, f"{device} skips RUNNING_P2P after RESUMING"
        assert restore[0] < min(running), \
            f"{device} reaches RUNNING_P2P in wave {restore[0]} but a device " \
            f"enters RUNNING in wave {min(running)}"


def check_migratable_plan(plan, devices):
    check_plan_shape(plan)
    assert plan["migratable"] is True, f"expected migratable: {plan}"
    assert plan["blockers"] == [], plan["blockers"]
    p2p = [d for d in devices if "p2p" in FEATURES[d]]
    check_chains(plan["source"], devices, "RUNNING", "STOP_COPY", "STOP")
    check_chains(plan["destination"], devices, "RUNNING", "RESUMING",
                 "RUNNING")
    check_source_barrier(plan["source"], p2p)
    check_destination_barrier(plan["destination"], p2p)


# --- tests -----------------------------------------------------------------

def test_devices_json(env):
    devices = env.json("devices", "--json")
    assert isinstance(devices, list), devices
    by_id = {d["id"]: d for d in devices}
    assert sorted(by_id) == sorted(FEATURES), f"ids: {sorted(by_id)}"
    for device_id, device in by_id.items():
        assert device["features"] == FEATURES[device_id], \
            f"{device_id} features {device['features']}"
        assert device["state"] == "RUNNING", device
        assert device["backend"] == "sim", device
        assert device["migratable"] is True, device
        assert isinstance(device.get("digest"), str) and device["digest"], \
            f"{device_id}: no digest: {device}"
        if "stop_copy_bytes" in device:
            assert isinstance(device["stop_copy_bytes"], int), device
        assert "not_migratable_reason" not in device, device


def test_devices_table(env):
    proc = env.run("devices")
    assert proc.returncode == 0, describe(proc, "exit 0")
    lines = proc.stdout.splitlines()
    header = lines[0].split()
    for column in ("ID", "STATE", "FEATURES", "DIGEST", "MIGRATABLE"):
        assert column in header, f"table header {lines[0]!r} lacks {column}"
    for device_id in FEATURES:
        row = [line for line in lines[1:] if line.split()[0] == device_id]
        assert len(row) == 1, f"no single row for {device_id}:\n{proc.stdout}"
        assert "RUNNING" in row[0].split(), row[0]


def test_plan_p2p_group(env):
    plan = env.json("plan", "--devices", "gpu0,gpu1", "--json")
    check_migratable_plan(plan, ["gpu0", "gpu1"])
    assert plan["warnings"] == [], plan["warnings"]


def test_plan_human(env):
    proc = env.run("plan", "--devices", "gpu0,gpu1")
    assert proc.returncode == 0, describe(proc, "exit 0")
    out = proc.stdout
    assert out.startswith("MIGRATABLE: yes"), out
    assert "--- barrier ---" in out, out
    assert "Source waves" in out and "Destination waves" in out, out
    assert re.search(r"^\s+gpu1\s+RUNNING -> RUNNING_P2P\b", out, re.M), out
    assert re.search(r"^\s+gpu0\s+\w+ -> PRE_COPY_P2P\b", out, re.M), out


def test_plan_single_device_without_p2p(env):
    plan = env.json("plan", "--devices", "nic0", "--json")
    check_migratable_plan(plan, ["nic0"])


def test_plan_blocked(env):
    group = ["gpu0", "nic0", "nic1"]
    plan = env.json("plan", "--devices", ",".join(group), "--json",
                    expect_rc=EXIT_NOT_MIGRATABLE)
    check_plan_shape(plan)
    assert plan["migratable"] is False, plan
    blocked = [b["device"] for b in plan["blockers"]]
    assert sorted(blocked) == ["nic0", "nic1"], \
        f"expected one blocker per non-P2P device: {plan['blockers']}"
    for blocker in plan["blockers"]:
        assert blocker["reason"].strip(), blocker

    proc = env.run("plan", "--devices", ",".join(group))
    assert proc.returncode == EXIT_NOT_MIGRATABLE, describe(proc, "exit 3")
    assert proc.stdout.startswith("MIGRATABLE: no"), proc.stdout
    section = proc.stdout.split("Blockers:", 1)
    assert len(section) == 2, proc.stdout
    for device in ("nic0", "nic1"):
        assert re.search(rf"^\s+{device}\s+\S", section[1], re.M), proc.stdout


def test_plan_allow_no_p2p(env):
    group = ["gpu0", "nic0", "nic1"]
    plan = env.json("plan", "--devices", ",".join(group), "--allow-no-p2p",
                    "--json")
    check_migratable_plan(plan, group)
    assert plan["warnings"], f"accepted risk without a warning: {plan}"


def test_plan_unknown_device(env):
    proc = env.run("plan", "--devices", "gpu0,nosuchdev", "--json")
    assert proc.returncode not in (0, EXIT_NOT_MIGRATABLE), \
        describe(proc, "an error exit")
    assert proc.returncode == EXIT_USAGE, describe(proc, "exit 2")
    assert "nosuchdev" in proc.stderr, describe(proc, "the id on stderr")
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert proc.stdout == "", proc.stdout


def test_server_env(env):
    proc = env.run("devices", "--json", server=False,
                   env=clean_env(VFIO_MIGCTL_SERVER=env.server))
    assert proc.returncode == 0, describe(proc, "the env var honoured")
    # The flag wins over the environment, both ways round.
    proc = env.run("devices", "--json",
                   env=clean_env(VFIO_MIGCTL_SERVER="unix:/nonexistent.sock"))
    assert proc.returncode == 0, describe(proc, "--server to win")
    proc = env.run("--server", "unix:/nonexistent.sock", "devices",
                   server=False, env=clean_env(VFIO_MIGCTL_SERVER=env.server))
    assert proc.returncode == EXIT_DAEMON, describe(proc, "--server to win")


def test_unreachable(env):
    missing = os.path.join(os.path.dirname(env.server[5:]), "absent.sock")
    for args in (["devices"], ["devices", "--json"],
                 ["plan", "--devices", "gpu0"]):
        start = time.monotonic()
        proc = env.run("--server", "unix:" + missing, *args, server=False)
        elapsed = time.monotonic() - start
        assert proc.returncode == EXIT_DAEMON, describe(proc, "exit 1")
        assert elapsed < 10, f"took {elapsed:.1f}s to give up"
        assert proc.stdout == "", proc.stdout
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1, describe(proc, "one error line")
        assert lines[0].startswith(
            f"vfio-migctl: cannot reach vfio-migd at unix:{missing}: "), \
            lines[0]


TESTS = [test_devices_json, test_devices_table, test_plan_p2p_group,
         test_plan_human, test_plan_single_device_without_p2p,
         test_plan_blocked, test_plan_allow_no_p2p, test_plan_unknown_device,
         test_server_env, test_unreachable]


def start_daemon(migd, migctl, tmp):
    config = os.path.join(tmp, "sim.json")
    with open(config, "w") as f:
        json.dump({"devices": SIM_DEVICES}, f)
    socket_path = os.path.join(tmp, "migd.sock")
    log = open(os.path.join(tmp, "migd.log"), "w+")
    daemon = subprocess.Popen(
        [migd, "--listen", "unix:" + socket_path, "--backend", "sim",
         "--sim-config", config, "--state-dir", os.path.join(tmp, "state")],
        stdout=log, stderr=subprocess.STDOUT)
    env = Env(migctl, socket_path)
    deadline = time.monotonic() + 30
    while True:
        if daemon.poll() is not None:
            log.seek(0)
            raise RuntimeError(f"vfio-migd exited with {daemon.returncode}:\n"
                               f"{log.read()}")
        if env.run("--timeout", "1", "devices").returncode == 0:
            return daemon, env, log
        if time.monotonic() > deadline:
            daemon.kill()
            log.seek(0)
            raise RuntimeError(f"vfio-migd never answered:\n{log.read()}")
        time.sleep(0.1)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--migctl", required=True)
    parser.add_argument("--migd", required=True)
    parser.add_argument("-k", help="run only tests whose name contains this")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="migctl-test-") as tmp:
        daemon, env, log = start_daemon(args.migd, args.migctl, tmp)
        failures = 0
        try:
            for test in TESTS:
                if args.k and args.k not in test.__name__:
                    continue
                try:
                    test(env)
                    print(f"PASS {test.__name__}")
                except Exception:  # noqa: BLE001 - report every failure
                    failures += 1
                    print(f"FAIL {test.__name__}")
                    traceback.print_exc(file=sys.stdout)
            if daemon.poll() is not None:
                failures += 1
                print(f"FAIL vfio-migd died with {daemon.returncode}")
        finally:
            if daemon.poll() is None:
                daemon.send_signal(signal.SIGTERM)
                try:
                    daemon.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    daemon.kill()
                    daemon.wait()
            if failures:
                log.seek(0)
                print("--- vfio-migd log ---\n" + log.read())
            log.close()
    print(f"{len(TESTS)} tests, {failures} failed" if not args.k
          else f"{failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
