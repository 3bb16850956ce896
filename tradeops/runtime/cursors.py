"""Where a host's hand-over of ticks stands, per broker, exactly, across a kill -9.

A small memory-mapped file, `RUN_DIR/state/NAME.cursors`, one 64-byte slot per broker: its
name, the bus epoch, the seq handed over completely (`done`) and the last seq of the batch
being handed over (`handing`). The host stores `handing` before giving a batch to its
strategies and `done` after: two 8-byte stores per batch, no system call. The page cache
keeps them when the process is killed, so a restarted host with `resume: replay` starts
right after `done`, and flags the ticks up to `handing` as possible repeats (`FLAG_REPEAT`):
its strategies may have seen some of them before the kill.

When the file cannot be made (a full or read-only disk), the host resumes from its
once-a-second state file instead; nothing stops.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import struct
from pathlib import Path
from typing import Final, NamedTuple

SLOT: Final = 64
NAME: Final = struct.Struct("<32s")
EPOCH, DONE, HANDING = 4, 5, 6  # word indexes inside a slot (after the 32-byte name)


class Position(NamedTuple):
    epoch: int
    done: int
    handing: int


class CursorFile:
    def __init__(self, path: Path, brokers: list[str]) -> None:
        """Open (or create) the file for `brokers`; OSError when it cannot be."""
        self.path = path
        self._found: dict[str, Position] = {}
        self._slots: dict[str, int] = {}
        path.parent.mkdir(parents=True, exist_ok=True)
        old = path.read_bytes() if path.exists() else b""
        for i in range(len(old) // SLOT):
            name = NAME.unpack_from(old, i * SLOT)[0].rstrip(b"\0").decode(errors="replace")
            words = struct.unpack_from("<3q", old, i * SLOT + 32)
            self._found[name] = Position(*words)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            os.ftruncate(fd, SLOT * max(1, len(brokers)))
            self._mm = mmap.mmap(fd, SLOT * max(1, len(brokers)))
        finally:
            os.close(fd)
        self._words = memoryview(self._mm).cast("q")
        for i, broker in enumerate(brokers):
            self._slots[broker] = i * (SLOT // 8)
            NAME.pack_into(self._mm, i * SLOT, broker.encode()[:32])
            before = self._found.get(broker, Position(0, 0, 0))
            self.set(broker, before.epoch, before.done, before.handing)

    def found(self, broker: str) -> Position | None:
        """Where the previous run of this host stood for `broker` (None: it never read it)."""
        position = self._found.get(broker)
        return position if position and position.epoch else None

    def set(self, broker: str, epoch: int, done: int, handing: int) -> None:
        base = self._slots[broker]
        words = self._words
        words[base + EPOCH] = epoch
        words[base + DONE] = done
        words[base + HANDING] = handing

    def handing(self, broker: str, seq: int) -> None:
        self._words[self._slots[broker] + HANDING] = seq

    def done(self, broker: str, seq: int) -> None:
        self._words[self._slots[broker] + DONE] = seq

    def close(self) -> None:
        self._words.release()
        with contextlib.suppress(BufferError):
            self._mm.close()
