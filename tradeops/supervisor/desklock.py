"""One supervisor per desk: the lock file, and what a crashed earlier run left behind.

The lock is an `flock` on `RUN_DIR/NAME.lock` (it holds the supervisor's pid), held for the
whole run: the kernel releases it when the supervisor dies, however it dies, so a stale lock
file never blocks the next `up`.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO

from tradeops.process.paths import RunPaths


class CannotStart(Exception):
    """The desk cannot start here; the message says why and what to do, in one line."""


class AlreadyRunning(CannotStart):
    pass


def unusable_run_dir(paths: RunPaths, exc: OSError) -> CannotStart:
    return CannotStart(
        f"cannot use run dir {paths.run_dir}: {exc.strerror or exc}; set settings.run_dir to "
        "a writable directory with free space"
    )


def check_run_dir(paths: RunPaths) -> None:
    """Make sure the run dir exists and takes a file; CannotStart (one line) when it does not
    (read-only, full, or a file in the way)."""
    probe = paths.run_dir / f".{paths.name}.probe"
    try:
        paths.run_dir.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"ok")
        probe.unlink()
    except OSError as exc:
        raise unusable_run_dir(paths, exc) from None


class DeskLock:
    def __init__(self, paths: RunPaths) -> None:
        self.paths = paths
        self._file: IO[str] | None = None

    def acquire(self, pid: int) -> None:
        """Take the lock and record `pid` in it; AlreadyRunning when another supervisor has it."""
        try:
            self.paths.run_dir.mkdir(parents=True, exist_ok=True)
            self._file = open(self.paths.lock, "a+")  # noqa: SIM115 (held for the whole run)
        except OSError as exc:
            raise unusable_run_dir(self.paths, exc) from None
        try:
            fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._file.close()
            self._file = None
            raise AlreadyRunning(
                f"desk '{self.paths.name}' is already running (control socket "
                f"{self.paths.control}); use `tradeops status` or `tradeops down`"
            ) from None
        self._file.seek(0)
        self._file.truncate()
        self._file.write(str(pid))
        self._file.flush()

    def release(self) -> None:
        if self._file is not None:
            self.paths.lock.unlink(missing_ok=True)
            self._file.close()
            self._file = None


def leftover_processes(paths: RunPaths) -> list[tuple[int, str]]:
    """(pid, name) of role processes of an earlier run of this desk that are still alive:
    their command line names this run dir (`python -m tradeops.ROLE ... --run-dir DIR`)."""
    mine = os.getpid()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == mine:
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        words = [a.decode(errors="replace") for a in argv]
        module, run_dir = _after(words, "-m"), _after(words, "--run-dir")
        if module.startswith("tradeops.") and run_dir and Path(run_dir) == paths.run_dir:
            found.append((int(entry.name), _after(words, "--name")))
    return found


def _after(words: list[str], flag: str) -> str:
    """The word after `flag` in a command line ("" when there is none)."""
    if flag in words and words.index(flag) + 1 < len(words):
        return words[words.index(flag) + 1]
    return ""


def remove_leftovers(paths: RunPaths, brokers: Iterable[str], say: Callable[[str], None]) -> None:
    """What a crashed earlier run of this desk left: processes (a host blocked in a callback
    when its supervisor was killed), shared memory, gateway sockets, state. Each is said."""
    from tradeops.bus.names import remove_segments

    for pid, name in leftover_processes(paths):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
        say(f"supervisor | killed {name} (pid {pid}), left running by an earlier run")

    removed = remove_segments(paths.bus)
    if removed:
        say(f"supervisor | removed {len(removed)} stale shared-memory segment(s)")
    for broker in brokers:
        paths.gateway_socket(broker).unlink(missing_ok=True)
    for state in paths.state.glob("*.json") if paths.state.exists() else []:
        state.unlink(missing_ok=True)
