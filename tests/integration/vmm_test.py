#!/usr/bin/python3
"""vfio-migd and the VM around it, with the real programs: the libvirt hook
(`vfio-migctl libvirt-hook`) against real daemons, and the switchover
actions `qmp` (against real qemu-system-x86_64 processes) and `external`.

  hook        libvirt's contract: the operations the hook ignores exit 0 at
              once without reading stdin; a domain without VFIO hostdevs
              needs no daemon; prepare/migrate fail clearly when vfio-migd
              is down, release does not; unknown and held devices are
              refused with one stderr line naming each; release frees them;
              bad XML is refused with its line.
  hook_map    `migrate begin` while an incoming migration of the domain is
              prepared: the hook prints the domain XML with each hostdev's
              source address mapped to its target here (PCI and mdev), the
              guest addresses and everything else unchanged; prepare then
              admits the mapped devices; another domain cannot take them,
              and an incoming migration cannot overwrite a device that a
              running domain holds.
  external    the migration waits at its switchover point for
              `vfio-migctl switchover ID`, then completes; without the call
              it rolls back at its deadline, every device RUNNING.
  qmp         a source and a destination QEMU (-machine none, QMP socket):
              success leaves the source VM paused and the destination VM
              running (query-status), and the source paused before its
              devices quiesced; a failed stop-copy arc rolls back and the
              source VM runs again while the destination VM never ran; a
              destination VM that cannot be resumed fails the commit, and
              the source VM runs again.

Usage: vmm_test.py --migctl PATH --migd PATH [--qemu PATH] [-k NAME]
"""

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from migration_test import (Ctl, Daemon, clean_env, describe,  # noqa: E402
                            wait_until)

MiB = 1 << 20
EXIT_DAEMON, EXIT_USAGE, EXIT_REFUSED, EXIT_FAILED = 1, 2, 3, 4

GPU_A, GPU_B, NIC = "0000:17:00.0", "0000:17:00.1", "0000:18:00.0"
MDEV_DST = "0e5f1a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b"
SRC_GPU, SRC_MDEV = "0000:65:00.0", "c2177883-f1bb-47f0-914d-32a22e3a8804"
UUID = "6f3a0c5e-1b2d-4e8f-9a7b-0c1d2e3f4a5b"


def device(id, **extra):
    d = {"id": id, "features": ["stop_copy", "p2p"], "state_bytes": MiB,
         "arc_latency_ms": 1, "drain_ms": 2}
    d.update(extra)
    return d


def domain_xml(name, hostdevs, uuid=UUID):
    """A libvirt-9-shaped domain: disk, NIC, serial, comments, a qemu
    namespace, and the given hostdevs: ("pci", "0000:65:00.0") or
    ("mdev", uuid) or ("usb", None)."""
    parts = []
    for i, (kind, id) in enumerate(hostdevs):
        guest = (f"<address type='pci' domain='0x0000' bus='0x{5 + i:02x}' "
                 f"slot='0x00' function='0x0'/>")
        if kind == "pci":
            dom, bus, rest = id.split(":")
            slot, fn = rest.split(".")
            parts.append(
                f"<hostdev mode='subsystem' type='pci' managed='yes'>\n"
                f"      <driver name='vfio'/>\n"
                f"      <source>\n        <address domain='0x{dom}' "
                f"bus='0x{bus}' slot='0x{slot}' function='0x{fn}'/>\n"
                f"      </source>\n      {guest}\n    </hostdev>")
        elif kind == "mdev":
            parts.append(
                f"<hostdev mode='subsystem' type='mdev' model='vfio-pci'>\n"
                f"      <source><address uuid='{id.upper()}'/></source>\n"
                f"      {guest}\n    </hostdev>")
        else:
            parts.append("<hostdev mode='subsystem' type='usb'><source>"
                         "<vendor id='0x046d'/><product id='0xc52b'/>"
                         "</source></hostdev>")
    hostdevs_xml = "\n    ".join(parts)
    return f"""<domain type='kvm' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>
  <name>{name}</name>
  <uuid>{uuid}</uuid>
  <memory unit='KiB'>4194304</memory>
  <vcpu placement='static'>4</vcpu>
  <os><type arch='x86_64' machine='pc-q35-7.2'>hvm</type></os>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='/var/lib/libvirt/images/{name}.qcow2'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <!-- <hostdev mode='subsystem' type='pci'><source><address domain='0x0000' bus='0x99' slot='0x00' function='0x0'/></source></hostdev> -->
    <interface type='network'><source network='default'/><model type='virtio'/></interface>
    {hostdevs_xml}
    <serial type='pty'/>
  </devices>
  <qemu:commandline><qemu:arg value='-S'/></qemu:commandline>
</domain>
"""


def hostdev_sources(xml):
    """[(type, source id)] of the domain's pci/mdev hostdevs, and the guest
    addresses, parsed independently of the hook."""
    root = ET.fromstring(xml)
    out, guest = [], []
    for h in root.find("devices").findall("hostdev"):
        a = h.find("source").find("address")
        if h.get("type") == "pci":
            out.append(("pci", "%04x:%02x:%02x.%x" % tuple(
                int(a.get(k), 0) for k in ("domain", "bus", "slot",
                                           "function"))))
        elif h.get("type") == "mdev":
            out.append(("mdev", a.get("uuid").lower()))
        g = h.find("address")
        if g is not None:
            guest.append(dict(g.attrib))
    return out, guest


class Hook:
    def __init__(self, migctl):
        self.migctl = migctl

    def run(self, server, name, op, sub, xml="", extra="-", stdin=None,
            timeout=20):
        args = [self.migctl, "--server", server, "--timeout", "3",
                "libvirt-hook", name, op, sub, extra]
        start = time.monotonic()
        if stdin is None:
            proc = subprocess.run(args, input=xml, capture_output=True,
                                  text=True, timeout=timeout, env=clean_env())
        else:
            proc = subprocess.run(args, stdin=stdin, capture_output=True,
                                  text=True, timeout=timeout, env=clean_env())
        proc.elapsed = time.monotonic() - start
        return proc

    def expect(self, proc, rc, stderr=None, stdout_empty=True):
        assert proc.returncode == rc, describe(proc, f"rc {rc}")
        if stdout_empty:
            assert proc.stdout == "", describe(proc, "empty stdout")
        if stderr is None:
            assert proc.stderr == "", describe(proc, "empty stderr")
        else:
            lines = proc.stderr.splitlines()
            assert len(lines) == 1, describe(proc, "one stderr line")
            for part in ([stderr] if isinstance(stderr, str) else stderr):
                assert part in lines[0], describe(proc, f"stderr with {part!r}")


class Env:
    def __init__(self, args, tmp):
        self.migctl, self.migd, self.qemu = args.migctl, args.migd, args.qemu
        self.tmp = tmp
        self.ctl = Ctl(args.migctl)
        self.hook = Hook(args.migctl)
        self.daemons = []

    def daemon(self, name, devices, extra=()):
        d = Daemon(self.migd, self.tmp, name, devices, extra)
        self.daemons.append(d)

        def up():
            if d.proc.poll() is not None:
                raise AssertionError(f"{name} exited:\n{d.tail()}")
            return self.ctl.run(d.server, "--timeout", "1", "devices",
                                "--no-digest").returncode == 0
        wait_until(up, 30, f"{name} to answer", 0.1)
        return d

    def stop_all(self, failed):
        for d in self.daemons:
            d.stop()
            if failed:
                print(f"--- {d.name} log (tail) ---\n{d.tail()}")
        self.daemons = []


def test_hook(env):
    hook = env.hook
    down = "unix:" + os.path.join(env.tmp, "nobody.sock")
    xml = domain_xml("vm-a", [("pci", GPU_A), ("mdev", MDEV_DST),
                              ("usb", None)])
    # Operations the hook leaves alone: at once, stdin never read (a pipe
    # nobody writes or closes would block a reader).
    r, w = os.pipe()
    try:
        for op, sub in (("start", "begin"), ("started", "begin"),
                        ("stopped", "end"), ("reconnect", "begin"),
                        ("attach", "begin"), ("restore", "begin")):
            proc = hook.run(down, "vm-a", op, sub, stdin=r, timeout=5)
            hook.expect(proc, 0)
            assert proc.elapsed < 2, f"{op} took {proc.elapsed:.2f}s"
    finally:
        os.close(r)
        os.close(w)
    # No VFIO hostdevs (only USB): nothing to ask, daemon or not.
    hook.expect(hook.run(down, "plain", "prepare", "begin",
                         domain_xml("plain", [("usb", None)])), 0)
    # Daemon down: prepare and migrate refuse, release shrugs.
    for op in ("prepare", "migrate"):
        hook.expect(hook.run(down, "vm-a", op, "begin", xml), EXIT_DAEMON,
                    ["domain 'vm-a' cannot start", "cannot reach vfio-migd",
                     "nobody.sock"])
    hook.expect(hook.run(down, "vm-a", "release", "end", xml), 0)

    dst = env.daemon("hookd", [device(GPU_A), device(GPU_B), device(NIC),
                               device(MDEV_DST)])
    # Unusable XML: its line.
    hook.expect(hook.run(dst.server, "vm-a", "prepare", "begin",
                         "<domain><name>vm-a</name>\n<devices><hostdev "
                         "type='pci'><source><address bus='1'/></source>"
                         "</hostdev></devices></domain>"),
                EXIT_USAGE, ["domain 'vm-a'", "line 2", "has no slot"])
    hook.expect(hook.run(dst.server, "vm-a", "prepare", "begin",
                         "<domain><name>vm-a</name>"),
                EXIT_USAGE, ["domain 'vm-a'", "domain XML line 1"])
    # Unknown devices are named, each with its reason, on one line.
    proc = hook.run(dst.server, "vm-x", "prepare", "begin",
                    domain_xml("vm-x", [("pci", "0000:99:00.0"),
                                        ("pci", GPU_A),
                                        ("mdev", SRC_MDEV)]))
    hook.expect(proc, EXIT_REFUSED,
                ["vfio-migd refuses domain 'vm-x'",
                 "hostdev 0000:99:00.0: it is not a device this vfio-migd "
                 "manages",
                 f"hostdev {SRC_MDEV}: it is not a device"])
    assert GPU_A + ":" not in proc.stderr, proc.stderr
    # Admitted: held for vm-a; another domain cannot take them.
    hook.expect(hook.run(dst.server, "vm-a", "prepare", "begin", xml), 0)
    hook.expect(hook.run(dst.server, "vm-a", "prepare", "begin", xml), 0)
    other = domain_xml("vm-b", [("pci", GPU_B), ("pci", GPU_A)],
                       uuid="11111111-2222-3333-4444-555555555555")
    hook.expect(hook.run(dst.server, "vm-b", "prepare", "begin", other),
                EXIT_REFUSED,
                f"hostdev {GPU_A}: it is held by domain 'vm-a'")
    # Released: vm-b gets them. A release of an unknown domain is fine.
    hook.expect(hook.run(dst.server, "vm-a", "release", "end", xml), 0)
    hook.expect(hook.run(dst.server, "nobody", "release", "end",
                         domain_xml("nobody", [])), 0)
    hook.expect(hook.run(dst.server, "vm-b", "prepare", "begin", other), 0)
    # migrate begin without an incoming migration: the ids are local ones,
    # the XML stays as it is (empty stdout).
    hook.expect(hook.run(dst.server, "vm-c", "migrate", "begin",
                         domain_xml("vm-c", [("pci", NIC)],
                                    uuid="99999999-2222-3333-4444-"
                                         "555555555555")), 0)
    hook.expect(hook.run(dst.server, "vm-c", "release", "end",
                         domain_xml("vm-c", [])), 0)


def find_migration(env, daemon, domain=None, phase=None):
    for m in env.ctl.json(daemon.server, "migrations", "--json"):
        if domain is not None and m.get("domain") != domain:
            continue
        if phase is not None and m["phase"] != phase:
            continue
        if m["outcome"] == "IN_PROGRESS":
            return m
    return None


def test_hook_map(env):
    hook = env.hook
    src = env.daemon("mapsrc", [device(SRC_GPU), device(SRC_MDEV),
                                device("0000:66:00.0")])
    dst = env.daemon("mapdst", [device(GPU_A), device(GPU_B), device(NIC),
                                device(MDEV_DST)])
    # vm-run holds GPU_B here: no incoming migration may overwrite it.
    hook.expect(hook.run(dst.server, "vm-run", "prepare", "begin",
                         domain_xml("vm-run", [("pci", GPU_B)],
                                    uuid="abcdefab-1111-2222-3333-"
                                         "444444444444")), 0)
    proc = env.ctl.run(src.server, "migrate", "--devices", "0000:66:00.0",
                       "--to", dst.server, "--map",
                       f"0000:66:00.0={GPU_B}", "--domain", "other-vm",
                       "--json")
    assert proc.returncode == EXIT_FAILED, describe(proc, "rc 4")
    assert "held by running libvirt domain 'vm-run'" in proc.stdout, \
        describe(proc, "the holder named")

    # The domain's migration waits at its switchover point (external),
    # prepared on the destination: its device map is known there.
    migrate = env.ctl.popen(
        src.server, "migrate", "--devices", f"{SRC_GPU},{SRC_MDEV}",
        "--to", dst.server, "--map", f"{SRC_GPU}={NIC},{SRC_MDEV}={MDEV_DST}",
        "--domain", "gpu-vm-1", "--switchover", "external",
        "--switchover-timeout-ms", "60000", "--json")
    try:
        m = wait_until(lambda: find_migration(env, src, "gpu-vm-1",
                                              "SWITCHOVER"),
                       30, "the migration to wait at its switchover")
        source_xml = domain_xml("gpu-vm-1", [("pci", SRC_GPU),
                                             ("mdev", SRC_MDEV)])
        proc = hook.run(dst.server, "gpu-vm-1", "migrate", "begin",
                        source_xml)
        hook.expect(proc, 0, stdout_empty=False)
        mapped, guest = hostdev_sources(proc.stdout)
        assert mapped == [("pci", NIC), ("mdev", MDEV_DST)], mapped
        _, source_guest = hostdev_sources(source_xml)
        assert guest == source_guest, (guest, source_guest)
        for keep in ("<!-- <hostdev mode='subsystem' type='pci'>",
                     "xmlns:qemu=", "<qemu:arg value=\"-S\"/>",
                     "/var/lib/libvirt/images/gpu-vm-1.qcow2"):
            assert keep in proc.stdout, (keep, proc.stdout)
        # libvirt then prepares the mapped domain: admitted, although the
        # targets are still in RESUMING for the migration.
        hook.expect(hook.run(dst.server, "gpu-vm-1", "prepare", "begin",
                             proc.stdout), 0)
        # Another domain cannot have them.
        hook.expect(
            hook.run(dst.server, "vm-z", "prepare", "begin",
                     domain_xml("vm-z", [("pci", NIC)],
                                uuid="12121212-1111-2222-3333-444444444444")),
            EXIT_REFUSED, f"hostdev {NIC}: it is held by domain 'gpu-vm-1'")
        # A hostdev the migration does not carry is refused.
        hook.expect(
            hook.run(dst.server, "gpu-vm-1", "migrate", "begin",
                     domain_xml("gpu-vm-1", [("pci", SRC_GPU),
                                             ("pci", "0000:66:00.0")])),
            EXIT_REFUSED, ["hostdev 0000:66:00.0: not carried by incoming "
                           f"migration {m['id']}"])
        proc = env.ctl.run(src.server, "switchover", m["id"])
        assert proc.returncode == 0, describe(proc, "switchover accepted")
        out, err = migrate.communicate(timeout=60)
        assert migrate.returncode == 0, f"migrate rc {migrate.returncode}: {err}"
        final = json.loads(out)
        assert final["outcome"] == "SUCCEEDED" and final["domain"] == \
            "gpu-vm-1" and final["switchover"] == "external", final
    finally:
        if migrate.poll() is None:
            migrate.kill()
            migrate.wait()
    # After the migration the source domain releases, the destination
    # domain keeps its devices.
    hook.expect(hook.run(dst.server, "gpu-vm-1", "migrate", "begin",
                         domain_xml("gpu-vm-1", [("pci", SRC_GPU)])),
                0, stdout_empty=False)


def test_external(env):
    # A migrated source device stays in STOP: each case has its own.
    ids = ["gpu0", "gpu1", "gpu2", "gpu3"]
    # gpu3 drains for 2 s: its migration is still running when asked.
    src = env.daemon("extsrc", [device(i) for i in ids[:3]] +
                     [device("gpu3", drain_ms=2000)],
                     ["--switchover", "external"])
    dst = env.daemon("extdst", [device(i) for i in ids])
    migrate = env.ctl.popen(src.server, "migrate", "--devices", "gpu0,gpu1",
                            "--to", dst.server, "--json")
    try:
        m = wait_until(lambda: find_migration(env, src, phase="SWITCHOVER"),
                       30, "the switchover wait")
        assert m["switchover"] == "external", m
        time.sleep(0.3)
        # Still waiting: nothing stopped yet.
        states = env.ctl.states(src, ["gpu0", "gpu1"])
        assert states == {"gpu0": "RUNNING", "gpu1": "RUNNING"}, states
        proc = env.ctl.run(src.server, "switchover", m["id"])
        assert proc.returncode == 0, describe(proc, "rc 0")
        out, err = migrate.communicate(timeout=60)
        assert migrate.returncode == 0, err
        assert json.loads(out)["outcome"] == "SUCCEEDED"
        proc = env.ctl.run(src.server, "switchover", m["id"])
        assert proc.returncode == EXIT_REFUSED, describe(proc, "rc 3")
        assert "has finished" in proc.stderr, proc.stderr
    finally:
        if migrate.poll() is None:
            migrate.kill()
    # The deadline: no call, the migration rolls back on both sides.
    start = time.monotonic()
    proc = env.ctl.run(src.server, "migrate", "--devices", "gpu2",
                       "--to", dst.server, "--switchover-timeout-ms", "700",
                       "--json")
    took = time.monotonic() - start
    assert proc.returncode == EXIT_FAILED, describe(proc, "rc 4")
    final = json.loads(proc.stdout)
    assert "no Switchover call within 700 ms" in final["error"], final
    assert took < 10, took
    assert env.ctl.states(src, ["gpu2"]) == {"gpu2": "RUNNING"}
    assert env.ctl.states(dst, ["gpu2"]) == {"gpu2": "RUNNING"}
    # A migration that does not use `external` takes no switchover call.
    migrate = env.ctl.popen(src.server, "migrate", "--devices", "gpu3",
                            "--to", dst.server, "--switchover", "none",
                            "--json")
    m = wait_until(lambda: find_migration(env, src), 30, "a migration")
    proc = env.ctl.run(src.server, "switchover", m["id"])
    assert proc.returncode == EXIT_REFUSED, describe(proc, "rc 3")
    assert "switchover 'none' does not wait for a Switchover call" in \
        proc.stderr, proc.stderr
    out, _ = migrate.communicate(timeout=60)
    assert migrate.returncode == 0, out
    proc = env.ctl.run(src.server, "switchover", "m-nonexistent")
    assert proc.returncode == EXIT_USAGE, describe(proc, "rc 2")


class Qemu:
    """qemu-system-x86_64 -machine none with a QMP socket; `paused` starts
    it with -S (prelaunch), as a destination VM waits."""

    def __init__(self, qemu, tmp, name, paused):
        self.socket = os.path.join(tmp, f"{name}.qmp")
        self.log = open(os.path.join(tmp, f"{name}.qemu.log"), "w")
        self.proc = subprocess.Popen(
            [qemu, "-machine", "none", "-nodefaults", "-display", "none",
             "-qmp", f"unix:{self.socket},server=on,wait=off"] +
            (["-S"] if paused else []),
            stdout=self.log, stderr=subprocess.STDOUT)
        wait_until(lambda: os.path.exists(self.socket), 20,
                   f"{name} QMP socket")

    def status(self):
        """query-status over our own short QMP session."""
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(10)
        s.connect(self.socket)
        f = s.makefile("rw")
        json.loads(f.readline())
        out = None
        for cmd in ("qmp_capabilities", "query-status"):
            f.write(json.dumps({"execute": cmd, "id": cmd}) + "\n")
            f.flush()
            while True:
                msg = json.loads(f.readline())
                if msg.get("id") == cmd:
                    out = msg["return"]
                    break
        s.close()
        return out

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def test_qmp(env):
    vms = []
    try:
        def vm_pair(tag):
            s = Qemu(env.qemu, env.tmp, f"{tag}-src", paused=False)
            d = Qemu(env.qemu, env.tmp, f"{tag}-dst", paused=True)
            vms.extend([s, d])
            assert s.status()["status"] == "running"
            assert d.status()["status"] == "prelaunch"
            return s, d

        # A migrated source device stays in STOP: each case has its own.
        src = env.daemon("qmpsrc", [device("gpu0"), device("nic0"),
                                    device("bad0", fail_arcs=[
                                        "STOP>STOP_COPY"]), device("gpu2")],
                         ["--switchover", "qmp"])
        dst = env.daemon("qmpdst", [device("gpu0"), device("nic0"),
                                    device("bad0"), device("gpu2")])
        # Success: source paused, destination running.
        vs, vd = vm_pair("ok")
        proc = env.ctl.run(src.server, "migrate", "--devices", "gpu0,nic0",
                           "--to", dst.server, "--source-qmp", vs.socket,
                           "--destination-qmp", vd.socket, "--json")
        assert proc.returncode == 0, describe(proc, "rc 0")
        assert json.loads(proc.stdout)["switchover"] == "qmp"
        assert vs.status() == {"status": "paused", "singlestep": False,
                               "running": False}, vs.status()
        assert vd.status()["status"] == "running", vd.status()
        log = src.tail(400)
        paused_at = log.find("paused (status paused)")
        quiesce_at = log.find("RUNNING>RUNNING_P2P done")
        assert 0 <= paused_at < quiesce_at, log
        # Rollback after the pause: the source VM runs again, the
        # destination VM never ran.
        vs, vd = vm_pair("rollback")
        proc = env.ctl.run(src.server, "migrate", "--devices", "bad0",
                           "--to", dst.server, "--source-qmp", vs.socket,
                           "--destination-qmp", vd.socket, "--json")
        assert proc.returncode == EXIT_FAILED, describe(proc, "rc 4")
        final = json.loads(proc.stdout)
        assert final["failed_arc"] == "STOP>STOP_COPY", final
        assert vs.status()["status"] == "running", vs.status()
        assert vd.status()["status"] == "prelaunch", vd.status()
        assert "resumed" in src.tail(60), src.tail(60)
        # The destination VM cannot be resumed (its QMP socket is gone):
        # the commit fails, the source rolls back and its VM runs again.
        vs, vd = vm_pair("nodst")
        gone = os.path.join(env.tmp, "gone.qmp")
        proc = env.ctl.run(src.server, "migrate", "--devices", "gpu2",
                           "--to", dst.server, "--source-qmp", vs.socket,
                           "--destination-qmp", gone, "--json")
        assert proc.returncode == EXIT_FAILED, describe(proc, "rc 4")
        final = json.loads(proc.stdout)
        assert "could not start the workload" in final["error"], final
        assert vs.status()["status"] == "running", vs.status()
        assert env.ctl.states(src, ["gpu2"]) == {"gpu2": "RUNNING"}
        # A migration with qmp but no source socket is refused up front.
        proc = env.ctl.run(src.server, "migrate", "--devices", "gpu2",
                           "--to", dst.server, "--json")
        assert proc.returncode == EXIT_USAGE, describe(proc, "rc 2")
        assert "workload.source_qmp_socket" in proc.stderr, proc.stderr
    finally:
        for vm in vms:
            vm.stop()


TESTS = {"hook": test_hook, "hook_map": test_hook_map,
         "external": test_external, "qmp": test_qmp}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--migctl", required=True)
    parser.add_argument("--migd", required=True)
    parser.add_argument("--qemu", default=shutil.which("qemu-system-x86_64"))
    parser.add_argument("-k", action="append", default=[])
    args = parser.parse_args()
    names = args.k or list(TESTS)
    passed = failed = 0
    with tempfile.TemporaryDirectory(prefix="vmm-test-") as tmp:
        for name in names:
            env = Env(args, tmp)
            start = time.monotonic()
            try:
                if name == "qmp" and not args.qemu:
                    raise AssertionError("qemu-system-x86_64 is not installed "
                                         "(deploy/install-deps.sh)")
                TESTS[name](env)
                env.stop_all(False)
                passed += 1
                print(f"PASS {name} ({time.monotonic() - start:.1f}s)")
            except Exception:
                failed += 1
                traceback.print_exc()
                env.stop_all(True)
                print(f"FAIL {name}")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
