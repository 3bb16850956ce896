"""The latest-value table: the last trade and the last quote of every symbol of one broker.

Any process reads a symbol's latest values without reading the ring (a host resyncing after
a lap, the proxy answering a snapshot). The writer is the broker's gateway; the ring updates
the table as it publishes (``TickRing(table=...)``).

Lookup: entries form an open-addressing hash table. A symbol's home entry is
``crc32(utf8 symbol) & (capacity - 1)`` (zlib's CRC-32, which every language has); collisions
probe the next entries. Only the writer assigns entries, and never frees one: it writes the
symbol, then sets the entry's key state, so a reader that sees the state set sees the whole
symbol.

Values, by reference: an entry holds, per kind, the seq of the newest record in the ring (one
word store per append, by the ring), and a copy of a record. The ring copies the
record a reference names into the entry only before it would overwrite it (every
``capacity / 2`` appends it copies the references at least that old whose copy is behind), so
the copying costs nothing for symbols that trade and quote. A reader takes the copy when it
is as new as the reference and otherwise reads the record from the ring, checking the slot's
seq before and after copying as a ring reader does; each copy has its own seqlock version
(odd while the writer copies it in), so nothing torn is ever returned. A table without a ring
(``put``) keeps its copies current and never needs one.
"""

from __future__ import annotations

import mmap
import os
import struct
from typing import Any, Final

from tradeops.bus.layout import (
    ENTRY_KEY_STATE,
    ENTRY_QUOTE,
    ENTRY_QUOTE_REF,
    ENTRY_QUOTE_VERSION,
    ENTRY_SIZE,
    ENTRY_SYMBOL,
    ENTRY_TRADE,
    ENTRY_TRADE_REF,
    ENTRY_TRADE_VERSION,
    TABLE_DATA_OFFSET,
    TABLE_RING_EPOCH_OFFSET,
    TABLE_SCRATCH_OFFSET,
    RingLayout,
    TableLayout,
)
from tradeops.bus.names import ring_name, table_name
from tradeops.bus.shm import Segment
from tradeops.bus.slots import SlotReader, Slots, SlotWriter
from tradeops.protocol.tick import (
    HEADER,
    QUOTE,
    RECORD,
    RECORD_SIZE,
    TRADE,
    LayoutError,
    Tick,
    decode_symbol,
    tick_from_values,
)

__all__ = ["DEFAULT_MAX_SYMBOLS", "LatestTable", "TableFullError", "TableReader"]

DEFAULT_MAX_SYMBOLS: Final = 4096
_SYMBOL_BYTES: Final = 32
# A reader retrying this often has met a writer that died mid-copy, not a busy one.
_MAX_ATTEMPTS: Final = 100_000
_Place = tuple[int, int, int]  # reference word, version word, copy offset


def words_at(buf: mmap.mmap, offset: int) -> int:
    """The int64 at ``offset`` of ``buf`` (little-endian)."""
    return int.from_bytes(buf[offset : offset + 8], "little", signed=True)


class TableFullError(RuntimeError):
    """The table already holds max_symbols symbols."""


class LatestTable(SlotWriter):
    """The writer of ``broker``'s latest-value table in ``topology``; one per broker.

    Creates ``/dev/shm/tradeops-<topology>.<broker>.table`` (replacing a stale one whose writer
    is gone; SegmentBusyError if a live process writes it) with room for ``max_symbols``
    symbols. :meth:`close` marks it closed and unlinks it.
    """

    full_error = TableFullError

    def __init__(
        self, topology: str, broker: str, *, max_symbols: int = DEFAULT_MAX_SYMBOLS
    ) -> None:
        self.layout = TableLayout(max_symbols)
        self.max_symbols = max_symbols
        self.name = table_name(topology, broker)
        self._segment = Segment.create_exclusive(self.name, self.layout.size, self.layout.init)
        self._mm = self._segment.mm
        self._words = memoryview(self._mm).cast("q")
        self._slots = Slots(TABLE_DATA_OFFSET, ENTRY_SIZE, ENTRY_SYMBOL, ENTRY_KEY_STATE,
                            self.layout.capacity - 1)
        self._entries: dict[bytes, int] = {}  # symbol field -> entry offset
        # symbol field -> per kind (trade, quote): (reference word, version word, copy offset)
        self._places: dict[bytes, tuple[_Place, _Place]] = {}

    def bind_ring(self, epoch: int) -> None:
        """Say which ring the references name (its epoch): ``TickRing(table=...)`` does."""
        struct.pack_into("<q", self._mm, TABLE_RING_EPOCH_OFFSET, epoch)

    def store_record(
        self, kind_code: int, symbol: bytes, src: mmap.mmap | bytes, offset: int
    ) -> None:
        """Copy the packed record at ``offset`` of ``src`` (a buffer) in as the last trade or
        quote of ``symbol`` (its 32-byte field), a current copy: no ring needed to read it.
        Other kinds are ignored. TableFullError when a new symbol finds the table full.
        """
        if kind_code not in (TRADE, QUOTE):
            return
        place = self._places.get(symbol) or self._place(symbol)
        ref, version, start = place[0 if kind_code == TRADE else 1]
        words = self._words
        odd = words[version] + 1
        words[version] = odd  # readers retry while the version is odd
        self._mm[start : start + RECORD_SIZE] = src[offset : offset + RECORD_SIZE]
        words[version] = odd + 1
        words[ref] = words[start >> 3]  # the copy is as new as the reference

    @property
    def words(self) -> memoryview:
        """The table's words (int64), for the ring's reference stores (:meth:`ref_word`)."""
        return self._words

    def ref_word(self, kind_code: int, symbol: bytes) -> int:
        """The index in :attr:`words` of the word naming the seq of ``symbol``'s newest
        trade or quote in the ring (inserting the symbol), or of the writer's scratch word
        for any other kind: the ring stores each appended record's seq there, after the
        record, so the table always names the newest. TableFullError when a new symbol
        finds the table full."""
        if kind_code != TRADE and kind_code != QUOTE:
            return TABLE_SCRATCH_OFFSET >> 3
        place = self._places.get(symbol) or self._place(symbol)
        return place[0 if kind_code == TRADE else 1][0]

    def spill(self, ring: mmap.mmap, data: int, mask: int, upto: int) -> int:
        """Copy in every referenced record at or below seq ``upto`` whose copy is behind its
        reference, from ``ring`` (slots of 192 bytes from offset ``data``, ``mask`` the
        capacity less one): what the ring does before it would overwrite them. Return the
        records copied."""
        words, mm = self._words, self._mm
        copied = 0
        for place in self._places.values():
            for ref, version, start in place:
                seq = words[ref]
                if not seq or seq > upto or words[start >> 3] == seq:
                    continue
                slot = data + (seq & mask) * RECORD_SIZE
                if words_at(ring, slot) != seq:
                    continue  # already overwritten: cannot happen while the ring spills in time
                odd = words[version] + 1
                words[version] = odd
                mm[start : start + RECORD_SIZE] = ring[slot : slot + RECORD_SIZE]
                words[version] = odd + 1
                copied += 1
        return copied

    def _place(self, symbol: bytes) -> tuple[_Place, _Place]:
        """(reference word, version word, copy offset) of ``symbol``'s trade and quote,
        inserting the symbol."""
        base = self._entries.get(symbol)
        if base is None:
            base = self._insert(symbol)
        place = (
            ((base + ENTRY_TRADE_REF) >> 3, (base + ENTRY_TRADE_VERSION) >> 3, base + ENTRY_TRADE),
            ((base + ENTRY_QUOTE_REF) >> 3, (base + ENTRY_QUOTE_VERSION) >> 3, base + ENTRY_QUOTE),
        )
        self._places[symbol] = place
        return place

    def put(self, tick: Tick) -> None:
        """Store ``tick`` as its symbol's last trade or quote (other kinds are ignored)."""
        self.store_record(tick.kind_code, tick.symbol_bytes, tick.to_bytes(), 0)


class TableReader(SlotReader):
    """Read ``broker``'s latest-value table in ``topology`` from any process (read-only map).

    FileNotFoundError if the gateway has not created it; LayoutError if its layout is not one
    this code reads.
    """

    def __init__(self, topology: str, broker: str) -> None:
        self.name = table_name(topology, broker)
        self._segment = Segment.attach(self.name, writable=False)
        try:
            self.layout = TableLayout.read(self._segment.mm, self.name)
        except BaseException:
            self._segment.close()
            raise
        self._mm = self._segment.mm
        self._words = memoryview(self._mm).cast("q")
        self._slots = Slots(TABLE_DATA_OFFSET, ENTRY_SIZE, ENTRY_SYMBOL, ENTRY_KEY_STATE,
                            self.layout.capacity - 1)
        self._found: dict[str, int] = {}  # symbol -> entry offset
        self._names = (topology, broker)
        self._ring: _RingRecords | None = None

    def last_trade(self, symbol: str) -> Tick | None:
        """The last trade of ``symbol``, or None if it has had none. SymbolError if invalid."""
        return self._read(symbol, ENTRY_TRADE_REF, ENTRY_TRADE_VERSION, ENTRY_TRADE)

    def last_quote(self, symbol: str) -> Tick | None:
        """The last quote of ``symbol``, or None if it has had none. SymbolError if invalid."""
        return self._read(symbol, ENTRY_QUOTE_REF, ENTRY_QUOTE_VERSION, ENTRY_QUOTE)

    def symbols(self) -> list[str]:
        """Every symbol the table holds, sorted."""
        found = []
        for index in range(self.layout.capacity):
            base = TABLE_DATA_OFFSET + index * ENTRY_SIZE
            if self._words[(base + ENTRY_KEY_STATE) >> 3]:
                field = self._mm[base + ENTRY_SYMBOL : base + ENTRY_SYMBOL + _SYMBOL_BYTES]
                found.append(decode_symbol(field))
        return sorted(found)

    def _read(self, symbol: str, reference: int, version: int, record: int) -> Tick | None:
        base = self._entry(symbol)
        if base is None:
            return None
        words, mm = self._words, self._mm
        ref_word, word, copy = (base + reference) >> 3, (base + version) >> 3, base + record
        for attempt in range(_MAX_ATTEMPTS):
            ref = words[ref_word]
            before = words[word]
            if not before & 1:
                values = RECORD.unpack_from(mm, copy) if before else None
                if words[word] == before:
                    if values is not None and values[0] >= ref:
                        return tick_from_values(values)  # the copy is current
                    if not ref:
                        return None
                    ring = self._ring_records()
                    if ring is None:  # its ring is gone (the gateway stopped): the copy
                        return tick_from_values(values) if values is not None else None
                    found = ring.record(ref)
                    if found is not None:
                        return tick_from_values(found)
                    # Overwritten since we read the reference: the writer copied it (or a
                    # newer one) in first, so the next look finds the copy current.
            if attempt > 64:
                os.sched_yield()  # the writer is mid-copy and may need our core
        raise RuntimeError(
            f"table {self.name!r}: the entry of {symbol!r} stays mid-update; did its writer die?"
        )

    def _ring_records(self) -> _RingRecords | None:
        """The ring the references name (attached on first need), or None when it is gone."""
        epoch = struct.unpack_from("<q", self._mm, TABLE_RING_EPOCH_OFFSET)[0]
        ring = self._ring
        if ring is not None and ring.epoch == epoch:
            return ring
        if ring is not None:
            ring.close()
            self._ring = None
        try:
            ring = _RingRecords(ring_name(*self._names))
        except (FileNotFoundError, LayoutError):
            return None
        if ring.epoch != epoch:
            ring.close()
            return None
        self._ring = ring
        return ring

    def close(self) -> None:
        if self._ring is not None:
            self._ring.close()
            self._ring = None
        super().close()


class _RingRecords:
    """A read-only map of a ring, to read one record by seq (what a table reference names)."""

    def __init__(self, name: str) -> None:
        self._segment = Segment.attach(name, writable=False)
        try:
            layout = RingLayout.read(self._segment.mm, name)
        except BaseException:
            self._segment.close()
            raise
        self._mm = self._segment.mm
        self._words = memoryview(self._mm).cast("q")
        self._data, self._mask = layout.data_offset, layout.capacity - 1
        self.epoch: int = HEADER.unpack_from(self._mm, 0)[6]

    def record(self, seq: int) -> tuple[Any, ...] | None:
        """The values of record ``seq``, or None if the ring no longer holds it."""
        slot = self._data + (seq & self._mask) * RECORD_SIZE
        word = slot >> 3
        if self._words[word] != seq:
            return None
        values = RECORD.unpack_from(self._mm, slot)
        return values if self._words[word] == seq else None  # not overwritten meanwhile

    def close(self) -> None:
        self._words.release()
        self._segment.close()

