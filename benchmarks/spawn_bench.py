"""What starting a child costs the supervisor: `subprocess.Popen` with and without a preexec_fn.

The supervisor once asked for `PR_SET_PDEATHSIG` in a `preexec_fn`, between fork and exec.
A `preexec_fn` forces Python to fork (copy the supervisor's page tables, then run Python code
in the child before exec); without one, Python uses vfork and the parent waits only for the
exec. The child now makes the `prctl` itself as its first act (tradeops/process/parent.py).
Both sides start the same child with the same pipes, session and environment as
`supervisor/children.py` does; the time is that of the `Popen` call, which is how long the
supervisor's loop is stalled by a start (the child's own start-up is the same on both sides
and not counted). Measured in a process that has imported the supervisor, then again with
500 MB more touched memory (a supervisor that has grown over a long session: fork's cost
grows with the parent's memory, vfork's does not). Runs are interleaved, 60 each.

Run: .venv/bin/python benchmarks/spawn_bench.py
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import tradeops.supervisor.supervisor  # noqa: F401  (the supervisor's memory, as it runs)
from benchmarks.results import machine, write_section
from tradeops.process.parent import SUPERVISOR_PID, die_with_parent

RUNS = 60
CHILD = [sys.executable, "-c", "from tradeops.process.parent import check_parent; check_parent()"]


def start(preexec: Callable[[], None] | None) -> float:
    """One start as the supervisor makes it; the seconds spent in the Popen call."""
    ready_r, ready_w = os.pipe()
    env = {**os.environ, SUPERVISOR_PID: str(os.getpid()), "TRADEOPS_READY_FD": str(ready_w)}
    began = time.perf_counter()
    popen = subprocess.Popen(CHILD, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, pass_fds=(ready_w,), env=env,
                             start_new_session=True, preexec_fn=preexec)
    took = time.perf_counter() - began
    os.close(ready_w)
    popen.communicate(timeout=30)
    os.close(ready_r)
    return took


def compare() -> tuple[list[float], list[float]]:
    old: list[float] = []
    new: list[float] = []
    for _ in range(RUNS):
        old.append(start(die_with_parent))
        new.append(start(None))
    return old, new


def row(name: str, old: list[float], new: list[float]) -> str:
    o, n = statistics.median(old), statistics.median(new)
    return (f"| {name} | {o * 1e3:.2f} ms ({min(old) * 1e3:.2f}) | "
            f"{n * 1e3:.2f} ms ({min(new) * 1e3:.2f}) | {o / n:.1f}x |")


def main() -> None:
    rows = [row("the supervisor as it starts", *compare())]
    ballast = bytearray(500 << 20)
    for i in range(0, len(ballast), 4096):  # touch every page: it is the parent's memory
        ballast[i] = 1
    rows.append(row("with 500 MB more in the supervisor", *compare()))
    del ballast
    body = "\n".join([
        f"`benchmarks/spawn_bench.py` on {machine()}. The `Popen` call that starts a child",
        "(how long the supervisor's loop stalls), median (best) of 60 interleaved starts.",
        "",
        "| supervisor | `preexec_fn` sets PDEATHSIG (fork) | the child sets it (vfork) | ratio |",
        "|---|---|---|---|",
        *rows,
        "",
        "The child still dies with its supervisor (tests/process/test_parent.py): it makes the",
        "`prctl` before its heavy imports, then checks its parent is the supervisor that started",
        "it, so a supervisor that died in between is not missed.",
    ])
    print(body)
    write_section("spawn_bench", body)


if __name__ == "__main__":
    main()
