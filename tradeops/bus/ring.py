"""The tick ring's writer: one per broker, in its gateway. Readers are in reader.py.

The ring is a power-of-two array of 160-byte records (tick.RECORD) in shared memory plus a
cursor: the seq of the newest published record. Record ``seq`` lives in slot
``seq & (capacity - 1)``. Publishing is two steps, so a batch costs one cursor store:

1. :meth:`TickRing.append` writes a record: first the slot's seq word alone (one 8-byte
   store), then the whole record. A reader that re-checks the slot's seq after copying it
   therefore sees any overwrite that began while it was copying.
2. :meth:`TickRing.publish` stores the cursor (one 8-byte store, after the slots: x86 keeps
   stores in order), then rings the doorbells of readers flagged as sleeping.

The writer never looks at a reader's position and never waits for one: a reader that falls
more than ``capacity`` records behind is lapped, and counts what it lost.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterable, Sequence
from typing import Any, Final, NamedTuple

from tradeops.bus.doorbell import BellRinger, fence
from tradeops.bus.layout import (
    CURSOR_OFFSET,
    DEFAULT_CAPACITY,
    DEFAULT_MAX_READERS,
    FLAGS_OFFSET,
    READER_LOST,
    READER_NEXT,
    READER_PID,
    STATE_CLOSED,
    STATE_OFFSET,
    RingLayout,
)
from tradeops.bus.names import list_segments, ring_name, shm_path
from tradeops.bus.shm import ClosesOnExit, Segment
from tradeops.bus.table import LatestTable
from tradeops.protocol.tick import KIND_CODES, QUOTE, RECORD, RECORD_SIZE, encode_symbol

__all__ = ["ReaderInfo", "TickRing"]

_CURSOR: Final = CURSOR_OFFSET >> 3
_SLEEPING: Final = b"\x01"


class ReaderInfo(NamedTuple):
    """A reader attached to the ring, as it last reported itself."""

    slot: int
    pid: int
    next_seq: int  # the seq it will read next
    lost: int  # ticks it lost to laps so far
    sleeping: bool  # waiting on its doorbell now


class TickRing(ClosesOnExit):
    """The writer of ``broker``'s tick ring in ``topology``. One per broker; not thread-safe.

    Creates ``/dev/shm/tradeops-<topology>.<broker>.ring``, replacing a stale one whose writer
    is gone; raises :class:`~tradeops.bus.shm.SegmentBusyError` if a live process writes it.
    ``capacity`` (a power of two) is how many records of history the ring keeps. With a
    ``table``, every trade and quote also updates that latest-value table (the caller keeps
    ownership and closes it).
    :meth:`close` marks the ring closed for its readers and unlinks it and its doorbells.
    """

    def __init__(
        self,
        topology: str,
        broker: str,
        *,
        capacity: int = DEFAULT_CAPACITY,
        max_readers: int = DEFAULT_MAX_READERS,
        table: LatestTable | None = None,
    ) -> None:
        self.layout = RingLayout(capacity, max_readers)
        self.name = ring_name(topology, broker)
        self._names = (topology, broker)
        self._segment = Segment.create_exclusive(self.name, self.layout.size, self.layout.init)
        self._mm = self._segment.mm
        self._words = memoryview(self._mm).cast("q")
        self._bells = BellRinger(self._mm, self._words, self.layout, self._names)
        self._table = table
        self._data = self.layout.data_offset
        self._mask = capacity - 1
        self._end_flags = FLAGS_OFFSET + max_readers
        self._seq = 0  # newest appended
        self._published = 0

    @property
    def capacity(self) -> int:
        return self.layout.capacity

    @property
    def cursor(self) -> int:
        """The seq of the newest published record (0 before the first publish)."""
        return self._published

    @property
    def rings(self) -> int:
        """Doorbells rung so far (how often a sleeping reader was woken)."""
        return self._bells.rings

    def append(
        self,
        kind: str,
        symbol: str,
        exchange_ns: int,
        price: float = 0.0,
        size: float = 0.0,
        bid: float = 0.0,
        bid_size: float = 0.0,
        ask: float = 0.0,
        ask_size: float = 0.0,
        open: float = 0.0,
        high: float = 0.0,
        low: float = 0.0,
        close: float = 0.0,
        volume: float = 0.0,
        vwap: float = 0.0,
        trade_count: int = 0,
        receive_ns: int = 0,
        flags: int = 0,
    ) -> int:
        """Write one record (not yet visible to readers: call :meth:`publish`); return its seq.

        The positional order is that of ``protocol.feed.MarketData``, so ``append(*md)``
        works. ``receive_ns`` 0 means now. ValueError for an unknown kind; SymbolError for a
        symbol the record cannot hold.
        """
        code = KIND_CODES.get(kind)
        if code is None:
            raise ValueError(f"unknown tick kind {kind!r}; one of {sorted(KIND_CODES)}")
        raw = encode_symbol(symbol)
        seq = self._seq + 1
        offset = self._data + (seq & self._mask) * RECORD_SIZE
        # The slot's seq first, on its own: see the module docstring.
        self._words[offset >> 3] = seq
        RECORD.pack_into(
            self._mm, offset, seq, code, flags, trade_count, exchange_ns,
            receive_ns or time.time_ns(), raw, price, size, bid, bid_size, ask, ask_size,
            open, high, low, close, volume, vwap,
        )  # fmt: skip
        if self._table is not None and code <= QUOTE:
            self._table.store_record(code, raw, self._mm, offset)
        self._seq = seq
        return seq

    def publish(self) -> int:
        """Make every appended record visible and wake sleeping readers; return the cursor."""
        seq = self._seq
        if seq != self._published:
            self._words[_CURSOR] = seq
            self._published = seq
            fence()  # the cursor store must be visible before we look for sleepers
            if self._mm.find(_SLEEPING, FLAGS_OFFSET, self._end_flags) >= 0:
                self._bells.ring_sleepers()
        return seq

    def write(self, kind: str, symbol: str, exchange_ns: int, *fields: Any) -> int:
        """Append one record and publish it at once (:meth:`append` takes the same arguments)."""
        seq = self.append(kind, symbol, exchange_ns, *fields)
        self.publish()
        return seq

    def extend(self, rows: Iterable[Sequence[Any]]) -> int:
        """Append each row (``append``'s positional arguments, e.g. MarketData), publish once."""
        append = self.append
        for row in rows:
            append(*row)
        return self.publish()

    def append_late(self, *fields: Any) -> int:
        """:meth:`append` a record that is not the latest value of its symbol (a backfilled
        trade): the latest-value table is left as it is. Takes append's positional arguments."""
        table, self._table = self._table, None
        try:
            return self.append(*fields)
        finally:
            self._table = table

    def readers(self) -> list[ReaderInfo]:
        """The readers attached now (a dead one may linger until its slot is reused)."""
        words = self._words
        found = []
        for slot in range(self.layout.max_readers):
            pid = words[self.layout.reader_word(slot, READER_PID)]
            if pid:
                next_seq = words[self.layout.reader_word(slot, READER_NEXT)]
                lost = words[self.layout.reader_word(slot, READER_LOST)]
                sleeping = self._mm[FLAGS_OFFSET + slot] == 1
                found.append(ReaderInfo(slot, pid, next_seq, lost, sleeping))
        return found

    def close(self) -> None:
        """Publish what is pending, mark the ring closed, unlink it and its doorbells."""
        if self._mm.closed:
            return
        self.publish()
        self._words[STATE_OFFSET >> 3] = STATE_CLOSED
        self._bells.ring_sleepers()  # let sleepers notice the close now
        self._bells.close()
        self._words.release()
        prefix = self.name.removesuffix("ring") + "bell."
        for name in list_segments(self._names[0]):
            if name.startswith(prefix):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(shm_path(name))
        self._segment.close(unlink=True)

