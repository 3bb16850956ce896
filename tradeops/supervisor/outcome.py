"""Whether a desk came up, told by a detached supervisor to the `tradeops up` that started it.

The supervisor calls `on_ready` once every process has settled: none is still starting.
Settled is not ready: a process that crashed and waits to restart (backoff), or gave up
(fatal, exited), settled too. So at that moment the supervisor judges the status rows and
writes the verdict, one JSON line, to the pipe whose write end `tradeops up --detach` named
in `TRADEOPS_UP_FD`. The parent reads it and reports "up" only when every process runs;
otherwise it exits non-zero with one line per process that is not ready. A supervisor that
dies before judging closes the pipe, which the parent reads as end of file.
"""

from __future__ import annotations

import json
import os
import select
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

UP_FD = "TRADEOPS_UP_FD"


@dataclass(frozen=True)
class Verdict:
    ok: bool
    problems: list[str] = field(default_factory=list)


def judge(rows: list[dict[str, Any]], said: Callable[[str], str],
          last: Callable[[str], str] | None = None) -> Verdict:
    """Ready when every process runs; else one line per process: its name and why. Why is
    the problem it reported (`said`: its last ERROR line or traceback end), else how it
    ended (the lifecycle's reason: a crash without a word is "exited with status 3", not
    the WARNING it happened to log before), else its last line (`last`: one still starting
    when its tier's time ran out)."""
    problems = []
    for row in rows:
        if row["state"] == "running":
            continue
        name = row["name"]
        why = said(name) or row.get("reason") or (last(name) if last is not None else "")
        problems.append(f"{row['name']}: {row['state']}" + (f": {why}" if why else ""))
    return Verdict(not problems, problems)


def reporter(fd: int, verdict: Callable[[], Verdict]) -> Callable[[], None]:
    """The supervisor's `on_ready` for a detached run: write the verdict once, close."""

    def on_ready() -> None:
        v = verdict()
        line = json.dumps({"ok": v.ok, "problems": v.problems}) + "\n"
        try:
            os.write(fd, line.encode())
            os.close(fd)
        except OSError:  # the parent gave up waiting; the desk runs on
            pass

    return on_ready


def wait_verdict(fd: int, timeout: float) -> Verdict | None:
    """Read the verdict from the pipe; None when the supervisor ended without one.
    TimeoutError when neither happens within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    data = b""
    while not data.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        ready, _, _ = select.select([fd], [], [], min(left, 1.0))
        if not ready:
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            return None
        data += chunk
    reply = json.loads(data)
    return Verdict(bool(reply["ok"]), [str(p) for p in reply.get("problems", [])])
