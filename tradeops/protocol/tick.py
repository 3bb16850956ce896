"""The normalised tick and the versioned binary layout of the bus (docs/bus.md).

One fixed-size record carries a trade, a quote or a bar. The layout is little-endian and
versioned: ``LAYOUT_VERSION`` covers the record and the segment headers, and a reader refuses a
segment whose version it does not know (:func:`check_header` raises :class:`LayoutError`).
Outside readers in any language rely on the offsets documented in docs/bus.md; a test pins
them against ``RECORD``.

:class:`Tick` is the record as a tuple subclass: building one is a single C-level tuple copy
of what ``RECORD.unpack_from`` returns (no per-field Python work), which matters because the
host builds one per tick. ``kind`` and ``symbol`` are decoded on access from the raw
``kind_code`` and ``symbol_bytes`` fields.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable
from functools import partial
from typing import Any, Final, NamedTuple, cast

__all__ = [
    "BAR",
    "DEPTH",
    "FLAG_BACKFILL",
    "FLAG_EPOCH_START",
    "FLAG_REPEAT",
    "FLAG_SNAPSHOT",
    "FULL_ROW",
    "HEADER",
    "KIND_CODES",
    "KIND_NAMES",
    "LAYOUT_VERSION",
    "QUOTE",
    "QUOTE_ROW",
    "RECORD",
    "RECORD_SIZE",
    "ROW_OFFSET",
    "ROW_PACKERS",
    "SYMBOL_MAX_BYTES",
    "TRADE",
    "TRADE_ROW",
    "FullRow",
    "Header",
    "LayoutError",
    "QuoteRow",
    "RecordRow",
    "SymbolError",
    "Tick",
    "TradeRow",
    "check_header",
    "decode_symbol",
    "encode_symbol",
    "tick_from_values",
]

#: Bump on any change of an offset, a size or a meaning in the record or the segment headers.
LAYOUT_VERSION: Final = 1

#: The record: seq, kind, flags, 2 pad bytes, trade count, exchange ns, receive ns, symbol,
#: then twelve float64 (price, size, bid, bid size, ask, ask size, open, high, low, close,
#: volume, vwap). Every 8-byte field sits on an 8-byte boundary.
RECORD: Final = struct.Struct("<qBB2xIqq32s12d")
RECORD_SIZE: Final = RECORD.size  # 160
#: Rows: a record without its seq, packed at :data:`ROW_OFFSET` by one call of the row's
#: packer (``TickRing.extend_records``; the writer stores the seq word itself, first). What a
#: dialect decodes a wire message into, so the gateway builds no intermediate object per tick.
#: Each starts kind code, flags, trade count, exchange ns, receive ns, the 32-byte symbol
#: field (:func:`encode_symbol`); then a trade row has price and size (8 values), a quote row
#: bid, bid size, ask, ask size (10 values), a full row all twelve floats (18 values, any
#: kind). The short rows' packers write zeros in the fields their kind does not use, so a
#: reused slot never shows the previous record's values.
ROW_OFFSET: Final = 8
TRADE_ROW: Final = struct.Struct("<BB2xIqq32s2d80x")
QUOTE_ROW: Final = struct.Struct("<BB2xIqq32s16x4d48x")
FULL_ROW: Final = struct.Struct("<BB2xIqq32s12d")
TradeRow = tuple[int, int, int, int, int, bytes, float, float]
QuoteRow = tuple[int, int, int, int, int, bytes, float, float, float, float]
FullRow = tuple[
    int, int, int, int, int, bytes,
    float, float, float, float, float, float, float, float, float, float, float, float,
]  # fmt: skip
RecordRow = TradeRow | QuoteRow | FullRow
#: The packer of a row, by its length (8, 10 or 18 values; None for any other length).
ROW_PACKERS: Final[tuple[Callable[..., None] | None, ...]] = tuple(
    {8: TRADE_ROW.pack_into, 10: QUOTE_ROW.pack_into, 18: FULL_ROW.pack_into}.get(n)
    for n in range(19)
)
#: Offset of the record's own sequence number: the word a reader re-checks (seqlock).
SEQ_OFFSET: Final = 0

#: Symbols are stored UTF-8, NUL-padded to 32 bytes; at most 31 so one NUL always ends them.
SYMBOL_FIELD_BYTES: Final = 32
SYMBOL_MAX_BYTES: Final = SYMBOL_FIELD_BYTES - 1

# Kind codes. 0 never appears in a published record. New kinds (depth) may be added without a
# layout bump; a reader shows a code it does not know as "unknown" rather than failing.
TRADE: Final = 1
QUOTE: Final = 2
BAR: Final = 3
DEPTH: Final = 4  # reserved: no depth record is written yet
KIND_NAMES: Final = ("unknown", "trade", "quote", "bar", "depth")
KIND_CODES: Final = {"trade": TRADE, "quote": QUOTE, "bar": BAR, "depth": DEPTH}

#: Flag bits; bits not named here are zero when written and ignored when read.
FLAG_SNAPSHOT: Final = 1  # the value came from a snapshot (REST, resync), not the live stream
#: Set by a reading host, never written to the bus: a tick its strategies may have seen
#: already (resumed after a kill -9 in the middle of handing over a batch).
FLAG_REPEAT: Final = 4
#: Set by a reading host, never written to the bus: the first tick of a new bus epoch (the
#: broker's gateway restarted; `seq` starts again at 1).
FLAG_EPOCH_START: Final = 8
#: Written by the gateway: a trade fetched from the broker's history after a reconnect, for
#: the outage it missed. It arrives late and out of wall-clock order; it never becomes the
#: latest value of its symbol, and it is not market data for the safety gate.
FLAG_BACKFILL: Final = 16

#: The first 48 bytes of every bus segment: magic, layout version, record size, capacity
#: (slots or entries), data offset (bytes from the segment start to slot 0), writer pid,
#: created (unix ns). Ring- and table-specific fields follow (bus/ring.py, bus/table.py).
HEADER: Final = struct.Struct("<8sIIQQqq")


class LayoutError(RuntimeError):
    """A segment is not a tradeops bus segment, or has a layout this code cannot read."""


class SymbolError(ValueError):
    """A symbol cannot be stored in a record (empty, contains NUL, over 31 bytes UTF-8)."""


class Header(NamedTuple):
    magic: bytes
    layout_version: int
    record_size: int
    capacity: int
    data_offset: int
    writer_pid: int
    created_ns: int


def check_header(buf: bytes | bytearray | memoryview, magic: bytes, name: str) -> Header:
    """Parse and check a segment's common header; raise :class:`LayoutError` if unreadable.

    ``name`` (the segment's name) only makes the error say which segment is wrong.
    """
    if len(buf) < HEADER.size:
        raise LayoutError(f"segment {name!r} is {len(buf)} bytes, too short for a header")
    header = Header(*HEADER.unpack_from(buf, 0))
    if header.magic != magic:
        raise LayoutError(
            f"segment {name!r} is not a tradeops {magic.decode(errors='replace')} segment "
            f"(magic {header.magic!r})"
        )
    if header.layout_version != LAYOUT_VERSION:
        raise LayoutError(
            f"segment {name!r} has bus layout version {header.layout_version}; this tradeops "
            f"reads version {LAYOUT_VERSION} only: run the same tradeops version as the gateway"
        )
    if header.record_size != RECORD_SIZE:
        raise LayoutError(
            f"segment {name!r} has {header.record_size}-byte records; layout version "
            f"{LAYOUT_VERSION} has {RECORD_SIZE}"
        )
    return header


# Symbol caches: a broker has a few thousand symbols at most, so both stay small; they are
# cleared if something feeds them unbounded garbage.
_ENCODED: dict[str, bytes] = {}
_DECODED: dict[bytes, str] = {}
_CACHE_LIMIT: Final = 1 << 16


def encode_symbol(symbol: str) -> bytes:
    """The 32-byte NUL-padded field for ``symbol``; :class:`SymbolError` if it cannot be stored."""
    raw = _ENCODED.get(symbol)
    if raw is not None:
        return raw
    data = symbol.encode("utf-8")
    if not data:
        raise SymbolError("a symbol cannot be empty")
    if b"\0" in data:
        raise SymbolError(f"symbol {symbol!r} contains a NUL character")
    if len(data) > SYMBOL_MAX_BYTES:
        raise SymbolError(
            f"symbol {symbol!r} is {len(data)} bytes in UTF-8; the bus stores at most "
            f"{SYMBOL_MAX_BYTES}"
        )
    raw = data.ljust(SYMBOL_FIELD_BYTES, b"\0")
    if len(_ENCODED) >= _CACHE_LIMIT:
        _ENCODED.clear()
    _ENCODED[symbol] = raw
    return raw


def decode_symbol(raw: bytes) -> str:
    """The symbol held in a 32-byte field (the inverse of :func:`encode_symbol`)."""
    symbol = _DECODED.get(raw)
    if symbol is None:
        symbol = raw.split(b"\0", 1)[0].decode("utf-8", errors="replace")
        if len(_DECODED) >= _CACHE_LIMIT:
            _DECODED.clear()
        _DECODED[raw] = symbol
    return symbol


class Tick(NamedTuple):
    """One normalised trade, quote or bar, as read from the bus. Immutable.

    Fields not used by a kind are 0 (a trade has no bid; a quote has no price). Times are
    nanoseconds since the Unix epoch: ``exchange_ns`` as the broker stamped the event,
    ``receive_ns`` when the gateway received it. ``seq`` is the gateway's sequence number:
    1 for the first tick a ring publishes, then consecutive.
    """

    seq: int
    kind_code: int
    flags: int
    trade_count: int
    exchange_ns: int
    receive_ns: int
    symbol_bytes: bytes
    price: float
    size: float
    bid: float
    bid_size: float
    ask: float
    ask_size: float
    open: float
    high: float
    low: float
    close: float
    volume: float
    vwap: float

    @property
    def kind(self) -> str:
        """The kind's name: trade, quote, bar, depth; "unknown" for a code newer than this."""
        code = self.kind_code
        return KIND_NAMES[code] if 0 <= code < len(KIND_NAMES) else "unknown"

    @property
    def symbol(self) -> str:
        return decode_symbol(self.symbol_bytes)

    @classmethod
    def make(
        cls,
        kind: str,
        symbol: str,
        *,
        seq: int = 0,
        exchange_ns: int = 0,
        receive_ns: int = 0,
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
        flags: int = 0,
    ) -> Tick:
        """Build a tick from readable values (tests, snapshots); readers get theirs from the bus."""
        code = KIND_CODES.get(kind)
        if code is None:
            raise ValueError(f"unknown tick kind {kind!r}; one of {sorted(KIND_CODES)}")
        return cls(
            seq, code, flags, trade_count, exchange_ns, receive_ns, encode_symbol(symbol),
            float(price), float(size), float(bid), float(bid_size), float(ask),
            float(ask_size), float(open), float(high), float(low), float(close),
            float(volume), float(vwap),
        )  # fmt: skip

    def to_bytes(self) -> bytes:
        """The 160-byte record."""
        return RECORD.pack(*self)

    @classmethod
    def from_bytes(cls, buf: bytes | bytearray | memoryview, offset: int = 0) -> Tick:
        """The tick in the record at ``offset`` of ``buf``."""
        return cls._make(RECORD.unpack_from(buf, offset))

    def __repr__(self) -> str:
        parts = [f"seq={self.seq}", f"kind={self.kind!r}", f"symbol={self.symbol!r}"]
        parts += [f"{name}={getattr(self, name)!r}" for name in self._shown()]
        if self.flags:
            parts.append(f"flags={self.flags}")
        parts += [f"exchange_ns={self.exchange_ns}", f"receive_ns={self.receive_ns}"]
        return f"Tick({', '.join(parts)})"

    def __str__(self) -> str:
        if self.kind_code == TRADE:
            body = f"{self.size:g} @ {self.price:g}"
        elif self.kind_code == QUOTE:
            body = f"{self.bid_size:g} x {self.bid:g} / {self.ask:g} x {self.ask_size:g}"
        else:
            body = " ".join(f"{name}={getattr(self, name):g}" for name in self._shown())
        return f"#{self.seq} {self.symbol} {self.kind} {body}"

    def _shown(self) -> tuple[str, ...]:
        if self.kind_code == TRADE:
            return ("price", "size")
        if self.kind_code == QUOTE:
            return ("bid", "bid_size", "ask", "ask_size")
        return ("open", "high", "low", "close", "volume", "vwap", "trade_count")


#: Build a Tick from the values ``RECORD.unpack_from`` returns: one C-level tuple copy, no
#: Python frame (``Tick._make`` adds one); for readers' hot paths.
tick_from_values = cast(Callable[[Iterable[Any]], Tick], partial(tuple.__new__, Tick))
