"""A supervised process's first act: die with the supervisor that started it.

The supervisor starts each child with a plain `subprocess.Popen` (no `preexec_fn`), so Python
can use vfork and the start costs well under a millisecond instead of a full fork of the
supervisor's memory (benchmarks/spawn_bench.py). The child asks the kernel itself, as the
first thing it does, for SIGTERM when its parent dies (`PR_SET_PDEATHSIG`), then checks that
its parent is still the supervisor that started it (`TRADEOPS_SUPERVISOR_PID`): a supervisor
that died in the window between the start and the `prctl` has left the child with another
parent, and the child exits at once. Either way, no child outlives its supervisor.

This module imports only the standard library, so a role calls it before its heavy imports:
a child whose supervisor is gone does not first spend 100 ms loading the desk.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1
SUPERVISOR_PID = "TRADEOPS_SUPERVISOR_PID"


def die_with_parent() -> None:
    """Ask the kernel for SIGTERM when the parent (the thread that started us) dies."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def check_parent() -> None:
    """Under a supervisor: die with it, and exit at once if it is already gone.

    Does nothing in a process not started by a supervisor (a role started by hand, a test),
    which has no `TRADEOPS_SUPERVISOR_PID` and whose parent's death is no reason to stop."""
    expected = os.environ.get(SUPERVISOR_PID)
    if not expected:
        return
    die_with_parent()
    if os.getppid() != int(expected):
        sys.stderr.write("the supervisor is gone; exiting\n")
        os._exit(1)
