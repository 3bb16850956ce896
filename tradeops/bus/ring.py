"""The tick ring's writer: one per broker, in its gateway. Readers are in reader.py.

The ring is a power-of-two array of 192-byte records (tick.RECORD) in shared memory plus a
cursor: the seq of the newest published record. Record ``seq`` lives in slot
``seq & (capacity - 1)``. Publishing is two steps, so a batch costs one cursor store:

1. :meth:`TickRing.append` writes a record: first the slot's seq word alone (one 8-byte
   store), then the whole record, then (a trade or quote) its seq into the latest-value
   table's reference for its symbol. A reader that re-checks the slot's seq after copying
   it therefore sees any overwrite that began while it was copying. (One ``pack_into`` of
   the seq and the row together was about 11% cheaper per tick, and is not used: ``struct``
   zeroes the whole record with ``memset`` before it writes the fields, and ``memset`` may
   store the body before the seq word, so a reader could copy a half-zeroed record and
   still find the old seq.)
2. :meth:`TickRing.publish` stores the cursor (one 8-byte store, after the slots: x86
   keeps stores in order), then rings the doorbells of readers flagged as sleeping.

Two ways in. :meth:`TickRing.append` takes readable values (a kind name, a str symbol) and
checks them: about 0.65 µs a tick here. :meth:`TickRing.extend_records` takes rows already
in record order (:data:`~tradeops.protocol.tick.RecordRow`, built by a dialect's decoder
straight from the wire with a kind code and the encoded symbol field) and packs each with one
call of its kind's packer (a trade packs 8 values, not 18): about 0.35 µs a tick. The table
costs a dict lookup and a word store per tick, and a record copy only for a symbol whose
newest record the ring is about to overwrite (table.py).

The writer never looks at a reader's position and never waits for one: a reader that falls
more than ``capacity`` records behind is lapped, and counts what it lost.
"""

from __future__ import annotations

import contextlib
import os
import struct
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
    TABLE_SCRATCH_OFFSET,
    RingLayout,
)
from tradeops.bus.names import list_segments, ring_name, shm_path
from tradeops.bus.shm import Segment, SegmentWriter
from tradeops.bus.table import LatestTable, TableFullError
from tradeops.protocol.tick import (
    FULL_ROW,
    HEADER,
    KIND_CODES,
    KIND_NAMES,
    RECORD_SIZE,
    ROW_OFFSET,
    ROW_PACKERS,
    RecordRow,
    encode_symbol,
)

__all__ = ["ReaderInfo", "TickRing"]

_CURSOR: Final = CURSOR_OFFSET >> 3
_SLEEPING: Final = b"\x01"
_HOLE: Final = bytes(RECORD_SIZE)  # a record no reader hands to anyone: kind 0, no symbol


class ReaderInfo(NamedTuple):
    """A reader attached to the ring, as it last reported itself."""

    slot: int
    pid: int
    next_seq: int  # the seq it will read next
    lost: int  # ticks it lost to laps so far
    sleeping: bool  # waiting on its doorbell now


class TickRing(SegmentWriter):
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
        # The latest-value table names, per symbol, the seq of its newest trade and quote:
        # each append stores its seq in the word `_refs[kind][symbol]` of `_ref_words`
        # (the table's words; a scratch word for other kinds, and without a table), after
        # the record is written. One dict lookup and one store per tick, nothing at publish.
        if table is not None:
            table.bind_ring(HEADER.unpack_from(self._mm, 0)[6])
            self._ref_words = table.words
            self._scratch = TABLE_SCRATCH_OFFSET >> 3
        else:
            self._ref_words = memoryview(bytearray(8)).cast("q")
            self._scratch = 0
        self._refs: tuple[dict[bytes, int], ...] = tuple({} for _ in KIND_NAMES)
        #: symbols whose latest values the table could not take (it was full)
        self.untabled: set[bytes] = set()
        self._data = self.layout.data_offset
        self._mask = capacity - 1
        self._end_flags = FLAGS_OFFSET + max_readers
        self._seq = 0  # newest appended
        self._published = 0
        # Every `capacity / 2` appends the table copies in the records its references name
        # that are at least that old, so none is overwritten before it is copied.
        self._spilled = 0  # seq appended at the last such spill
        self._spill_every = capacity // 2

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
        FULL_ROW.pack_into(
            self._mm, offset + ROW_OFFSET, code, flags, trade_count, exchange_ns,
            receive_ns or time.time_ns(), raw, price, size, bid, bid_size, ask, ask_size,
            open, high, low, close, volume, vwap,
        )  # fmt: skip
        word = self._refs[code].get(raw)
        self._ref_words[self._ref(code, raw) if word is None else word] = seq
        self._seq = seq
        if seq - self._spilled >= self._spill_every:
            self._spill(seq)
        return seq

    def extend_records(self, rows: Iterable[RecordRow]) -> int:
        """Append rows (:data:`~tradeops.protocol.tick.RecordRow`: a record but its seq), then
        publish once; return the cursor. The gateway's fast path: no kind lookup, no symbol
        encoding, one pack per row, by the row's own packer (a trade row writes 8 values and
        zeros, a full row all 18).

        The caller vouches for the rows: a kind code of :data:`KIND_CODES` and a symbol field
        from :func:`~tradeops.protocol.tick.encode_symbol` (``struct`` would silently cut a
        longer field). ``receive_ns`` is the row's own: stamp it when the frame arrives.
        ValueError for a row that is not one (another length, a wrong type, an unknown kind
        code): the rows before it are published, it and the rest are not.
        """
        mm, words, packers = self._mm, self._words, ROW_PACKERS
        data, mask = self._data, self._mask
        refs, ref_words = self._refs, self._ref_words
        every = self._spill_every
        rows = rows if isinstance(rows, list) else list(rows)
        seq = self._seq
        try:
            # In runs that end where the table must spill (a referenced slot must not be
            # overwritten before it is copied): no check per row.
            start = 0
            while start < len(rows):
                run = every - (seq - self._spilled)
                for row in rows[start : start + run] if start or run < len(rows) else rows:
                    pack = packers[len(row)]
                    seq += 1
                    offset = data + (seq & mask) * RECORD_SIZE
                    words[offset >> 3] = seq  # the slot's seq first, on its own
                    pack(mm, offset + ROW_OFFSET, *row)  # type: ignore[misc]
                    try:
                        ref_words[refs[row[0]][row[5]]] = seq
                    except KeyError:  # the symbol's first record of this kind
                        ref_words[self._ref(row[0], row[5])] = seq
                start += run
                self._seq = seq
                if seq - self._spilled >= every:
                    self._spill(seq)
        except (TypeError, IndexError, struct.error) as exc:
            # The bad row holds `seq`: publish the rows before it, never it.
            self._seq = seq - 1
            self.publish()
            raise ValueError(f"not a record row (8, 10, 13, 14, 18 or 24 values): {exc}") from exc
        self._seq = seq
        return self.publish()

    def write_records(self, records: bytes | memoryview) -> int:
        """Write whole records (:data:`~tradeops.protocol.tick.RECORD`, their seqs included)
        as they are, then publish once; return the cursor. A mirror's way in: the records of
        another ring (a gateway on another node, docs/cluster.md) keep their seq numbers, so
        a gap upstream stays a gap here.

        The records must be in ascending seq order. One at or below the cursor is dropped (a
        duplicate). The seqs a jump skips, as far back as the ring holds, are written as hole
        records: kind code 0 ("unknown", which no strategy subscribes) and an empty symbol,
        so a reader passes them in order instead of finding a slot of another lap. ValueError
        when `records` is not a whole number of records.
        """
        view = memoryview(records).cast("B")
        if len(view) % RECORD_SIZE:
            raise ValueError(f"{len(view)} bytes is not a whole number of "
                             f"{RECORD_SIZE}-byte records")
        mm, words = self._mm, self._words
        data, mask, capacity = self._data, self._mask, self.layout.capacity
        body = RECORD_SIZE - 8
        seq = self._seq
        for start in range(0, len(view), RECORD_SIZE):
            given = int.from_bytes(view[start : start + 8], "little", signed=True)
            if given <= seq:
                continue
            if given - self._spilled >= self._spill_every:
                self._spill(given)  # before the jump's holes overwrite what it names
            for hole in range(max(seq + 1, given - capacity + 1), given):
                offset = data + (hole & mask) * RECORD_SIZE
                words[offset >> 3] = hole  # the slot's seq first, on its own
                mm[offset + 8 : offset + RECORD_SIZE] = _HOLE[:body]
            offset = data + (given & mask) * RECORD_SIZE
            words[offset >> 3] = given
            mm[offset + 8 : offset + RECORD_SIZE] = view[start + 8 : start + RECORD_SIZE]
            kind = view[start + 8]
            if kind < len(self._refs):
                raw = bytes(view[start + 32 : start + 64])
                word = self._refs[kind].get(raw)
                self._ref_words[self._ref(kind, raw) if word is None else word] = given
            seq = self._seq = given
        return self.publish()

    def _ref(self, code: int, raw: bytes) -> int:
        """The index in `_ref_words` where records of kind ``code`` and symbol ``raw`` store
        their seq, learnt once per pair: the table's reference word for a trade or quote,
        the scratch word otherwise. A symbol the full table cannot take gets the scratch
        word too (its ticks flow; the table keeps no latest value of it: `untabled`)."""
        word = self._scratch
        if self._table is not None:
            try:
                word = self._table.ref_word(code, raw)
            except TableFullError:
                self.untabled.add(raw)
        if code < len(self._refs):
            self._refs[code][raw] = word
        return word

    def _spill(self, at: int) -> None:
        """At seq ``at``: have the table copy in every record it names that is
        ``capacity / 2`` old or older (the ring overwrites it within ``capacity / 2`` more
        appends, before the next spill)."""
        self._spilled = at
        if self._table is not None:
            self._table.spill(self._mm, self._data, self._mask, at - self._spill_every)

    def publish(self) -> int:
        """Make every appended record visible and wake sleeping readers; return the cursor."""
        seq = self._seq
        if seq != self._published:
            # The table's references were stored with each append, before the cursor: a
            # reader that sees a tick finds the table as new.
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
        code = KIND_CODES.get(fields[0])
        if code is None:
            return self.append(*fields)  # ValueError, naming the kinds
        raw = encode_symbol(fields[1])
        refs = self._refs[code]
        word = refs.get(raw)
        refs[raw] = self._scratch  # this append's reference goes nowhere
        try:
            return self.append(*fields)
        finally:
            if word is None:
                del refs[raw]
            else:
                refs[raw] = word

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

