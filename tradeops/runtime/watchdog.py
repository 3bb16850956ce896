"""Noticing a strategy callback that does not return.

A host runs its strategies on one thread, so an `on_tick` that blocks stops them all, and
from outside the process it looked like an idle strategy. The watchdog is a second thread
that samples which callback the host's thread is in. The host's side costs two attribute
stores per callback (`current`, `calls`): no clock is read on the hot path. When the same
call has run for longer than `timeout`, the watchdog reports it once (`on_stuck`, with the
host thread's stack), then keeps the figure current (`on_still_stuck`) until it returns
(`on_free`).

It also makes the host die with its supervisor when a callback never returns: SIGTERM (sent
by the kernel when the supervisor dies, or by `tradeops stop`) only sets the host's stop
event, which a blocked callback never sees, so once `stop` has been set for `stop_grace`
seconds with a callback still running, the watchdog ends the process.
"""

from __future__ import annotations

import os
import sys
import threading
import time
import traceback
from collections.abc import Callable

from loguru import logger

STOP_GRACE = 2.0  # seconds a callback may keep running after the host was told to stop
EXIT_STUCK = 70  # the exit status of a host the watchdog ended (EX_SOFTWARE)


class Watchdog:
    def __init__(
        self,
        timeout: float,
        stop: threading.Event,
        on_stuck: Callable[[str, str, float, str], None],
        on_still_stuck: Callable[[str, str, float], None],
        on_free: Callable[[str], None],
        every: float = 0.25,
        clock: Callable[[], float] = time.monotonic,
        exit_process: Callable[[int], None] = os._exit,
    ) -> None:
        # Written by the host's thread around every callback.
        self.current: tuple[str, str] | None = None  # (strategy, method)
        self.calls = 0
        self.timeout, self.every = timeout, every
        self._stop, self._clock, self._exit = stop, clock, exit_process
        self._on_stuck, self._on_still, self._on_free = on_stuck, on_still_stuck, on_free
        self._seen: tuple[int, float] = (-1, 0.0)  # (calls, when first seen)
        self._stuck: str | None = None  # the strategy reported stuck
        self._stop_seen: float | None = None
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="watchdog", daemon=True)
        self._target = threading.main_thread().ident

    def start(self) -> None:
        self._target = threading.get_ident()  # the thread that runs the callbacks
        self._thread.start()

    def close(self) -> None:
        self._done.set()

    def _run(self) -> None:
        while not self._done.wait(self.every):
            try:
                self.check(self._clock())
            except Exception:  # the watchdog must outlive anything it observes
                logger.exception("watchdog check failed")

    def check(self, now: float) -> None:
        """One look (the thread calls it; tests call it with a fake clock)."""
        current, calls = self.current, self.calls
        if current is None or calls != self._seen[0]:
            if self._stuck is not None:
                self._on_free(self._stuck)
                self._stuck = None
            self._seen = (calls, now)
        elif current is not None:
            running = now - self._seen[1]
            if self._stuck is None and running >= self.timeout:
                self._stuck = current[0]
                self._on_stuck(current[0], current[1], running, self._stack())
            elif self._stuck is not None:
                self._on_still(current[0], current[1], running)
        self._check_stop(now, current)

    def _check_stop(self, now: float, current: tuple[str, str] | None) -> None:
        if not self._stop.is_set():
            return
        if self._stop_seen is None:
            self._stop_seen = now
        if current is not None and now - self._stop_seen >= STOP_GRACE:
            logger.error(
                "{} of {} still runs {:.0f}s after the host was told to stop; ending the "
                "process", current[1], current[0], now - self._stop_seen,
            )
            self._exit(EXIT_STUCK)

    def _stack(self) -> str:
        frame = sys._current_frames().get(self._target or 0)
        return "".join(traceback.format_stack(frame, limit=12)) if frame else "(no stack)"
