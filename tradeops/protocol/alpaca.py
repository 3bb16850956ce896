"""Alpaca's v2 market-data dialect, client side, sans-I/O: frames in, events out.

The gateway's upstream connection feeds every received frame to :meth:`MarketDataSession.receive`
and sends whatever the builders return. JSON (text frames) and msgpack (binary frames, with
timestamps as msgpack Timestamp values) are both spoken; msgpack is what Alpaca's own SDK uses
and costs less to decode. See docs/architecture.md; the dialect is Alpaca's published one
(https://docs.alpaca.markets/docs/streaming-market-data) as its SDK, alpaca-py, speaks it
(https://github.com/alpacahq/alpaca-py, ``alpaca/data/live/websocket.py``).
"""

from __future__ import annotations

import calendar
import json
from collections.abc import Callable, Iterable, Mapping
from collections.abc import Set as AbstractSet
from typing import Any, Literal, cast

import msgpack

from tradeops.protocol.book import DEFAULT_LEVELS, BookKeeper, Level
from tradeops.protocol.feed import (
    MALFORMED,
    Authenticated,
    BookUpdate,
    BrokerFrame,
    Connected,
    Event,
    Failure,
    MarketData,
    Move,
    Subscribed,
)
from tradeops.protocol.modes import Mode, base, extras
from tradeops.protocol.tick import (
    BAR,
    CANCEL_ERROR,
    CORRECTION,
    DAILY_BAR,
    FLAG_CONDITIONS_CUT,
    LULD,
    MAX_TRADE_ID,
    QUOTE,
    STATUS,
    TRADE,
    UPDATED_BAR,
    RecordRow,
    encode_code,
    encode_conditions,
    encode_symbol,
    status_floats,
    trade_id,
)

__all__ = [
    "Authenticated",
    "Connected",
    "Failure",
    "MarketData",
    "MarketDataSession",
    "Subscribed",
    "to_ns",
]

Codec = Literal["json", "msgpack"]

# What each mode subscribes, as Alpaca channels. depth ⊇ quote ⊇ trade; each extra (bars,
# daily and updated bars, statuses, LULD bands) only for a mode that carries it, so the broker
# sends them only when a client asked. Corrections and cancel/errors come with `trades`.
_BASE_CHANNELS: dict[str, tuple[str, ...]] = {
    "trade": ("trades",),
    "quote": ("trades", "quotes"),
    "depth": ("trades", "quotes", "orderbooks"),
}
EXTRA_CHANNELS: dict[str, str] = {
    "bars": "bars", "daily_bars": "dailyBars", "updated_bars": "updatedBars",
    "statuses": "statuses", "lulds": "lulds",
}
#: Channels Alpaca's crypto feed does not have (stocks only).
STOCK_ONLY: frozenset[str] = frozenset({"statuses", "lulds"})
_CHANNELS: dict[tuple[str, bool], tuple[str, ...]] = {}


def channels(mode: Mode, crypto: bool = False) -> tuple[str, ...]:
    """The Alpaca channels a mode subscribes for a symbol (a crypto pair: without the
    stock-only channels)."""
    found = _CHANNELS.get((mode, crypto))
    if found is None:
        wanted = extras(mode)
        found = _BASE_CHANNELS[base(mode)] + tuple(
            channel for extra, channel in EXTRA_CHANNELS.items()
            if extra in wanted and not (crypto and channel in STOCK_ONLY))
        _CHANNELS[(mode, crypto)] = found
    return found

# Error codes whose cause will not go away by reconnecting at once.
AUTH_FAILED, NOT_AUTHENTICATED, CONNECTION_LIMIT, INSUFFICIENT = 402, 401, 406, 409
INTERNAL_ERROR = 500  # Alpaca: "internal error"; worth a retry
FATAL_CODES: dict[int, str] = {
    AUTH_FAILED: "auth",
    NOT_AUTHENTICATED: "auth",
    INSUFFICIENT: "subscription",
    CONNECTION_LIMIT: "connection-limit",
}


class MarketDataSession:
    """One upstream market-data connection's protocol state (a FeedSession)."""

    greeting = True
    heartbeat_interval: float | None = None  # websocket pings keep Alpaca connections alive
    min_request_interval = 0.0
    fatal_codes: Mapping[int, str] = FATAL_CODES
    transient_codes: AbstractSet[int] = frozenset({INTERNAL_ERROR})
    #: :meth:`receive_rows` decodes a msgpack frame of only trades and quotes straight into
    #: typed messages (msgspec) before trying the general path; off only to compare the two.
    typed_frames = True

    def __init__(self, key: str, secret: str, codec: Codec = "msgpack",
                 depth: int = DEFAULT_LEVELS) -> None:
        self._key, self._secret = key, secret
        self.codec: Codec = codec
        # Crypto order books: a snapshot ("r": true) then changed levels; kept whole here,
        # the top `depth` levels a side go to the book table.
        self.books = BookKeeper(depth)
        self.malformed = 0  # market events dropped for missing or mistyped fields
        self.state: Literal["connecting", "authenticating", "ready", "failed"] = "connecting"

    def url(self, base: str) -> str:
        return base

    def headers(self) -> dict[str, str]:
        """Headers for the websocket upgrade (msgpack is chosen by Content-Type)."""
        return {"Content-Type": "application/msgpack"} if self.codec == "msgpack" else {}

    def heartbeat(self) -> BrokerFrame | None:
        return None

    # -- outgoing ---------------------------------------------------------------------------
    def auth(self) -> BrokerFrame:
        self.state = "authenticating"
        return self._encode({"action": "auth", "key": self._key, "secret": self._secret})

    def change_frames(
        self, confirmed: Mapping[str, Mode], moves: Iterable[Move]
    ) -> list[BrokerFrame]:
        """The subscribe and/or unsubscribe frames that carry out a pool change, in order.

        Alpaca subscriptions are incremental, so `confirmed` is not needed. Each frame is
        answered by one subscription ack (or an error)."""
        add: dict[str, list[str]] = {}
        drop: dict[str, list[str]] = {}
        for t in moves:
            crypto = "/" in t.symbol
            before = set(channels(t.before, crypto)) if t.before else set()
            after = set(channels(t.after, crypto)) if t.after else set()
            for channel in sorted(after - before):
                add.setdefault(channel, []).append(t.symbol)
            for channel in sorted(before - after):
                drop.setdefault(channel, []).append(t.symbol)
        frames = []
        if add:
            frames.append(self._encode({"action": "subscribe", **add}))
        if drop:
            frames.append(self._encode({"action": "unsubscribe", **drop}))
        return frames

    def _encode(self, message: dict[str, Any]) -> BrokerFrame:
        if self.codec == "msgpack":
            packed: bytes = msgpack.packb(message)
            return packed
        return json.dumps(message, separators=(",", ":"))

    # -- incoming ---------------------------------------------------------------------------
    def receive(self, frame: BrokerFrame) -> list[Event]:
        """Decode one frame (an array of messages) into events; malformed input → Failure 400."""
        try:
            messages = self._decode(frame)
        except (ValueError, TypeError, msgpack.ExtraData, msgpack.FormatError) as exc:
            return [Failure(400, f"undecodable frame from the broker: {exc}")]
        if isinstance(messages, dict):
            messages = [messages]
        if not isinstance(messages, list):
            return [Failure(400, "frame is not an array of messages")]
        events: list[Event] = []
        for msg in messages:
            if isinstance(msg, dict):
                event = self._event(msg)
                if event is not None:
                    events.append(event)
        return events

    def receive_rows(
        self, frame: BrokerFrame, receive_ns: int
    ) -> tuple[list[RecordRow], list[Event]]:
        """:meth:`receive`, with trades, quotes and bars decoded straight into the bus's
        record rows (stamped ``receive_ns``): no MarketData object, no kind name, one tuple
        per tick. Other messages become events as in :meth:`receive`, in order.

        A msgpack frame of nothing but trades and quotes (nearly every frame of a busy feed)
        is decoded by msgspec into typed messages, without a dict per message; any other
        frame, or one the typed decode refuses, takes the general path, with the same rows."""
        if self.typed_frames and self.codec == "msgpack" and isinstance(frame, bytes):
            typed = _market_rows(frame, receive_ns)
            if typed is not None:
                return typed, []
        try:
            messages = self._decode(frame)
        except (ValueError, TypeError, msgpack.ExtraData, msgpack.FormatError) as exc:
            return [], [Failure(400, f"undecodable frame from the broker: {exc}")]
        if isinstance(messages, dict):
            messages = [messages]
        if not isinstance(messages, list):
            return [], [Failure(400, "frame is not an array of messages")]
        rows: list[RecordRow] = []
        events: list[Event] = []
        add = rows.append
        # The broker's detail of a trade or quote, by what it said: a feed repeats a few
        # combinations of exchange, tape and conditions, so one tuple and one lookup a tick.
        details = _DETAILS
        for msg in messages:
            if not isinstance(msg, dict):
                continue
            get = msg.get
            kind = get("T")
            if kind != "t" and kind != "q" and kind != "o" and kind not in _EVENT_ROWS:
                event = self._event(msg)  # a control message, or a kind we do not carry
                if event is not None:
                    events.append(event)
                continue
            try:
                if kind == "t":
                    tid = get("i", 0)
                    if tid.__class__ is not int or not 0 <= tid <= MAX_TRADE_ID:
                        tid = trade_id(tid)
                    c = get("c")
                    key = ("t", get("x"), get("z"), get("tks"),
                           tuple(c) if c.__class__ is list else c)  # fmt: skip
                    try:
                        flags, ex, tape, taker, cond = details[key]
                    except (KeyError, TypeError):
                        flags, ex, tape, taker, cond = _detail(details, key)
                    add((TRADE, flags, 0, to_ns(msg["t"]), receive_ns, encode_symbol(msg["S"]),
                         float(msg["p"]), float(msg["s"]), tid, ex, tape, taker, cond))  # fmt: skip
                elif kind == "q":
                    c = get("c")
                    key = ("q", get("bx"), get("ax"), get("z"),
                           tuple(c) if c.__class__ is list else c)  # fmt: skip
                    try:
                        flags, ex, ask_ex, tape, cond = details[key]
                    except (KeyError, TypeError):
                        flags, ex, ask_ex, tape, cond = _detail(details, key)
                    add((QUOTE, flags, 0, to_ns(msg["t"]), receive_ns, encode_symbol(msg["S"]),
                         float(msg["bp"]), float(msg["bs"]), float(msg["ap"]),
                         float(msg["as"]), ex, ask_ex, tape, cond))  # fmt: skip
                elif kind == "o":
                    events.append(self._book(msg, receive_ns))
                else:
                    add(_EVENT_ROWS[kind](msg, receive_ns))
            except MALFORMED:
                # A market message with a field missing or of another type: dropped and
                # counted, the rest of the frame still arrives (feed.MALFORMED).
                self.malformed += 1
        return rows, events

    def _book(self, msg: dict[str, Any], receive_ns: int) -> BookUpdate:
        """An ``orderbooks`` message (``b``/``a`` levels of ``p``, ``s``; ``r`` a reset,
        size 0 a level removed) applied to the symbol's book: its top levels now."""
        symbol = msg["S"]
        bids, asks = self.books.apply(symbol, _levels(msg.get("b")), _levels(msg.get("a")),
                                      reset=bool(msg.get("r")))
        return BookUpdate(symbol, to_ns(msg["t"]), receive_ns, bids, asks)

    def _decode(self, frame: BrokerFrame) -> Any:
        if isinstance(frame, (bytes, bytearray, memoryview)) and self.codec == "msgpack":
            return msgpack.unpackb(frame, timestamp=2)  # Timestamp ext → int ns
        return json.loads(frame)

    def _event(self, msg: dict[str, Any]) -> Event | None:
        kind = msg.get("T")
        if kind == "t":
            return MarketData("trade", msg["S"], to_ns(msg["t"]), float(msg["p"]), float(msg["s"]))
        if kind == "q":
            return MarketData(
                "quote",
                msg["S"],
                to_ns(msg["t"]),
                0.0,
                0.0,
                float(msg["bp"]),
                float(msg["bs"]),
                float(msg["ap"]),
                float(msg["as"]),
            )
        if kind in ("b", "u", "d"):
            close = float(msg["c"])
            return MarketData(
                "bar",
                msg["S"],
                to_ns(msg["t"]),
                close,
                float(msg["v"]),
                open=float(msg["o"]),
                high=float(msg["h"]),
                low=float(msg["l"]),
                close=close,
                volume=float(msg["v"]),
                vwap=float(msg.get("vw") or 0),
                trades=int(msg.get("n") or 0),
            )
        if kind == "o":
            return self._book(msg, 0)
        if kind == "success":
            if msg.get("msg") == "connected":
                return Connected()
            if msg.get("msg") == "authenticated":
                self.state = "ready"
                return Authenticated()
            return None
        if kind == "subscription":
            return Subscribed(
                {k: tuple(v) for k, v in msg.items() if k != "T" and isinstance(v, list)}
            )
        if kind == "error":
            code = int(msg.get("code", 500))
            if code in FATAL_CODES:
                self.state = "failed"
            return Failure(code, str(msg.get("msg", "")))
        return None


Detail = tuple[int, bytes, bytes, bytes, bytes]
_DETAILS: dict[tuple[Any, ...], Detail] = {}


#: The typed decoder of a frame of only trades and quotes (`alpaca_typed.market_rows`),
#: imported on first use: only a gateway's upstream reader needs msgspec (about 40 ms to
#: import), not the sim, the proxy or the CLI, which import this module too.
_typed_rows: Callable[[bytes, int], list[RecordRow] | None] | None = None


def _market_rows(frame: bytes, receive_ns: int) -> list[RecordRow] | None:
    global _typed_rows
    if _typed_rows is None:
        from tradeops.protocol.alpaca_typed import market_rows

        _typed_rows = market_rows
    return _typed_rows(frame, receive_ns)


def _detail(cache: dict[tuple[Any, ...], Detail], key: tuple[Any, ...]) -> Detail:
    """(flags, three codes, conditions) as the record stores them for a trade's (x, z, tks,
    c) or a quote's (bx, ax, z, c); kept in `cache` unless the key cannot be."""
    _, first, second, third, codes = key
    conditions, cut = encode_conditions(list(codes) if isinstance(codes, tuple) else codes)
    detail = (FLAG_CONDITIONS_CUT if cut else 0, _code(first), _code(second), _code(third),
              conditions)
    try:
        if len(cache) < 4096:
            cache[key] = detail
    except TypeError:  # an unhashable field (malformed): not kept
        pass
    return detail


# Exchange, tape and taker codes as the record stores them (4 bytes; the 1-byte fields take
# the first of the 4: struct's `s` keeps one byte), by the broker's string.
_CODES: dict[object, bytes] = {None: bytes(4)}


def _code(value: object) -> bytes:
    raw = encode_code(value)
    if isinstance(value, str) and len(_CODES) < 4096:
        _CODES[value] = raw
    return raw


def _bar_row(code: int) -> Any:
    def row(msg: dict[str, Any], receive_ns: int) -> RecordRow:
        close, volume = float(msg["c"]), float(msg["v"])
        return (code, 0, int(msg.get("n") or 0), to_ns(msg["t"]), receive_ns,
                encode_symbol(msg["S"]), close, volume, 0.0, 0.0, 0.0, 0.0,
                float(msg["o"]), float(msg["h"]), float(msg["l"]), close, volume,
                float(msg.get("vw") or 0))  # fmt: skip
    return row


def _status_row(msg: dict[str, Any], receive_ns: int) -> RecordRow:
    """A trading status: codes in the detail, the two messages in the number fields."""
    row = (STATUS, 0, 0, to_ns(msg["t"]), receive_ns, encode_symbol(msg["S"]),
           *status_floats(msg.get("sm"), msg.get("rm")), 0, encode_code(msg.get("sc")),
           encode_code(msg.get("rc")), _code(msg.get("z")), b"", b"")  # fmt: skip
    return cast(RecordRow, row)


def _luld_row(msg: dict[str, Any], receive_ns: int) -> RecordRow:
    indicator, _ = encode_conditions([msg["i"]] if isinstance(msg.get("i"), str) else [])
    return (LULD, 0, 0, to_ns(msg["t"]), receive_ns, encode_symbol(msg["S"]), 0.0, 0.0,
            float(msg["d"]), 0.0, float(msg["u"]), 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0,
            b"", b"", _code(msg.get("z")), b"", indicator)  # fmt: skip


def _correction_row(msg: dict[str, Any], receive_ns: int) -> RecordRow:
    cond, cut = encode_conditions(msg.get("cc"), msg.get("oc") or [])
    return (CORRECTION, FLAG_CONDITIONS_CUT if cut else 0, 0, to_ns(msg["t"]), receive_ns,
            encode_symbol(msg["S"]), float(msg["cp"]), float(msg["cs"]), float(msg["op"]),
            float(msg["os"]), float(trade_id(msg.get("oi"))), 0.0, 0.0, 0.0, 0.0, 0.0, 0.0,
            0.0, trade_id(msg.get("ci")), _code(msg.get("x")), b"", _code(msg.get("z")),
            b"", cond)  # fmt: skip


def _cancel_error_row(msg: dict[str, Any], receive_ns: int) -> RecordRow:
    action, _ = encode_conditions([msg["a"]] if isinstance(msg.get("a"), str) else [])
    return (CANCEL_ERROR, 0, 0, to_ns(msg["t"]), receive_ns, encode_symbol(msg["S"]),
            float(msg["p"]), float(msg["s"]), 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0,
            0.0, trade_id(msg.get("i")), _code(msg.get("x")), b"", _code(msg.get("z")),
            b"", action)  # fmt: skip


#: Alpaca message types written to the bus as full rows, by their `T`.
_EVENT_ROWS: dict[str, Any] = {
    "b": _bar_row(BAR), "d": _bar_row(DAILY_BAR), "u": _bar_row(UPDATED_BAR),
    "s": _status_row, "l": _luld_row, "c": _correction_row, "x": _cancel_error_row,
}


def _levels(raw: Any) -> list[Level]:
    if not isinstance(raw, list):
        return []
    return [(float(level["p"]), float(level["s"])) for level in raw if isinstance(level, dict)]


def to_ns(value: Any) -> int:
    """An Alpaca timestamp (msgpack Timestamp, RFC 3339 text, or ns int) as ns since the epoch."""
    if isinstance(value, int):
        return value
    if isinstance(value, msgpack.Timestamp):
        return int(value.to_unix_nano())
    if isinstance(value, str):
        return _rfc3339_ns(value)
    raise ValueError(f"not a timestamp: {value!r}")


_SECOND_CACHE: dict[str, int] = {}


def _rfc3339_ns(text: str) -> int:
    """`2024-03-01T14:30:00.123456789Z` (or `+00:00`) → ns. Fast path: one entry per second."""
    head, body = text[:19], text[19:]
    seconds = _SECOND_CACHE.get(head)
    if seconds is None:
        y, mo, d = int(head[0:4]), int(head[5:7]), int(head[8:10])
        h, mi, s = int(head[11:13]), int(head[14:16]), int(head[17:19])
        seconds = calendar.timegm((y, mo, d, h, mi, s, 0, 0, 0))
        if len(_SECOND_CACHE) > 4096:
            _SECOND_CACHE.clear()
        _SECOND_CACHE[head] = seconds
    fraction = 0
    offset = 0
    if body.startswith("."):
        digits = body[1:]
        end = 0
        while end < len(digits) and digits[end].isdigit():
            end += 1
        fraction = int(digits[:end].ljust(9, "0")[:9]) if end else 0
        body = digits[end:]
    if body and body[0] in "+-":
        sign = 1 if body[0] == "+" else -1
        offset = sign * (int(body[1:3]) * 3600 + int(body[4:6]) * 60)
    return (seconds - offset) * 1_000_000_000 + fraction
