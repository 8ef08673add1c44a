#!/usr/bin/python3
"""`vfio-migctl fsm path` against an independent model of the kernel FSM.

Runs the CLI for every (from, to) pair of the 8 kernel states under each of
the four feature sets a real device can have (256 runs) and compares with
kernel_fsm_reference.path(). Where the reference finds a path, the CLI must
print exactly it and exit 0; where the kernel refuses, the CLI must exit 2
with one non-empty stderr line and an empty stdout.

Usage: fsm_path_test.py --migctl PATH/TO/vfio-migctl
"""

import argparse
import concurrent.futures
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kernel_fsm_reference as ref  # noqa: E402


def run(migctl, *args):
    proc = subprocess.run([migctl, *args], capture_output=True, text=True,
                          timeout=30)
    return proc.returncode, proc.stdout, proc.stderr


def check_refused(label, result, failures):
    rc, out, err = result
    lines = err.splitlines()
    if rc != 2 or out != "" or len(lines) != 1 or not lines[0].strip():
        failures.append(f"{label}: expected exit 2, empty stdout and one "
                        f"stderr line; got rc={rc} stdout={out!r} "
                        f"stderr={err!r}")


def check_path(label, result, expected, failures):
    rc, out, err = result
    if rc != 0 or out != expected + "\n":
        failures.append(f"{label}: expected {expected!r} and exit 0; got "
                        f"rc={rc} stdout={out!r} stderr={err!r}")


def exhaustive(migctl, failures):
    cases = []
    for flags in ref.FEATURE_SETS:
        for cur in range(8):
            for new in range(8):
                cases.append((flags, cur, new))

    def one(case):
        flags, cur, new = case
        return run(migctl, "fsm", "path", "--features", ref.feature_arg(flags),
                   ref.NAMES[cur], ref.NAMES[new])

    workers = min(32, (os.cpu_count() or 4) * 4)
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(one, cases))

    refused = 0
    for (flags, cur, new), result in zip(cases, results):
        label = (f"[{ref.feature_arg(flags)}] {ref.NAMES[cur]} -> "
                 f"{ref.NAMES[new]}")
        expected = ref.path(flags, cur, new)
        if expected is None:
            refused += 1
            check_refused(label, result, failures)
        else:
            check_path(label, result,
                       " ".join(ref.NAMES[s] for s in expected), failures)
    # Guards the test itself: a reference that refused everything (or
    # nothing) would make the comparison vacuous.
    if not 0 < refused < len(cases):
        failures.append(f"reference refused {refused} of {len(cases)} cases")
    return len(cases)


def hand_written(migctl, failures):
    all_features = "stop_copy,p2p,pre_copy"
    check_path("save path, all features",
               run(migctl, "fsm", "path", "--features", all_features,
                   "RUNNING", "STOP_COPY"),
               "RUNNING RUNNING_P2P STOP STOP_COPY", failures)
    check_path("save path without P2P",
               run(migctl, "fsm", "path", "--features", "stop_copy",
                   "RUNNING", "STOP_COPY"),
               "RUNNING STOP STOP_COPY", failures)
    check_path("pre-copy save path",
               run(migctl, "fsm", "path", "--features", all_features,
                   "PRE_COPY", "STOP_COPY"),
               "PRE_COPY PRE_COPY_P2P STOP_COPY", failures)
    check_path("resume path",
               run(migctl, "fsm", "path", "--features", all_features,
                   "RESUMING", "RUNNING"),
               "RESUMING STOP RUNNING_P2P RUNNING", failures)
    check_path("state names are case-insensitive",
               run(migctl, "fsm", "path", "--features", "STOP_COPY,P2P",
                   "running", "Stop_Copy"),
               "RUNNING RUNNING_P2P STOP STOP_COPY", failures)
    check_path("FROM == TO prints FROM alone",
               run(migctl, "fsm", "path", "--features", all_features,
                   "STOP", "STOP"),
               "STOP", failures)
    check_refused("STOP_COPY -> PRE_COPY is refused",
                  run(migctl, "fsm", "path", "--features", all_features,
                      "STOP_COPY", "PRE_COPY"), failures)
    check_refused("STOP_COPY -> PRE_COPY_P2P is refused",
                  run(migctl, "fsm", "path", "--features", all_features,
                      "STOP_COPY", "PRE_COPY_P2P"), failures)
    check_refused("target ERROR is refused",
                  run(migctl, "fsm", "path", "--features", all_features,
                      "RUNNING", "ERROR"), failures)
    check_refused("from ERROR is refused",
                  run(migctl, "fsm", "path", "--features", all_features,
                      "ERROR", "RUNNING"), failures)
    check_refused("a state the features lack is refused",
                  run(migctl, "fsm", "path", "--features", "stop_copy",
                      "RUNNING", "RUNNING_P2P"), failures)
    check_refused("unknown state name",
                  run(migctl, "fsm", "path", "--features", all_features,
                      "RUNNING", "PAUSED"), failures)
    check_refused("unknown feature",
                  run(migctl, "fsm", "path", "--features", "stop_copy,turbo",
                      "RUNNING", "STOP"), failures)
    rc, out, err = run(migctl, "fsm", "path", "--help")
    if rc != 0 or "FROM" not in out or "--features" not in out:
        failures.append(f"fsm path --help: rc={rc} stdout={out!r}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--migctl", required=True)
    args = parser.parse_args()

    failures = []
    count = exhaustive(args.migctl, failures)
    hand_written(args.migctl, failures)
    for failure in failures:
        print("FAIL:", failure)
    if failures:
        print(f"{len(failures)} failure(s)")
        return 1
    print(f"OK: {count} exhaustive cases and hand-written expectations match "
          "the kernel reference")
    return 0


if __name__ == "__main__":
    sys.exit(main())
