"""One named POSIX shared-memory segment, opened with os.open + mmap.

Not ``multiprocessing.shared_memory``: on Python 3.11 its resource tracker unlinks a segment
when *any* process that attached to it exits, which would pull the ring from under every
other reader. Here only the writer unlinks, and only a segment that is still its own.

A writer prepares a segment under a temporary name and renames it into place, so a reader
never maps a half-initialised header, and a stale segment of a crashed writer is replaced in
one step (readers still mapping the old one notice through :meth:`Segment.moved`).
"""

from __future__ import annotations

import contextlib
import mmap
import os
import struct
from collections.abc import Callable
from typing import Self

from tradeops.bus.layout import PID_OFFSET, STATE_OFFSET, STATE_OPEN
from tradeops.bus.names import shm_path

__all__ = ["Segment", "SegmentBusyError", "pid_alive", "writer_of"]


class ClosesOnExit:
    """`with X(...) as x:` closes x on the way out (every bus handle holds a mapping)."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SegmentBusyError(FileExistsError):
    """Another live process writes this segment (two gateways for one broker?)."""


class Segment:
    """A mapped segment. ``mm`` is the mapping; ``name`` its /dev/shm name."""

    def __init__(self, name: str, fd: int, mm: mmap.mmap, *, owner: bool) -> None:
        self.name = name
        self.fd = fd
        self.mm = mm
        self.owner = owner
        self.inode = os.fstat(fd).st_ino

    @classmethod
    def create(cls, name: str, size: int, init: Callable[[mmap.mmap], None]) -> Segment:
        """Create ``name`` of ``size`` bytes, let ``init`` fill it, then publish it by rename.

        An existing segment of that name is replaced; callers check :func:`writer_of` first.
        """
        tmp = shm_path(f"{name}.tmp-{os.getpid()}")
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.ftruncate(fd, size)
            mm = mmap.mmap(fd, size)
            init(mm)
            os.rename(tmp, shm_path(name))
        except BaseException:
            os.close(fd)
            _unlink(str(tmp))
            raise
        return cls(name, fd, mm, owner=True)

    @classmethod
    def create_exclusive(cls, name: str, size: int, init: Callable[[mmap.mmap], None]) -> Segment:
        """:meth:`create`, unless a live process other than this one writes ``name`` now."""
        owner = writer_of(name)
        if owner is not None and owner != os.getpid():
            raise SegmentBusyError(f"bus segment {name!r} is written by live process {owner}")
        return cls.create(name, size, init)

    @classmethod
    def attach(cls, name: str, *, writable: bool) -> Segment:
        """Map the existing segment ``name``; FileNotFoundError if no writer created it."""
        fd = os.open(shm_path(name), os.O_RDWR if writable else os.O_RDONLY)
        try:
            size = os.fstat(fd).st_size
            prot = mmap.PROT_READ | (mmap.PROT_WRITE if writable else 0)
            mm = mmap.mmap(fd, size, prot=prot)
        except BaseException:
            os.close(fd)
            raise
        return cls(name, fd, mm, owner=False)

    def moved(self) -> bool:
        """True once the name no longer refers to this segment (unlinked or replaced)."""
        try:
            return os.stat(shm_path(self.name)).st_ino != self.inode
        except FileNotFoundError:
            return True

    def close(self, *, unlink: bool = False) -> None:
        """Unmap (every memoryview over ``mm`` must be released first) and close.

        With ``unlink``, also remove the name, unless it now names another segment.
        """
        if unlink and not self.moved():
            _unlink(str(shm_path(self.name)))
        if not self.mm.closed:
            self.mm.close()
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def writer_of(name: str) -> int | None:
    """The pid of the live writer that has ``name`` open, or None (absent, closed, or dead)."""
    try:
        fd = os.open(shm_path(name), os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        head = os.pread(fd, STATE_OFFSET + 8, 0)
    finally:
        os.close(fd)
    if len(head) < STATE_OFFSET + 8:
        return None
    (pid,) = struct.unpack_from("<q", head, PID_OFFSET)
    (state,) = struct.unpack_from("<q", head, STATE_OFFSET)
    return pid if state == STATE_OPEN and pid_alive(pid) else None


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` is a running (not zombie) process."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            # The state follows the parenthesised command name, which may contain spaces.
            return stat.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        return True


def _unlink(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
