"""One supervisor per desk: the lock file, and what a crashed earlier run left behind.

The lock is an `flock` on `RUN_DIR/NAME.lock` (it holds the supervisor's pid), held for the
whole run: the kernel releases it when the supervisor dies, however it dies, so a stale lock
file never blocks the next `up`.
"""

from __future__ import annotations

import fcntl
from collections.abc import Callable, Iterable
from typing import IO

from tradeops.process.paths import RunPaths


class AlreadyRunning(Exception):
    pass


class DeskLock:
    def __init__(self, paths: RunPaths) -> None:
        self.paths = paths
        self._file: IO[str] | None = None

    def acquire(self, pid: int) -> None:
        """Take the lock and record `pid` in it; AlreadyRunning when another supervisor has it."""
        self.paths.run_dir.mkdir(parents=True, exist_ok=True)
        self._file = open(self.paths.lock, "a+")  # noqa: SIM115 (held for the whole run)
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


def remove_leftovers(paths: RunPaths, brokers: Iterable[str], say: Callable[[str], None]) -> None:
    """What a crashed earlier run of this desk left: shared memory, gateway sockets, state."""
    from tradeops.bus.names import remove_segments

    removed = remove_segments(paths.bus)
    if removed:
        say(f"supervisor | removed {len(removed)} stale shared-memory segment(s)")
    for broker in brokers:
        paths.gateway_socket(broker).unlink(missing_ok=True)
    for state in paths.state.glob("*.json") if paths.state.exists() else []:
        state.unlink(missing_ok=True)
