#!/usr/bin/python3
"""What an operator installs, checked with the real tools.

  man         groff renders both man pages without a warning; every flag of
              `vfio-migd --help` is in vfio-migd(8) and every flag there
              exists; every vfio-migctl command is in vfio-migctl(1).
  completion  bash, with the completion script loaded, completes commands,
              options, states, and device ids asked from a real daemon.
  deb         cpack builds the .deb from the build tree; its control data
              (dependencies from dpkg-shlibdeps, conffiles) and file list
              are right; dpkg installs it on this machine; the installed
              vfio-migd --version, vfio-migctl --help, the daemon serving
              the sim backend with the installed config, man, and
              systemd-analyze verify of the installed unit (with its man
              pages) work; dpkg --purge removes it all.

Usage: install_test.py --source DIR --build DIR TEST...
"""
import argparse
import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

# The helpers the Python tests share (polling, stopping a daemon).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "integration"))
from daemons import wait_until  # noqa: E402


def run(*cmd, check=True, **kwargs):
    proc = subprocess.run(cmd, capture_output=True, text=True,
                          timeout=kwargs.pop("timeout", 300), **kwargs)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)}: rc {proc.returncode}\n"
                             f"{proc.stdout[-3000:]}{proc.stderr[-3000:]}")
    return proc


def flags_of_help(text):
    return set(re.findall(r"^\s+(?:-\w,)?(--[a-z][a-z0-9-]*)", text, re.M))


def subcommands_of_help(text):
    section = text.split("Subcommands:", 1)[1].split("\n\n", 1)[0]
    return re.findall(r"^  ([a-z][a-z0-9-]*)", section, re.M)


def test_man(args):
    migd = os.path.join(args.build, "daemon", "vfio-migd")
    migctl = os.path.join(args.build, "client", "vfio-migctl")
    pages = {name: os.path.join(args.source, "deploy", "man", name)
             for name in ("vfio-migd.8", "vfio-migctl.1")}
    for path in pages.values():
        proc = run("groff", "-man", "-ww", "-z", "-rCHECKSTYLE=3", path)
        assert not proc.stderr.strip(), f"{path}: {proc.stderr}"
        text = run("man", "-l", "-P", "cat", path,
                   env=dict(os.environ, MANWIDTH="80")).stdout
        assert "SEE ALSO" in text, text[:500]

    with open(pages["vfio-migd.8"]) as f:
        page = f.read().replace("\\-", "-")
    # The flags the OPTIONS section names in its bold (.B, .BI, .BR) lines.
    options = page.split("\n.SH OPTIONS\n", 1)[1].split("\n.SH ", 1)[0]
    documented = set()
    for line in options.splitlines():
        if line.startswith(".B"):
            documented.update(re.findall(r"--[a-z][a-z0-9-]*", line))
    have = flags_of_help(run(migd, "--help").stdout)
    missing = have - documented
    assert not missing, (f"flags of vfio-migd --help missing from "
                         f"deploy/man/vfio-migd.8: {sorted(missing)}")
    stale = documented - have
    assert not stale, (f"deploy/man/vfio-migd.8 documents flags vfio-migd "
                       f"does not have: {sorted(stale)}")

    with open(pages["vfio-migctl.1"]) as f:
        page = f.read().replace("\\-", "-")
    commands = subcommands_of_help(run(migctl, "--help").stdout)
    missing = [c for c in commands
               if not re.search(rf"^\.B[IR]? \"?{c}\b", page, re.M)]
    assert not missing, (f"vfio-migctl commands missing from "
                         f"deploy/man/vfio-migctl.1: {missing}")
    return (f"groff clean; {len(have)} daemon flags and {len(commands)} "
            f"vfio-migctl commands documented")


def complete(args, words, env):
    """COMPREPLY for the command line `words` (the last one is being
    completed), from the real completion script in a real bash."""
    script = os.path.join(args.source, "deploy", "bash-completion",
                          "vfio-migctl")
    quoted = " ".join("'" + w.replace("'", "'\\''") + "'" for w in words)
    proc = run("bash", "--norc", "-c",
               f"source '{script}'; COMP_WORDS=({quoted}); "
               f"COMP_CWORD=$((${{#COMP_WORDS[@]}} - 1)); _vfio_migctl; "
               f"printf '%s\\n' \"${{COMPREPLY[@]}}\"", env=env)
    return [w for w in proc.stdout.splitlines() if w]


def test_completion(args):
    bindir = os.path.join(args.build, "client")
    env = dict(os.environ, PATH=bindir + ":" + os.environ["PATH"])
    env.pop("VFIO_MIGCTL_SERVER", None)
    c = lambda *words: complete(args, list(words), env)
    commands = subcommands_of_help(run("vfio-migctl", "--help",
                                       env=env).stdout)
    assert c("vfio-migctl", "") == commands, c("vfio-migctl", "")
    assert c("vfio-migctl", "mig") == ["migrate", "migrations"]
    assert "--drain-timeout-ms" in c("vfio-migctl", "migrate", "--d")
    assert "--devices" in c("vfio-migctl", "migrate", "--d")
    assert c("vfio-migctl", "migrate", "--policy", "") == ["sla",
                                                            "mandatory"]
    assert c("vfio-migctl", "fsm", "") == ["path"]
    assert c("vfio-migctl", "fsm", "path", "RUNNING_") == ["RUNNING_P2P"]
    assert "--server" in c("vfio-migctl", "plan", "--s")

    # Device ids from a running daemon, after --server.
    tmp = tempfile.mkdtemp(prefix="vmd-comp-")
    sim = os.path.join(tmp, "sim.json")
    with open(sim, "w") as f:
        json.dump({"devices": [{"id": i, "features": ["stop_copy", "p2p"],
                                "state_bytes": "1MiB"}
                               for i in ("gpu0", "gpu1", "nic0")]}, f)
    sock = "unix:" + os.path.join(tmp, "c.sock")
    daemon = subprocess.Popen(
        [os.path.join(args.build, "daemon", "vfio-migd"), "--listen", sock,
         "--backend", "sim", "--sim-config", sim, "--state-dir",
         os.path.join(tmp, "state")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: run("vfio-migctl", "--server", sock, "devices",
                               "--no-digest", check=False,
                               env=env).returncode == 0, 30, "daemon")
        got = c("vfio-migctl", "--server", sock, "plan", "--devices", "g")
        assert got == ["gpu0", "gpu1"], got
        got = c("vfio-migctl", "--server", sock, "plan", "--devices",
                "gpu0,n")
        assert got == ["gpu0,nic0"], got
    finally:
        daemon.terminate()
        daemon.wait(timeout=15)
        shutil.rmtree(tmp, ignore_errors=True)
    return "commands, options, states, and device ids from a live daemon"


# --- the Debian package -------------------------------------------------

DPKG_RETRY_SECONDS = 300


def dpkg(*cmd):
    """dpkg, waiting while another dpkg or apt holds its lock (engineers
    and CI share the machine)."""
    deadline = time.monotonic() + DPKG_RETRY_SECONDS
    while True:
        proc = run("dpkg", *cmd, check=False)
        if proc.returncode == 0:
            return proc
        if "lock" not in proc.stderr or time.monotonic() > deadline:
            raise AssertionError(f"dpkg {' '.join(cmd)}: rc "
                                 f"{proc.returncode}\n{proc.stdout}"
                                 f"{proc.stderr}")
        time.sleep(2)


def test_deb(args):
    packages = os.path.join(args.build, "packages")
    shutil.rmtree(packages, ignore_errors=True)
    run("cpack", "-G", "DEB", "--config",
        os.path.join(args.build, "CPackConfig.cmake"), cwd=args.build,
        timeout=600)
    debs = [f for f in os.listdir(packages) if f.endswith(".deb")]
    assert len(debs) == 1, debs
    deb = os.path.join(packages, debs[0])
    assert re.fullmatch(r"vfio-migd_[0-9.]+_amd64\.deb", debs[0]), debs[0]

    depends = run("dpkg-deb", "-f", deb, "Depends").stdout
    for lib in ("libc6", "libgrpc++1.51", "libprotobuf32", "libspdlog1.10",
                "libtomlplusplus3", "libsystemd0", "libxml2",
                "libcpp-httplib0.11", "libprometheus-cpp-core1.0"):
        assert re.search(rf"\b{re.escape(lib)}\b", depends), (
            f"{lib} not in Depends: {depends}")
    conffiles = run("dpkg-deb", "-I", deb, "conffiles").stdout.split()
    assert conffiles == ["/etc/vfio-migd/vfio-migd.toml"], conffiles
    listing = run("dpkg-deb", "-c", deb).stdout
    files = set(re.findall(r"\s\.(/\S+)$", listing, re.M))
    want = {"/usr/sbin/vfio-migd", "/usr/bin/vfio-migctl",
            "/lib/systemd/system/vfio-migd.service",
            "/etc/vfio-migd/vfio-migd.toml",
            "/usr/share/man/man8/vfio-migd.8.gz",
            "/usr/share/man/man1/vfio-migctl.1.gz",
            "/usr/share/bash-completion/completions/vfio-migctl",
            "/usr/share/vfio-migd/libvirt/vfio-migd-hook"}
    assert want <= files, sorted(want - files)
    stray = [f for f in files if not f.endswith("/") and not any(
        f.startswith(p) for p in ("/usr/", "/etc/vfio-migd/", "/etc/libvirt/",
                                  "/lib/systemd/system/"))]
    assert not stray, stray

    # One package test on the machine at a time (engineers share it).
    with open("/tmp/vfio-migd-deb-test.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        # Never replace (and then purge) a vfio-migd someone installed.
        have = run("dpkg-query", "-W", "-f", "${Status}", "vfio-migd",
                   check=False).stdout
        assert "installed" not in have.split(), (
            f"a vfio-migd package is already installed ({have}); this "
            f"test installs and purges its own: remove it first")
        try:
            return installed_checks(args, deb)
        finally:
            dpkg("--purge", "vfio-migd")
            for path in ("/usr/sbin/vfio-migd", "/usr/bin/vfio-migctl",
                         "/lib/systemd/system/vfio-migd.service",
                         "/etc/vfio-migd/vfio-migd.toml"):
                assert not os.path.exists(path), f"{path} left by purge"


def installed_checks(args, deb):
    dpkg("-i", deb)
    hook = "/usr/share/vfio-migd/libvirt/vfio-migd-hook"
    assert os.access(hook, os.X_OK), hook
    with open(hook) as f:
        assert "VFIO_MIGCTL=/usr/bin/vfio-migctl\n" in f.read()
    status = run("dpkg-query", "-W", "-f", "${Status} ${Version}",
                 "vfio-migd").stdout
    assert status.startswith("install ok installed"), status
    version = run("/usr/sbin/vfio-migd", "--version").stdout.strip()
    assert re.fullmatch(r"vfio-migd [0-9]+\.[0-9]+\.[0-9]+", version), version
    assert version.split()[1] in status
    helptext = run("/usr/bin/vfio-migctl", "--help").stdout
    assert "Subcommands:" in helptext and "migrate" in helptext, helptext
    # The installed unit, with the installed man pages its Documentation=
    # names: a full verify.
    proc = run("systemd-analyze", "verify",
               "/lib/systemd/system/vfio-migd.service", check=False)
    assert proc.returncode == 0 and not proc.stderr.strip(), (
        proc.stdout + proc.stderr)
    for page in ("vfio-migd", "vfio-migctl"):
        assert run("man", "-w", page).stdout.startswith("/usr/share/man/")
    assert os.path.exists("/usr/share/bash-completion/completions/"
                          "vfio-migctl")

    # The installed daemon reads the installed config (every key commented
    # out) and serves; the installed CLI talks to it.
    tmp = tempfile.mkdtemp(prefix="vmd-deb-")
    try:
        sim = os.path.join(tmp, "sim.json")
        with open(sim, "w") as f:
            json.dump({"devices": [{"id": "gpu0", "features": ["stop_copy"],
                                    "state_bytes": "1MiB"}]}, f)
        sock = "unix:" + os.path.join(tmp, "d.sock")
        log = open(os.path.join(tmp, "d.log"), "w+")
        daemon = subprocess.Popen(
            ["/usr/sbin/vfio-migd", "--listen", sock, "--backend", "sim",
             "--sim-config", sim, "--state-dir", os.path.join(tmp, "state")],
            stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_until(lambda: run("/usr/bin/vfio-migctl", "--server", sock,
                                   "devices", "--no-digest",
                                   check=False).returncode == 0, 30,
                       "the installed daemon to serve")
        finally:
            daemon.terminate()
            assert daemon.wait(timeout=15) == 0
        log.seek(0)
        text = log.read()
        assert "read config file /etc/vfio-migd/vfio-migd.toml" in text, text
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return (f"{os.path.basename(deb)} installed: {version}; unit verified "
            f"with its man pages; the installed daemon served; purged")


def test_install(args):
    """cmake --install into a temporary prefix: the files, their modes,
    and the unit and hook naming the programs under that prefix."""
    prefix = tempfile.mkdtemp(prefix="vmd-inst-")
    try:
        run("cmake", "--install", args.build, "--prefix", prefix)
        files = {os.path.relpath(os.path.join(d, f), prefix): os.stat(
                     os.path.join(d, f)).st_mode & 0o777
                 for d, _, fs in os.walk(prefix) for f in fs}
        want = {"sbin/vfio-migd": 0o755, "bin/vfio-migctl": 0o755,
                "lib/systemd/system/vfio-migd.service": 0o644,
                "etc/vfio-migd/vfio-migd.toml": 0o644,
                "share/vfio-migd/libvirt/vfio-migd-hook": 0o755,
                "share/man/man8/vfio-migd.8.gz": 0o644,
                "share/man/man1/vfio-migctl.1.gz": 0o644,
                "share/bash-completion/completions/vfio-migctl": 0o644}
        assert files == want, (sorted(files.items()), sorted(want.items()))
        with open(os.path.join(prefix, want_unit := "lib/systemd/system/"
                               "vfio-migd.service")) as f:
            unit = f.read()
        assert (f"\nExecStart={prefix}/sbin/vfio-migd --config "
                f"{prefix}/etc/vfio-migd/vfio-migd.toml\n") in unit, unit
        with open(os.path.join(prefix, "share/vfio-migd/libvirt/"
                               "vfio-migd-hook")) as f:
            assert f"\nVFIO_MIGCTL={prefix}/bin/vfio-migctl\n" in f.read()
        version = run(os.path.join(prefix, "sbin/vfio-migd"),
                      "--version").stdout.strip()
        assert version.startswith("vfio-migd "), version
        # The installed unit names the installed daemon: verify it there.
        proc = run("systemd-analyze", "verify", "--man=no",
                   os.path.join(prefix, want_unit), check=False)
        assert proc.returncode == 0 and not proc.stderr.strip(), (
            proc.stdout + proc.stderr)
        return f"{len(files)} files under the prefix; {version}"
    finally:
        shutil.rmtree(prefix, ignore_errors=True)


TESTS = {"man": test_man, "completion": test_completion,
         "install": test_install, "deb": test_deb}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--source", required=True)
    parser.add_argument("--build", required=True)
    parser.add_argument("tests", nargs="+", choices=sorted(TESTS))
    args = parser.parse_args()
    args.source = os.path.abspath(args.source)
    args.build = os.path.abspath(args.build)
    failed = 0
    for name in args.tests:
        try:
            print(f"{name}: {TESTS[name](args)}")
        except Exception:
            failed += 1
            import traceback
            traceback.print_exc()
    print("FAILED" if failed else "OK")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
