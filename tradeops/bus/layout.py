"""Byte offsets of the two bus segments, the ring and the latest-value table (docs/bus.md).

Both start with the common header of :mod:`tradeops.protocol.tick` (``HEADER``, 48 bytes)
followed by the state word. Live words (state, cursor, versions, reader entries) are
naturally aligned 8-byte integers, stored and loaded in one instruction through a
``memoryview`` cast to ``"q"``; they are little-endian because the bus runs on x86-64.
"""

from __future__ import annotations

import mmap
import os
import struct
import time
from dataclasses import dataclass
from typing import Final

from tradeops.protocol.tick import (
    HEADER,
    LAYOUT_VERSION,
    RECORD_SIZE,
    LayoutError,
    check_header,
)

PID_OFFSET: Final = 32  # writer pid inside HEADER
STATE_OFFSET: Final = 48  # i64: 1 open, 2 closed by its writer
STATE_OPEN: Final = 1
STATE_CLOSED: Final = 2

# --- ring ---------------------------------------------------------------------------------
RING_MAGIC: Final = b"TOPSRING"
#: At offset 64: max readers (u32), reader entry size (u32), flags offset (u64), readers offset
#: (u64).
RING_FIELDS: Final = struct.Struct("<IIQQ")
RING_FIELDS_OFFSET: Final = 64
#: i64, alone on its cache line: the seq of the newest published record (0: none yet).
CURSOR_OFFSET: Final = 128
#: One byte per reader slot, 1 while that reader sleeps on its doorbell.
FLAGS_OFFSET: Final = 192
#: Per reader slot: pid, generation (bumped at each claim), next seq it will read, ticks lost.
READER_ENTRY_SIZE: Final = 32
READER_PID: Final = 0
READER_GENERATION: Final = 8
READER_NEXT: Final = 16
READER_LOST: Final = 24

DEFAULT_CAPACITY: Final = 1 << 18  # 262,144 slots: about 26 s at 10k ticks/s, 48 MiB
#: Reader slots of a ring: each process that reads it holds one (a strategy host per
#: broker it trades, the proxy, the recorder, a bridge), so this bounds the processes per
#: broker; `validate` checks a topology against it. 256 slots cost 8 KiB of reader entries.
DEFAULT_MAX_READERS: Final = 256
MAX_READERS_LIMIT: Final = 1024

# --- table ---------------------------------------------------------------------------------
TABLE_MAGIC: Final = b"TOPSTABL"
#: At offset 64: entry size (u32), max symbols (u32), then (i64 at 72) the epoch of the ring
#: whose seqs the entries' references name: 0 when no ring writes the table (its copies are
#: then always current).
TABLE_FIELDS: Final = struct.Struct("<IIq")
TABLE_FIELDS_OFFSET: Final = 64
TABLE_RING_EPOCH_OFFSET: Final = 72
COUNT_OFFSET: Final = 128  # i64: symbols assigned so far
#: i64 the writer stores into and no reader reads: the ring's reference store for a kind
#: the table does not keep (a bar, a book) lands here, sparing a branch per tick.
TABLE_SCRATCH_OFFSET: Final = 192
TABLE_DATA_OFFSET: Final = 4096
#: Per entry (512 bytes): key state (i64, 1 once the symbol is set), the trade copy's and the
#: quote copy's versions (i64 seqlocks: odd while being written), 8 reserved, the 32-byte
#: symbol; at +64 and +72 the seqs of the newest trade and quote in the ring (the
#: references; 0: none), 48 reserved; then a copy of a trade record and of a quote record. A
#: reference is a word store per append; a record is copied only when the ring is
#: about to overwrite the one a reference names (docs/bus.md, "The latest-value table").
ENTRY_SIZE: Final = 128 + 2 * RECORD_SIZE  # 512
ENTRY_KEY_STATE: Final = 0
ENTRY_TRADE_VERSION: Final = 8
ENTRY_QUOTE_VERSION: Final = 16
ENTRY_SYMBOL: Final = 32
ENTRY_TRADE_REF: Final = 64
ENTRY_QUOTE_REF: Final = 72
ENTRY_TRADE: Final = 128
ENTRY_QUOTE: Final = 128 + RECORD_SIZE


def _align(value: int, to: int) -> int:
    return (value + to - 1) // to * to


def _init_header(mm: mmap.mmap, magic: bytes, capacity: int, data_offset: int) -> None:
    HEADER.pack_into(
        mm, 0, magic, LAYOUT_VERSION, RECORD_SIZE, capacity, data_offset, os.getpid(),
        time.time_ns(),
    )  # fmt: skip
    struct.pack_into("<q", mm, STATE_OFFSET, STATE_OPEN)


@dataclass(frozen=True)
class RingLayout:
    """Where everything sits in a ring segment of ``capacity`` slots and ``max_readers``."""

    capacity: int
    max_readers: int

    def __post_init__(self) -> None:
        if self.capacity < 8 or self.capacity & (self.capacity - 1):
            raise ValueError(f"ring capacity must be a power of two, at least 8: {self.capacity}")
        if not 1 <= self.max_readers <= MAX_READERS_LIMIT:
            raise ValueError(f"max_readers must be 1..{MAX_READERS_LIMIT}: {self.max_readers}")

    @property
    def readers_offset(self) -> int:
        return _align(FLAGS_OFFSET + self.max_readers, 64)

    @property
    def data_offset(self) -> int:
        return _align(self.readers_offset + self.max_readers * READER_ENTRY_SIZE, 4096)

    @property
    def size(self) -> int:
        return self.data_offset + self.capacity * RECORD_SIZE

    def reader_word(self, slot: int, field: int) -> int:
        """Index, in the segment's ``"q"`` view, of ``field`` of reader ``slot``."""
        return (self.readers_offset + slot * READER_ENTRY_SIZE + field) >> 3

    def init(self, mm: mmap.mmap) -> None:
        _init_header(mm, RING_MAGIC, self.capacity, self.data_offset)
        RING_FIELDS.pack_into(
            mm, RING_FIELDS_OFFSET, self.max_readers, READER_ENTRY_SIZE, FLAGS_OFFSET,
            self.readers_offset,
        )  # fmt: skip

    @classmethod
    def read(cls, buf: mmap.mmap, name: str) -> RingLayout:
        """The layout of an existing ring; LayoutError if this code cannot read it."""
        header = check_header(buf[: HEADER.size], RING_MAGIC, name)
        max_readers, _entry, _flags, _readers = RING_FIELDS.unpack_from(buf, RING_FIELDS_OFFSET)
        layout = cls(header.capacity, max_readers)
        if layout.data_offset != header.data_offset or len(buf) < layout.size:
            raise LayoutError(f"ring {name!r} is inconsistent: offsets or size do not match")
        return layout


@dataclass(frozen=True)
class TableLayout:
    """Where everything sits in a table segment sized for ``max_symbols``."""

    max_symbols: int

    def __post_init__(self) -> None:
        if self.max_symbols < 1:
            raise ValueError(f"max_symbols must be at least 1: {self.max_symbols}")

    @property
    def capacity(self) -> int:
        """Entries: a power of two at least twice max_symbols, so probe chains stay short."""
        return max(16, 1 << (2 * self.max_symbols - 1).bit_length())

    @property
    def size(self) -> int:
        return TABLE_DATA_OFFSET + self.capacity * ENTRY_SIZE

    def init(self, mm: mmap.mmap) -> None:
        _init_header(mm, TABLE_MAGIC, self.capacity, TABLE_DATA_OFFSET)
        TABLE_FIELDS.pack_into(mm, TABLE_FIELDS_OFFSET, ENTRY_SIZE, self.max_symbols, 0)

    @classmethod
    def read(cls, buf: mmap.mmap, name: str) -> TableLayout:
        header = check_header(buf[: HEADER.size], TABLE_MAGIC, name)
        entry_size, max_symbols, _epoch = TABLE_FIELDS.unpack_from(buf, TABLE_FIELDS_OFFSET)
        layout = cls(max_symbols)
        if entry_size != ENTRY_SIZE or layout.capacity != header.capacity:
            raise LayoutError(f"table {name!r} is inconsistent: entry size or capacity differ")
        if len(buf) < layout.size:
            raise LayoutError(f"table {name!r} is shorter than its header says")
        return layout
