"""The latest-value table: the last trade and the last quote of every symbol of one broker.

Any process reads a symbol's latest values without reading the ring (a host resyncing after
a lap, the proxy answering a snapshot). The writer is the broker's gateway; the ring updates
the table as it appends (``TickRing(table=...)``).

Lookup: entries form an open-addressing hash table. A symbol's home entry is
``crc32(utf8 symbol) & (capacity - 1)`` (zlib's CRC-32, which every language has); collisions
probe the next entries. Only the writer assigns entries, and never frees one: it writes the
symbol, then sets the entry's key state, so a reader that sees the state set sees the whole
symbol. Values: each of the two records has its own seqlock version (odd while the writer
copies the record in); a reader retries until it reads the same even version before and
after copying, so it never returns a torn record.
"""

from __future__ import annotations

import mmap
import os
from typing import Final

from tradeops.bus.layout import (
    COUNT_OFFSET,
    ENTRY_KEY_STATE,
    ENTRY_QUOTE,
    ENTRY_QUOTE_VERSION,
    ENTRY_SIZE,
    ENTRY_SYMBOL,
    ENTRY_TRADE,
    ENTRY_TRADE_VERSION,
    STATE_CLOSED,
    STATE_OFFSET,
    TABLE_DATA_OFFSET,
    TableLayout,
)
from tradeops.bus.names import table_name
from tradeops.bus.shm import ClosesOnExit, Segment
from tradeops.bus.slots import Slots
from tradeops.protocol.tick import (
    QUOTE,
    RECORD,
    RECORD_SIZE,
    TRADE,
    Tick,
    decode_symbol,
    encode_symbol,
    tick_from_values,
)

__all__ = ["DEFAULT_MAX_SYMBOLS", "LatestTable", "TableFullError", "TableReader"]

DEFAULT_MAX_SYMBOLS: Final = 4096
_SYMBOL_BYTES: Final = 32
# A reader retrying this often has met a writer that died mid-copy, not a busy one.
_MAX_ATTEMPTS: Final = 100_000


class TableFullError(RuntimeError):
    """The table already holds max_symbols symbols."""


class LatestTable(ClosesOnExit):
    """The writer of ``broker``'s latest-value table in ``topology``; one per broker.

    Creates ``/dev/shm/tradeops-<topology>.<broker>.table`` (replacing a stale one whose writer
    is gone; SegmentBusyError if a live process writes it) with room for ``max_symbols``
    symbols. :meth:`close` marks it closed and unlinks it.
    """

    def __init__(
        self, topology: str, broker: str, *, max_symbols: int = DEFAULT_MAX_SYMBOLS
    ) -> None:
        self.layout = TableLayout(max_symbols)
        self.name = table_name(topology, broker)
        self._segment = Segment.create_exclusive(self.name, self.layout.size, self.layout.init)
        self._mm = self._segment.mm
        self._words = memoryview(self._mm).cast("q")
        self._slots = Slots(TABLE_DATA_OFFSET, ENTRY_SIZE, ENTRY_SYMBOL, ENTRY_KEY_STATE,
                            self.layout.capacity - 1)
        self._entries: dict[bytes, int] = {}  # symbol field -> entry offset
        # symbol field -> ((trade version word, trade offset), (quote version word, offset))
        self._places: dict[bytes, tuple[tuple[int, int], tuple[int, int]]] = {}

    def store_record(
        self, kind_code: int, symbol: bytes, src: mmap.mmap | bytes, offset: int
    ) -> None:
        """Copy the packed record at ``offset`` of ``src`` (a buffer) in as the last trade or
        quote of ``symbol`` (its 32-byte field). Other kinds are ignored.

        TableFullError when a new symbol finds the table full.
        """
        if kind_code == TRADE:
            version, record = ENTRY_TRADE_VERSION, ENTRY_TRADE
        elif kind_code == QUOTE:
            version, record = ENTRY_QUOTE_VERSION, ENTRY_QUOTE
        else:
            return
        base = self._entries.get(symbol)
        if base is None:
            base = self._insert(symbol)
        word = (base + version) >> 3
        words = self._words
        odd = words[word] + 1
        words[word] = odd  # readers retry while the version is odd
        start = base + record
        self._mm[start : start + RECORD_SIZE] = src[offset : offset + RECORD_SIZE]
        words[word] = odd + 1

    def store_batch(
        self, src: mmap.mmap, trades: dict[bytes, int], quotes: dict[bytes, int]
    ) -> None:
        """Copy in, per symbol field, the trade record at offset ``trades[symbol]`` of ``src``
        and the quote record at ``quotes[symbol]``: the ring's once-per-batch update, each
        record under its own seqlock as in :meth:`store_record`. TableFullError as there.
        """
        words, mm, places = self._words, self._mm, self._places
        for records, which in ((trades, 0), (quotes, 1)):
            for symbol, offset in records.items():
                place = places.get(symbol)
                if place is None:
                    place = self._place(symbol)
                word, start = place[which]
                odd = words[word] + 1
                words[word] = odd  # readers retry while the version is odd
                mm[start : start + RECORD_SIZE] = src[offset : offset + RECORD_SIZE]
                words[word] = odd + 1

    def _place(self, symbol: bytes) -> tuple[tuple[int, int], tuple[int, int]]:
        """(version word, record offset) of ``symbol``'s trade and quote, inserting it."""
        base = self._entries.get(symbol)
        if base is None:
            base = self._insert(symbol)
        place = (
            ((base + ENTRY_TRADE_VERSION) >> 3, base + ENTRY_TRADE),
            ((base + ENTRY_QUOTE_VERSION) >> 3, base + ENTRY_QUOTE),
        )
        self._places[symbol] = place
        return place

    def put(self, tick: Tick) -> None:
        """Store ``tick`` as its symbol's last trade or quote (other kinds are ignored)."""
        self.store_record(tick.kind_code, tick.symbol_bytes, tick.to_bytes(), 0)

    def _insert(self, symbol: bytes) -> int:
        count = len(self._entries)
        if count >= self.layout.max_symbols:
            raise TableFullError(
                f"table {self.name!r} already holds {count} symbols (its max_symbols); "
                f"cannot add {decode_symbol(symbol)!r}"
            )
        base = self._slots.claim(self._mm, self._words, symbol)
        self._entries[symbol] = base
        self._words[COUNT_OFFSET >> 3] = count + 1
        return base

    def close(self) -> None:
        """Mark the table closed for its readers and unlink it."""
        if self._mm.closed:
            return
        self._words[STATE_OFFSET >> 3] = STATE_CLOSED
        self._words.release()
        self._segment.close(unlink=True)



class TableReader(ClosesOnExit):
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

    def last_trade(self, symbol: str) -> Tick | None:
        """The last trade of ``symbol``, or None if it has had none. SymbolError if invalid."""
        return self._read(symbol, ENTRY_TRADE_VERSION, ENTRY_TRADE)

    def last_quote(self, symbol: str) -> Tick | None:
        """The last quote of ``symbol``, or None if it has had none. SymbolError if invalid."""
        return self._read(symbol, ENTRY_QUOTE_VERSION, ENTRY_QUOTE)

    def symbols(self) -> list[str]:
        """Every symbol the table holds, sorted."""
        found = []
        for index in range(self.layout.capacity):
            base = TABLE_DATA_OFFSET + index * ENTRY_SIZE
            if self._words[(base + ENTRY_KEY_STATE) >> 3]:
                field = self._mm[base + ENTRY_SYMBOL : base + ENTRY_SYMBOL + _SYMBOL_BYTES]
                found.append(decode_symbol(field))
        return sorted(found)

    def stale(self) -> bool:
        """True once the writer closed this table or a new gateway replaced it: re-attach."""
        return self._words[STATE_OFFSET >> 3] == STATE_CLOSED or self._segment.moved()

    def _entry(self, symbol: str) -> int | None:
        base = self._found.get(symbol)
        if base is not None:
            return base
        base = self._slots.find(self._mm, self._words, encode_symbol(symbol))
        if base is not None:  # None: not there (yet), look again next time
            self._found[symbol] = base
        return base

    def _read(self, symbol: str, version: int, record: int) -> Tick | None:
        base = self._entry(symbol)
        if base is None:
            return None
        words = self._words
        word = (base + version) >> 3
        for attempt in range(_MAX_ATTEMPTS):
            before = words[word]
            if before == 0:
                return None
            if not before & 1:
                values = RECORD.unpack_from(self._mm, base + record)
                if words[word] == before:
                    return tick_from_values(values)
            if attempt > 64:
                os.sched_yield()  # the writer is mid-copy and may need our core
        raise RuntimeError(
            f"table {self.name!r}: the entry of {symbol!r} stays mid-update; did its writer die?"
        )

    def close(self) -> None:
        if self._mm.closed:
            return
        self._words.release()
        self._segment.close()

