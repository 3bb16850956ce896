"""Symbol slots of a shared-memory table: open addressing by the symbol field's crc32.

The latest-value table and the book table both keep one entry per symbol in a power-of-two
array: the writer claims the first free slot from the symbol's home (writing the symbol
before the key word that makes readers trust it); a reader walks the same probe sequence
until it finds the symbol or a free slot. One home for that probe, so the two tables cannot
disagree about where a symbol lives.
"""

from __future__ import annotations

import mmap
import zlib
from dataclasses import dataclass

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
