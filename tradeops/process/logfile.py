"""A log file that a full disk cannot turn into a crash.

loguru's own file sink raises on a failed write, and with `catch=True` prints a traceback to
stderr for every line while the disk stays full: a flood on the console, and a role that
serves data must not be slowed or stopped by its log. `LogFile` is a loguru sink that writes
each line, rotates at `max_bytes` keeping `keep` old files (`NAME.log.1` is the newest), and
on a failed write drops the line, counts it and reports the problem once. It retries the
file every `retry_every` seconds, and clears the problem as soon as a line is written again.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO


class LogFile:
    def __init__(
        self,
        path: Path,
        on_problem: Callable[[str | None], None],
        max_bytes: int = 10 * 1024 * 1024,
        keep: int = 5,
        retry_every: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = path
        self.max_bytes, self.keep = max_bytes, keep
        self.dropped = 0
        self._on_problem = on_problem
        self._retry_every, self._clock = retry_every, clock
        self._file: IO[bytes] | None = None
        self._size = 0
        self._failed_at: float | None = None

    def write(self, message: str) -> None:
        """Write one formatted line (loguru calls this); never raises."""
        now = self._clock()
        if self._failed_at is not None and now - self._failed_at < self._retry_every:
            self.dropped += 1
            return
        data = message.encode(errors="replace")
        try:
            if self._file is None:
                self._open()
            elif self._size + len(data) > self.max_bytes:
                self._rotate()
            assert self._file is not None
            self._file.write(data)
            self._file.flush()
            self._size += len(data)
        except OSError as exc:
            self._fail(exc, now)
            return
        if self._failed_at is not None:
            self._failed_at = None
            self._on_problem(None)

    def close(self) -> None:
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.close()
            self._file = None

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "ab", buffering=0)  # noqa: SIM115 (kept open)
        self._size = self._file.tell()

    def _rotate(self) -> None:
        self.close()
        for n in range(self.keep - 1, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{n}")
            if older.exists():
                os.replace(older, self.path.with_name(f"{self.path.name}.{n + 1}"))
        if self.keep > 0:
            os.replace(self.path, self.path.with_name(f"{self.path.name}.1"))
        else:
            self.path.unlink(missing_ok=True)
        self._open()

    def _fail(self, exc: OSError, now: float) -> None:
        self.dropped += 1
        self.close()  # reopen on the next try: the file may have been removed meanwhile
        first = self._failed_at is None
        self._failed_at = now
        if first:
            self._on_problem(f"cannot write {self.path}: {exc.strerror or exc}; "
                             "log lines go to the console only")
