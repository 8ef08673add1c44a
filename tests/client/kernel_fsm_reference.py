"""An independent transcription of the kernel's vfio_mig_get_next_state().

Source: drivers/vfio/vfio_main.c (Linux 6.x), vfio_from_fsm_table and
state_flags_table. Kept separate from the C++ implementation on purpose: the
CLI test compares `vfio-migctl fsm path` against this for every
(from, to, features) combination, so a transcription error in either shows.
"""

ERROR, STOP, RUNNING, STOP_COPY, RESUMING, RUNNING_P2P, PRE_COPY, PRE_COPY_P2P = range(8)
NAMES = ["ERROR", "STOP", "RUNNING", "STOP_COPY", "RESUMING", "RUNNING_P2P",
         "PRE_COPY", "PRE_COPY_P2P"]

F_STOP_COPY, F_P2P, F_PRE_COPY = 1, 2, 4
FEATURE_NAMES = {F_STOP_COPY: "stop_copy", F_P2P: "p2p", F_PRE_COPY: "pre_copy"}

# from -> {to: next}, written out the way the kernel source lists it.
FROM_FSM = {
    STOP: {STOP: STOP, RUNNING: RUNNING_P2P, PRE_COPY: RUNNING_P2P,
           PRE_COPY_P2P: RUNNING_P2P, STOP_COPY: STOP_COPY, RESUMING: RESUMING,
           RUNNING_P2P: RUNNING_P2P, ERROR: ERROR},
    RUNNING: {STOP: RUNNING_P2P, RUNNING: RUNNING, PRE_COPY: PRE_COPY,
              PRE_COPY_P2P: RUNNING_P2P, STOP_COPY: RUNNING_P2P,
              RESUMING: RUNNING_P2P, RUNNING_P2P: RUNNING_P2P, ERROR: ERROR},
    PRE_COPY: {STOP: RUNNING, RUNNING: RUNNING, PRE_COPY: PRE_COPY,
               PRE_COPY_P2P: PRE_COPY_P2P, STOP_COPY: PRE_COPY_P2P,
               RESUMING: RUNNING, RUNNING_P2P: RUNNING, ERROR: ERROR},
    PRE_COPY_P2P: {STOP: RUNNING_P2P, RUNNING: RUNNING_P2P, PRE_COPY: PRE_COPY,
                   PRE_COPY_P2P: PRE_COPY_P2P, STOP_COPY: STOP_COPY,
                   RESUMING: RUNNING_P2P, RUNNING_P2P: RUNNING_P2P, ERROR: ERROR},
    STOP_COPY: {STOP: STOP, RUNNING: STOP, PRE_COPY: ERROR, PRE_COPY_P2P: ERROR,
                STOP_COPY: STOP_COPY, RESUMING: STOP, RUNNING_P2P: STOP,
                ERROR: ERROR},
    RESUMING: {STOP: STOP, RUNNING: STOP, PRE_COPY: STOP, PRE_COPY_P2P: STOP,
               STOP_COPY: STOP, RESUMING: RESUMING, RUNNING_P2P: STOP,
               ERROR: ERROR},
    RUNNING_P2P: {STOP: STOP, RUNNING: RUNNING, PRE_COPY: RUNNING,
                  PRE_COPY_P2P: PRE_COPY_P2P, STOP_COPY: STOP, RESUMING: STOP,
                  RUNNING_P2P: RUNNING_P2P, ERROR: ERROR},
    ERROR: {s: ERROR for s in range(8)},
}

STATE_FLAGS = {
    STOP: F_STOP_COPY, RUNNING: F_STOP_COPY, STOP_COPY: F_STOP_COPY,
    RESUMING: F_STOP_COPY, RUNNING_P2P: F_STOP_COPY | F_P2P,
    PRE_COPY: F_STOP_COPY | F_PRE_COPY,
    PRE_COPY_P2P: F_STOP_COPY | F_P2P | F_PRE_COPY, ERROR: 0xFFFFFFFF,
}


def supported(flags, state):
    return STATE_FLAGS[state] & flags == STATE_FLAGS[state]


def next_state(flags, cur, new):
    """Returns the next state, or None where the kernel returns -EINVAL."""
    if not supported(flags, cur) or not supported(flags, new):
        return None
    nxt = FROM_FSM[cur][new]
    # The kernel loops while the next state is unsupported. ERROR is never
    # supported, so a blocked arc would spin forever on old kernels; fixed
    # kernels return -EINVAL, which is what we model.
    while nxt != ERROR and not supported(flags, nxt):
        nxt = FROM_FSM[nxt][new]
    return None if nxt == ERROR else nxt


def path(flags, cur, new):
    """The full path [cur, ..., new], or None when the kernel refuses."""
    out = [cur]
    if next_state(flags, cur, new) is None:
        return None
    while cur != new:
        cur = next_state(flags, cur, new)
        if cur is None:
            return None
        out.append(cur)
    return out


FEATURE_SETS = [F_STOP_COPY, F_STOP_COPY | F_P2P, F_STOP_COPY | F_PRE_COPY,
                F_STOP_COPY | F_P2P | F_PRE_COPY]


def feature_arg(flags):
    return ",".join(name for bit, name in sorted(FEATURE_NAMES.items())
                    if flags & bit)
