"""The book table: the newest order book of every symbol of one broker (docs/bus.md).

Beside the latest-value table, in a segment of its own with its own layout version
(``protocol/book.py``), so the tick record and the ring did not change. One writer, the
broker's gateway; any number of readers. Entries are found as in the latest-value table
(open addressing from ``crc32(symbol) & (capacity - 1)``; the writer sets the symbol before the
key state and never frees an entry). Each entry is one book under one seqlock: the writer
makes the version odd, copies the whole book in (times, counts, every level: one
``pack_into`` of the levels), and makes it even again; a reader copies the entry and keeps it
only if it read the same even version before and after, so it never returns a torn book,
a mix of two updates. A book is 768 bytes: the copy takes about a microsecond, so a reader
that meets a writer mid-copy retries once or twice.

The gateway also writes a ``DEPTH`` record (kind 4) to the ring after each book change, with
the best bid and ask: it orders the change among the ticks and wakes the readers, and a host
then reads the symbol's newest book here to call ``on_book``.
"""

from __future__ import annotations

import mmap
import os
import struct
import time
from collections.abc import Sequence
from typing import Final

from tradeops.bus.layout import STATE_OFFSET, STATE_OPEN
from tradeops.bus.names import book_name
from tradeops.bus.shm import Segment
from tradeops.bus.slots import SlotReader, Slots, SlotWriter
from tradeops.protocol.book import (
    BOOK_ENTRY_SIZE,
    BOOK_LAYOUT_VERSION,
    BOOK_MAGIC,
    ENTRY_HEAD,
    ENTRY_HEAD_OFFSET,
    ENTRY_KEY_STATE,
    ENTRY_LEVELS_OFFSET,
    ENTRY_VERSION,
    LEVELS,
    Book,
    Level,
    check_book_header,
    flat_levels,
    levels_of,
)
from tradeops.protocol.tick import HEADER, LayoutError

__all__ = [
    "DEFAULT_MAX_BOOKS", "BookReader", "BookTable", "BookTableFullError", "book_table_size",
]

DEFAULT_MAX_BOOKS: Final = 1024
#: At offset 64: entry size (u32), max symbols (u32).
BOOK_FIELDS: Final = struct.Struct("<II")
BOOK_FIELDS_OFFSET: Final = 64
BOOK_DATA_OFFSET: Final = 4096
_SYMBOL: Final = ENTRY_HEAD_OFFSET + 16  # the symbol field inside an entry
_MAX_ATTEMPTS: Final = 100_000


class BookTableFullError(RuntimeError):
    """The book table already holds max_symbols symbols."""


def _capacity(max_symbols: int) -> int:
    return max(16, 1 << (2 * max_symbols - 1).bit_length())


def book_table_size(max_symbols: int = DEFAULT_MAX_BOOKS) -> int:
    """Bytes of shared memory a book table for ``max_symbols`` books takes."""
    return BOOK_DATA_OFFSET + _capacity(max_symbols) * BOOK_ENTRY_SIZE


class BookTable(SlotWriter):
    """The writer of ``broker``'s book table in ``topology``; one per broker (its gateway).

    Creates ``/dev/shm/tradeops-<topology>.<broker>.books`` with room for ``max_symbols``
    books (SegmentBusyError if a live process writes it). :meth:`close` unlinks it.
    """

    full_error = BookTableFullError
    kind = "book table"
    entries_are = "books"

    def __init__(self, topology: str, broker: str, *,
                 max_symbols: int = DEFAULT_MAX_BOOKS) -> None:
        if max_symbols < 1:
            raise ValueError(f"max_symbols must be at least 1: {max_symbols}")
        self.max_symbols = max_symbols
        self.capacity = _capacity(max_symbols)
        self.name = book_name(topology, broker)
        self._segment = Segment.create_exclusive(self.name, book_table_size(max_symbols),
                                                 self._init)
        self._mm = self._segment.mm
        self._words = memoryview(self._mm).cast("q")
        self._slots = Slots(BOOK_DATA_OFFSET, BOOK_ENTRY_SIZE, _SYMBOL, ENTRY_KEY_STATE,
                            self.capacity - 1)
        self._entries: dict[bytes, int] = {}

    def _init(self, mm: mmap.mmap) -> None:
        HEADER.pack_into(mm, 0, BOOK_MAGIC, BOOK_LAYOUT_VERSION, BOOK_ENTRY_SIZE,
                         self.capacity, BOOK_DATA_OFFSET, os.getpid(), time.time_ns())
        BOOK_FIELDS.pack_into(mm, BOOK_FIELDS_OFFSET, BOOK_ENTRY_SIZE, self.max_symbols)
        struct.pack_into("<q", mm, STATE_OFFSET, STATE_OPEN)

    def write(self, symbol: bytes, exchange_ns: int, receive_ns: int,
              bids: Sequence[Level], asks: Sequence[Level]) -> int:
        """Publish ``symbol``'s (its 32-byte field) book: up to MAX_LEVELS a side, best
        first. Returns the entry's new version. BookTableFullError for a new symbol when full."""
        base = self._entries.get(symbol)
        if base is None:
            base = self._insert(symbol)
        words = self._words
        word = (base + ENTRY_VERSION) >> 3
        odd = words[word] + 1
        words[word] = odd  # readers retry while the version is odd
        mm = self._mm
        ENTRY_HEAD.pack_into(mm, base + ENTRY_HEAD_OFFSET, exchange_ns, receive_ns, symbol,
                             len(bids), len(asks))
        LEVELS.pack_into(mm, base + ENTRY_LEVELS_OFFSET, *flat_levels(bids, asks))
        words[word] = odd + 1
        return odd + 1


class BookReader(SlotReader):
    """Read ``broker``'s book table in ``topology`` from any process (read-only map).

    FileNotFoundError if the gateway has not created it; LayoutError if its layout is not one
    this code reads.
    """

    def __init__(self, topology: str, broker: str) -> None:
        self.name = book_name(topology, broker)
        self._segment = Segment.attach(self.name, writable=False)
        try:
            header = check_book_header(self._segment.mm[: HEADER.size], self.name)
            if header.data_offset != BOOK_DATA_OFFSET or len(self._segment.mm) < (
                BOOK_DATA_OFFSET + header.capacity * BOOK_ENTRY_SIZE
            ):
                raise LayoutError(f"book table {self.name!r} is shorter than its header says")
        except BaseException:
            self._segment.close()
            raise
        self.capacity = header.capacity
        self._mm = self._segment.mm
        self._words = memoryview(self._mm).cast("q")
        self._slots = Slots(BOOK_DATA_OFFSET, BOOK_ENTRY_SIZE, _SYMBOL, ENTRY_KEY_STATE,
                            self.capacity - 1)
        self._found: dict[str, int] = {}

    def book(self, symbol: str) -> Book | None:
        """The newest book of ``symbol``, or None if it has none yet. SymbolError if invalid;
        RuntimeError if the entry stays mid-update (its writer died while copying)."""
        base = self._entry(symbol)
        if base is None:
            return None
        words, mm = self._words, self._mm
        word = (base + ENTRY_VERSION) >> 3
        for attempt in range(_MAX_ATTEMPTS):
            before = words[word]
            if before == 0:
                return None
            if not before & 1:
                head = ENTRY_HEAD.unpack_from(mm, base + ENTRY_HEAD_OFFSET)
                values = LEVELS.unpack_from(mm, base + ENTRY_LEVELS_OFFSET)
                if words[word] == before:
                    bids, asks = levels_of(values, head[3], head[4])
                    return Book(symbol, bids, asks, head[0], head[1], before // 2)
            if attempt > 64:
                os.sched_yield()  # the writer is mid-copy and may need our core
        raise RuntimeError(
            f"book table {self.name!r}: the book of {symbol!r} stays mid-update; did its "
            "writer die?"
        )

    def version(self, symbol: str) -> int:
        """How many updates ``symbol``'s book has had (0: none, or not in the table)."""
        base = self._entry(symbol)
        return 0 if base is None else self._words[(base + ENTRY_VERSION) >> 3] // 2
