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
    "CANCEL_ERROR",
    "CORRECTION",
    "DAILY_BAR",
    "DEPTH",
    "ENCODED_SYMBOLS",
    "FLAG_BACKFILL",
    "FLAG_CONDITIONS_CUT",
    "FLAG_EPOCH_START",
    "FLAG_REPEAT",
    "FLAG_SNAPSHOT",
    "FULL_DETAIL_ROW",
    "FULL_ROW",
    "HEADER",
    "KIND_CODES",
    "KIND_NAMES",
    "LAYOUT_VERSION",
    "LULD",
    "NO_DETAIL",
    "NO_TAIL",
    "QUOTE",
    "QUOTE_DETAIL_ROW",
    "QUOTE_ROW",
    "RECORD",
    "RECORD_FIELDS",
    "RECORD_SIZE",
    "ROW_OFFSET",
    "ROW_PACKERS",
    "STATUS",
    "STRATEGY_KINDS",
    "SYMBOL_FIELD",
    "SYMBOL_MAX_BYTES",
    "TAIL_BYTES",
    "TAIL_OFFSET",
    "TRADE",
    "TRADE_DETAIL_ROW",
    "TRADE_ROW",
    "UPDATED_BAR",
    "FullRow",
    "Header",
    "LayoutError",
    "QuoteRow",
    "RecordRow",
    "SymbolError",
    "Tick",
    "TradeRow",
    "check_header",
    "decode_code",
    "decode_conditions",
    "decode_symbol",
    "encode_code",
    "encode_conditions",
    "encode_symbol",
    "status_floats",
    "tick_from_values",
    "trade_id",
]

#: Bump on any change of an offset, a size or a meaning in the record or the segment headers.
#: 2: the record grew from 160 to 192 bytes (three cache lines) to carry what the broker said
#: about an event beyond its numbers: its own trade id, exchange codes, tape, taker side and
#: condition codes (issue 15), and kinds 5-10 (daily and updated bars, statuses, LULD bands,
#: corrections, cancel/errors).
#: 3: the latest-value table holds, per symbol and kind, the seq of the newest record in the
#: ring and copies a record only before the ring overwrites it (a 512-byte entry; the table
#: header names the ring's epoch). The record itself did not change.
LAYOUT_VERSION: Final = 3

#: The record: seq, kind, flags, 2 pad bytes, trade count, exchange ns, receive ns, symbol,
#: then twelve float64 (price, size, bid, bid size, ask, ask size, open, high, low, close,
#: volume, vwap), then the broker's detail: its trade id (int64), an exchange code (4 bytes),
#: a second exchange code (the ask's, 4 bytes), the tape (1), the taker side (1) and the
#: condition codes (14 bytes; :func:`encode_conditions`). Every 8-byte field sits on an
#: 8-byte boundary. What each field means per kind: docs/bus.md. ``RECORD_FIELDS`` is the
#: record field by field. ``RECORD``, what a reader unpacks into a :class:`Tick`, takes the
#: six numbers of trades and quotes one by one and the record's last 80 bytes (a bar's six
#: numbers and the broker's detail) whole, as one bytes object decoded only when asked: a
#: trade or a quote, nearly every tick, then allocates 6 floats instead of 12 and one bytes
#: object instead of one and six floats, and a read to a Tick costs about a quarter less.
RECORD_FIELDS: Final = struct.Struct("<qBB2xIqq32s12dq4s4sss14s")
RECORD: Final = struct.Struct("<qBB2xIqq32s6d80s")
RECORD_SIZE: Final = RECORD.size  # 192
#: Where the tail (:attr:`Tick.tail`) starts in the record, and its size: the bar numbers
#: (open, high, low, close, volume, vwap as float64) then the 32 detail bytes.
TAIL_OFFSET: Final = 112
TAIL_BYTES: Final = 80
BAR_NUMBERS: Final = struct.Struct("<6d")
NO_TAIL: Final = bytes(TAIL_BYTES)
#: The detail bytes (offset 160) field by field: trade id, exchange, ask exchange, tape,
#: taker side, conditions.
DETAIL: Final = struct.Struct("<q4s4sss14s")
NO_DETAIL: Final = bytes(DETAIL.size)
#: Rows: a record without its seq, packed at :data:`ROW_OFFSET` by one call of the row's
#: packer (``TickRing.extend_records``; the writer stores the seq word itself, first). What a
#: dialect decodes a wire message into, so the gateway builds no intermediate object per tick.
#: Each starts kind code, flags, trade count, exchange ns, receive ns, the 32-byte symbol
#: field (:func:`encode_symbol`); then a trade row has price and size (8 values), a quote row
#: bid, bid size, ask, ask size (10 values), a full row all twelve floats (18 values, any
#: kind), all three without the broker's detail (zeros). The detailed rows add it: a trade
#: row its trade id, exchange, tape, taker side and conditions (13 values), a quote row its
#: bid exchange, ask exchange, tape and conditions (14), a full row all six detail fields
#: (24). The short rows' packers write zeros in the fields their kind does not use, so a
#: reused slot never shows the previous record's values.
ROW_OFFSET: Final = 8
TRADE_ROW: Final = struct.Struct("<BB2xIqq32s2d112x")
QUOTE_ROW: Final = struct.Struct("<BB2xIqq32s16x4d80x")
FULL_ROW: Final = struct.Struct("<BB2xIqq32s12d32x")
TRADE_DETAIL_ROW: Final = struct.Struct("<BB2xIqq32s2d80xq4s4xss14s")
QUOTE_DETAIL_ROW: Final = struct.Struct("<BB2xIqq32s16x4d48x8x4s4ss1x14s")
FULL_DETAIL_ROW: Final = struct.Struct("<BB2xIqq32s12dq4s4sss14s")
TradeRow = tuple[int, int, int, int, int, bytes, float, float]
QuoteRow = tuple[int, int, int, int, int, bytes, float, float, float, float]
FullRow = tuple[
    int, int, int, int, int, bytes,
    float, float, float, float, float, float, float, float, float, float, float, float,
]  # fmt: skip
TradeDetailRow = tuple[int, int, int, int, int, bytes, float, float,
                       int, bytes, bytes, bytes, bytes]  # fmt: skip
QuoteDetailRow = tuple[int, int, int, int, int, bytes, float, float, float, float,
                       bytes, bytes, bytes, bytes]  # fmt: skip
FullDetailRow = tuple[
    int, int, int, int, int, bytes,
    float, float, float, float, float, float, float, float, float, float, float, float,
    int, bytes, bytes, bytes, bytes, bytes,
]  # fmt: skip
RecordRow = TradeRow | QuoteRow | FullRow | TradeDetailRow | QuoteDetailRow | FullDetailRow
#: The packer of a row, by its length (8, 10, 13, 14, 18 or 24 values; None for any other).
ROW_PACKERS: Final[tuple[Callable[..., None] | None, ...]] = tuple(
    {8: TRADE_ROW.pack_into, 10: QUOTE_ROW.pack_into, 13: TRADE_DETAIL_ROW.pack_into,
     14: QUOTE_DETAIL_ROW.pack_into, 18: FULL_ROW.pack_into,
     24: FULL_DETAIL_ROW.pack_into}.get(n)
    for n in range(25)
)  # fmt: skip
#: A record's symbol field alone (``iter_unpack`` over records: filter on raw symbols).
SYMBOL_FIELD: Final = struct.Struct(f"<32x32s{RECORD_SIZE - 64}x")
#: Offset of the record's own sequence number: the word a reader re-checks (seqlock).
SEQ_OFFSET: Final = 0

#: Symbols are stored UTF-8, NUL-padded to 32 bytes; at most 31 so one NUL always ends them.
SYMBOL_FIELD_BYTES: Final = 32
SYMBOL_MAX_BYTES: Final = SYMBOL_FIELD_BYTES - 1

# Kind codes. 0 never appears in a published record. New kinds may be added without a
# layout bump; a reader shows a code it does not know as "unknown" rather than failing.
TRADE: Final = 1
QUOTE: Final = 2
BAR: Final = 3  # a minute bar (the broker's `bars`)
DEPTH: Final = 4  # the symbol's book changed (the book itself is in the book table)
DAILY_BAR: Final = 5  # the day's bar so far (Alpaca `dailyBars`)
UPDATED_BAR: Final = 6  # a minute bar corrected by late trades (Alpaca `updatedBars`)
STATUS: Final = 7  # a trading status: halt, resume, ... (Alpaca `statuses`)
LULD: Final = 8  # limit up / limit down bands (Alpaca `lulds`)
CORRECTION: Final = 9  # a trade corrected after the fact (Alpaca `corrections`)
CANCEL_ERROR: Final = 10  # a trade cancelled or in error (Alpaca `cancelErrors`)
KIND_NAMES: Final = ("unknown", "trade", "quote", "bar", "depth", "daily_bar", "updated_bar",
                     "status", "luld", "correction", "cancel_error")  # fmt: skip
KIND_CODES: Final = {name: code for code, name in enumerate(KIND_NAMES) if code}
#: The kinds a strategy can receive (on_tick, on_bar, on_book, on_status, on_luld); the
#: others (corrections, cancel/errors) are passed on by the proxy to the clients that asked.
STRATEGY_KINDS: Final = frozenset({"trade", "quote", "bar", "depth", "daily_bar",
                                   "updated_bar", "status", "luld"})

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
#: Written by the gateway: the broker sent more condition codes than the record's 14 bytes
#: hold; the ones that fit are kept, in order.
FLAG_CONDITIONS_CUT: Final = 32

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
#: encode_symbol's cache (symbol -> field); a hot loop may look here before calling it.
ENCODED_SYMBOLS: dict[str, bytes] = {}
_DECODED: dict[bytes, str] = {}
_CACHE_LIMIT: Final = 1 << 16


def encode_symbol(symbol: str) -> bytes:
    """The 32-byte NUL-padded field for ``symbol``; :class:`SymbolError` if it cannot be stored."""
    raw = ENCODED_SYMBOLS.get(symbol)
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
    if len(ENCODED_SYMBOLS) >= _CACHE_LIMIT:
        ENCODED_SYMBOLS.clear()
    ENCODED_SYMBOLS[symbol] = raw
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


# The broker's detail fields (docs/bus.md, "detail"). Codes are short ASCII strings (an
# exchange "V", a tape "C"); conditions are a list of codes, stored joined by US (0x1f), and
# a correction's original conditions follow its corrected ones after RS (0x1e).
CONDITIONS_BYTES: Final = 14
CODE_BYTES: Final = 4
_CODE_SEP: Final = "\x1f"
_ORIGINAL_SEP: Final = "\x1e"
#: Largest trade id the int64 field holds; a bigger (or non-integer) id is stored as 0.
MAX_TRADE_ID: Final = (1 << 63) - 1
#: Status records carry the broker's two messages where a trade keeps its numbers: bytes
#: 64-111 the status message, 112-159 the reason message (UTF-8, NUL-padded).
STATUS_TEXT_BYTES: Final = 48
_TEXTS: Final = struct.Struct("<48s48s")
_TWELVE: Final = struct.Struct("<12d")
_SIX: Final = struct.Struct("<6d")
_F64: Final = struct.Struct("<d")
_CODES: dict[tuple[object, int], bytes] = {}
_CONDITIONS: dict[tuple[object, ...], tuple[bytes, bool]] = {}


def encode_code(value: object, size: int = CODE_BYTES) -> bytes:
    """A short code (exchange, tape, taker side, status) as the record stores it: UTF-8 cut
    to `size` bytes at a character boundary, NUL-padded; None or a non-string is empty."""
    key = (value, size)
    raw = _CODES.get(key)
    if raw is not None:
        return raw
    raw = (_cut(value.encode("utf-8"), size) if isinstance(value, str) else b"").ljust(
        size, b"\0")
    if isinstance(value, str):
        if len(_CODES) >= _CACHE_LIMIT:
            _CODES.clear()
        _CODES[key] = raw
    return raw


def _cut(data: bytes, size: int) -> bytes:
    if len(data) <= size:
        return data
    return data[:size].decode("utf-8", errors="ignore").encode("utf-8")


def decode_code(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("utf-8", errors="replace")


def encode_conditions(codes: object, original: object = None) -> tuple[bytes, bool]:
    """(the 14-byte field, whether codes were cut) for a list of condition codes and, for a
    correction, the original trade's list. Codes that do not fit are dropped whole."""
    key: tuple[object, ...] | None = None
    if original is None:
        key = tuple(codes) if isinstance(codes, (list, tuple)) else ()
        try:
            return _CONDITIONS[key]
        except KeyError:
            pass
        except TypeError:  # an unhashable code: never cached
            key = None
    data = _CODE_SEP.join(_codes(codes)).encode("utf-8")
    if original is not None:
        data += (_ORIGINAL_SEP + _CODE_SEP.join(_codes(original))).encode("utf-8")
    cut = len(data) > CONDITIONS_BYTES
    if cut:
        data = _cut_joined(data)
    result = data.ljust(CONDITIONS_BYTES, b"\0"), cut
    if key is not None:
        if len(_CONDITIONS) >= _CACHE_LIMIT:
            _CONDITIONS.clear()
        _CONDITIONS[key] = result
    return result


def _codes(value: object) -> tuple[str, ...]:
    if isinstance(value, (list, tuple)):
        return tuple(c for c in value if isinstance(c, str))
    return ()


def _cut_joined(data: bytes) -> bytes:
    """Codes joined by separators, cut at the last separator that fits."""
    head = data[: CONDITIONS_BYTES + 1]
    end = max(head.rfind(b"\x1f"), head.rfind(b"\x1e"))
    return data[:end] if end > 0 else b""


def decode_conditions(raw: bytes) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(the conditions, a correction's original conditions) stored in a conditions field."""
    text = raw.split(b"\0", 1)[0].decode("utf-8", errors="replace")
    if not text:
        return (), ()
    head, _, tail = text.partition(_ORIGINAL_SEP)
    return (tuple(head.split(_CODE_SEP)) if head else (),
            tuple(tail.split(_CODE_SEP)) if tail else ())


def status_floats(status_message: object, reason_message: object) -> tuple[float, ...]:
    """The twelve float fields of a status record holding its two messages."""
    texts = _TEXTS.pack(
        _cut(status_message.encode("utf-8"), STATUS_TEXT_BYTES)
        if isinstance(status_message, str) else b"",
        _cut(reason_message.encode("utf-8"), STATUS_TEXT_BYTES)
        if isinstance(reason_message, str) else b"",
    )
    return _TWELVE.unpack(texts)


def trade_id(value: object) -> int:
    """A broker's trade id as the int64 field stores it (0: none, or not an int64)."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_TRADE_ID:
        return value
    return 0


class Tick(NamedTuple):
    """One normalised trade, quote or bar, as read from the bus. Immutable.

    Fields not used by a kind are 0 (a trade has no bid; a quote has no price). Times are
    nanoseconds since the Unix epoch: ``exchange_ns`` as the broker stamped the event,
    ``receive_ns`` when the gateway received it. ``seq`` is the gateway's sequence number:
    1 for the first tick a ring publishes, then consecutive.

    The numbers of trades and quotes are fields. The record's last 80 bytes (``tail``) are
    kept whole and decoded when asked: a bar's :attr:`open`, :attr:`high`, :attr:`low`,
    :attr:`close`, :attr:`volume`, :attr:`vwap`, and the broker's detail (:attr:`detail`):
    :attr:`trade_id`, :attr:`exchange`, :attr:`ask_exchange`, :attr:`tape`,
    :attr:`taker_side`, :attr:`conditions`; what each kind keeps there is in docs/bus.md
    ("detail"). The detail is empty when the broker did not say (AllTick, OpenAlgo, and
    fields a feed does not send). A read builds 14 objects per tick instead of 20: the
    properties cost a little on access, and only bars and the broker's detail use them.
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
    tail: bytes = NO_TAIL

    @property
    def open(self) -> float:
        """A bar's open (0 for other kinds)."""
        return _F64.unpack_from(self.tail, 0)[0]  # type: ignore[no-any-return]

    @property
    def high(self) -> float:
        return _F64.unpack_from(self.tail, 8)[0]  # type: ignore[no-any-return]

    @property
    def low(self) -> float:
        return _F64.unpack_from(self.tail, 16)[0]  # type: ignore[no-any-return]

    @property
    def close(self) -> float:
        return _F64.unpack_from(self.tail, 24)[0]  # type: ignore[no-any-return]

    @property
    def volume(self) -> float:
        return _F64.unpack_from(self.tail, 32)[0]  # type: ignore[no-any-return]

    @property
    def vwap(self) -> float:
        return _F64.unpack_from(self.tail, 40)[0]  # type: ignore[no-any-return]

    @property
    def detail(self) -> bytes:
        """The broker's detail: the record's last 32 bytes (:data:`DETAIL`)."""
        return self.tail[48:]

    @property
    def kind(self) -> str:
        """The kind's name: trade, quote, bar, depth; "unknown" for a code newer than this."""
        code = self.kind_code
        return KIND_NAMES[code] if 0 <= code < len(KIND_NAMES) else "unknown"

    @property
    def symbol(self) -> str:
        return decode_symbol(self.symbol_bytes)

    @property
    def trade_id(self) -> int:
        """The broker's own trade id (Alpaca ``i``; a correction's corrected id); 0: none."""
        return int.from_bytes(self.tail[48:56], "little", signed=True)

    @property
    def exchange(self) -> str:
        """The exchange code: a trade's (Alpaca ``x``), a quote's bid exchange (``bx``), a
        correction's or cancel/error's trade exchange; a status record's status code."""
        return decode_code(self.tail[56:60])

    @property
    def ask_exchange(self) -> str:
        """A quote's ask exchange (``ax``); a status record's reason code."""
        return decode_code(self.tail[60:64])

    @property
    def tape(self) -> str:
        """The SIP tape (``z``: A, B, C), where the broker says."""
        return decode_code(self.tail[64:65])

    @property
    def taker_side(self) -> str:
        """A crypto trade's taker side (``tks``: B buy, S sell)."""
        return decode_code(self.tail[65:66])

    @property
    def conditions(self) -> tuple[str, ...]:
        """The condition codes (``c``; a cancel/error's action; a LULD's indicator)."""
        return decode_conditions(self.tail[66:])[0]

    @property
    def original_conditions(self) -> tuple[str, ...]:
        """A correction's original trade's conditions (``oc``)."""
        return decode_conditions(self.tail[66:])[1]

    @property
    def status_message(self) -> str:
        """A status record's status message (``sm``)."""
        return self._status_texts()[0]

    @property
    def reason_message(self) -> str:
        """A status record's reason message (``rm``)."""
        return self._status_texts()[1]

    def _status_texts(self) -> tuple[str, str]:
        if self.kind_code != STATUS:
            return "", ""
        first, second = _TEXTS.unpack(_SIX.pack(*self[7:13]) + self.tail[:48])
        return decode_code(first), decode_code(second)

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
        trade_id: int = 0,
        exchange: str = "",
        ask_exchange: str = "",
        tape: str = "",
        taker_side: str = "",
        conditions: Iterable[str] = (),
        status_message: str = "",
        reason_message: str = "",
    ) -> Tick:
        """Build a tick from readable values (tests, snapshots); readers get theirs from the bus."""
        code = KIND_CODES.get(kind)
        if code is None:
            raise ValueError(f"unknown tick kind {kind!r}; one of {sorted(KIND_CODES)}")
        conditions_code, cut = encode_conditions(list(conditions))
        detail = DETAIL.pack(trade_id, encode_code(exchange), encode_code(ask_exchange),
                             encode_code(tape, 1), encode_code(taker_side, 1), conditions_code)
        numbers: tuple[float, ...] = (
            float(price), float(size), float(bid), float(bid_size), float(ask),
            float(ask_size), float(open), float(high), float(low), float(close),
            float(volume), float(vwap),
        )  # fmt: skip
        if code == STATUS:  # the messages live where a trade keeps its numbers
            numbers = status_floats(status_message, reason_message)
        return cls._make((
            seq, code, flags | (FLAG_CONDITIONS_CUT if cut else 0), trade_count, exchange_ns,
            receive_ns, encode_symbol(symbol), *numbers[:6],
            BAR_NUMBERS.pack(*numbers[6:]) + detail,
        ))  # fmt: skip

    def to_bytes(self) -> bytes:
        """The 192-byte record."""
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
        elif self.kind_code == STATUS:
            body = (f"{self.exchange} {self.status_message} "
                    f"({self.ask_exchange} {self.reason_message})")
        else:
            body = " ".join(f"{name}={getattr(self, name):g}" for name in self._shown())
        return f"#{self.seq} {self.symbol} {self.kind} {body}"

    def _shown(self) -> tuple[str, ...]:
        if self.kind_code == TRADE:
            return ("price", "size")
        if self.kind_code == QUOTE:
            return ("bid", "bid_size", "ask", "ask_size")
        if self.kind_code in (CORRECTION, CANCEL_ERROR):
            return ("price", "size", "trade_id")
        if self.kind_code == LULD:
            return ("bid", "ask")
        if self.kind_code == STATUS:
            return ()
        return ("open", "high", "low", "close", "volume", "vwap", "trade_count")


#: Build a Tick from the values ``RECORD.unpack_from`` returns: one C-level tuple copy, no
#: Python frame (``Tick._make`` adds one); for readers' hot paths.
tick_from_values = cast(Callable[[Iterable[Any]], Tick], partial(tuple.__new__, Tick))
