"""Waking readers that sleep: one FIFO doorbell per reader, rung by the writer only when needed.

A reader claims a slot in the ring's reader table (under ``flock`` on the segment, since
readers attach concurrently), creates its FIFO ``tradeops-<topology>.<broker>.bell.<slot>`` in
/dev/shm and holds both ends open (its own write end keeps ``poll`` from reporting a hang-up
while no writer has the FIFO open). To sleep it sets its byte in the flags array, re-checks
the cursor, and polls the FIFO. After publishing, the writer looks for any set byte with one
``mmap.find`` (about 70 ns when nobody sleeps) and writes one byte to each sleeper's FIFO.

The writer never waits: FIFOs are opened and written non-blocking; a full FIFO (a stopped
reader) means the reader already has a wake-up pending; a FIFO without a reader (a dead one)
fails to open or write, and that reader slot generation is not rung again.

Why not a sleep loop: ``time.sleep(50e-6)`` really sleeps ~150 µs here and still burns CPU
per reader. Why not eventfd: it has no name, so it must be passed over a socket to a writer
that may restart; a FIFO is found by name. See docs/bus.md for the measurements.
"""

from __future__ import annotations

import contextlib
import fcntl
import mmap
import os
import select
import threading
from collections.abc import Sequence
from typing import Final

from tradeops.bus.layout import (
    FLAGS_OFFSET,
    READER_GENERATION,
    READER_LOST,
    READER_NEXT,
    READER_PID,
    RingLayout,
)
from tradeops.bus.names import bell_name, shm_path
from tradeops.bus.shm import pid_alive

__all__ = ["BellRinger", "Doorbell", "ReadersFullError", "fence"]

_FENCE: Final = threading.Lock()
_RING: Final = b"\x01"


def fence() -> None:
    """A full memory barrier between a store and a following load.

    A sleeper stores its flag then loads the cursor; the writer stores the cursor then loads
    the flags. x86 may let each load pass the other side's store (store buffering), and both
    would miss: the reader sleeps with data waiting. A lock's acquire and release are
    ``lock``-prefixed instructions, which drain the store buffer; about 70 ns.
    """
    _FENCE.acquire()
    _FENCE.release()


class ReadersFullError(RuntimeError):
    """Every reader slot of the ring is held by a live process."""


class Doorbell:
    """A reader's slot in the ring and its FIFO. Created by :class:`RingReader`."""

    def __init__(
        self, mm: mmap.mmap, words: memoryview, fd: int, layout: RingLayout, names: tuple[str, str]
    ) -> None:
        self._mm = mm
        self._words = words
        self._fd = fd
        self._layout = layout
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            self.slot = self._free_slot(names)
            self._path = shm_path(bell_name(*names, self.slot))
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._path)  # a dead reader's FIFO
            os.mkfifo(self._path, 0o600)
            self._rfd = os.open(self._path, os.O_RDONLY | os.O_NONBLOCK)
            self._wfd = os.open(self._path, os.O_WRONLY | os.O_NONBLOCK)
            self.flag = FLAGS_OFFSET + self.slot
            mm[self.flag] = 0
            words[layout.reader_word(self.slot, READER_NEXT)] = 0
            words[layout.reader_word(self.slot, READER_LOST)] = 0
            generation = layout.reader_word(self.slot, READER_GENERATION)
            words[generation] = words[generation] + 1
            # The pid goes last: the writer only rings a generation whose FIFO exists.
            words[layout.reader_word(self.slot, READER_PID)] = os.getpid()
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
        self._poll = select.poll()
        self._poll.register(self._rfd, select.POLLIN)

    def _free_slot(self, names: tuple[str, str]) -> int:
        for slot in range(self._layout.max_readers):
            pid = self._words[self._layout.reader_word(slot, READER_PID)]
            if pid == 0 or not pid_alive(pid):
                return slot
        raise ReadersFullError(
            f"all {self._layout.max_readers} reader slots of broker {names[1]!r} in topology "
            f"{names[0]!r} are taken by live processes; raise the ring's max_readers"
        )

    def arm(self) -> None:
        """Tell the writer this reader is about to sleep (follow with :func:`fence`)."""
        self._mm[self.flag] = 1

    def disarm(self) -> None:
        self._mm[self.flag] = 0

    def sleep(self, timeout_ms: int, also: Sequence[int] = ()) -> bool:
        """Wait up to ``timeout_ms`` for a ring, or for one of the file descriptors in
        ``also`` to become readable (a process that also waits on sockets); drain the FIFO;
        True if rung."""
        if also:
            poll = select.poll()
            poll.register(self._rfd, select.POLLIN)
            for fd in also:
                poll.register(fd, select.POLLIN)
            ready = poll.poll(timeout_ms)
            rung = any(fd == self._rfd for fd, _ in ready)
        else:
            rung = bool(self._poll.poll(timeout_ms))
        if rung:
            try:
                while len(os.read(self._rfd, 4096)) == 4096:
                    pass
            except BlockingIOError:
                pass
        return rung

    def close(self) -> None:
        """Give the slot back and remove the FIFO (the ring's mapping must still be open)."""
        if self._rfd < 0:
            return
        self._mm[self.flag] = 0
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            self._words[self._layout.reader_word(self.slot, READER_PID)] = 0
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._rfd)
        os.close(self._wfd)
        self._rfd = self._wfd = -1
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._path)


class BellRinger:
    """The writer's side: ring the doorbell of every reader flagged as sleeping."""

    def __init__(
        self, mm: mmap.mmap, words: memoryview, layout: RingLayout, names: tuple[str, str]
    ) -> None:
        self._mm = mm
        self._words = words
        self._layout = layout
        self._names = names
        self._end = FLAGS_OFFSET + layout.max_readers
        # Per slot: (generation, fd); fd -1 means that generation's reader is unreachable.
        self._open: dict[int, tuple[int, int]] = {}
        self.rings = 0

    def ring_sleepers(self) -> None:
        """Ring each sleeping reader once. Never blocks; a dead reader is skipped."""
        find = self._mm.find
        index = find(_RING, FLAGS_OFFSET, self._end)
        while index >= 0:
            self._ring(index - FLAGS_OFFSET)
            index = find(_RING, index + 1, self._end)

    def _ring(self, slot: int) -> None:
        generation = self._words[self._layout.reader_word(slot, READER_GENERATION)]
        known = self._open.get(slot)
        if known is None or known[0] != generation:
            if known is not None and known[1] >= 0:
                os.close(known[1])
            known = (generation, self._connect(slot))
            self._open[slot] = known
        fd = known[1]
        if fd < 0:
            return
        try:
            os.write(fd, _RING)
            self.rings += 1
        except BlockingIOError:
            pass  # the FIFO is full: the reader has wake-ups pending already
        except OSError:  # EPIPE: the reader is gone
            os.close(fd)
            self._open[slot] = (generation, -1)

    def _connect(self, slot: int) -> int:
        path = shm_path(bell_name(*self._names, slot))
        try:
            return os.open(path, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError:  # ENXIO: nobody has it open for reading; ENOENT: never created
            return -1

    def close(self) -> None:
        for _generation, fd in self._open.values():
            if fd >= 0:
                os.close(fd)
        self._open.clear()
