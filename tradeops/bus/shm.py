"""One named POSIX shared-memory segment, opened with os.open + mmap.

Not ``multiprocessing.shared_memory``: on Python 3.11 its resource tracker unlinks a segment
when *any* process that attached to it exits, which would pull the ring from under every
other reader. Here only the writer unlinks, and only a segment that is still its own.

A writer prepares a segment under a temporary name and renames it into place, so a reader
never maps a half-initialised header, and a stale segment of a crashed writer is replaced in
one step (readers still mapping the old one notice through :meth:`Segment.moved`).

A writer also reserves and maps every page of its segment before publishing it. tmpfs takes
any ``ftruncate`` and allocates a page only when it is first written, so a /dev/shm too small
for the bus (a container's 64 MiB default) would let the gateway start and then kill it with
SIGBUS minutes later, the first time the ring reached past the room left: ``posix_fallocate``
refuses at once instead (:class:`BusSpaceError`, saying how much is needed and free). And the
ring's first lap then takes no page faults: about 4 µs each here, one per 21 records, which
a reader would see as a hiccup; the writer pays them once, before its first tick (about 70 ms
for a broker's 53.5 MiB here).

One exception: a writer that replaces the segment of a dead one (a gateway restarted after a
crash) may find no room because that segment's readers still map it; they let it go once they
move to the new one, moments later. Refusing would turn every restart on a tight /dev/shm into
an outage, so that segment is created as before, its pages allocated as they are written, and
:attr:`Segment.reserved` is False for its writer to say so.
"""

from __future__ import annotations

import contextlib
import errno
import mmap
import os
import shutil
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Self

from tradeops.bus.layout import PID_OFFSET, STATE_OFFSET, STATE_OPEN
from tradeops.bus.names import shm_path

__all__ = [
    "BusSpaceError", "Segment", "SegmentBusyError", "SegmentWriter", "pid_alive", "writer_of",
]

#: A writer's mapping: shared, and every page mapped at once (no faults on the hot path).
_WRITER_FLAGS = mmap.MAP_SHARED | getattr(mmap, "MAP_POPULATE", 0)
#: What posix_fallocate says when the filesystem cannot hold the segment.
_NO_ROOM = {errno.ENOSPC, errno.ENOMEM, errno.EFBIG, errno.EDQUOT}


class ClosesOnExit:
    """`with X(...) as x:` closes x on the way out (every bus handle holds a mapping)."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SegmentWriter(ClosesOnExit):
    """The writer of one segment (a ring, a table): what every writer says of its mapping."""

    _segment: Segment

    @property
    def reserved(self) -> bool:
        """Whether every page of the segment was allocated when it was created: False only
        for one that replaced a dead writer's while /dev/shm had no room for both (see the
        module docstring); its pages are then allocated as they are written."""
        return self._segment.reserved



class SegmentBusyError(FileExistsError):
    """Another live process writes this segment (two gateways for one broker?)."""


class BusSpaceError(OSError):
    """The shared-memory filesystem has no room for a bus segment: a restart will not help
    until someone gives it more (the message says how much is needed and free)."""

    def __str__(self) -> str:
        return str(self.strerror)  # the message alone, without "[Errno 28]"


class Segment:
    """A mapped segment. ``mm`` is the mapping; ``name`` its /dev/shm name."""

    def __init__(
        self, name: str, fd: int, mm: mmap.mmap, *, owner: bool, reserved: bool = False
    ) -> None:
        self.name = name
        self.fd = fd
        self.mm = mm
        self.owner = owner
        #: Every page allocated when it was created (a writer's; see the module docstring).
        self.reserved = reserved
        self.inode = os.fstat(fd).st_ino

    @classmethod
    def create(cls, name: str, size: int, init: Callable[[mmap.mmap], None]) -> Segment:
        """Create ``name`` of ``size`` bytes, let ``init`` fill it, then publish it by rename.

        An existing segment of that name is replaced; callers check :func:`writer_of` first.
        Its pages are allocated now; BusSpaceError if the filesystem has no room, unless the
        segment replaces one that still exists (its readers may hold the room for a moment):
        then it is created unreserved (``reserved`` False).
        """
        tmp = shm_path(f"{name}.tmp-{os.getpid()}")
        replacing = shm_path(name).exists()
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.ftruncate(fd, size)
            reserved = _reserve(fd, name, size, replacing)
            mm = mmap.mmap(fd, size, flags=_WRITER_FLAGS if reserved else mmap.MAP_SHARED)
            init(mm)
            os.rename(tmp, shm_path(name))
        except BaseException:
            os.close(fd)
            _unlink(str(tmp))
            raise
        return cls(name, fd, mm, owner=True, reserved=reserved)

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


def _reserve(fd: int, name: str, size: int, replacing: bool) -> bool:
    """Allocate every page of the segment now; True if done. No room: False when
    ``replacing`` a segment that still holds room, BusSpaceError otherwise."""
    try:
        os.posix_fallocate(fd, 0, size)
        return True
    except OSError as exc:
        if exc.errno not in _NO_ROOM:
            raise
        os.ftruncate(fd, 0)  # give back what was allocated before the room ran out
        os.ftruncate(fd, size)
        if replacing:
            return False
        raise BusSpaceError(
            exc.errno, room_message(f"bus segment {name!r}", size, shm_path(name).parent)
        ) from None


def room_message(what: str, need: int, where: Path) -> str:
    """``what`` needs ``need`` bytes of shared memory in ``where``: how much is free, and how to
    give more."""
    try:
        usage = shutil.disk_usage(where)
        room = f"{where} has {usage.free / 2**20:,.1f} MiB free of {usage.total / 2**20:,.0f} MiB"
    except OSError:
        room = f"{where} has less free"
    return (
        f"{what} needs {need / 2**20:,.1f} MiB of shared memory but {room}: give {where} more "
        "room (docker run --shm-size=1g, shm_size in docker compose, an emptyDir of medium "
        "Memory mounted on /dev/shm in Kubernetes) or remove what fills it (a desk left "
        "running: `tradeops down`)"
    )


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
