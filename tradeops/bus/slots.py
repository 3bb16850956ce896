"""Symbol slots of a shared-memory table: open addressing by the symbol field's crc32.

The latest-value table and the book table both keep one entry per symbol in a power-of-two
array: the writer claims the first free slot from the symbol's home (writing the symbol
before the key word that makes readers trust it); a reader walks the same probe sequence
until it finds the symbol or a free slot. One home for that probe, so the two tables cannot
disagree about where a symbol lives; and one home (:class:`SlotWriter`, :class:`SlotReader`)
for what both tables' writers and readers do around it: counting symbols against the table's
room, remembering found entries, seeing the writer close, closing.
"""

from __future__ import annotations

import mmap
import zlib
from dataclasses import dataclass

from tradeops.bus.layout import COUNT_OFFSET, STATE_CLOSED, STATE_OFFSET
from tradeops.bus.shm import ClosesOnExit, Segment, SegmentWriter
from tradeops.protocol.tick import decode_symbol, encode_symbol

SYMBOL_BYTES = 32


@dataclass(frozen=True)
class Slots:
    """Where a table's entries are: `data` offset, `size` of an entry, and inside an entry
    the symbol field (`symbol_at`) and the key word (`key_at`, nonzero once claimed)."""

    data: int
    size: int
    symbol_at: int
    key_at: int
    mask: int  # the entry count minus one (a power of two)

    def home(self, raw: bytes) -> int:
        return zlib.crc32(raw.rstrip(b"\0")) & self.mask

    def claim(self, mm: mmap.mmap, words: memoryview, raw: bytes) -> int:
        """The writer: the base offset of a new entry for `raw` (the caller checked room)."""
        index = self.home(raw)
        while words[(self.data + index * self.size + self.key_at) >> 3]:
            index = (index + 1) & self.mask
        base = self.data + index * self.size
        mm[base + self.symbol_at: base + self.symbol_at + SYMBOL_BYTES] = raw
        words[(base + self.key_at) >> 3] = 1  # after the symbol: readers trust it now
        return base

    def find(self, mm: mmap.mmap, words: memoryview, raw: bytes) -> int | None:
        """A reader: the base offset of `raw`'s entry, or None when it is not there (yet)."""
        index = self.home(raw)
        for _ in range(self.mask + 1):
            base = self.data + index * self.size
            if not words[(base + self.key_at) >> 3]:
                return None
            if mm[base + self.symbol_at: base + self.symbol_at + SYMBOL_BYTES] == raw:
                return base
            index = (index + 1) & self.mask
        return None


class SlotWriter(SegmentWriter):
    """The writer of a table of symbol entries (set up by the subclass: ``name``,
    ``max_symbols``, the mapped ``_segment``, ``_mm``, ``_words``, ``_slots`` and an empty
    ``_entries``)."""

    name: str
    max_symbols: int
    _segment: Segment
    _mm: mmap.mmap
    _words: memoryview
    _slots: Slots
    _entries: dict[bytes, int]  # symbol field -> entry offset
    #: What a full table raises, and what it calls its entries ("symbols", "books").
    full_error: type[RuntimeError] = RuntimeError
    kind: str = "table"
    entries_are: str = "symbols"

    def _insert(self, symbol: bytes) -> int:
        """The base offset of a new entry for ``symbol`` (its 32-byte field)."""
        entries = self._entries
        count = len(entries)
        if count >= self.max_symbols:
            raise self.full_error(
                f"{self.kind} {self.name!r} already holds {count} {self.entries_are} (its "
                f"max_symbols); cannot add {decode_symbol(symbol)!r}"
            )
        base = self._slots.claim(self._mm, self._words, symbol)
        entries[symbol] = base
        self._words[COUNT_OFFSET >> 3] = count + 1
        return base

    def close(self) -> None:
        """Mark the table closed for its readers and unlink it."""
        if self._mm.closed:
            return
        self._words[STATE_OFFSET >> 3] = STATE_CLOSED
        self._words.release()
        self._segment.close(unlink=True)


class SlotReader(ClosesOnExit):
    """A reader of a table of symbol entries (set up by the subclass as for
    :class:`SlotWriter`, read-only, with an empty ``_found``)."""

    name: str
    _segment: Segment
    _mm: mmap.mmap
    _words: memoryview
    _slots: Slots
    _found: dict[str, int]  # symbol -> entry offset

    def _entry(self, symbol: str) -> int | None:
        """The base offset of ``symbol``'s entry, or None when it is not there (yet: looked
        for again next time). SymbolError for a symbol no table can hold."""
        found = self._found
        base = found.get(symbol)
        if base is not None:
            return base
        base = self._slots.find(self._mm, self._words, encode_symbol(symbol))
        if base is not None:
            found[symbol] = base
        return base

    def stale(self) -> bool:
        """True once the writer closed this table or a new gateway replaced it: re-attach."""
        return self._words[STATE_OFFSET >> 3] == STATE_CLOSED or self._segment.moved()

    def close(self) -> None:
        if self._mm.closed:
            return
        self._words.release()
        self._segment.close()
