"""OpenAlgo's websocket dialect, client side, sans-I/O: an OpenAlgo server as a broker feed.

OpenAlgo (openalgo.in) fronts some twenty Indian brokers behind one API. Its market-data
websocket (default `ws://127.0.0.1:8765`, path `/`) takes an API key, then subscriptions per
exchange and symbol in one of three modes: 1 LTP (last traded price), 2 Quote (OHLC and
volume), 3 Depth (5 levels each side). Everything is JSON, one object per frame:

    → {"action": "authenticate", "api_key": KEY}
    ← {"type": "auth", "status": "success", ...}     (or {"status": "error", "code": ...})
    → {"action": "subscribe", "symbols": [{"symbol": "RELIANCE", "exchange": "NSE"}],
       "mode": 1, "depth": 5}
    ← {"type": "subscribe", "status": "success", "subscriptions": [...]}
    ← {"type": "market_data", "symbol": "RELIANCE", "exchange": "NSE", "mode": 1,
       "data": {"ltp": 1424.0, "timestamp": 1748353658856, "ltt": 1748353658000}}

Symbols: topologies write `EXCHANGE:SYMBOL` (`NSE:RELIANCE`), the form every tradeops
adapter with exchanges shares; the wire carries the two apart.

Modes: a tradeops `trade` subscription is OpenAlgo mode 1 (each LTP update is a trade print;
its size is `last_trade_quantity` when the broker gives it, else 0); `quote` and `depth` add
mode 3, whose best levels become the quote (the tick record carries the best level). Each
change goes out as one frame per OpenAlgo mode, each answered by one ack.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from collections.abc import Set as AbstractSet
from typing import Any

from tradeops.protocol.feed import (
    Authenticated,
    BookUpdate,
    BrokerFrame,
    Event,
    Failure,
    MarketData,
    Move,
    Subscribed,
    rows_of_one,
)
from tradeops.protocol.modes import Mode, base
from tradeops.protocol.tick import RecordRow

LTP, QUOTE, DEPTH = 1, 2, 3
#: The OpenAlgo modes each tradeops mode needs.
MODES: dict[str, frozenset[int]] = {
    "trade": frozenset({LTP}), "quote": frozenset({LTP, DEPTH}), "depth": frozenset({LTP, DEPTH}),
}
#: OpenAlgo's error codes as the numbers a FeedSession reports (HTTP-like, as the others).
CODES: dict[str, int] = {
    "AUTHENTICATION_ERROR": 401, "NOT_AUTHENTICATED": 401, "INVALID_API_KEY": 401,
    "INVALID_MODE": 400, "INVALID_ACTION": 400, "INVALID_PARAMETERS": 400, "INVALID_JSON": 400,
    "SUBSCRIPTION_ERROR": 404, "SUBSCRIPTION_FAILED": 404, "INVALID_SYMBOL": 404,
    "SUBSCRIPTION_LIMIT": 405, "RATE_LIMIT": 429, "SERVER_ERROR": 500,
    "BROKER_ERROR": 503,
}
FATAL_CODES: dict[int, str] = {401: "auth"}
TRANSIENT_CODES = frozenset({429, 500, 503})
DEFAULT_URL = "ws://127.0.0.1:8765"


def split(symbol: str) -> tuple[str, str]:
    """`NSE:RELIANCE` → (`NSE`, `RELIANCE`)."""
    exchange, _, name = symbol.partition(":")
    return exchange, name


def _ns(ms: object) -> int:
    return int(float(ms) * 1_000_000) if isinstance(ms, int | float) and ms > 0 else 0


class OpenAlgoFeed:
    """One upstream OpenAlgo connection's protocol state (a FeedSession)."""

    greeting = False
    heartbeat_interval: float | None = None  # the server pings; websocket pongs suffice
    min_request_interval = 0.1  # what the official client waits between two subscribes
    fatal_codes: Mapping[int, str] = FATAL_CODES
    transient_codes: AbstractSet[int] = TRANSIENT_CODES

    def __init__(self, api_key: str, levels: int = 5) -> None:
        self._key = api_key
        self._levels = levels
        self._book_symbols: set[str] = set()  # asked at depth: their pushes become books
        self.malformed = 0  # market messages dropped for a missing or mistyped field

    def url(self, base: str) -> str:
        return base

    def headers(self) -> dict[str, str]:
        return {}

    def auth(self) -> BrokerFrame | None:
        return json.dumps({"action": "authenticate", "api_key": self._key})

    def heartbeat(self) -> BrokerFrame | None:
        return None

    def change_frames(self, confirmed: Mapping[str, Mode], moves: Iterable[Move]
                      ) -> list[BrokerFrame]:
        add: dict[int, list[str]] = {}
        drop: dict[int, list[str]] = {}
        moves = list(moves)
        target = dict(confirmed)
        for move in moves:
            if move.after is None:
                target.pop(move.symbol, None)
            else:
                target[move.symbol] = move.after
        self._book_symbols = {s for s, m in target.items() if base(m) == "depth"}
        for move in moves:
            # OpenAlgo streams no bars: a mode's bars ask nothing of it (docs/brokers/openalgo.md).
            before = MODES[base(move.before)] if move.before else frozenset()
            after = MODES[base(move.after)] if move.after else frozenset()
            for mode in sorted(after - before):
                add.setdefault(mode, []).append(move.symbol)
            for mode in sorted(before - after):
                drop.setdefault(mode, []).append(move.symbol)
        frames: list[BrokerFrame] = []
        for action, table in (("unsubscribe", drop), ("subscribe", add)):
            for mode, symbols in sorted(table.items()):
                message: dict[str, Any] = {
                    "action": action, "mode": mode,
                    "symbols": [{"exchange": e, "symbol": s} for e, s in map(split, symbols)]}
                if action == "subscribe" and mode == DEPTH:
                    message["depth"] = self._levels
                frames.append(json.dumps(message))
        return frames

    def receive_rows(self, frame: BrokerFrame, receive_ns: int
                     ) -> tuple[list[RecordRow], list[Event]]:
        """:meth:`receive` with its market data as the bus's record rows (one tick a frame:
        the generic conversion is all it needs). A message with a field missing or of another
        type is dropped and counted in :attr:`malformed`, not raised: the feed goes on."""
        return rows_of_one(self, frame, receive_ns)

    def receive(self, frame: BrokerFrame) -> list[Event]:
        try:
            message = json.loads(frame)
        except (ValueError, UnicodeDecodeError):
            return [Failure(400, "a frame that is not JSON")]
        if not isinstance(message, dict):
            return [Failure(400, "a frame that is not a JSON object")]
        kind = message.get("type")
        if kind == "market_data":
            tick = self._market_data(message)
            if tick is None:
                return []
            if tick.kind == "quote" and tick.symbol in self._book_symbols:
                book = self._book(tick.symbol, tick.ts_ns, message.get("data"))
                return [tick, book] if book is not None else [tick]
            return [tick]
        if kind in ("subscribe", "unsubscribe"):
            entries = message.get("subscriptions") or message.get("failed") or []
            failed = [f"{i.get('exchange')}:{i.get('symbol')} ({i.get('message', 'refused')})"
                      for i in (entries if isinstance(entries, list) else [])
                      if isinstance(i, dict) and i.get("status") == "error"]
            if failed or message.get("status") not in ("success", None):
                return [Failure(404, "refused " + ", ".join(failed) if failed
                                else str(message.get("message", "refused")))]
            return [Subscribed({})]
        if message.get("status") == "error":
            code = str(message.get("code", ""))
            return [Failure(CODES.get(code, 400), f"{code}: {message.get('message', '')}")]
        if kind == "auth":
            return [Authenticated()]
        return []  # pong and anything new: nothing to do

    @staticmethod
    def _book(symbol: str, ts: int, data: object) -> BookUpdate | None:
        """The whole depth push as a book (OpenAlgo sends every level each time)."""
        depth = data.get("depth") if isinstance(data, dict) else None
        if not isinstance(depth, dict):
            return None
        return BookUpdate(symbol, ts, 0, _side(depth.get("buy"), True),
                          _side(depth.get("sell"), False))

    def _market_data(self, message: dict[str, Any]) -> MarketData | None:
        exchange, name, data = message.get("exchange"), message.get("symbol"), message.get("data")
        if not isinstance(exchange, str) or not isinstance(name, str) or not isinstance(
                data, dict):
            return None
        symbol = f"{exchange}:{name}"
        ts = _ns(data.get("ltt")) or _ns(data.get("timestamp"))
        if message.get("mode") == DEPTH:
            depth = data.get("depth")
            if not isinstance(depth, dict):
                return None
            bid, ask = _best(depth.get("buy")), _best(depth.get("sell"))
            if bid is None and ask is None:
                return None
            bp, bs = bid or (0.0, 0.0)
            ap, asz = ask or (0.0, 0.0)
            return MarketData("quote", symbol, _ns(data.get("timestamp")) or ts,
                              bid=bp, bid_size=bs, ask=ap, ask_size=asz)
        ltp = data.get("ltp")
        if not isinstance(ltp, int | float):
            return None
        size = data.get("last_trade_quantity", data.get("ltq", 0))
        return MarketData("trade", symbol, ts, price=float(ltp),
                          size=float(size) if isinstance(size, int | float) else 0.0)


def _side(levels: object, bids: bool) -> tuple[tuple[float, float], ...]:
    """A depth push's levels with a price, best first (empty ones left out)."""
    if not isinstance(levels, list):
        return ()
    out = [(float(x["price"]), float(x.get("quantity") or 0)) for x in levels
           if isinstance(x, dict) and isinstance(x.get("price"), int | float) and x["price"]]
    return tuple(sorted(((p, q) for p, q in out if q > 0), reverse=bids))


def _best(levels: object) -> tuple[float, float] | None:
    if not isinstance(levels, list) or not levels or not isinstance(levels[0], dict):
        return None
    price, quantity = levels[0].get("price"), levels[0].get("quantity")
    if not isinstance(price, int | float) or not price:
        return None
    return float(price), float(quantity) if isinstance(quantity, int | float) else 0.0
