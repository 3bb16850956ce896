"""A reader of a tick ring: any number per ring, each at its own pace, in any process.

Reading copies a run of records out of the ring, then re-checks the seq word of the oldest
slot it copied: the writer overwrites slots in seq order and stores a slot's new seq before
its body, so if that word still holds the expected seq, nothing the reader copied was being
overwritten (x86 keeps loads in order and stores in order). Otherwise the reader was lapped:
it drops the copy, counts the records it will skip as lost, and resyncs.

Resync (``resync=``): ``"newest"`` (default) skips to the newest record, which is what a
trading strategy wants (stale ticks are worthless; the latest-value table has the current
state); ``"oldest"`` skips to the oldest record still held, plus a margin of 1/16 of the ring
the writer may already be overwriting, which is what a recorder wants (lose as little as
possible).
"""

from __future__ import annotations

import math
import select
import time
from collections.abc import Callable, Sequence
from collections.abc import Set as AbstractSet
from typing import Final, Literal, TypeVar

from tradeops.bus.batch import TickBatch
from tradeops.bus.doorbell import Doorbell, fence
from tradeops.bus.layout import (
    CURSOR_OFFSET,
    READER_LOST,
    READER_NEXT,
    STATE_CLOSED,
    STATE_OFFSET,
    RingLayout,
)
from tradeops.bus.names import ring_name
from tradeops.bus.shm import ClosesOnExit, Segment
from tradeops.protocol.tick import HEADER, RECORD, RECORD_SIZE, SYMBOL_FIELD, Tick, tick_from_values

__all__ = ["RingReader"]


_T = TypeVar("_T")
#: Only the symbol field of a record: the filter looks at it without unpacking anything else.


def _decode(chunk: memoryview) -> list[Tick]:
    # RECORD looked up at call time: a test replaces it to overwrite the ring mid-copy.
    return list(map(tick_from_values, RECORD.iter_unpack(chunk)))


def _decode_only(chunk: memoryview, wanted: AbstractSet[bytes]) -> list[Tick]:
    unpack = RECORD.unpack_from
    return [
        tick_from_values(unpack(chunk, i * RECORD_SIZE))
        for i, (raw,) in enumerate(SYMBOL_FIELD.iter_unpack(chunk))
        if raw in wanted
    ]


def _readable(fds: Sequence[int]) -> bool:
    poll = select.poll()
    for fd in fds:
        poll.register(fd, select.POLLIN)
    return bool(poll.poll(0))


_CURSOR: Final = CURSOR_OFFSET >> 3
_STATE: Final = STATE_OFFSET >> 3
#: The longest a sleeping reader waits for a doorbell before looking again by itself: a
#: backstop only (a dead writer, a missed ring); wake-ups normally come from the doorbell.
BACKSTOP_S: Final = 0.05
#: Records copied between two seq re-checks: bounds what a lap mid-copy throws away.
CHUNK: Final = 512

Start = int | Literal["newest", "oldest"]


class RingReader(ClosesOnExit):
    """Attach to ``broker``'s ring in ``topology`` and read its ticks in seq order.

    ``start``: ``"newest"`` reads only ticks published from now on; ``"oldest"`` replays the
    history the ring holds; an int is the seq to read first (see :meth:`seek`), when the ring
    is of ``epoch`` (a seq from another epoch starts at the oldest the ring holds instead). With
    ``busy_poll`` the reader spins while it waits (lowest latency, one core per reader; it
    collapses once processes outnumber cores); otherwise it sleeps on its doorbell.

    FileNotFoundError if the ring does not exist; LayoutError if its layout is unknown;
    ReadersFullError if every reader slot is taken. One thread per reader.
    """

    def __init__(
        self,
        topology: str,
        broker: str,
        *,
        start: Start = "newest",
        busy_poll: bool = False,
        resync: Literal["newest", "oldest"] = "newest",
        epoch: int | None = None,
    ) -> None:
        self.name = ring_name(topology, broker)
        self.broker = broker
        self.busy_poll = busy_poll
        self.resync = resync
        self._segment = Segment.attach(self.name, writable=True)
        try:
            self.layout = RingLayout.read(self._segment.mm, self.name)
            self._mm = self._segment.mm
            self._words = memoryview(self._mm).cast("q")
            self._view = memoryview(self._mm)
            self._bell = Doorbell(
                self._mm, self._words, self._segment.fd, self.layout, (topology, broker)
            )
        except BaseException:
            self._release_views()
            self._segment.close()
            raise
        self._capacity = self.layout.capacity
        self._mask = self._capacity - 1
        self._data = self.layout.data_offset
        self._next_word = self.layout.reader_word(self._bell.slot, READER_NEXT)
        self._lost_word = self.layout.reader_word(self._bell.slot, READER_LOST)
        #: Ticks skipped because the writer lapped this reader (or history was gone).
        self.lost = 0
        #: Times this reader was lapped.
        self.laps = 0
        #: Sleeps that ended by the backstop timeout although data had arrived (a doorbell
        #: that did not ring): should stay 0.
        self.late_wakeups = 0
        self._next = 0
        #: The ring's epoch: its writer's session id (the creation time in its header). A new
        #: gateway writes a new ring with a new epoch, and `seq` starts again at 1.
        self.epoch: int = HEADER.unpack_from(self._mm, 0)[6]
        if isinstance(start, int) and epoch is not None and epoch != self.epoch:
            start = "oldest"  # a seq of another epoch means nothing here: the new one's start
        if start == "newest":
            self._next = self.cursor + 1
        elif start == "oldest":
            self._next = self.oldest
        else:
            self.seek(start)
        self._report()

    # --- positions ---------------------------------------------------------------------------

    @property
    def cursor(self) -> int:
        """The seq of the newest published tick (0 before the first)."""
        return self._words[_CURSOR]

    @property
    def oldest(self) -> int:
        """The oldest seq worth asking for: the ring's oldest less the overwrite margin."""
        return max(1, self.cursor - self._capacity + 1 + self._capacity // 16)

    @property
    def slot(self) -> int:
        """This reader's slot in the ring's reader table (its doorbell's number)."""
        return self._bell.slot

    @property
    def next_seq(self) -> int:
        """The seq :meth:`read` returns first."""
        return self._next

    @property
    def available(self) -> int:
        """Ticks published and not read yet (more than the capacity means lapped)."""
        return max(0, self.cursor - self._next + 1)

    def seek(self, seq: int) -> int:
        """Read from ``seq`` on ("resume: replay"); return the seq that will be read first.

        A seq older than the ring still holds starts at the oldest held, and the gap counts
        as lost; a seq beyond the newest waits for it to be published.
        """
        if seq < 1:
            raise ValueError(f"seq numbers start at 1: {seq}")
        held = max(1, self.cursor - self._capacity + 1)
        if seq < held:
            self.lost += held - seq
            seq = held
        self._next = seq
        self._report()
        return seq

    def stale(self) -> bool:
        """True once the writer closed this ring or a new gateway replaced it: re-attach."""
        return self._words[_STATE] == STATE_CLOSED or self._segment.moved()

    # --- reading -----------------------------------------------------------------------------

    def read(
        self,
        max_ticks: int = 4096,
        timeout: float | None = 0.0,
        symbols: AbstractSet[bytes] | None = None,
    ) -> list[Tick]:
        """The next ticks in seq order, up to ``max_ticks``; [] if none came in ``timeout``.

        ``timeout`` 0 never waits; None waits until a tick arrives. A lap shows as a jump in
        ``seq`` and a higher :attr:`lost`: found before copying, the call resyncs and returns
        what follows (maybe nothing); found while copying, it returns the intact ticks copied
        before the overwritten one and resyncs for the next call.

        ``symbols``: only ticks whose 32-byte symbol field (:func:`encode_symbol`) is in this
        set are decoded and returned; the others are passed over on the raw bytes, unread,
        and count as read (not lost). ``max_ticks`` counts the ticks passed over too, so a
        filtered call may return fewer, even none, with more waiting.
        """
        if symbols is None:
            _, parts = self._take(max_ticks, timeout, _decode)
        else:
            wanted = symbols
            _, parts = self._take(max_ticks, timeout, lambda chunk: _decode_only(chunk, wanted))
        if not parts:
            return []
        ticks = parts[0]
        for part in parts[1:]:
            ticks += part  # a C-level extend, no Python per tick
        return ticks

    def read_batch(self, max_ticks: int = 4096, timeout: float | None = 0.0) -> TickBatch:
        """The next records as one :class:`TickBatch` (columns, numpy), with the same waiting,
        lap and resync rules as :meth:`read`. Copies the records out of the ring (a memcpy)
        and decodes nothing: for readers that want columns (a recorder) or a few fields."""
        first, parts = self._take(max_ticks, timeout, bytes)
        return TickBatch(first, parts[0] if len(parts) == 1 else b"".join(parts))

    def _take(
        self, max_ticks: int, timeout: float | None, convert: Callable[[memoryview], _T]
    ) -> tuple[int, list[_T]]:
        """Convert up to ``max_ticks`` published records, a chunk at a time, in seq order;
        return the seq of the first converted and the converted chunks.

        ``convert`` runs on a chunk while it is still in the ring; the chunk counts only if
        its first slot still holds the seq it had afterwards (see the module docstring).
        """
        words = self._words
        nxt = self._next
        cursor = words[_CURSOR]
        if cursor < nxt:
            if timeout == 0.0 or not self.wait(timeout):
                return nxt, []
            cursor = words[_CURSOR]
        if cursor - nxt >= self._capacity:
            nxt = self._lapped(nxt)
            if cursor < nxt:
                return nxt, []
            cursor = words[_CURSOR]
        end = nxt + min(cursor - nxt + 1, max_ticks)
        parts: list[_T] = []
        seq = nxt
        mask, capacity, data, view = self._mask, self._capacity, self._data, self._view
        while seq < end:
            # Convert at most CHUNK records, then re-check the chunk's first slot: a reader
            # overwritten mid-batch keeps every chunk that was intact when checked.
            index = seq & mask
            n = min(end - seq, CHUNK, capacity - index)
            start = data + index * RECORD_SIZE
            part = convert(view[start : start + n * RECORD_SIZE])
            if words[start >> 3] != seq:  # overwritten while we copied: lapped
                self._next = seq
                self._lapped(seq)
                return nxt, parts
            parts.append(part)
            seq += n
        self._next = end
        words[self._next_word] = end
        return nxt, parts

    def wait(self, timeout: float | None, also: Sequence[int] = ()) -> bool:
        """Wait until a tick is published past what was read; False if ``timeout`` passed.

        ``also``: file descriptors (sockets) that end the wait early when readable; the call
        then returns False unless a tick arrived too (look at them yourself)."""
        words = self._words
        nxt = self._next
        if words[_CURSOR] >= nxt:
            return True
        deadline = math.inf if timeout is None else time.monotonic() + timeout
        if self.busy_poll:
            while words[_CURSOR] < nxt:
                if time.monotonic() >= deadline:
                    return False
            return True
        bell = self._bell
        while True:
            bell.arm()
            fence()  # the flag must be visible before we look at the cursor: see doorbell.py
            if words[_CURSOR] >= nxt:
                bell.disarm()
                return True
            remaining = min(deadline - time.monotonic(), BACKSTOP_S)
            rung = bell.sleep(max(0, math.ceil(remaining * 1000)), also)
            bell.disarm()
            if words[_CURSOR] >= nxt:
                if not rung and remaining == BACKSTOP_S and not also:
                    self.late_wakeups += 1
                return True
            if time.monotonic() >= deadline or words[_STATE] == STATE_CLOSED:
                return False
            if also and not rung and _readable(also):
                return False

    def _lapped(self, nxt: int) -> int:
        cursor = self._words[_CURSOR]
        target = cursor + 1 if self.resync == "newest" else max(nxt, self.oldest)
        self.lost += target - nxt
        self.laps += 1
        self._next = target
        self._report()
        return target

    def _report(self) -> None:
        # Published for the writer's status page (TickRing.readers()).
        self._words[self._next_word] = self._next
        self._words[self._lost_word] = self.lost

    # --- lifetime ----------------------------------------------------------------------------

    def _release_views(self) -> None:
        for name in ("_words", "_view"):
            view = self.__dict__.pop(name, None)
            if view is not None:
                view.release()

    def close(self) -> None:
        """Give back the reader slot and doorbell, unmap. Never unlinks the ring."""
        if self._mm.closed:
            return
        self._bell.close()
        self._release_views()
        self._segment.close()

