"""The sim's own part of Alpaca's market-data dialect: messages built from its market events.

Market data: every server frame is an *array* of messages. A connection whose upgrade carried
`Content-Type: application/msgpack` gets msgpack in BINARY frames with `t` as a msgpack Timestamp
(ext -1); any other gets JSON in TEXT frames with `t` as an RFC 3339 string with nanoseconds.
The codec (choice, decoding, framing) is :mod:`tradeops.protocol.codec` and the control
messages and error codes are :mod:`tradeops.protocol.alpaca_stream`, shared with the proxy's
Alpaca dialect; only the mapping from the sim's `MarketEvent` values is here.

Trade updates (`/stream`): one JSON object per BINARY frame, as Alpaca's paper API sends them
(msgpack if asked for).
"""

from __future__ import annotations

from tradeops.protocol.codec import Codec, timestamp
from tradeops.sim.depth import BookChange
from tradeops.sim.market import (
    Bar,
    CancelError,
    Correction,
    Luld,
    MarketEvent,
    Quote,
    Status,
    Trade,
    is_crypto,
)


def _size(symbol: str, size: float) -> float | int:
    return size if is_crypto(symbol) else int(size)


def book_message(change: BookChange, codec: Codec) -> dict[str, object]:
    """An `orderbooks` message: `b` and `a` levels of `p`, `s` (size 0: gone), `r` a reset."""
    message: dict[str, object] = {
        "T": "o", "S": change.symbol, "t": timestamp(codec, change.t_ns),
        "b": [{"p": p, "s": s} for p, s in change.bids],
        "a": [{"p": p, "s": s} for p, s in change.asks],
    }
    if change.reset:
        message["r"] = True
    return message


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
    if isinstance(event, Bar):
        return {"T": event.kind, "S": symbol, "o": event.open, "h": event.high, "l": event.low,
                "c": event.close, "v": _size(symbol, event.volume), "t": ts, "n": event.trades,
                "vw": event.vwap}
    if isinstance(event, Status):
        return {"T": "s", "S": symbol, "sc": event.code, "sm": event.message,
                "rc": event.reason_code, "rm": event.reason_message, "t": ts, "z": "C"}
    if isinstance(event, Luld):
        return {"T": "l", "S": symbol, "u": event.up, "d": event.down, "i": event.indicator,
                "t": ts, "z": "C"}
    if isinstance(event, Correction):
        was, now = event.original, event.corrected
        return {"T": "c", "S": symbol, "x": "V", "oi": was.trade_id, "op": was.price,
                "os": _size(symbol, was.size), "oc": ["@"], "ci": now.trade_id,
                "cp": now.price, "cs": _size(symbol, now.size), "cc": ["@"], "t": ts, "z": "C"}
    cancel: CancelError = event
    return {"T": "x", "S": symbol, "i": cancel.trade.trade_id, "x": "V",
            "p": cancel.trade.price, "s": _size(symbol, cancel.trade.size), "a": cancel.action,
            "t": ts, "z": "C"}
