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
from collections.abc import Iterable, Mapping
from collections.abc import Set as AbstractSet
from typing import Any, Literal

import msgpack

from tradeops.protocol.book import DEFAULT_LEVELS, BookKeeper, Level
from tradeops.protocol.feed import (
    Authenticated,
    BookUpdate,
    BrokerFrame,
    Connected,
    Event,
    Failure,
    MarketData,
    Move,
    Subscribed,
    market_rows,
)
from tradeops.protocol.modes import MODES, Mode, base, has_bars
from tradeops.protocol.tick import QUOTE, TRADE, RecordRow, encode_symbol

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

# What each mode subscribes, as Alpaca channels. depth ⊇ quote ⊇ trade; `bars` (minute
# bars) only for a mode with bars, so the broker sends bars only when a client asked for them.
_BASE_CHANNELS: dict[str, tuple[str, ...]] = {
    "trade": ("trades",),
    "quote": ("trades", "quotes"),
    "depth": ("trades", "quotes", "orderbooks"),
}
CHANNELS: dict[str, tuple[str, ...]] = {
    mode: _BASE_CHANNELS[base(mode)] + (("bars",) if has_bars(mode) else ()) for mode in MODES
}

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

    def __init__(self, key: str, secret: str, codec: Codec = "msgpack",
                 depth: int = DEFAULT_LEVELS) -> None:
        self._key, self._secret = key, secret
        self.codec: Codec = codec
        # Crypto order books: a snapshot ("r": true) then changed levels; kept whole here,
        # the top `depth` levels a side go to the book table.
        self.books = BookKeeper(depth)
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
            before = set(CHANNELS[t.before]) if t.before else set()
            after = set(CHANNELS[t.after]) if t.after else set()
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
        per tick. Other messages become events as in :meth:`receive`, in order."""
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
        for msg in messages:
            if not isinstance(msg, dict):
                continue
            kind = msg.get("T")
            if kind == "t":
                add((TRADE, 0, 0, to_ns(msg["t"]), receive_ns, encode_symbol(msg["S"]),
                     float(msg["p"]), float(msg["s"])))  # fmt: skip
            elif kind == "q":
                add((QUOTE, 0, 0, to_ns(msg["t"]), receive_ns, encode_symbol(msg["S"]),
                     float(msg["bp"]), float(msg["bs"]), float(msg["ap"]),
                     float(msg["as"])))  # fmt: skip
            elif kind == "o":
                events.append(self._book(msg, receive_ns))
            else:
                event = self._event(msg)
                if isinstance(event, MarketData):  # a bar: all twelve values
                    rows += market_rows((event,), receive_ns)[0]
                elif event is not None:
                    events.append(event)
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
