#!/usr/bin/python3
"""Who may talk to vfio-migd: real daemons and the real CLI.

  tls       certificates from deploy/make-test-certs.sh (two CAs). A
            migration between two daemons over TCP with mutual TLS
            succeeds; an unauthenticated TCP peer (plaintext, TLS without a
            client certificate, a certificate from another CA) is refused
            and the daemon serves on; a source whose certificate another CA
            signed cannot migrate, and both sides keep their devices
            RUNNING; vfio-migctl needs TLS files (or --insecure) for TCP.
  startup   TCP without TLS files and without --insecure refuses to start,
            so do unsound TLS files, TLS with --insecure, an abstract
            socket without --insecure; --insecure starts with a warning.
  socket    the control socket is mode 0660 with --socket-group; a
            world-writable or foreign socket directory and an unknown group
            refuse to start.

Usage:
  security_test.py --migd PATH --migctl PATH --certs-script PATH \
      --proto-dir api --proto-dir tests/integration/protos --gen-dir DIR \
      [--protoc PATH --grpc-python-plugin PATH]
"""

import argparse
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_test import generate_stubs  # noqa: E402
from daemons import stop_process, wait_until  # noqa: E402

ARGS = None
MiB = 1 << 20
EXIT_FAILED = 4
EXIT_USAGE = 2
DEVICES = [
    {"id": "gpu0", "features": ["stop_copy", "p2p", "pre_copy"],
     "state_bytes": "8MiB", "arc_latency_ms": 1, "drain_ms": 1},
    {"id": "nic0", "features": ["stop_copy", "p2p"], "state_bytes": "2MiB",
     "arc_latency_ms": 1, "drain_ms": 1},
]


def clean_env():
    return {k: v for k, v in os.environ.items()
            if not k.startswith("VFIO_MIGCTL_")}


class Daemon:
    """A vfio-migd with a unix control socket and optional extra targets."""

    def __init__(self, tmp, name, extra=(), devices=DEVICES, seed=0):
        self.name = name
        self.socket_path = os.path.join(tmp, name, "d.sock")
        self.target = "unix:" + self.socket_path
        config = os.path.join(tmp, name + ".json")
        with open(config, "w") as f:
            json.dump({"devices": [dict(d, seed=seed + i)
                                   for i, d in enumerate(devices)]}, f)
        self.log_path = os.path.join(tmp, name + ".log")
        self._log = open(self.log_path, "w")
        # Each daemon its own journal: two cannot share a --state-dir.
        self.args = [ARGS.migd, "--listen", self.target, "--backend", "sim",
                     "--sim-config", config, "--log-level", "info",
                     "--state-dir", os.path.join(tmp, name + "-state"),
                     *extra]
        self.proc = subprocess.Popen(self.args, stdout=self._log,
                                     stderr=subprocess.STDOUT)

    def log(self):
        with open(self.log_path) as f:
            return f.read()

    def wait_up(self):
        def up():
            if self.proc.poll() is not None:
                raise AssertionError("%s exited %d:\n%s" %
                                     (self.name, self.proc.returncode,
                                      self.log()))
            return "backend sim manages" in self.log() and ctl(
                self.target, "--timeout", "1", "devices",
                "--no-digest").returncode == 0
        wait_until(up, 30, self.name + " to serve", 0.1)
        return self

    def tcp_endpoint(self):
        """The host:port the daemon chose for --listen 127.0.0.1:0."""
        match = re.search(r"vfio-migd \S+ listening on [^;]*?(127\.0\.0\.1:\d+)",
                          self.log())
        assert match, self.log()
        return match.group(1)

    def wait_exit(self, timeout=10):
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            self._log.close()

    def stop(self):
        stop_process(self.proc)
        if not self._log.closed:
            self._log.close()


def ctl(server, *args, timeout=120):
    return subprocess.run([ARGS.migctl, "--server", server, *args],
                          capture_output=True, text=True, timeout=timeout,
                          env=clean_env())


def describe(proc):
    return "rc %d\nstdout: %s\nstderr: %s" % (proc.returncode,
                                              proc.stdout[-3000:],
                                              proc.stderr[-2000:])


class Certs:
    """Two CAs: `good` signed src, dst and ctl; `other` signed rogue."""

    def __init__(self, tmp):
        self.good = os.path.join(tmp, "pki-good")
        self.other = os.path.join(tmp, "pki-other")
        subprocess.run(["bash", ARGS.certs_script, self.good, "src", "dst",
                        "ctl"], check=True, capture_output=True)
        subprocess.run(["bash", ARGS.certs_script, "--ca-name", "other CA",
                        self.other, "rogue"], check=True, capture_output=True)

    def flags(self, host, ca_dir=None, cert_dir=None):
        ca_dir = ca_dir or self.good
        cert_dir = cert_dir or ca_dir
        return ["--tls-ca", os.path.join(ca_dir, "ca.pem"),
                "--tls-cert", os.path.join(cert_dir, host + ".pem"),
                "--tls-key", os.path.join(cert_dir, host + ".key")]


class SecurityTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="vmd-sec.", dir="/tmp")
        cls.certs = Certs(cls.tmp)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def setUp(self):
        self.daemons = []

    def tearDown(self):
        for daemon in self.daemons:
            daemon.stop()

    def daemon(self, name, extra=(), **kwargs):
        d = Daemon(self.tmp, "%s-%d" % (name, time.monotonic_ns()), extra,
                   **kwargs)
        self.daemons.append(d)
        return d

    def refuses_to_start(self, extra, *fragments, name="refused"):
        d = self.daemon(name, extra)
        rc = d.wait_exit(timeout=15)
        self.assertEqual(rc, 1, d.log())
        for fragment in fragments:
            self.assertIn(fragment, d.log())
        self.assertFalse(os.path.exists(d.socket_path), d.log())
        return d

    def tls_pair(self, source_flags):
        """A destination on TCP with mutual TLS, and a source."""
        dst = self.daemon("dst", ["--listen", "127.0.0.1:0",
                                  *self.certs.flags("dst")], seed=100)
        src = self.daemon("src", source_flags)
        dst.wait_up()
        src.wait_up()
        return src, dst

    # --- tls ---------------------------------------------------------------

    def test_a_migration_over_mutual_tls(self):
        src, dst = self.tls_pair(self.certs.flags("src"))
        endpoint = dst.tcp_endpoint()
        self.assertIn("with mutual TLS as CN=dst", dst.log())
        cli_tls = self.certs.flags("ctl")
        proc = ctl(src.target, "migrate", "--devices", "gpu0,nic0", "--to",
                   endpoint, "--json", *cli_tls)
        self.assertEqual(proc.returncode, 0, describe(proc))
        result = json.loads(proc.stdout)
        self.assertEqual(result["outcome"], "SUCCEEDED", result)
        # The CLI reached the destination over TLS for its report.
        for device in result["devices"]:
            self.assertEqual(device["destination_state"], "RUNNING", device)
        # Same content on both sides.
        before = json.loads(ctl(src.target, "devices", "--json").stdout)
        after = ctl(endpoint, "devices", "--json", *cli_tls)
        self.assertEqual(after.returncode, 0, describe(after))
        after = json.loads(after.stdout)
        self.assertEqual({d["id"]: d["digest"] for d in before},
                         {d["id"]: d["digest"] for d in after})
        # The destination logged who migrated into it.
        self.assertIn("(cert src)", dst.log())

    def test_the_cli_needs_tls_or_insecure_for_tcp(self):
        dst = self.daemon("dst", ["--listen", "127.0.0.1:0",
                                  *self.certs.flags("dst")]).wait_up()
        endpoint = dst.tcp_endpoint()
        proc = ctl(endpoint, "devices", "--no-digest")
        self.assertEqual(proc.returncode, EXIT_USAGE, describe(proc))
        self.assertIn("needs mutual TLS", proc.stderr)
        # Plaintext to a TLS listener: no handshake, no answer.
        proc = ctl(endpoint, "--insecure", "devices", "--no-digest")
        self.assertEqual(proc.returncode, 1, describe(proc))
        self.assertIn("cannot reach", proc.stderr)
        # A client certificate from another CA: refused.
        proc = ctl(endpoint, "devices", "--no-digest",
                   *self.certs.flags("rogue", self.certs.other))
        self.assertEqual(proc.returncode, 1, describe(proc))
        # The CLI refuses a mismatched set before dialling.
        proc = ctl(endpoint, "devices", "--no-digest",
                   *self.certs.flags("rogue", self.certs.good,
                                     self.certs.other))
        self.assertEqual(proc.returncode, EXIT_USAGE, describe(proc))
        self.assertIn("does not verify", proc.stderr)
        # The environment works as well as the flags.
        env = clean_env()
        flags = self.certs.flags("ctl")
        env.update({"VFIO_MIGCTL_TLS_CA": flags[1],
                    "VFIO_MIGCTL_TLS_CERT": flags[3],
                    "VFIO_MIGCTL_TLS_KEY": flags[5]})
        proc = subprocess.run([ARGS.migctl, "--server", endpoint, "devices",
                               "--no-digest"], capture_output=True, text=True,
                              timeout=60, env=env)
        self.assertEqual(proc.returncode, 0, describe(proc))

    def test_unauthenticated_tcp_peers_are_refused(self):
        import grpc
        from vfiomig.v1 import control_pb2, control_pb2_grpc
        from vfiomig.v1 import peer_pb2, peer_pb2_grpc
        dst = self.daemon("dst", ["--listen", "127.0.0.1:0",
                                  *self.certs.flags("dst")]).wait_up()
        endpoint = dst.tcp_endpoint()

        def read(path):
            with open(path, "rb") as f:
                return f.read()
        good_ca = read(os.path.join(self.certs.good, "ca.pem"))
        rogue = (read(os.path.join(self.certs.other, "rogue.key")),
                 read(os.path.join(self.certs.other, "rogue.pem")))
        ctl_cert = (read(os.path.join(self.certs.good, "ctl.key")),
                    read(os.path.join(self.certs.good, "ctl.pem")))
        channels = {
            "plaintext": grpc.insecure_channel(endpoint),
            "TLS without a client certificate": grpc.secure_channel(
                endpoint, grpc.ssl_channel_credentials(good_ca)),
            "a certificate from another CA": grpc.secure_channel(
                endpoint, grpc.ssl_channel_credentials(good_ca, *rogue)),
        }
        request = peer_pb2.PrepareRequest(migration_id="m-stranger",
                                          source_host="stranger")
        for what, channel in channels.items():
            with channel:
                with self.assertRaises(grpc.RpcError, msg=what) as caught:
                    peer_pb2_grpc.PeerServiceStub(channel).Prepare(
                        request, timeout=10)
                self.assertEqual(caught.exception.code(),
                                 grpc.StatusCode.UNAVAILABLE, what)
        # The good certificate gets through, to the same daemon.
        with grpc.secure_channel(endpoint, grpc.ssl_channel_credentials(
                good_ca, *ctl_cert)) as channel:
            listed = control_pb2_grpc.ControlServiceStub(channel).ListDevices(
                control_pb2.ListDevicesRequest(), timeout=10)
            self.assertEqual(len(listed.devices), len(DEVICES))
        self.assertNotIn("m-stranger", dst.log())

    def test_a_source_certified_by_another_ca_cannot_migrate(self):
        src, dst = self.tls_pair(self.certs.flags("rogue", self.certs.other))
        proc = ctl(src.target, "migrate", "--devices", "gpu0,nic0", "--to",
                   dst.tcp_endpoint(), "--json", timeout=120)
        self.assertEqual(proc.returncode, EXIT_FAILED, describe(proc))
        result = json.loads(proc.stdout)
        self.assertEqual(result["outcome"], "FAILED", result)
        self.assertIn(dst.tcp_endpoint(), result["error"])
        for daemon in (src, dst):
            states = {d["id"]: d["state"] for d in json.loads(
                ctl(daemon.target, "devices", "--json", "--no-digest").stdout)}
            self.assertEqual(set(states.values()), {"RUNNING"}, states)
        # Nothing of the migration reached the destination.
        self.assertNotIn(result["id"], dst.log())

    def test_a_tcp_destination_needs_tls_on_the_source(self):
        src, dst = self.tls_pair([])
        proc = ctl(src.target, "migrate", "--devices", "gpu0", "--to",
                   dst.tcp_endpoint())
        self.assertNotEqual(proc.returncode, 0, describe(proc))
        self.assertIn("needs mutual TLS", proc.stderr)
        states = {d["id"]: d["state"] for d in json.loads(
            ctl(src.target, "devices", "--json", "--no-digest").stdout)}
        self.assertEqual(states["gpu0"], "RUNNING")

    def test_insecure_allows_plaintext_tcp_with_a_warning(self):
        dst = self.daemon("dst", ["--listen", "127.0.0.1:0", "--insecure"],
                          seed=100).wait_up()
        src = self.daemon("src", ["--insecure"]).wait_up()
        self.assertIn("--insecure: listening on 127.0.0.1:0 without "
                      "authentication", dst.log())
        proc = ctl(src.target, "migrate", "--devices", "nic0", "--to",
                   dst.tcp_endpoint(), "--insecure", "--json")
        self.assertEqual(proc.returncode, 0, describe(proc))

    # --- startup -------------------------------------------------------------

    def test_startup_refusals(self):
        good = self.certs.flags("dst")
        self.refuses_to_start(["--listen", "127.0.0.1:0"],
                              "'127.0.0.1:0' is TCP and needs mutual TLS",
                              "--insecure")
        self.refuses_to_start(["--listen", "127.0.0.1:0", "--insecure",
                               *good], "cannot be combined")
        self.refuses_to_start(["--listen", "127.0.0.1:0", *good[:4]],
                              "needs all of --tls-ca, --tls-cert and --tls-key")
        self.refuses_to_start(
            ["--listen", "127.0.0.1:0",
             *self.certs.flags("rogue", self.certs.good, self.certs.other)],
            "does not verify against --tls-ca")
        self.refuses_to_start(["--listen", "unix-abstract:vmd-sec-test"],
                              "abstract unix socket", "--insecure")
        # Refused before the backend starts: no device line in the log.
        d = self.refuses_to_start(["--listen", "0.0.0.0:0"], "mutual TLS")
        self.assertNotIn("device gpu0", d.log())

    # --- socket --------------------------------------------------------------

    def test_the_control_socket_is_0660(self):
        d = self.daemon("sock").wait_up()
        st = os.lstat(d.socket_path)
        self.assertTrue(stat.S_ISSOCK(st.st_mode))
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o660)
        self.assertEqual(stat.S_IMODE(os.stat(os.path.dirname(
            d.socket_path)).st_mode), 0o750)

    @unittest.skipUnless(os.geteuid() == 0, "needs root to chown")
    def test_socket_group(self):
        d = self.daemon("group", ["--socket-group", "nogroup"]).wait_up()
        st = os.lstat(d.socket_path)
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o660)
        self.assertEqual(st.st_gid, 65534)
        self.assertEqual(os.stat(os.path.dirname(d.socket_path)).st_gid,
                         65534)

    def test_unsafe_socket_directories_and_groups_refuse_to_start(self):
        self.refuses_to_start(["--socket-group", "no-such-group-here"],
                              "no group 'no-such-group-here'")
        open_dir = os.path.join(self.tmp, "open")
        os.makedirs(open_dir, exist_ok=True)
        os.chmod(open_dir, 0o1777)
        target = "unix:" + os.path.join(open_dir, "d.sock")
        self.refuses_to_start(["--listen", target], "world-writable")
        self.assertFalse(os.path.exists(os.path.join(open_dir, "d.sock")))
        if os.geteuid() == 0:
            theirs = os.path.join(self.tmp, "theirs")
            os.makedirs(theirs, exist_ok=True)
            os.chown(theirs, 65534, 65534)
            os.chmod(theirs, 0o755)
            self.refuses_to_start(
                ["--listen", "unix:" + os.path.join(theirs, "d.sock")],
                "owned by uid 65534")


def main():
    global ARGS
    parser = argparse.ArgumentParser()
    parser.add_argument("--migd", required=True)
    parser.add_argument("--migctl", required=True)
    parser.add_argument("--certs-script", required=True)
    parser.add_argument("--proto-dir", action="append", required=True)
    parser.add_argument("--gen-dir", required=True)
    parser.add_argument("--protoc")
    parser.add_argument("--grpc-python-plugin")
    ARGS, rest = parser.parse_known_args()
    generate_stubs(ARGS.proto_dir, ARGS.gen_dir, ARGS.protoc,
                   ARGS.grpc_python_plugin)
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)


if __name__ == "__main__":
    main()
