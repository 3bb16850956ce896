"""Where the supervisor's console lines go, and what they say about each process.

The supervisor hands every line to one callable: its children's output prefixed with the
process name (`gateway-sim | INFO    | connected`) and its own reports. In the foreground
`tradeops up` prints them and keeps them in `RUN_DIR/logs/supervisor.log`; detached, the
supervisor keeps them in that file only. Either way the file holds everyone's lines, so
`tradeops logs` without a name shows them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path

Console = Callable[[str], None]

# The lifecycle's own reports about a process (supervisor/lifecycle.py), not the process's words.
_LIFECYCLE = ("exited with status", "killed by signal")
_PROBLEMS = ("ERROR", "CRITICAL")


def split(line: str) -> tuple[str, str | None, str]:
    """`NAME | LEVEL | message` → (NAME, LEVEL, message); a line a process printed without a
    level (a traceback, a print) gives LEVEL None."""
    name, _, rest = line.partition(" | ")
    level, sep, message = rest.partition(" | ")
    level = level.strip()
    if sep and level.isupper() and level.isalpha():
        return name, level, message
    return name, None, rest


def rotated_log(path: Path) -> Console:
    """Append each line to `path` with a timestamp, rotated at 10 MB with five files kept; a
    full disk cannot crash it (lines it cannot write are dropped and the problem noted in the
    file once space returns)."""
    import time

    from tradeops.process.logfile import LogFile

    with contextlib.suppress(OSError):  # LogFile reports a directory it cannot write
        path.parent.mkdir(parents=True, exist_ok=True)
    lost: list[str] = []
    log = LogFile(path, on_problem=lambda reason: lost.append(reason or "recovered"))

    def write(line: str) -> None:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        if lost and lost[-1] == "recovered":
            log.write(f"{stamp} supervisor | the log was not writable for a while: {lost[0]}\n")
            lost.clear()
        log.write(f"{stamp} {line}\n")

    return write


class LastWords:
    """Remembers, per process, the last problem it reported itself: its last ERROR line or
    unlevelled line (the end of a traceback), else its last line. That is the one-line
    reason `tradeops up` gives for a process that did not come up."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self._problem: dict[str, str] = {}
        self._last: dict[str, str] = {}

    def __call__(self, line: str) -> None:
        name, level, message = split(line)
        message = message.strip()
        if message and not message.startswith(_LIFECYCLE):
            self._last[name] = message
            if level is None or level in _PROBLEMS:
                self._problem[name] = message
        self.console(line)

    def of(self, name: str) -> str:
        return self._problem.get(name) or self._last.get(name, "")

    def problem(self, name: str) -> str:
        """Its last ERROR or unlevelled line ("" when it said none)."""
        return self._problem.get(name, "")

    def last(self, name: str) -> str:
        """Its last line of any level ("" when it said nothing)."""
        return self._last.get(name, "")


def tee(*consoles: Console) -> Console:
    def both(line: str) -> None:
        for console in consoles:
            console(line)

    return both
