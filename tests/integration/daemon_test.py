#!/usr/bin/python3
"""End-to-end test of a real vfio-migd process over its unix socket.

Starts the daemon on a temporary socket with a temporary sim config and talks
to it the way outside tools do: the standard health service, server
reflection (including a fully generic call built only from what reflection
returns), and the vfiomig.v1 API through generated stubs. Also checks the
process's life cycle: clear failures at startup, and a clean exit on SIGTERM
and SIGINT.

Run with Debian's /usr/bin/python3 (python3-grpcio, python3-protobuf):

  /usr/bin/python3 daemon_test.py --daemon build/daemon/vfio-migd \
      --proto-dir api --proto-dir tests/integration/protos --gen-dir /tmp/gen \
      --protoc /usr/bin/protoc --grpc-python-plugin /usr/bin/grpc_python_plugin
"""

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

ARGS = None  # Parsed command line, set in main().

SIM_CONFIG = {
    "devices": [
        {"id": "gpu0", "features": ["stop_copy", "p2p", "pre_copy"],
         "state_bytes": "2MiB"},
        {"id": "gpu1", "features": ["stop_copy", "p2p", "pre_copy"],
         "state_bytes": "2MiB"},
        {"id": "nic0", "features": ["stop_copy", "p2p"], "state_bytes": "1MiB"},
        {"id": "accel0", "features": ["stop_copy"], "state_bytes": "1MiB"},
    ]
}
CONTROL_SERVICE = "vfiomig.v1.ControlService"
HEALTH_SERVICE = "grpc.health.v1.Health"
STARTUP_TIMEOUT_S = 5.0
EXIT_TIMEOUT_S = 5.0


def generate_stubs(proto_dirs, gen_dir, protoc=None, grpc_plugin=None):
    """Compiles the protos into gen_dir and makes them importable.

    With `protoc` and `grpc_plugin` (the build's protoc and grpc_python_plugin)
    those generate the stubs; otherwise grpc_tools.protoc does. The build's
    protoc is preferred because Debian 12's grpc_tools bundles libprotoc
    3.5.1, which rejects proto3 `optional` fields (control.proto has them).
    """
    os.makedirs(gen_dir, exist_ok=True)
    protos = []
    for proto_dir in proto_dirs:
        for root, _, files in os.walk(proto_dir):
            protos += [os.path.relpath(os.path.join(root, f), proto_dir)
                       for f in files if f.endswith(".proto")]
    if protoc and grpc_plugin:
        cmd = [protoc, "--plugin=protoc-gen-grpc_python=" + grpc_plugin]
    else:
        try:
            from grpc_tools import protoc as _  # noqa: F401
        except ImportError:
            sys.exit("no protoc given and grpc_tools missing: install "
                     "python3-grpc-tools and run with /usr/bin/python3")
        cmd = [sys.executable, "-m", "grpc_tools.protoc"]
    cmd += ["--python_out=" + gen_dir, "--grpc_python_out=" + gen_dir]
    cmd += ["-I" + d for d in proto_dirs] + sorted(protos)
    subprocess.run(cmd, check=True)
    # Generated modules import each other from gen_dir's root (namespace
    # packages: no __init__.py needed).
    sys.path.insert(0, gen_dir)


class Daemon:
    """One vfio-migd process with its own socket, config and log."""

    def __init__(self, workdir, extra_args=(), sim_config=SIM_CONFIG,
                 socket_name="run/vfio-migd/d.sock"):
        self.workdir = workdir
        self.socket_path = os.path.join(workdir, socket_name)
        self.target = "unix:" + self.socket_path
        stamp = time.monotonic_ns()
        self.config_path = os.path.join(workdir, "sim-%d.json" % stamp)
        with open(self.config_path, "w") as f:
            json.dump(sim_config, f)
        self.log_path = os.path.join(workdir, "daemon-%d.log" % stamp)
        self.state_dir = os.path.join(workdir, "state-%d" % stamp)
        self.args = [ARGS.daemon, "--backend", "sim",
                     "--sim-config", self.config_path,
                     "--state-dir", self.state_dir,
                     "--listen", self.target, "--log-level", "debug"]
        self.args += list(extra_args)
        self.process = None

    def start(self):
        self._log = open(self.log_path, "w")
        self.process = subprocess.Popen(self.args, stdout=self._log,
                                        stderr=subprocess.STDOUT)
        return self

    def log(self):
        with open(self.log_path) as f:
            return f.read()

    def channel(self):
        import grpc
        return grpc.insecure_channel(self.target)

    def wait_serving(self):
        """Returns once health says SERVING; fails with the log otherwise."""
        import grpc
        from grpc_std import health_pb2, health_pb2_grpc
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError("daemon exited with %d:\n%s" %
                                     (self.process.returncode, self.log()))
            # A fresh channel per attempt: a channel that failed to connect
            # backs off for a second or more before it tries again.
            with self.channel() as channel:
                try:
                    reply = health_pb2_grpc.HealthStub(channel).Check(
                        health_pb2.HealthCheckRequest(), timeout=0.5)
                    if reply.status == health_pb2.HealthCheckResponse.SERVING:
                        return
                except grpc.RpcError:
                    pass
            time.sleep(0.02)
        raise AssertionError("daemon not SERVING after %.0f s:\n%s" %
                             (STARTUP_TIMEOUT_S, self.log()))

    def wait_exit(self, timeout=EXIT_TIMEOUT_S):
        try:
            return self.process.wait(timeout=timeout)
        finally:
            self._log.close()

    def kill(self):
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        if self.process is not None:
            self._log.close()


class ServingDaemonTest(unittest.TestCase):
    """One daemon for all API checks; started once to keep the test fast."""

    @classmethod
    def setUpClass(cls):
        # Short: unix socket paths must fit in 108 bytes.
        cls.workdir = tempfile.mkdtemp(prefix="vmd-it.", dir="/tmp")
        cls.daemon = Daemon(cls.workdir).start()
        try:
            cls.daemon.wait_serving()
        except Exception:
            cls.daemon.kill()
            shutil.rmtree(cls.workdir, ignore_errors=True)
            raise
        cls.channel = cls.daemon.channel()

    @classmethod
    def tearDownClass(cls):
        cls.channel.close()
        cls.daemon.kill()
        shutil.rmtree(cls.workdir, ignore_errors=True)

    def control(self):
        from vfiomig.v1 import control_pb2_grpc
        return control_pb2_grpc.ControlServiceStub(self.channel)

    def test_health_reports_serving_for_server_and_control_service(self):
        import grpc
        from grpc_std import health_pb2, health_pb2_grpc
        stub = health_pb2_grpc.HealthStub(self.channel)
        for service in ("", CONTROL_SERVICE):
            reply = stub.Check(health_pb2.HealthCheckRequest(service=service),
                               timeout=5)
            self.assertEqual(reply.status,
                             health_pb2.HealthCheckResponse.SERVING, service)
        with self.assertRaises(grpc.RpcError) as err:
            stub.Check(health_pb2.HealthCheckRequest(service="no.Such"),
                       timeout=5)
        self.assertEqual(err.exception.code(), grpc.StatusCode.NOT_FOUND)

    def reflect(self, **request):
        from grpc_std import reflection_pb2, reflection_pb2_grpc
        stub = reflection_pb2_grpc.ServerReflectionStub(self.channel)
        replies = list(stub.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(**request)]),
            timeout=5))
        self.assertEqual(len(replies), 1)
        self.assertFalse(replies[0].HasField("error_response"),
                         replies[0].error_response.error_message)
        return replies[0]

    def test_reflection_lists_the_services(self):
        reply = self.reflect(list_services="")
        names = {s.name for s in reply.list_services_response.service}
        self.assertIn(CONTROL_SERVICE, names)
        self.assertIn(HEALTH_SERVICE, names)
        self.assertIn("grpc.reflection.v1alpha.ServerReflection", names)

    def test_a_generic_client_can_call_the_api_through_reflection(self):
        # Nothing from the generated vfiomig stubs: only what the server
        # describes about itself.
        from google.protobuf import descriptor_pb2, descriptor_pool
        from google.protobuf import message_factory
        reply = self.reflect(file_containing_symbol=CONTROL_SERVICE)
        files = [descriptor_pb2.FileDescriptorProto.FromString(raw) for raw in
                 reply.file_descriptor_response.file_descriptor_proto]
        self.assertTrue(files)
        pool = descriptor_pool.DescriptorPool()
        pending = files
        while pending:  # Dependencies first, whatever order they came in.
            left = []
            for f in pending:
                try:
                    pool.Add(f)
                except Exception:  # A dependency is not in the pool yet.
                    left.append(f)
            self.assertLess(len(left), len(pending), "unresolvable files")
            pending = left
        service = pool.FindServiceByName(CONTROL_SERVICE)
        method = service.methods_by_name["ListDevices"]
        factory = message_factory.MessageFactory(pool)
        request_class = factory.GetPrototype(method.input_type)
        response_class = factory.GetPrototype(method.output_type)
        call = self.channel.unary_unary(
            "/%s/%s" % (CONTROL_SERVICE, method.name),
            request_serializer=request_class.SerializeToString,
            response_deserializer=response_class.FromString)
        response = call(request_class(), timeout=5)
        self.assertEqual([d.id for d in response.devices],
                         ["gpu0", "gpu1", "nic0", "accel0"])

    def test_list_devices(self):
        from vfiomig.v1 import control_pb2 as pb
        reply = self.control().ListDevices(pb.ListDevicesRequest(), timeout=5)
        devices = {d.id: d for d in reply.devices}
        self.assertEqual(list(devices), ["gpu0", "gpu1", "nic0", "accel0"])
        gpu0 = devices["gpu0"]
        self.assertEqual(gpu0.backend, "sim")
        self.assertEqual(gpu0.state, pb.DEVICE_STATE_RUNNING)
        self.assertEqual(gpu0.state_name, "RUNNING")
        self.assertEqual(gpu0.migration_flags, 7)
        self.assertEqual(list(gpu0.features),
                         [pb.MIGRATION_FEATURE_STOP_COPY,
                          pb.MIGRATION_FEATURE_P2P,
                          pb.MIGRATION_FEATURE_PRE_COPY])
        self.assertTrue(gpu0.migratable)
        self.assertEqual(list(devices["accel0"].features),
                         [pb.MIGRATION_FEATURE_STOP_COPY])

    def test_get_device_has_a_digest_and_unknown_is_not_found(self):
        import grpc
        from vfiomig.v1 import control_pb2 as pb
        gpu0 = self.control().GetDevice(pb.GetDeviceRequest(id="gpu0"),
                                        timeout=5)
        self.assertTrue(gpu0.HasField("digest"))
        self.assertTrue(gpu0.digest)
        with self.assertRaises(grpc.RpcError) as err:
            self.control().GetDevice(pb.GetDeviceRequest(id="gpu9"), timeout=5)
        self.assertEqual(err.exception.code(), grpc.StatusCode.NOT_FOUND)
        self.assertIn("gpu9", err.exception.details())

    def test_plan_for_a_p2p_group(self):
        from vfiomig.v1 import control_pb2 as pb
        plan = self.control().PlanMigration(
            pb.PlanMigrationRequest(device_ids=["gpu0", "gpu1", "nic0"]),
            timeout=5)
        self.assertTrue(plan.migratable)
        self.assertEqual(list(plan.blockers), [])
        self.assertTrue(plan.source_waves)
        self.assertTrue(plan.destination_waves)
        self.assertEqual([d.device_id for d in plan.devices],
                         ["gpu0", "gpu1", "nic0"])
        # Every device reaches a P2P state before any device stops.
        stop_states = {pb.DEVICE_STATE_STOP, pb.DEVICE_STATE_STOP_COPY}
        p2p_states = {pb.DEVICE_STATE_RUNNING_P2P, pb.DEVICE_STATE_PRE_COPY_P2P}
        first_stop = min(i for i, w in enumerate(plan.source_waves)
                         if any(a.to in stop_states for a in w.arcs))
        last_p2p = max(i for i, w in enumerate(plan.source_waves)
                       if any(a.to in p2p_states for a in w.arcs))
        self.assertLess(last_p2p, first_stop)
        for wave in plan.source_waves:
            self.assertTrue(wave.phase)

    def test_plan_for_a_group_with_a_device_lacking_p2p_is_blocked(self):
        from vfiomig.v1 import control_pb2 as pb
        plan = self.control().PlanMigration(
            pb.PlanMigrationRequest(device_ids=["gpu0", "accel0"]), timeout=5)
        self.assertFalse(plan.migratable)
        self.assertEqual([b.device_id for b in plan.blockers], ["accel0"])
        self.assertIn("p2p", plan.blockers[0].reason.lower())
        self.assertEqual(list(plan.source_waves), [])

        accepted = self.control().PlanMigration(
            pb.PlanMigrationRequest(device_ids=["gpu0", "accel0"],
                                    options=pb.PlanOptions(allow_no_p2p=True)),
            timeout=5)
        self.assertTrue(accepted.migratable)
        self.assertTrue(accepted.warnings)

    def test_plan_errors_are_grpc_status_codes(self):
        import grpc
        from vfiomig.v1 import control_pb2 as pb
        for ids, code, detail in (
                (["gpu0", "nope"], grpc.StatusCode.NOT_FOUND, "nope"),
                ([], grpc.StatusCode.INVALID_ARGUMENT, "empty"),
                (["gpu0", "gpu0"], grpc.StatusCode.INVALID_ARGUMENT, "gpu0")):
            with self.assertRaises(grpc.RpcError) as err:
                self.control().PlanMigration(
                    pb.PlanMigrationRequest(device_ids=ids), timeout=5)
            self.assertEqual(err.exception.code(), code, ids)
            self.assertIn(detail, err.exception.details())

    def test_startup_line_says_where_and_how_many(self):
        log = self.daemon.log()
        self.assertIn("listening on " + self.daemon.target, log)
        self.assertIn("manages 4 devices", log)


class LifecycleTest(unittest.TestCase):
    def setUp(self):
        self.workdir = tempfile.mkdtemp(prefix="vmd-it.", dir="/tmp")
        self.daemons = []

    def tearDown(self):
        for daemon in self.daemons:
            daemon.kill()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def start(self, *extra_args, **kwargs):
        daemon = Daemon(self.workdir, extra_args, **kwargs).start()
        self.daemons.append(daemon)
        return daemon

    def serve(self):
        daemon = self.start()
        daemon.wait_serving()
        return daemon

    def check_clean_exit(self, signum):
        from vfiomig.v1 import control_pb2 as pb, control_pb2_grpc
        daemon = self.serve()
        self.assertTrue(os.path.exists(daemon.socket_path))
        # A client that stays connected, idle, like a control plane; it must
        # not hold the daemon up for the whole shutdown grace period (5 s).
        channel = daemon.channel()
        self.addCleanup(channel.close)
        control_pb2_grpc.ControlServiceStub(channel).ListDevices(
            pb.ListDevicesRequest(), timeout=5)
        started = time.monotonic()
        daemon.process.send_signal(signum)
        self.assertEqual(daemon.wait_exit(), 0, daemon.log())
        self.assertLess(time.monotonic() - started, 2.5)
        self.assertFalse(os.path.exists(daemon.socket_path),
                         "socket file left behind")
        self.assertIn("shutting down", daemon.log())

    def test_sigterm_exits_zero_and_removes_the_socket(self):
        self.check_clean_exit(signal.SIGTERM)

    def test_sigint_exits_zero(self):
        self.check_clean_exit(signal.SIGINT)

    def test_a_stale_socket_is_replaced(self):
        daemon = self.serve()
        daemon.process.kill()  # No cleanup: the socket file stays.
        daemon.wait_exit()
        self.assertTrue(os.path.exists(daemon.socket_path))
        self.serve()

    def test_a_second_daemon_on_a_live_socket_fails_clearly(self):
        first = self.serve()
        second = self.start()
        self.assertNotEqual(second.wait_exit(), 0)
        self.assertIn(first.target, second.log())
        self.assertIn("in use", second.log())
        self.assertIsNone(first.process.poll(), "first daemon disturbed")

    def test_startup_failures_exit_nonzero_with_the_reason(self):
        unknown = self.start("--devices", "gpu0,ghost")
        self.assertNotEqual(unknown.wait_exit(), 0)
        self.assertIn("ghost", unknown.log())
        broken = self.start(sim_config={"devices": [{"id": "x"}]},
                            socket_name="b.sock")
        self.assertNotEqual(broken.wait_exit(), 0)
        self.assertIn("features", broken.log())
        # A --devices id that is no usable VFIO device on this host.
        vfio = subprocess.run(
            [ARGS.daemon, "--backend", "vfio", "--devices", "0000:ff:1f.7",
             "--listen", "unix:" + os.path.join(self.workdir, "v.sock"),
             "--state-dir", os.path.join(self.workdir, "v-state")],
            capture_output=True, text=True, timeout=EXIT_TIMEOUT_S)
        self.assertNotEqual(vfio.returncode, 0)
        self.assertIn("no device '0000:ff:1f.7' on this host",
                      vfio.stdout + vfio.stderr)

    def test_vfio_backend_lists_the_hosts_devices_with_reasons(self):
        """--backend vfio on the real host: it starts whatever the host has
        (this project's machines have no VFIO device), says so when it found
        none, and lists every PCI function on request, with a reason for
        each one it does not manage."""
        from vfiomig.v1 import control_pb2 as pb
        from vfiomig.v1 import control_pb2_grpc
        daemon = Daemon(self.workdir, socket_name="v.sock")
        daemon.args = [ARGS.daemon, "--backend", "vfio", "--listen",
                       daemon.target, "--log-level", "debug",
                       "--state-dir", daemon.state_dir]
        self.daemons.append(daemon.start())
        daemon.wait_serving()
        with daemon.channel() as channel:
            stub = control_pb2_grpc.ControlServiceStub(channel)
            plain = stub.ListDevices(pb.ListDevicesRequest(), timeout=5)
            full = stub.ListDevices(
                pb.ListDevicesRequest(include_host_devices=True), timeout=5)
        self.assertEqual(len(plain.host_devices), 0)
        if not full.devices:
            self.assertIn("found no VFIO devices", daemon.log())
        listed = {d.id for d in full.devices} | {
            h.id for h in full.host_devices}
        pci = "/sys/bus/pci/devices"
        for address in (os.listdir(pci) if os.path.isdir(pci) else []):
            self.assertIn(address, listed)
        for host in full.host_devices:
            self.assertTrue(host.reason, host.id)
        self.assertIn("device hand-off on unix:" +
                      os.path.join(self.workdir, "v-handoff.sock"),
                      daemon.log())


def main():
    global ARGS
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--daemon", required=True, help="vfio-migd binary")
    parser.add_argument("--proto-dir", action="append", required=True,
                        help="proto include root; repeatable")
    parser.add_argument("--gen-dir", required=True,
                        help="where to write the generated Python stubs")
    parser.add_argument("--protoc", help="protoc to generate stubs with")
    parser.add_argument("--grpc-python-plugin",
                        help="grpc_python_plugin for --protoc")
    ARGS, rest = parser.parse_known_args()
    generate_stubs(ARGS.proto_dir, ARGS.gen_dir, ARGS.protoc,
                   ARGS.grpc_python_plugin)
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)


if __name__ == "__main__":
    main()
