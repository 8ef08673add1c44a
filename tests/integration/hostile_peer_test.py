#!/usr/bin/python3
"""A hostile or broken source against a real destination daemon.

Starts a destination vfio-migd (sim devices) and a source vfio-migd, and
runs a real migration between them (vfio-migctl migrate) while this script,
posing as another source, feeds the destination's peer API what the issue
names: garbage (non-protobuf requests, frames that are not frames, junk on
the socket), a truncated stream (cut between frames and inside one), a
replayed chunk, an oversized message, a second stream for the same device,
a header that is not the prepared one, and malformed Prepare requests.

Each attack must get a clear gRPC error (code and message naming what was
wrong), must abort only its own migration with the victim device RUNNING
again, and must leave the daemon serving: the real migration succeeds with
the right content, and the control API answers throughout.

Usage:
  hostile_peer_test.py --migd PATH --migctl PATH --proto-dir api \
      --proto-dir tests/integration/protos --gen-dir DIR \
      [--protoc PATH --grpc-python-plugin PATH]
"""

import argparse
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peer_frames as pf  # noqa: E402
from daemon_test import generate_stubs  # noqa: E402
from daemons import stop_process, wait_until  # noqa: E402

ARGS = None
MiB = 1 << 20
CALL_TIMEOUT_S = 20
# What the daemon accepts in one message (daemon/server.h kMaxMessageBytes).
MAX_MESSAGE_BYTES = 16 << 20

VICTIMS = ["v%d" % i for i in range(10)]
# The real migration: big enough to still stream while the attacks run.
LEGIT = {"id": "big0", "features": ["stop_copy", "p2p", "pre_copy"],
         "state_bytes": "768MiB", "arc_latency_ms": 1, "drain_ms": 2}


class Daemon:
    def __init__(self, tmp, name, devices):
        self.name = name
        self.socket_path = os.path.join(tmp, name + ".sock")
        self.target = "unix:" + self.socket_path
        config = os.path.join(tmp, name + ".json")
        with open(config, "w") as f:
            json.dump({"devices": devices}, f)
        self.log_path = os.path.join(tmp, name + ".log")
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [ARGS.migd, "--listen", self.target, "--backend", "sim",
             "--sim-config", config, "--log-level", "info",
             # Its own journal: two daemons cannot share a --state-dir.
             "--state-dir", os.path.join(tmp, name + "-state")],
            stdout=self._log, stderr=subprocess.STDOUT)

    def log(self):
        with open(self.log_path) as f:
            return f.read()

    def stop(self):
        stop_process(self.proc)
        self._log.close()


def migctl(server, *args, timeout=120):
    return subprocess.run([ARGS.migctl, "--server", server, *args],
                          capture_output=True, text=True, timeout=timeout)


class HostilePeerTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        import grpc
        from vfiomig.v1 import control_pb2_grpc, peer_pb2_grpc
        cls.grpc = grpc
        cls.tmp = tempfile.mkdtemp(prefix="vmd-hostile.", dir="/tmp")
        victims = [{"id": v, "features": ["stop_copy", "p2p"],
                    "state_bytes": "1MiB", "arc_latency_ms": 1,
                    "drain_ms": 1} for v in VICTIMS]
        dst_big = dict(LEGIT, seed=777)
        cls.dst = Daemon(cls.tmp, "dst", victims + [dst_big])
        cls.src = Daemon(cls.tmp, "src", [LEGIT])
        for daemon in (cls.dst, cls.src):
            def up(daemon=daemon):
                if daemon.proc.poll() is not None:
                    raise AssertionError("%s exited:\n%s" %
                                         (daemon.name, daemon.log()))
                return migctl(daemon.target, "--timeout", "1", "devices",
                              "--no-digest").returncode == 0
            wait_until(up, 30, daemon.name + " to answer", 0.1)
        cls.channel = grpc.insecure_channel(
            cls.dst.target,
            options=[("grpc.max_send_message_length", 64 * MiB)])
        cls.peer = peer_pb2_grpc.PeerServiceStub(cls.channel)
        cls.control = control_pb2_grpc.ControlServiceStub(cls.channel)
        cls.legit = None

    @classmethod
    def tearDownClass(cls):
        cls.channel.close()
        for daemon in (cls.src, cls.dst):
            daemon.stop()

    # --- helpers ------------------------------------------------------------

    def device(self, device_id):
        from vfiomig.v1 import control_pb2
        return self.control.GetDevice(control_pb2.GetDeviceRequest(
            id=device_id), timeout=CALL_TIMEOUT_S)

    def state(self, device_id):
        return self.device(device_id).state_name

    def header(self, migration_id, device_id):
        from vfiomig.v1 import stream_pb2
        device = self.device(device_id)
        return stream_pb2.StreamHeader(
            stream_version=1, source_host="attacker",
            migration_id=migration_id,
            device=stream_pb2.StreamDeviceIdentity(
                device_id=device_id, driver=device.driver,
                migration_flags=device.migration_flags, compatibility="sim"),
            stop_copy_bytes=MiB)

    def prepare(self, migration_id, device_id):
        """A valid Prepare: the victim enters RESUMING."""
        from vfiomig.v1 import peer_pb2
        header = self.header(migration_id, device_id)
        response = self.peer.Prepare(peer_pb2.PrepareRequest(
            migration_id=migration_id, source_host="attacker",
            devices=[peer_pb2.PeerDevice(source_device_id=device_id,
                                         target_device_id=device_id,
                                         header=header)]),
            timeout=CALL_TIMEOUT_S)
        self.assertTrue(response.ready, response)
        self.assertEqual(self.state(device_id), "RESUMING")
        return header

    def stream(self, messages):
        """StreamState with these messages; the RpcError it raised, or
        None when it succeeded."""
        try:
            self.peer.StreamState(iter(messages), timeout=CALL_TIMEOUT_S)
            return None
        except self.grpc.RpcError as error:
            return error

    def first(self, migration_id, device_id, frame_bytes):
        from vfiomig.v1 import peer_pb2
        return peer_pb2.StateFrame(migration_id=migration_id,
                                   target_device_id=device_id,
                                   frame=frame_bytes)

    @staticmethod
    def more(frame_bytes):
        from vfiomig.v1 import peer_pb2
        return peer_pb2.StateFrame(frame=frame_bytes)

    def header_frame(self, header):
        return pf.frame(pf.HEADER, 0, header.SerializeToString())

    def expect_error(self, error, codes, *fragments):
        self.assertIsNotNone(error, "the call succeeded")
        names = [c.name for c in codes]
        self.assertIn(error.code().name, names, error.details())
        for fragment in fragments:
            self.assertIn(fragment, error.details())

    def expect_aborted(self, migration_id, device_id):
        """The attack's migration failed and its victim runs again."""
        from vfiomig.v1 import control_pb2

        # A final outcome means the rollback is over (the victim is reset
        # to RUNNING before the record says so, not after).
        def final():
            m = self.control.GetMigration(control_pb2.GetMigrationRequest(
                id=migration_id), timeout=CALL_TIMEOUT_S)
            name = control_pb2.MigrationOutcome.Name(m.outcome)
            return m if name != "MIGRATION_OUTCOME_IN_PROGRESS" else None
        migration = wait_until(final, 10, migration_id + " to end")
        self.assertEqual(migration.role, "destination")
        self.assertNotEqual(
            control_pb2.MigrationOutcome.Name(migration.outcome),
            "MIGRATION_OUTCOME_SUCCEEDED", migration)
        self.assertEqual(self.state(device_id), "RUNNING", device_id)

    def expect_serving(self):
        from vfiomig.v1 import control_pb2
        listed = self.control.ListDevices(control_pb2.ListDevicesRequest(),
                                          timeout=CALL_TIMEOUT_S)
        self.assertEqual(len(listed.devices), len(VICTIMS) + 1)

    # --- the real migration, running under the attacks ----------------------

    def test_0_start_the_real_migration(self):
        type(self).legit = subprocess.Popen(
            [ARGS.migctl, "--server", self.src.target, "migrate", "--devices",
             "big0", "--to", self.dst.target, "--json"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

        def streaming():
            proc = migctl(self.src.target, "migrations", "--json")
            return proc.returncode == 0 and any(
                m["bytes_sent"] > 0 for m in json.loads(proc.stdout))
        wait_until(streaming, 30, "the real migration to stream")

    def test_z_the_real_migration_succeeded(self):
        self.assertIsNotNone(self.legit, "test_0 did not start it")
        stdout, stderr = self.legit.communicate(timeout=300)
        self.assertEqual(self.legit.returncode, 0, stderr)
        self.assertEqual(json.loads(stdout)["outcome"], "SUCCEEDED")
        src = json.loads(migctl(self.src.target, "devices", "--json").stdout)
        dst = json.loads(migctl(self.dst.target, "devices", "--json").stdout)
        digest = {d["id"]: d.get("digest") for d in dst}
        self.assertEqual(digest["big0"], src[0]["digest"])
        for victim in VICTIMS:
            self.assertEqual(self.state(victim), "RUNNING")
        # Every attack was logged as a refusal, one line each.
        log = self.dst.log()
        self.assertGreaterEqual(log.count("peer StreamState from"), 7, log)

    # --- attacks --------------------------------------------------------------

    def test_garbage_instead_of_a_request(self):
        for method in ("Prepare", "StreamState", "Commit"):
            path = "/vfiomig.v1.PeerService/" + method
            junk = bytes(random.Random(method).randrange(256)
                         for _ in range(4096))
            try:
                if method == "StreamState":
                    self.channel.stream_unary(
                        path, request_serializer=lambda b: b,
                        response_deserializer=lambda b: b)(
                            iter([junk]), timeout=CALL_TIMEOUT_S)
                else:
                    self.channel.unary_unary(
                        path, request_serializer=lambda b: b,
                        response_deserializer=lambda b: b)(
                            junk, timeout=CALL_TIMEOUT_S)
                error = None
            except self.grpc.RpcError as e:
                error = e
            self.assertIsNotNone(error, method)
            self.assertNotEqual(error.code(), self.grpc.StatusCode.UNAVAILABLE,
                                method + ": " + error.details())
        self.expect_serving()

    def test_garbage_on_the_socket(self):
        for junk in (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
                     bytes(random.Random(7).randrange(256)
                           for _ in range(65536))):
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(10)
                s.connect(self.dst.socket_path)
                try:
                    s.sendall(junk)
                    while s.recv(65536):
                        pass  # the daemon answers with GOAWAY, then closes
                except (ConnectionResetError, BrokenPipeError):
                    pass
                except socket.timeout:
                    self.fail("the daemon kept a junk connection open")
        self.expect_serving()

    def test_a_frame_that_is_not_a_frame(self):
        self.prepare("hostile-garbage", "v0")
        junk = bytes(random.Random(1).randrange(256) for _ in range(1000))
        error = self.stream([self.first("hostile-garbage", "v0", junk)])
        self.expect_error(error, [self.grpc.StatusCode.INVALID_ARGUMENT,
                                  self.grpc.StatusCode.DATA_LOSS],
                          "device v0", "frame 0")
        self.expect_aborted("hostile-garbage", "v0")

    def test_a_stream_cut_between_frames(self):
        header = self.prepare("hostile-cut", "v1")
        data = pf.frame(pf.PRE_COPY_DATA, 1, pf.sim_stream_header(MiB, 5))
        error = self.stream([
            self.first("hostile-cut", "v1", self.header_frame(header)),
            self.more(data)])
        self.expect_error(error, [self.grpc.StatusCode.DATA_LOSS],
                          "device v1", "END", "after 2 frames")
        self.expect_aborted("hostile-cut", "v1")

    def test_a_stream_cut_inside_a_frame(self):
        header = self.prepare("hostile-cut-frame", "v2")
        data = pf.frame(pf.PRE_COPY_DATA, 1, pf.sim_stream_header(MiB, 5))
        error = self.stream([
            self.first("hostile-cut-frame", "v2", self.header_frame(header)),
            self.more(data[:-7])])
        self.expect_error(error, [self.grpc.StatusCode.INVALID_ARGUMENT,
                                  self.grpc.StatusCode.DATA_LOSS],
                          "device v2", "frame 1")
        self.expect_aborted("hostile-cut-frame", "v2")

    def test_a_replayed_chunk(self):
        header = self.prepare("hostile-replay", "v3")
        data = pf.frame(pf.PRE_COPY_DATA, 1, pf.sim_stream_header(MiB, 5))
        error = self.stream([
            self.first("hostile-replay", "v3", self.header_frame(header)),
            self.more(data), self.more(data)])
        self.expect_error(error, [self.grpc.StatusCode.INVALID_ARGUMENT,
                                  self.grpc.StatusCode.DATA_LOSS],
                          "device v3", "frame 2", "sequence")
        self.expect_aborted("hostile-replay", "v3")

    def test_an_oversized_message(self):
        header = self.prepare("hostile-big", "v4")
        huge = pf.frame(pf.PRE_COPY_DATA, 1, b"\0" * (MAX_MESSAGE_BYTES + 1))
        error = self.stream([
            self.first("hostile-big", "v4", self.header_frame(header)),
            self.more(huge)])
        self.expect_error(error, [self.grpc.StatusCode.RESOURCE_EXHAUSTED])
        self.expect_aborted("hostile-big", "v4")

    def test_an_oversized_frame_within_the_message_limit(self):
        # 9 MiB of payload: a valid gRPC message, but larger than any frame.
        header = self.prepare("hostile-big-frame", "v5")
        big = pf.frame(pf.PRE_COPY_DATA, 1, b"\0" * (9 * MiB))
        error = self.stream([
            self.first("hostile-big-frame", "v5", self.header_frame(header)),
            self.more(big)])
        self.expect_error(error, [self.grpc.StatusCode.INVALID_ARGUMENT,
                                  self.grpc.StatusCode.RESOURCE_EXHAUSTED,
                                  self.grpc.StatusCode.DATA_LOSS],
                          "device v5", "frame 1")
        self.expect_aborted("hostile-big-frame", "v5")

    def test_a_second_stream_for_the_same_device(self):
        header = self.prepare("hostile-twice", "v6")
        release = threading.Event()

        def first_stream():
            yield self.first("hostile-twice", "v6", self.header_frame(header))
            release.wait(CALL_TIMEOUT_S)
            yield self.more(pf.frame(pf.PRE_COPY_DATA, 1,
                                     pf.sim_stream_header(MiB, 5)))
        future = self.peer.StreamState.future(first_stream(),
                                              timeout=CALL_TIMEOUT_S)
        try:
            wait_until(lambda: "device v6: stream opened" in self.dst.log(),
                       10, "the first stream to open")
            error = self.stream([self.first("hostile-twice", "v6",
                                            self.header_frame(header))])
            self.expect_error(error, [self.grpc.StatusCode.ALREADY_EXISTS],
                              "v6", "already has a stream")
        finally:
            release.set()
        first_error = future.exception(timeout=CALL_TIMEOUT_S)
        self.assertIsNotNone(first_error)
        self.assertEqual(first_error.code(), self.grpc.StatusCode.ABORTED,
                         first_error.details())
        self.expect_aborted("hostile-twice", "v6")

    def test_a_header_that_is_not_the_prepared_one(self):
        header = self.prepare("hostile-header", "v7")
        header.device.device_id = "someone-else"
        error = self.stream([self.first("hostile-header", "v7",
                                        self.header_frame(header))])
        self.expect_error(error, [self.grpc.StatusCode.INVALID_ARGUMENT],
                          "device v7", "differs from the one prepared")
        self.expect_aborted("hostile-header", "v7")

    def test_malformed_prepare_requests_touch_nothing(self):
        from vfiomig.v1 import peer_pb2
        good = self.header("hostile-prep", "v8")

        def request(**changes):
            fields = dict(
                migration_id="hostile-prep", source_host="attacker",
                devices=[peer_pb2.PeerDevice(source_device_id="v8",
                                             target_device_id="v8",
                                             header=good)])
            fields.update(changes)
            return peer_pb2.PrepareRequest(**fields)

        invalid = [
            request(migration_id="x" * 10000),
            request(migration_id="bad id\n"),
            request(source_host=""),
            request(devices=[]),
            request(devices=[peer_pb2.PeerDevice(
                source_device_id="v8", target_device_id="v8")] * 1000),
            request(devices=[peer_pb2.PeerDevice(source_device_id="v8",
                                                 target_device_id="\x01")]),
            request(policy=99),
            request(arc_timeout_ms=40 * 24 * 3600 * 1000),
        ]
        for i, r in enumerate(invalid):
            with self.assertRaises(self.grpc.RpcError, msg="invalid[%d]" % i) \
                    as caught:
                self.peer.Prepare(r, timeout=CALL_TIMEOUT_S)
            self.assertEqual(caught.exception.code(),
                             self.grpc.StatusCode.INVALID_ARGUMENT,
                             caught.exception.details())
        # Refused per device, with the reason; nothing entered RESUMING.
        huge = self.header("hostile-prep", "v8")
        huge.stop_copy_bytes = 1 << 60
        foreign = self.header("hostile-prep", "v8")
        foreign.device.compatibility = "other-firmware"
        unknown = self.header("hostile-prep", "v8")
        unknown.stream_version = 99
        for header, reason in ((huge, "capacity"),
                               (foreign, "compatibility"),
                               (unknown, "version")):
            response = self.peer.Prepare(request(devices=[peer_pb2.PeerDevice(
                source_device_id="v8", target_device_id="v8",
                header=header)]), timeout=CALL_TIMEOUT_S)
            self.assertFalse(response.ready)
            self.assertIn(reason, response.verdicts[0].reason)
        self.assertEqual(self.state("v8"), "RUNNING")
        self.expect_serving()

    def test_streams_for_unknown_migrations_or_devices(self):
        frame = pf.frame(pf.HEADER, 0, b"")
        error = self.stream([self.first("no-such-migration", "v9", frame)])
        self.expect_error(error, [self.grpc.StatusCode.NOT_FOUND])
        error = self.stream([self.first("", "v9", frame)])
        self.expect_error(error, [self.grpc.StatusCode.INVALID_ARGUMENT])
        error = self.stream([])
        self.expect_error(error, [self.grpc.StatusCode.INVALID_ARGUMENT],
                          "empty stream")
        self.assertEqual(self.state("v9"), "RUNNING")


def main():
    global ARGS
    parser = argparse.ArgumentParser()
    parser.add_argument("--migd", required=True)
    parser.add_argument("--migctl", required=True)
    parser.add_argument("--proto-dir", action="append", required=True)
    parser.add_argument("--gen-dir", required=True)
    parser.add_argument("--protoc")
    parser.add_argument("--grpc-python-plugin")
    ARGS, rest = parser.parse_known_args()
    generate_stubs(ARGS.proto_dir, ARGS.gen_dir, ARGS.protoc,
                   ARGS.grpc_python_plugin)
    # Test methods run in name order: test_0 starts the real migration,
    # the attacks run while it streams, test_z checks its outcome.
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)


if __name__ == "__main__":
    main()
