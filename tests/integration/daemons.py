"""Helpers every Python test that runs real vfio-migd processes shares:
polling with a deadline, and stopping a daemon the way systemd would
(SIGTERM, then SIGKILL after a grace period)."""

import signal
import subprocess
import time


def wait_until(predicate, timeout, what, interval=0.05):
    """Polls `predicate` until it returns something true, and returns it;
    fails the test with `what` once `timeout` seconds have passed."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for "
                                 f"{what}")
        time.sleep(interval)


def stop_process(proc, grace=15):
    """SIGTERM, then SIGKILL if `proc` has not exited after `grace`
    seconds; returns once it is gone. A process that already exited is
    left alone."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
