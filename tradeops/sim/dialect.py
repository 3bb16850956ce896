"""Alpaca's wire dialect, sans-I/O: build and encode the messages the sim sends, decode requests.

Market data: every server frame is an *array* of messages. A connection whose upgrade carried
`Content-Type: application/msgpack` gets msgpack in BINARY frames with `t` as a msgpack Timestamp
(ext -1); any other gets JSON in TEXT frames with `t` as an RFC 3339 string with nanoseconds.
Messages are encoded once per codec (`encode_item`) and framed per connection (`frame`), so a
tick fanned out to many connections is encoded once.

Trade updates (`/stream`): one JSON object per BINARY frame, as Alpaca's paper API sends them
(msgpack if asked for).
"""

from __future__ import annotations

import enum
import json
import time

import msgpack

from tradeops.sim.market import Bar, MarketEvent, Quote, Trade, is_crypto

#: Alpaca's error codes and their messages, verbatim.
ERRORS: dict[int, str] = {
    400: "invalid syntax",
    401: "not authenticated",
    402: "auth failed",
    403: "already authenticated",
    404: "auth timeout",
    405: "symbol limit exceeded",
    406: "connection limit exceeded",
    407: "slow client",
    409: "insufficient subscription",
    410: "invalid subscribe action for this feed",
    500: "internal error",
}
STOCK_CHANNELS = ("trades", "quotes", "bars", "updatedBars", "dailyBars", "statuses", "lulds")
CRYPTO_CHANNELS = ("trades", "quotes", "orderbooks", "bars", "updatedBars", "dailyBars")
#: Channels the sim produces data for; the others are accepted and acknowledged but quiet.
DATA_CHANNELS = ("trades", "quotes", "bars")


class Codec(enum.Enum):
    JSON = "json"
    MSGPACK = "msgpack"


class DecodeError(ValueError):
    """A client frame that is not valid JSON or msgpack."""


def codec_for(content_type: str | None) -> Codec:
    """msgpack when the upgrade request says `Content-Type: application/msgpack`."""
    if content_type and content_type.split(";")[0].strip().lower() == "application/msgpack":
        return Codec.MSGPACK
    return Codec.JSON


def decode(payload: str | bytes, codec: Codec) -> object:
    """A client message: TEXT frames are JSON; BINARY frames are msgpack or JSON bytes."""
    try:
        if isinstance(payload, str):
            return json.loads(payload)
        if codec is Codec.MSGPACK:
            try:
                return msgpack.unpackb(payload, raw=False)
            except (ValueError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError):
                pass
        return json.loads(payload)
    except (ValueError, UnicodeDecodeError) as exc:
        raise DecodeError(str(exc)) from None


_second_cache: tuple[int, str] = (-1, "")


def rfc3339_ns(t_ns: int) -> str:
    """`2024-05-01T13:30:00.000000123Z`: RFC 3339 with nanoseconds, as Alpaca's JSON feed."""
    global _second_cache
    sec, ns = divmod(t_ns, 1_000_000_000)
    if _second_cache[0] != sec:
        _second_cache = (sec, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec)))
    return f"{_second_cache[1]}.{ns:09d}Z"


def timestamp(codec: Codec, t_ns: int) -> object:
    if codec is Codec.MSGPACK:
        return msgpack.Timestamp.from_unix_nano(t_ns)
    return rfc3339_ns(t_ns)


def _size(symbol: str, size: float) -> float | int:
    return size if is_crypto(symbol) else int(size)


def event_message(event: MarketEvent, codec: Codec) -> dict[str, object]:
    """The Alpaca message for one market event (field sets differ for stock and crypto)."""
    ts = timestamp(codec, event.t_ns)
    symbol = event.symbol
    if isinstance(event, Quote):
        if is_crypto(symbol):
            return {"T": "q", "S": symbol, "bp": event.bid, "bs": event.bid_size,
                    "ap": event.ask, "as": event.ask_size, "t": ts}
        return {"T": "q", "S": symbol, "bx": "V", "bp": event.bid, "bs": int(event.bid_size),
                "ax": "V", "ap": event.ask, "as": int(event.ask_size), "c": ["R"], "z": "C",
                "t": ts}
    if isinstance(event, Trade):
        if is_crypto(symbol):
            return {"T": "t", "S": symbol, "p": event.price, "s": event.size, "t": ts,
                    "i": event.trade_id, "tks": "B"}
        return {"T": "t", "S": symbol, "i": event.trade_id, "x": "V", "p": event.price,
                "s": int(event.size), "c": ["@"], "z": "C", "t": ts}
    bar: Bar = event
    return {"T": "b", "S": symbol, "o": bar.open, "h": bar.high, "l": bar.low, "c": bar.close,
            "v": _size(symbol, bar.volume), "t": ts, "n": bar.trades, "vw": bar.vwap}


def channel_of(event: MarketEvent) -> str:
    if isinstance(event, Quote):
        return "quotes"
    if isinstance(event, Trade):
        return "trades"
    return "bars"


def encode_item(codec: Codec, message: object) -> bytes:
    """One message, encoded to become an element of a frame's array (or a whole frame)."""
    if codec is Codec.MSGPACK:
        packed: bytes = msgpack.packb(message)
        return packed
    return json.dumps(message, separators=(",", ":")).encode()


def _array_header(n: int) -> bytes:
    if n < 16:
        return bytes((0x90 | n,))
    if n < 0x10000:
        return b"\xdc" + n.to_bytes(2, "big")
    return b"\xdd" + n.to_bytes(4, "big")


def frame(codec: Codec, items: list[bytes]) -> bytes:
    """An array frame from items encoded by `encode_item` in the same codec."""
    if codec is Codec.MSGPACK:
        return _array_header(len(items)) + b"".join(items)
    return b"[" + b",".join(items) + b"]"


def error(code: int) -> dict[str, object]:
    return {"T": "error", "code": code, "msg": ERRORS[code]}


def success(msg: str) -> dict[str, object]:
    """`connected` or `authenticated`."""
    return {"T": "success", "msg": msg}


def subscription(crypto: bool, subs: dict[str, set[str]]) -> dict[str, object]:
    """The full current set, every channel of the feed listed (empty ones too)."""
    message: dict[str, object] = {"T": "subscription"}
    for channel in CRYPTO_CHANNELS if crypto else STOCK_CHANNELS:
        message[channel] = sorted(subs.get(channel, ()))
    if not crypto:
        # Alpaca subscribes corrections and cancel-errors along with trades.
        message["corrections"] = sorted(subs.get("trades", ()))
        message["cancelErrors"] = sorted(subs.get("trades", ()))
    return message


def authorization(status: str, action: str) -> dict[str, object]:
    """Trade stream: `authorized` or `unauthorized`, for `authenticate` or `listen`."""
    return {"stream": "authorization", "data": {"status": status, "action": action}}


def listening(streams: list[str]) -> dict[str, object]:
    return {"stream": "listening", "data": {"streams": streams}}


def stream_error(message: str) -> dict[str, object]:
    return {"stream": "listening", "data": {"error": message}}


def trade_update(data: dict[str, object]) -> dict[str, object]:
    return {"stream": "trade_updates", "data": data}
