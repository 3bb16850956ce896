"""Order books: the book a strategy reads, its shared-memory record, and keeping one from a
broker's snapshot and incremental updates. Pure: no I/O, no clock (docs/bus.md, "The book
table").

A book is up to ``depth`` levels a side (a broker key, default 5, at most
:data:`MAX_LEVELS`), bids best (highest) first, asks best (lowest) first. The gateway keeps
each symbol's whole book with :class:`BookKeeper` (Alpaca's crypto ``orderbooks`` channel
sends a snapshot, ``"r": true``, then changed levels, a size of 0 removing one) and writes the
top levels into the book table, one entry per symbol under a seqlock, so a reader never sees
half of one book and half of the next.

The book segment has a layout version of its own (:data:`BOOK_LAYOUT_VERSION`): adding it
changed nothing in the tick record or the ring, which stay at ``LAYOUT_VERSION`` 1.
"""

from __future__ import annotations

import heapq
import struct
from collections.abc import Iterable, Sequence
from typing import Final, NamedTuple

from tradeops.protocol.tick import HEADER, Header, LayoutError

__all__ = [
    "BOOK_ENTRY_SIZE",
    "BOOK_LAYOUT_VERSION",
    "BOOK_MAGIC",
    "DEFAULT_LEVELS",
    "MAX_LEVELS",
    "Book",
    "BookKeeper",
    "Level",
    "check_book_header",
]

#: Bump on any change of an offset, a size or a meaning of the book segment.
BOOK_LAYOUT_VERSION: Final = 1
BOOK_MAGIC: Final = b"TOPSBOOK"
MAX_LEVELS: Final = 20
DEFAULT_LEVELS: Final = 5

#: One entry: key state (i64, 1 once the symbol is set), version (i64 seqlock: odd while the
#: writer copies a book in; it counts updates, two per book), exchange ns, receive ns, the
#: 32-byte symbol, bid count (u32), ask count (u32), 56 reserved bytes; then at offset 128,
#: MAX_LEVELS bid levels and MAX_LEVELS ask levels, each (price f64, size f64).
ENTRY_KEY_STATE: Final = 0
ENTRY_VERSION: Final = 8
ENTRY_HEAD: Final = struct.Struct("<qq32sII56x")  # at offset 16: times, symbol, counts
ENTRY_HEAD_OFFSET: Final = 16
ENTRY_LEVELS_OFFSET: Final = 128
LEVELS: Final = struct.Struct(f"<{4 * MAX_LEVELS}d")
BOOK_ENTRY_SIZE: Final = ENTRY_LEVELS_OFFSET + LEVELS.size  # 768

Level = tuple[float, float]  # (price, size)


class Book(NamedTuple):
    """One symbol's order book as read from the bus. Immutable.

    ``bids`` best (highest price) first, ``asks`` best (lowest) first, each a tuple of
    ``(price, size)``; ``exchange_ns`` when the broker stamped the last change, ``receive_ns``
    when the gateway received it; ``version`` grows with every update of this symbol's book.
    """

    symbol: str
    bids: tuple[Level, ...]
    asks: tuple[Level, ...]
    exchange_ns: int
    receive_ns: int
    version: int

    @property
    def best_bid(self) -> Level | None:
        return self.bids[0] if self.bids else None

    @property
    def best_ask(self) -> Level | None:
        return self.asks[0] if self.asks else None


def check_book_header(buf: bytes | bytearray | memoryview, name: str) -> Header:
    """Parse and check a book segment's header; :class:`LayoutError` if this code cannot read
    it (another magic, version or entry size)."""
    if len(buf) < HEADER.size:
        raise LayoutError(f"segment {name!r} is {len(buf)} bytes, too short for a header")
    header = Header(*HEADER.unpack_from(buf, 0))
    if header.magic != BOOK_MAGIC:
        raise LayoutError(f"segment {name!r} is not a tradeops book segment ({header.magic!r})")
    if header.layout_version != BOOK_LAYOUT_VERSION or header.record_size != BOOK_ENTRY_SIZE:
        raise LayoutError(
            f"book segment {name!r} has layout version {header.layout_version} with "
            f"{header.record_size}-byte entries; this tradeops reads version "
            f"{BOOK_LAYOUT_VERSION} ({BOOK_ENTRY_SIZE} bytes): run the same tradeops version "
            "as the gateway"
        )
    return header


def check_levels(depth: int) -> int:
    """``depth`` if it is a valid number of levels per side; ValueError naming the range."""
    if not 1 <= depth <= MAX_LEVELS:
        raise ValueError(f"book depth must be 1..{MAX_LEVELS} levels per side, not {depth}")
    return depth


class BookKeeper:
    """Every symbol's whole book from a snapshot and incremental updates; answers the top
    ``depth`` levels a side after each change. One per upstream connection (a new connection
    starts from the broker's new snapshots)."""

    def __init__(self, depth: int = DEFAULT_LEVELS) -> None:
        self.depth = check_levels(depth)
        self._books: dict[str, tuple[dict[float, float], dict[float, float]]] = {}

    def apply(
        self,
        symbol: str,
        bids: Iterable[Level],
        asks: Iterable[Level],
        reset: bool = False,
    ) -> tuple[tuple[Level, ...], tuple[Level, ...]]:
        """Apply one message (``reset``: a snapshot replacing the book; else changed levels,
        size 0 removing the level); returns the top levels (bids, asks) after it."""
        book = self._books.get(symbol)
        if book is None or reset:
            book = self._books[symbol] = ({}, {})
        for side, levels in zip(book, (bids, asks), strict=True):
            for price, size in levels:
                if size > 0:
                    side[price] = size
                else:
                    side.pop(price, None)
        return self.top(symbol)

    def top(self, symbol: str) -> tuple[tuple[Level, ...], tuple[Level, ...]]:
        book = self._books.get(symbol)
        if book is None:
            return (), ()
        bid_side, ask_side = book
        n = self.depth
        bids = tuple((p, bid_side[p]) for p in heapq.nlargest(n, bid_side))
        asks = tuple((p, ask_side[p]) for p in heapq.nsmallest(n, ask_side))
        return bids, asks

    def forget(self, symbol: str) -> None:
        """The symbol's book is no longer subscribed: a later snapshot starts it again."""
        self._books.pop(symbol, None)


def flat_levels(bids: Sequence[Level], asks: Sequence[Level]) -> list[float]:
    """The 4 × MAX_LEVELS floats of an entry's levels: bids then asks, zero-padded."""
    out = [0.0] * (4 * MAX_LEVELS)
    for i, (price, size) in enumerate(bids[:MAX_LEVELS]):
        out[2 * i], out[2 * i + 1] = price, size
    base = 2 * MAX_LEVELS
    for i, (price, size) in enumerate(asks[:MAX_LEVELS]):
        out[base + 2 * i], out[base + 2 * i + 1] = price, size
    return out


def levels_of(values: Sequence[float], bid_count: int, ask_count: int
              ) -> tuple[tuple[Level, ...], tuple[Level, ...]]:
    """The inverse of :func:`flat_levels` for the counts an entry holds."""
    base = 2 * MAX_LEVELS
    bids = tuple((values[2 * i], values[2 * i + 1]) for i in range(min(bid_count, MAX_LEVELS)))
    asks = tuple((values[base + 2 * i], values[base + 2 * i + 1])
                 for i in range(min(ask_count, MAX_LEVELS)))
    return bids, asks
