#!/usr/bin/python3
"""vfio-migd under systemd's protocols, with real programs.

  unit      systemd-analyze verify accepts deploy/systemd/vfio-migd.service
            (ExecStart pointed at the built daemon), and systemd-analyze
            security rates its exposure at most 3.0.
  notify    the daemon started as systemd starts a Type=notify,
            WatchdogSec= unit ($NOTIFY_SOCKET, $WATCHDOG_USEC): READY=1
            only once its socket answers, WATCHDOG=1 every half interval,
            STOPPING=1 on SIGTERM.
  journal   with stderr connected to a real systemd-journald's stream
            socket and $JOURNAL_STREAM naming it (as systemd does for
            StandardError=journal), every line goes to the journal through
            sd_journal_send with its own priority; with stderr elsewhere,
            lines go to stderr. journald runs in a private mount namespace
            (unshare -m) on tmpfs, so the host's journal is untouched.

Usage: systemd_test.py --migd build/daemon/vfio-migd --migctl ...
                       --unit build/deploy/vfio-migd.service
"""
import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

# The helpers the Python tests share (polling, stopping a daemon).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "integration"))
from daemons import wait_until  # noqa: E402


def sim_config(tmp):
    path = os.path.join(tmp, "sim.json")
    with open(path, "w") as f:
        json.dump({"devices": [{"id": "gpu0", "features": ["stop_copy"],
                                "state_bytes": "1MiB"}]}, f)
    return path


def test_unit(args, tmp):
    unit = os.path.join(tmp, "vfio-migd.service")
    with open(args.unit) as f:
        text = f.read()
    # The build's unit names the daemon under the install prefix.
    text, count = re.subn(r"^ExecStart=\S*/sbin/vfio-migd$",
                          f"ExecStart={os.path.abspath(args.migd)}", text,
                          flags=re.M)
    assert count == 1, text
    with open(unit, "w") as f:
        f.write(text)
    # --man=no: the man pages are installed only by the package (the .deb
    # test verifies the installed unit with them).
    proc = subprocess.run(["systemd-analyze", "verify", "--man=no", unit],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and not proc.stderr.strip(), (
        proc.returncode, proc.stdout, proc.stderr)
    proc = subprocess.run(["systemd-analyze", "security", "--offline=true",
                           "--threshold=30", "--no-pager", unit],
                          capture_output=True, text=True, timeout=60)
    summary = [line for line in proc.stdout.splitlines()
               if "Overall exposure level" in line]
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr
    return f"verify clean; {summary[0].split('→ ')[-1].strip()}"


def test_notify(args, tmp):
    notify_path = os.path.join(tmp, "notify")
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(notify_path)
    notify.settimeout(0.1)
    sock = os.path.join(tmp, "notify.sock")
    env = dict(os.environ, NOTIFY_SOCKET=notify_path, WATCHDOG_USEC="400000")
    log = open(os.path.join(tmp, "notify.log"), "w+")
    proc = subprocess.Popen([args.migd, "--listen", "unix:" + sock,
                             "--backend", "sim", "--sim-config",
                             sim_config(tmp), "--state-dir",
                             os.path.join(tmp, "notify-state")],
                            stdout=log, stderr=subprocess.STDOUT, env=env)
    messages = []

    def receive(seconds):
        end = time.monotonic() + seconds
        got = []
        while time.monotonic() < end:
            try:
                got.append(notify.recv(4096).decode())
            except socket.timeout:
                pass
        messages.extend(got)
        return got

    try:
        ready = wait_until(lambda: [m for m in receive(0.1)
                                    if m.startswith("READY=1")],
                           30, "READY=1")
        # Ready means serving: the socket answers at once.
        devices = subprocess.run(
            [args.migctl, "--server", "unix:" + sock, "--timeout", "2",
             "devices", "--no-digest"], capture_output=True, text=True)
        assert devices.returncode == 0, devices.stderr
        assert "STATUS=" in ready[0] and "1 devices" in ready[0], ready
        pings = receive(1.0).count("WATCHDOG=1")
        # Every 200 ms: about 5 in a second.
        assert pings >= 3, messages
        proc.terminate()
        stopping = wait_until(lambda: [m for m in receive(0.1)
                                       if m.startswith("STOPPING=1")],
                              15, "STOPPING=1")
        assert proc.wait(timeout=15) == 0
        return (f"{ready[0]!r}, {pings} watchdog pings in 1 s, "
                f"{stopping[0]!r}")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.seek(0)
        text = log.read()
        log.close()
        notify.close()
        if sys.exc_info()[0] is not None:
            print(text)


# --- journal, run inside `unshare -m` -----------------------------------

def connect_journal_stream(identifier):
    """What systemd does for StandardError=journal: a stream connection to
    journald with the stream header (systemd's src/core/execute.c)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect("/run/systemd/journal/stdout")
    s.shutdown(socket.SHUT_RD)
    # identifier, unit id, priority, level prefix, forward to syslog, kmsg,
    # console.
    s.sendall(f"{identifier}\n\n6\n1\n0\n0\n0\n".encode())
    return s


def journal_entries(identifier):
    proc = subprocess.run(["journalctl", "--no-pager", "-o", "json",
                           "SYSLOG_IDENTIFIER=" + identifier],
                          capture_output=True, text=True, timeout=30)
    return [json.loads(line) for line in proc.stdout.splitlines() if line]


def journal_body(args, tmp):
    # A fresh /run (journald's sockets and its volatile journal) and
    # journal directory: nothing of the host's is read or written, whether
    # or not the host runs systemd.
    for path in ("/run", "/var/log/journal"):
        if os.path.isdir(path):
            subprocess.run(["mount", "-t", "tmpfs", "tmpfs", path],
                           check=True)
    journald = subprocess.Popen(["/lib/systemd/systemd-journald"],
                                stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: os.path.exists("/run/systemd/journal/stdout"), 10,
                   "journald's stream socket")
        stream = connect_journal_stream("vfio-migd")
        st = os.fstat(stream.fileno())
        env = dict(os.environ, JOURNAL_STREAM=f"{st.st_dev}:{st.st_ino}",
                   INVOCATION_ID="0123456789abcdef0123456789abcdef")
        sock = os.path.join(tmp, "j.sock")
        # A plaintext TCP listener (--insecure) makes the daemon warn (no
        # authentication).
        proc = subprocess.Popen(
            [args.migd, "--listen", "unix:" + sock, "--listen",
             "127.0.0.1:0", "--insecure", "--backend", "sim", "--sim-config",
             sim_config(tmp), "--state-dir", os.path.join(tmp, "j-state")],
            stdout=stream.fileno(), stderr=stream.fileno(), env=env)
        stream.close()
        wait_until(lambda: any("listening on" in e.get("MESSAGE", "")
                               for e in journal_entries("vfio-migd")),
                   30, "the daemon's start-up line in the journal")
        proc.terminate()
        assert proc.wait(timeout=15) == 0
        entries = wait_until(
            lambda: (lambda es: es if any(e.get("MESSAGE") == "stopped"
                                          for e in es) else None)(
                journal_entries("vfio-migd")),
            10, "'stopped' in the journal")
        # Native entries (sd_journal_send), not stream lines: the message
        # alone, the priority from the level.
        by_message = {e["MESSAGE"]: e for e in entries}
        warn = [e for e in entries if "without authentication" in e["MESSAGE"]]
        assert warn and warn[0]["PRIORITY"] == "4", warn
        assert warn[0]["_TRANSPORT"] == "journal", warn[0]
        info = by_message["stopped"]
        assert info["PRIORITY"] == "6" and info["_TRANSPORT"] == "journal"
        assert all(e["_TRANSPORT"] == "journal" for e in entries), [
            (e["_TRANSPORT"], e["MESSAGE"]) for e in entries
            if e["_TRANSPORT"] != "journal"]
        assert not any(e["MESSAGE"].startswith("20") for e in entries), (
            "a line kept its own time stamp")

        # The same variables, but stderr is a file (StandardError=file:):
        # the daemon must not log to the journal.
        # A sim config the backend refuses: logged (spdlog) after start-up.
        bad = os.path.join(tmp, "bad-sim.json")
        with open(bad, "w") as f:
            f.write('{"devices": 3}')
        path = os.path.join(tmp, "stderr.log")
        with open(path, "w") as f:
            proc = subprocess.run(
                [args.migd, "--listen", "unix:" + sock, "--backend", "sim",
                 "--sim-config", bad, "--state-dir",
                 os.path.join(tmp, "bad-state")],
                stdout=f, stderr=f, env=env, timeout=30)
        assert proc.returncode == 1
        with open(path) as f:
            text = f.read()
        assert "cannot start backend sim" in text, text
        assert not any("cannot start backend" in e["MESSAGE"]
                       for e in journal_entries("vfio-migd"))
        return (f"{len(entries)} native journal entries (warning at "
                f"priority 4); stderr to a file stays on stderr")
    finally:
        journald.terminate()
        journald.wait(timeout=10)


def test_journal(args, tmp):
    # A private mount namespace: the host's /run/systemd is not touched.
    proc = subprocess.run(["unshare", "-m", sys.executable, __file__,
                           "--migd", args.migd, "--migctl", args.migctl,
                           "--unit", args.unit, "--journal-body", tmp],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout.strip()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--migd", required=True)
    parser.add_argument("--migctl", required=True)
    parser.add_argument("--unit", required=True)
    parser.add_argument("--journal-body", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.journal_body:
        print(journal_body(args, args.journal_body))
        return 0
    tmp = tempfile.mkdtemp(prefix="vmd-systemd-")
    failed = 0
    try:
        for test in (test_unit, test_notify, test_journal):
            try:
                print(f"{test.__name__}: {test(args, tmp)}")
            except Exception:
                failed += 1
                import traceback
                traceback.print_exc()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("FAILED" if failed else "OK")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
