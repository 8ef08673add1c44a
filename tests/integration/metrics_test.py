#!/usr/bin/python3
"""Prometheus metrics of real vfio-migd processes, scraped over HTTP while
the real vfio-migctl migrates a sim device group between them.

Checks the values against what the migration itself reports (vfio-migctl
--json): migrations by role and outcome, bytes streamed (exactly the bytes
sent), arc and drain histograms (one observation per arc of the plan),
devices by state, migrations running during the migration; and the format
itself with Prometheus's own checker (promtool check metrics) and with the
Python client's parser (python3-prometheus-client).

Usage: metrics_test.py --migd build/daemon/vfio-migd
                       --migctl build/client/vfio-migctl
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemons import stop_process, wait_until  # noqa: E402

MiB = 1 << 20


class Daemon:
    def __init__(self, migd, tmp, name, devices, extra=()):
        self.name = name
        sim = os.path.join(tmp, f"{name}.json")
        with open(sim, "w") as f:
            json.dump({"devices": devices}, f)
        self.server = "unix:" + os.path.join(tmp, f"{name}.sock")
        self.log_path = os.path.join(tmp, f"{name}.log")
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [migd, "--listen", self.server, "--backend", "sim",
             "--sim-config", sim, "--metrics-listen", "127.0.0.1:0",
             "--state-dir", os.path.join(tmp, f"{name}-state"), *extra],
            stdout=self.log, stderr=subprocess.STDOUT)
        self.url = wait_until(self.metrics_url, 30, f"{name} metrics URL")

    def metrics_url(self):
        if self.proc.poll() is not None:
            raise AssertionError(f"{self.name} exited: {self.text()}")
        m = re.search(r"metrics on (http://\S+/metrics)", self.text())
        return m and m.group(1)

    def text(self):
        with open(self.log_path) as f:
            return f.read()

    def scrape(self):
        with urllib.request.urlopen(self.url, timeout=5) as response:
            assert response.status == 200
            assert response.headers["Content-Type"].startswith(
                "text/plain; version=0.0.4"), response.headers
            return response.read().decode()

    def samples(self):
        """{(name, frozenset(labels)): value} of one scrape, through the
        Prometheus client's own parser."""
        out = {}
        for family in text_string_to_metric_families(self.scrape()):
            for s in family.samples:
                out[(s.name, frozenset(s.labels.items()))] = s.value
        return out

    def stop(self):
        stop_process(self.proc)
        self.log.close()


def value(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())))


def ctl(migctl, server, *args, timeout=120):
    env = {k: v for k, v in os.environ.items() if k != "VFIO_MIGCTL_SERVER"}
    return subprocess.run([migctl, "--server", server, *args],
                          capture_output=True, text=True, timeout=timeout,
                          env=env)


def promtool_check(text):
    proc = subprocess.run(["promtool", "check", "metrics"], input=text,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and not proc.stdout.strip(), (
        f"promtool check metrics: rc {proc.returncode}\n{proc.stdout}"
        f"{proc.stderr}")


def devices(features, drain_ms, latency_ms=1, **extra):
    return [{"id": id, "features": features, "state_bytes": size,
             "arc_latency_ms": latency_ms, "drain_ms": drain_ms, **extra}
            for id, size in (("gpu0", "24MiB"), ("gpu1", "8MiB"),
                             ("nic0", "3MiB"))]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--migd", required=True)
    parser.add_argument("--migctl", required=True)
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="vmd-metrics-")
    daemons = []
    try:
        p2p = ["stop_copy", "p2p"]
        # The source's devices drain for 400 ms, so the migration runs long
        # enough to be scraped while it runs.
        src = Daemon(args.migd, tmp, "src", devices(p2p, drain_ms=400))
        daemons.append(src)
        dst = Daemon(args.migd, tmp, "dst", devices(p2p, drain_ms=2, seed=7))
        daemons.append(dst)
        print(f"source metrics at {src.url}, destination at {dst.url}")

        before = src.samples()
        assert value(before, "vfiomig_devices", state="RUNNING") == 3, before
        assert value(before, "vfiomig_migrations_total", role="source",
                     outcome="succeeded") == 0
        promtool_check(src.scrape())

        ids = "gpu0,gpu1,nic0"
        migrate = subprocess.Popen(
            [args.migctl, "--server", src.server, "migrate", "--devices",
             ids, "--to", dst.server, "--json"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        during = wait_until(
            lambda: (lambda s: s if value(s, "vfiomig_migrations_running",
                                          role="source") == 1 else None)(
                src.samples()),
            30, "vfiomig_migrations_running{role=source} 1")
        print("during: source running",
              value(during, "vfiomig_migrations_running", role="source"))
        out, err = migrate.communicate(timeout=120)
        assert migrate.returncode == 0, (migrate.returncode, out, err)
        result = json.loads(out)
        assert result["outcome"] == "SUCCEEDED", result

        s, d = src.samples(), dst.samples()
        for text in (src.scrape(), dst.scrape()):
            promtool_check(text)

        assert value(s, "vfiomig_migrations_total", role="source",
                     outcome="succeeded") == 1
        assert value(s, "vfiomig_migrations_running", role="source") == 0
        assert value(d, "vfiomig_migrations_total", role="destination",
                     outcome="succeeded") == 1
        assert value(d, "vfiomig_migrations_running", role="destination") == 0

        # Bytes: exactly what the migration says it sent, on both sides.
        sent = result["bytes_sent"]
        assert sent >= 35 * MiB, result
        for samples, role in ((s, "source"), (d, "destination")):
            streamed = sum(value(samples, "vfiomig_stream_bytes_total",
                                 role=role, section=section)
                           for section in ("pre_copy", "stop_copy"))
            assert streamed == sent, (role, streamed, sent)

        # Arcs: the source plan RUNNING>RUNNING_P2P>STOP>STOP_COPY>STOP per
        # device; drains (the arcs into RUNNING_P2P and STOP, as the drain
        # deadline counts them: three per device) took >= 400 ms each.
        for arc in ("RUNNING>RUNNING_P2P", "RUNNING_P2P>STOP",
                    "STOP>STOP_COPY", "STOP_COPY>STOP"):
            assert value(s, "vfiomig_arc_duration_seconds_count",
                         arc=arc) == 3, (arc, s)
        drains = value(s, "vfiomig_drain_duration_seconds_count",
                       driver="sim")
        assert drains == 9, drains
        assert value(s, "vfiomig_drain_duration_seconds_bucket", driver="sim",
                     le="0.25") == 0, "a 400 ms drain counted below 250 ms"
        assert value(s, "vfiomig_drain_duration_seconds_sum",
                     driver="sim") >= 9 * 0.4
        # The destination's path (its planner's waves): quiesce and stop
        # the target devices, resume the state into them, run them; four of
        # those arcs per device are drains.
        for arc in ("RUNNING>RUNNING_P2P", "RUNNING_P2P>STOP",
                    "STOP>RESUMING", "RESUMING>STOP", "STOP>RUNNING_P2P",
                    "RUNNING_P2P>RUNNING"):
            got = value(d, "vfiomig_arc_duration_seconds_count", arc=arc)
            assert got == 3, (arc, got)
        got = value(d, "vfiomig_drain_duration_seconds_count", driver="sim")
        assert got == 12, got

        # Devices by state: stopped here, running there.
        assert value(s, "vfiomig_devices", state="STOP") == 3, s
        assert value(s, "vfiomig_devices", state="RUNNING") == 0
        assert value(d, "vfiomig_devices", state="RUNNING") == 3, d
        print(f"after: {sent} bytes streamed, {int(drains)} drains, "
              f"promtool check metrics clean")

        # A failed migration: the destination refuses unknown devices.
        proc = ctl(args.migctl, dst.server, "migrate", "--devices", "gpu1",
                   "--to", "unix:" + os.path.join(tmp, "nobody.sock"),
                   "--json")
        assert proc.returncode != 0
        d = dst.samples()
        assert value(d, "vfiomig_migrations_total", role="source",
                     outcome="failed") == 1, d
        # A listener that cannot bind stops the daemon at start, naming
        # the address.
        port = src.url.rsplit(":", 1)[1].split("/")[0]
        sim = os.path.join(tmp, "src.json")
        proc = subprocess.run(
            [args.migd, "--listen", "unix:" + os.path.join(tmp, "x.sock"),
             "--backend", "sim", "--sim-config", sim, "--metrics-listen",
             f"127.0.0.1:{port}"], capture_output=True, text=True,
            timeout=60)
        assert proc.returncode == 1, (proc.returncode, proc.stderr)
        assert f"metrics: cannot listen on 127.0.0.1:{port}" in proc.stderr, (
            proc.stderr)
        print("OK")
        return 0
    finally:
        for daemon in daemons:
            daemon.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
