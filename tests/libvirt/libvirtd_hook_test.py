#!/usr/bin/python3
"""The libvirt hook under a real libvirtd (Debian's libvirt-daemon, qemu
driver, QEMU with TCG).

libvirtd reads hooks only from /etc/libvirt/hooks and keeps its state in
/run/libvirt and /var/lib/libvirt, so the test runs in a private mount
namespace (unshare -m, as root) where temporary directories are bound over
those paths (and over /etc/passwd and /etc/group, which gain libvirt's
`libvirt-qemu` user): the host's libvirt, if any, is never touched. There it
installs deploy/libvirt/vfio-migd-hook (pointing at the built vfio-migctl
and a test vfio-migd with simulated devices named like PCI addresses),
starts libvirtd and drives it with virsh:

  refused    a domain with a hostdev vfio-migd does not manage does not
             start; libvirt's error carries the hook's line naming it.
  admitted   a domain with a managed hostdev passes the hook (vfio-migd
             holds the device for it); libvirt itself then fails to find
             the PCI device on this machine, calls `release end`, and the
             device is free again.
  plain      a domain without hostdevs starts (real QEMU, TCG) and is
             destroyed: libvirt runs the hook for prepare, start, started,
             stopped and release, and the operations the hook leaves alone
             do not break it (it exits without reading stdin).
  migrate    an offline migration (virsh migrate --offline --persistent)
             from one libvirtd to another (a second mount namespace, TCP on
             127.0.0.1) of a domain with a teaming-transient VF, the PCI
             hostdev kind libvirt 9 lets migrate: the destination's hook
             maps its source address through the domain's incoming
             vfio-migd migration, and libvirt accepts the rewritten XML.

Usage: libvirtd_hook_test.py --migctl PATH --migd PATH --hook PATH
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
import traceback

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "integration"))
from migration_test import Ctl, Daemon, wait_until  # noqa: E402

MiB = 1 << 20
BIND = ["/etc/libvirt", "/run/libvirt", "/var/lib/libvirt",
        "/var/cache/libvirt", "/var/log/libvirt"]


def device(id):
    return {"id": id, "features": ["stop_copy", "p2p"], "state_bytes": MiB,
            "arc_latency_ms": 1, "drain_ms": 2}


def run(cmd, check=True, timeout=120, **kw):
    proc = subprocess.run(cmd, capture_output=True, text=True,
                          timeout=timeout, **kw)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)}: rc {proc.returncode}\n"
                             f"{proc.stdout}\n{proc.stderr}")
    return proc


def domain(name, hostdevs="", uuid=None, interfaces=""):
    uuid_xml = f"<uuid>{uuid}</uuid>" if uuid else ""
    return f"""<domain type='qemu'>
  <name>{name}</name>
  {uuid_xml}
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <!-- not a hostdev: <hostdev mode='subsystem' type='pci'/> -->
    {interfaces}
    {hostdevs}
    <graphics type='vnc' autoport='yes' listen='127.0.0.1'/>
  </devices>
</domain>
"""


def pci_hostdev(address, teaming=""):
    dom, bus, rest = address.split(":")
    slot, fn = rest.split(".")
    return (f"<hostdev mode='subsystem' type='pci' managed='no'>"
            f"<source><address domain='0x{dom}' bus='0x{bus}' "
            f"slot='0x{slot}' function='0x{fn}'/></source>{teaming}"
            f"</hostdev>")


class Libvirtd:
    """A libvirtd in the current mount namespace, with its own state."""

    def __init__(self, root, hook, port=None, host_uuid=None):
        self.root = root
        self.uri = "qemu:///system"
        for d in ("etc", "run", "lib", "cache", "log"):
            os.makedirs(os.path.join(root, d), exist_ok=True)
        etc = os.path.join(root, "etc")
        for f in os.listdir("/etc/libvirt"):
            src = os.path.join("/etc/libvirt", f)
            if os.path.isfile(src):
                shutil.copy(src, etc)
        os.makedirs(os.path.join(etc, "hooks", "qemu.d"), exist_ok=True)
        shutil.copy(hook, os.path.join(etc, "hooks", "qemu.d", "vfio-migd"))
        os.chmod(os.path.join(etc, "hooks", "qemu.d", "vfio-migd"), 0o755)
        with open(os.path.join(etc, "qemu.conf"), "w") as f:
            f.write('user = "root"\ngroup = "root"\n'
                    'security_driver = "none"\ncgroup_controllers = []\n'
                    'namespaces = []\nstdio_handler = "file"\n'
                    'remember_owner = 0\n')
        conf = ['listen_tls = 0', 'unix_sock_group = "root"',
                'log_outputs = "2:file:/var/log/libvirt/libvirtd.log"']
        if port is not None:
            conf += ["listen_tcp = 1", f'tcp_port = "{port}"',
                     'listen_addr = "127.0.0.1"', 'auth_tcp = "none"']
        if host_uuid is not None:
            conf.append(f'host_uuid = "{host_uuid}"')
        with open(os.path.join(etc, "libvirtd.conf"), "w") as f:
            f.write("\n".join(conf) + "\n")
        for target, d in zip(BIND, ("etc", "run", "lib", "cache", "log")):
            os.makedirs(target, exist_ok=True)
            run(["mount", "--bind", os.path.join(root, d), target])
        self.err = open(os.path.join(root, "libvirtd.err"), "w")
        self.proc = subprocess.Popen(
            ["libvirtd"] + (["--listen"] if port is not None else []) +
            ["-p", "/run/libvirt/test.pid"],
            stdout=self.err, stderr=subprocess.STDOUT)

        def up():
            if self.proc.poll() is not None:
                raise AssertionError(f"libvirtd exited: {self.log()}")
            return run(["virsh", "-c", self.uri, "version"],
                       check=False).returncode == 0
        wait_until(up, 60, "libvirtd to answer", 0.2)

    def virsh(self, *args, check=True):
        return run(["virsh", "-c", self.uri, *args], check=check)

    def log(self):
        out = ""
        for p in (os.path.join(self.root, "libvirtd.err"),
                  os.path.join(self.root, "log", "libvirtd.log")):
            if os.path.exists(p):
                with open(p) as f:
                    out += f.read()[-4000:]
        return out

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.err.close()


def namespace_setup(tmp):
    """Our own /etc/passwd and /etc/group with libvirt's system users."""
    for f, extra in (("passwd", "libvirt-qemu:x:64055:64055::/var/lib/"
                      "libvirt:/usr/sbin/nologin\n"),
                     ("group", "libvirt-qemu:x:64055:\nkvm:x:64056:\n"
                      "libvirt:x:64057:\n")):
        path = os.path.join(tmp, f)
        with open(f"/etc/{f}") as src, open(path, "w") as out:
            out.write(src.read() + extra)
        run(["mount", "--bind", path, f"/etc/{f}"])


def write_hook(tmp, hook_src, migctl, server, name="hook"):
    """deploy/libvirt/vfio-migd-hook, pointed at the test's binaries."""
    with open(hook_src) as f:
        text = f.read()
    text = text.replace("VFIO_MIGCTL=/usr/bin/vfio-migctl",
                        f"VFIO_MIGCTL={migctl}")
    text = text.replace(
        "VFIO_MIGD_SERVER=unix:/run/vfio-migd/vfio-migd.sock",
        f"VFIO_MIGD_SERVER={server}")
    assert migctl in text and server in text, "hook variables not found"
    path = os.path.join(tmp, name)
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, 0o755)
    return path


def held(daemon_log_path, name):
    with open(daemon_log_path) as f:
        return [line for line in f if f"domain {name}:" in line]


def single_host(args, tmp):
    ctl = Ctl(args.migctl)
    migd = Daemon(args.migd, tmp, "migd", [device("0000:17:00.0"),
                                           device("0000:17:00.1")])
    lv = None
    try:
        wait_until(lambda: ctl.run(migd.server, "--timeout", "1", "devices",
                                   "--no-digest").returncode == 0,
                   30, "vfio-migd")
        hook = write_hook(tmp, args.hook, args.migctl, migd.server)
        lv = Libvirtd(os.path.join(tmp, "lv"), hook)
        xml = os.path.join(tmp, "d.xml")

        # refused
        with open(xml, "w") as f:
            f.write(domain("lv-refused", pci_hostdev("0000:99:00.0") +
                           pci_hostdev("0000:17:00.0")))
        lv.virsh("define", xml)
        proc = lv.virsh("start", "lv-refused", check=False)
        assert proc.returncode != 0, proc
        want = ("vfio-migd refuses domain 'lv-refused': hostdev "
                "0000:99:00.0: it is not a device this vfio-migd manages")
        assert want in proc.stderr, proc.stderr
        assert "lv-refused prepare begin" in proc.stderr, proc.stderr
        print("PASS refused: libvirt says:", proc.stderr.strip()[-200:])
        # The refused domain held nothing, and release ran.
        lines = held(migd.log_path, "lv-refused")
        assert any("prepare refused" in l for l in lines), lines
        assert not any("admitted" in l for l in lines), lines

        # admitted, then libvirt fails on the (simulated) device itself
        with open(xml, "w") as f:
            f.write(domain("lv-admitted", pci_hostdev("0000:17:00.0")))
        lv.virsh("define", xml)
        proc = lv.virsh("start", "lv-admitted", check=False)
        assert proc.returncode != 0, "a simulated PCI device cannot start"
        assert "vfio-migd" not in proc.stderr, proc.stderr
        lines = held(migd.log_path, "lv-admitted")
        assert any("prepare admitted 0000:17:00.0" in l for l in lines), lines
        wait_until(lambda: any("released 0000:17:00.0" in l
                               for l in held(migd.log_path, "lv-admitted")),
                   10, "release end")
        print("PASS admitted: hook admitted 0000:17:00.0, libvirt said:",
              proc.stderr.strip()[-160:], "; released")

        # plain: a real QEMU starts and stops with the hook in place
        with open(xml, "w") as f:
            f.write(domain("lv-plain"))
        lv.virsh("define", xml)
        lv.virsh("start", "lv-plain")
        state = lv.virsh("domstate", "lv-plain").stdout.strip()
        assert state == "running", state
        lv.virsh("destroy", "lv-plain")
        print("PASS plain: a domain without hostdevs ran under the hook")
    except Exception:
        if lv is not None:
            print("--- libvirtd log ---\n" + lv.log())
        print("--- vfio-migd log ---\n" + migd.tail(60))
        raise
    finally:
        if lv is not None:
            lv.stop()
        migd.stop()


DEST_PORT = 16599


def destination_libvirtd(args):
    """Runs in its own mount namespace: a libvirtd listening on TCP, until
    SIGTERM."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    lv = Libvirtd(args.dest_root, args.hook, port=DEST_PORT,
                  host_uuid="22222222-3333-4444-5555-666666666666")
    try:
        lv.proc.wait()
    finally:
        lv.stop()
    return 0


def migrate(args, tmp):
    ctl = Ctl(args.migctl)
    src = Daemon(args.migd, tmp, "msrc", [device("0000:65:00.0")])
    dst = Daemon(args.migd, tmp, "mdst", [device("0000:17:00.0")])
    lv_src = dest = migration = None
    try:
        for d in (src, dst):
            wait_until(lambda d=d: ctl.run(d.server, "--timeout", "1",
                                           "devices", "--no-digest"
                                           ).returncode == 0, 30, d.name)
        hook_src = write_hook(tmp, args.hook, args.migctl, src.server,
                              "hook-src")
        hook_dst = write_hook(tmp, args.hook, args.migctl, dst.server,
                              "hook-dst")
        dest = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private",
             sys.executable, os.path.abspath(__file__), "--dest-libvirtd",
             "--dest-root", os.path.join(tmp, "lv-dst"),
             "--migctl", args.migctl, "--migd", args.migd,
             "--hook", hook_dst])
        dest_uri = f"qemu+tcp://127.0.0.1:{DEST_PORT}/system"
        wait_until(lambda: run(["virsh", "-c", dest_uri, "version"],
                               check=False).returncode == 0, 60,
                   "destination libvirtd")
        lv_src = Libvirtd(os.path.join(tmp, "lv-src"), hook_src,
                          host_uuid="11111111-3333-4444-5555-666666666666")
        # The device migration of the domain, waiting at its switchover:
        # the destination daemon knows the map 0000:65:00.0 -> 17:00.0.
        migration = ctl.popen(src.server, "migrate", "--devices",
                              "0000:65:00.0", "--to", dst.server, "--map",
                              "0000:65:00.0=0000:17:00.0", "--domain",
                              "lv-m", "--switchover", "external",
                              "--switchover-timeout-ms", "120000", "--json")

        def waiting():
            for m in ctl.json(src.server, "migrations", "--json"):
                if m["phase"] == "SWITCHOVER":
                    return m["id"]
            return None
        mid = wait_until(waiting, 30, "the device migration to wait")
        xml = os.path.join(tmp, "m.xml")
        with open(xml, "w") as f:
            f.write(domain(
                "lv-m",
                pci_hostdev("0000:65:00.0", "<teaming type='transient' "
                            "persistent='ua-net0'/>"),
                uuid="7a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
                interfaces="<interface type='user'><model type='virtio'/>"
                           "<teaming type='persistent'/>"
                           "<alias name='ua-net0'/></interface>"))
        lv_src.virsh("define", xml)
        proc = lv_src.virsh("migrate", "--offline", "--persistent", "lv-m",
                            dest_uri, check=False)
        with open(dst.log_path) as f:
            log = f.read()
        admitted = [l for l in log.splitlines() if "domain lv-m:" in l]
        assert proc.returncode == 0, (proc.stderr, admitted)
        assert any(f"migrate admitted 0000:17:00.0 (mapped by incoming "
                   f"migration {mid})" in l for l in admitted), admitted
        defined = run(["virsh", "-c", dest_uri, "dumpxml", "lv-m"]).stdout
        print("PASS migrate: the destination hook mapped 0000:65:00.0 to "
              "0000:17:00.0 and libvirt accepted it; the domain defined on "
              "the destination has hostdev source",
              [l.strip() for l in defined.splitlines()
               if "<address domain=" in l])
        ctl.run(src.server, "switchover", mid)
        out, _ = migration.communicate(timeout=60)
        assert migration.returncode == 0, out
    except Exception:
        if lv_src is not None:
            print("--- source libvirtd log ---\n" + lv_src.log())
        for d in (src, dst):
            print(f"--- {d.name} log ---\n" + d.tail(40))
        raise
    finally:
        if migration is not None and migration.poll() is None:
            migration.kill()
        if lv_src is not None:
            lv_src.stop()
        if dest is not None:
            dest.terminate()
            try:
                dest.wait(timeout=30)
            except subprocess.TimeoutExpired:
                dest.kill()
        src.stop()
        dst.stop()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--migctl", required=True)
    parser.add_argument("--migd", required=True)
    parser.add_argument("--hook", required=True)
    parser.add_argument("--in-namespace", action="store_true")
    parser.add_argument("--dest-libvirtd", action="store_true")
    parser.add_argument("--dest-root")
    args = parser.parse_args()
    if args.dest_libvirtd:
        return destination_libvirtd(args)
    if not args.in_namespace:
        if os.geteuid() != 0:
            print("FAIL: needs root (libvirtd's qemu driver, mount "
                  "namespace)")
            print("0 passed, 1 failed")
            return 1
        for tool in ("libvirtd", "virsh", "qemu-system-x86_64", "unshare"):
            if shutil.which(tool) is None:
                print(f"FAIL: {tool} is not installed "
                      "(deploy/install-deps.sh)")
                print("0 passed, 1 failed")
                return 1
        return subprocess.call(
            ["unshare", "--mount", "--propagation", "private",
             sys.executable, os.path.abspath(__file__), "--in-namespace",
             "--migctl", args.migctl, "--migd", args.migd,
             "--hook", args.hook])
    passed = failed = 0
    tmp = tempfile.mkdtemp(prefix="libvirtd-hook-")
    try:
        namespace_setup(tmp)
        for name, fn in (("single_host", single_host), ("migrate", migrate)):
            try:
                fn(args, tmp)
                passed += 1
            except Exception:
                traceback.print_exc()
                failed += 1
                print(f"FAIL {name}")
    finally:
        # Our binds (stacked, one per libvirtd) keep their sources busy.
        for target in BIND + ["/etc/passwd", "/etc/group"]:
            while run(["umount", "-l", target], check=False).returncode == 0:
                pass
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
