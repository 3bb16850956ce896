"""AllTick's websocket dialect, client side, sans-I/O.

AllTick authenticates by a token in the URL (`?token=`), greets nothing, and answers each
request with a response carrying `ret` (200 is success). Subscriptions are **not**
incremental: a 22004 (trades) or 22002 (order book) request replaces the connection's whole
list for that kind, so every change is sent as the full new list. Requests on one connection
must be at least a second apart, and a heartbeat (22000) is due every 10 s or the server
disconnects after 30 s.

Symbols: topologies write AllTick symbols as `EXCHANGE:CODE` (`HK:700`, `US:AAPL`), the form
every tradeops adapter shares; on the wire AllTick wants `CODE.EXCHANGE` (`700.HK`). This
module translates both ways.

Modes: `trade` subscribes the trade list; `quote` adds the order book at depth 1 (best bid and
ask); `depth` asks for 5 levels: the best level becomes a quote, and the whole push (AllTick
sends every level each time, not changes) a :class:`BookUpdate` for the bus's book table.

Checked against AllTick's own documentation (en.apis.alltick.co, and the API repository
alltick/alltick-realtime-forex-crypto-stock-tick-finance-websocket-api): 22004 subscribes
trades (answered 22005, pushed as 22998), 22002 subscribes the order book with an optional
`depth_level` (answered 22003, pushed as 22999), 22006 cancels by `cancel_type` (0 all, 1
book, 2 trades; answered 22007), 22000 is the heartbeat (answered 22001). Push fields are
strings; `tick_time` is in milliseconds.

Pacing: AllTick refuses (429) a request that arrives less than a second after the one before
on the same connection, and counts heartbeats as requests. A client pacing at exactly 1.000 s
lands just under now and then (scheduling and network jitter), so the session asks for
`request_interval` (1.25 s by default; 1.05 s proved too little when one request was held
up 150 ms on a loaded machine and the next was not) and the upstream paces heartbeats with
everything else.

The server side of the dialect (responses, pushes, error texts) is here too, for the
simulated exchange and for tests that hold the client to the same bytes.
"""

from __future__ import annotations

import itertools
import json
import uuid
from collections.abc import Callable, Iterable, Mapping
from collections.abc import Set as AbstractSet
from typing import Any

from tradeops.protocol.feed import (
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

HEARTBEAT, HEARTBEAT_ACK = 22000, 22001
DEPTH_SUB, DEPTH_ACK = 22002, 22003
TRADE_SUB, TRADE_ACK = 22004, 22005
CANCEL, CANCEL_ACK = 22006, 22007
TRADE_PUSH, DEPTH_PUSH = 22998, 22999
CANCEL_DEPTH, CANCEL_TRADES = 1, 2
DEPTH_LEVEL = {"quote": 1, "depth": 5}

CANCEL_ALL = 0
#: AllTick's `ret` codes and their `msg`, as its error-code page lists them.
ERRORS: dict[int, str] = {
    200: "ok",
    400: "request data param invalid",
    401: "token invalid",
    429: "rate limit",
    600: "code invalid",
    601: "body empty",
    603: "token level not enough",
    604: "code unauthorized",
    605: "too many requests",
}

# AllTick's `ret` codes that reconnecting will not cure: a bad token ends the session. A code
# the token may not have (604) or too many codes (605) refuse that one change only: ending the
# session for it would drop every other symbol on the connection, again at each reconnect.
FATAL_CODES: dict[int, str] = {401: "auth"}
# `ret` codes that say "not now": requests too frequent, a busy or failing server.
TRANSIENT_CODES = frozenset({429, 500, 503})
DEFAULT_URL = "wss://quote.alltick.io/quote-stock-b-ws-api"
#: Seconds between two requests on one connection: AllTick's 1 s plus a safety margin for
#: what delays one request and not the next (scheduling, the network): 50 ms was too little.
REQUEST_INTERVAL = 1.25


def to_wire(symbol: str) -> str:
    """`HK:700` → `700.HK`."""
    exchange, _, code = symbol.partition(":")
    return f"{code}.{exchange}" if code else symbol


def from_wire(code: str) -> str:
    """`700.HK` → `HK:700`."""
    base, dot, exchange = code.rpartition(".")
    return f"{exchange}:{base}" if dot else code


class AllTickSession:
    """One upstream AllTick connection's protocol state (a FeedSession)."""

    greeting = False
    heartbeat_interval: float | None = 10.0
    fatal_codes: Mapping[int, str] = FATAL_CODES
    transient_codes: AbstractSet[int] = TRANSIENT_CODES

    def __init__(
        self,
        token: str,
        trace: Callable[[], str] = lambda: uuid.uuid4().hex,
        *,
        request_interval: float = REQUEST_INTERVAL,
    ) -> None:
        """`trace` makes each request's trace id (AllTick echoes it back; we only need it
        unique); tests pass a fixed one to compare whole frames. `request_interval`: seconds
        between two requests (heartbeats included); below 1.0 AllTick answers 429."""
        if not request_interval > 0:
            raise ValueError(
                f"request_interval must be a positive number of seconds, got {request_interval!r}"
                f"; AllTick allows one request a second, so use {REQUEST_INTERVAL}"
            )
        self._token = token
        self._seq = itertools.count(1)
        self._trace = trace
        self._book_symbols: set[str] = set()
        self.min_request_interval = request_interval
        self.malformed = 0  # market messages dropped for a missing or mistyped field

    def __repr__(self) -> str:  # never the token: sessions end up in logs and tracebacks
        return f"AllTickSession(request_interval={self.min_request_interval})"

    def url(self, base: str) -> str:
        joiner = "&" if "?" in base else "?"
        return f"{base}{joiner}token={self._token}"

    def headers(self) -> dict[str, str]:
        return {}

    def auth(self) -> BrokerFrame | None:
        return None  # the token travels in the URL

    def heartbeat(self) -> BrokerFrame | None:
        return self._request(HEARTBEAT, {})

    # -- subscriptions --------------------------------------------------------------------------
    def change_frames(
        self, confirmed: Mapping[str, Mode], moves: Iterable[Move]
    ) -> list[BrokerFrame]:
        target = dict(confirmed)
        for move in moves:
            if move.after is None:
                target.pop(move.symbol, None)
            else:
                target[move.symbol] = move.after
        frames: list[BrokerFrame] = []
        old_trades = sorted(confirmed)
        new_trades = sorted(target)
        if new_trades != old_trades:
            if new_trades:
                frames.append(
                    self._request(
                        TRADE_SUB, {"symbol_list": [{"code": to_wire(s)} for s in new_trades]}
                    )
                )
            else:
                frames.append(self._request(CANCEL, {"cancel_type": CANCEL_TRADES}))
        old_book = _book(confirmed)
        new_book = _book(target)
        # Symbols whose pushes become books: those asked at depth (more than the best level).
        self._book_symbols = {s for s, level in new_book if level > 1}
        if new_book != old_book:
            if new_book:
                frames.append(
                    self._request(
                        DEPTH_SUB,
                        {
                            "symbol_list": [
                                {"code": to_wire(s), "depth_level": level} for s, level in new_book
                            ]
                        },
                    )
                )
            else:
                frames.append(self._request(CANCEL, {"cancel_type": CANCEL_DEPTH}))
        return frames

    def _request(self, cmd: int, data: dict[str, Any]) -> str:
        return json.dumps(
            {"cmd_id": cmd, "seq_id": next(self._seq), "trace": self._trace(), "data": data},
            separators=(",", ":"),
        )

    # -- incoming -------------------------------------------------------------------------------
    def receive_rows(
        self, frame: BrokerFrame, receive_ns: int
    ) -> tuple[list[RecordRow], list[Event]]:
        """:meth:`receive` with its market data as the bus's record rows (one tick a frame:
        the generic conversion is all it needs). A message with a field missing or of another
        type is dropped and counted in :attr:`malformed`, not raised: the feed goes on."""
        return rows_of_one(self, frame, receive_ns)

    def receive(self, frame: BrokerFrame) -> list[Event]:
        try:
            msg = json.loads(frame)
        except ValueError as exc:
            return [Failure(400, f"undecodable frame from the broker: {exc}")]
        if not isinstance(msg, dict):
            return []
        cmd = msg.get("cmd_id")
        data = msg.get("data") or {}
        if cmd == TRADE_PUSH:
            return [
                MarketData(
                    "trade",
                    from_wire(str(data["code"])),
                    int(data["tick_time"]) * 1_000_000,
                    float(data["price"]),
                    float(data["volume"]),
                )
            ]
        if cmd == DEPTH_PUSH:
            bids, asks = data.get("bids") or [{}], data.get("asks") or [{}]
            symbol, ts = from_wire(str(data["code"])), int(data["tick_time"]) * 1_000_000
            events: list[Event] = [
                MarketData(
                    "quote",
                    symbol,
                    ts,
                    0.0,
                    0.0,
                    float(bids[0].get("price", 0)),
                    float(bids[0].get("volume", 0)),
                    float(asks[0].get("price", 0)),
                    float(asks[0].get("volume", 0)),
                )
            ]
            if symbol in self._book_symbols:
                events.append(BookUpdate(symbol, ts, 0, _side(bids, True), _side(asks, False)))
            return events
        if cmd in (TRADE_ACK, DEPTH_ACK, CANCEL_ACK):
            ret = int(msg.get("ret", 200))
            if ret != 200:
                return [Failure(ret, str(msg.get("msg", "")))]
            return [Subscribed({})]
        if cmd == HEARTBEAT_ACK or "ret" not in msg:
            return []
        ret = int(msg["ret"])
        return [] if ret == 200 else [Failure(ret, str(msg.get("msg", "")))]


# -- the server side (the simulated exchange; tests) ---------------------------------------------
def response(cmd: int, ret: int, seq_id: object = 0, trace: object = "") -> str:
    """The answer to request `cmd` (its id + 1) with AllTick's `ret` code and `msg`."""
    return json.dumps(
        {"ret": ret, "msg": ERRORS.get(ret, "error"), "cmd_id": cmd + 1, "seq_id": seq_id,
         "trace": trace, "data": {}},
        separators=(",", ":"),
    )


def trade_push(code: str, seq: int, tick_ms: int, price: float, volume: float) -> str:
    """A 22998 trade push; every value a string, as AllTick sends them."""
    return json.dumps(
        {"cmd_id": TRADE_PUSH, "data": {
            "code": code, "seq": str(seq), "tick_time": str(tick_ms), "price": _num(price),
            "volume": _num(volume), "turnover": _num(round(price * volume, 4)),
            "trade_direction": 0}},
        separators=(",", ":"),
    )


def depth_push(
    code: str, seq: int, tick_ms: int,
    bids: Iterable[tuple[float, float]], asks: Iterable[tuple[float, float]],
) -> str:
    """A 22999 order-book push: levels best first, each `{"price", "volume"}` as strings."""
    def side(levels: Iterable[tuple[float, float]]) -> list[dict[str, str]]:
        return [{"price": _num(p), "volume": _num(v)} for p, v in levels]

    return json.dumps(
        {"cmd_id": DEPTH_PUSH, "data": {
            "code": code, "seq": str(seq), "tick_time": str(tick_ms),
            "bids": side(bids), "asks": side(asks)}},
        separators=(",", ":"),
    )


def _num(value: float) -> str:
    return repr(round(value, 6)) if value != int(value) else str(int(value))


def _side(levels: list[dict[str, Any]], bids: bool) -> tuple[tuple[float, float], ...]:
    """A push's levels, best first (AllTick sends them so; sorted anyway), empty ones left out."""
    out = [(float(x["price"]), float(x["volume"])) for x in levels
           if isinstance(x, dict) and "price" in x and float(x.get("volume", 0)) > 0]
    return tuple(sorted(out, reverse=bids))


def _book(target: Mapping[str, Mode]) -> list[tuple[str, int]]:
    # AllTick streams no bars: a mode's bars ask nothing of it (docs/brokers/alltick.md).
    return sorted((s, DEPTH_LEVEL[b]) for s, m in target.items() if (b := base(m)) in DEPTH_LEVEL)
