"""The sim's AllTick dialect, server side, sans-I/O: one websocket's conversation.

Paths: AllTick's own, `/quote-stock-b-ws-api` (stocks) and `/quote-b-ws-api` (forex, crypto,
metals); the token rides in the URL (`?token=`). What the sim enforces, as AllTick documents
it:

- the token must be one of the sim's keys (any non-empty token when none are configured); a
  wrong or missing one is answered `{"ret":401,"msg":"token invalid"}` and the server closes;
  `max_connections` bounds the connections per token the same way (the extra one gets 605);
- 22004 (trades) and 22002 (order book, `depth_level` per code) each *replace* the
  connection's whole list for their kind; 22006 cancels one kind or both; codes are
  `CODE.MARKET` (`AAPL.US`, `700.HK`), anything else is 600 and changes nothing; more than
  `symbols_per_connection` codes in one list is 605;
- one request per `alltick_request_interval` seconds (1.0) per connection, heartbeats
  included, measured between arrivals: a request that comes sooner is answered 429 and
  changes nothing;
- a heartbeat (22000) at least every `alltick_heartbeat_timeout` seconds (30), counted from
  the connection's start and each heartbeat, or the server closes the connection (1000,
  "heartbeat timeout").

Every request is logged with its arrival time and answer (`requests` in the connection's
description, so `/admin/connections` shows it for open and closed connections): that log is
how tests prove a client's pacing. Market data: each trade of the random walk is a 22998
push; each quote a 22999 push with `depth_level` levels per side (the walk's best bid and ask,
then levels one spread apart with growing sizes).
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from tradeops.protocol import alltick as wire
from tradeops.protocol.codec import Codec
from tradeops.sim.market import MarketEvent, Quote, Trade
from tradeops.sim.session import Session

if TYPE_CHECKING:
    from tradeops.sim.exchange import Exchange

ALLTICK_PATHS = ("/quote-stock-b-ws-api", "/quote-b-ws-api")
#: `CODE.MARKET`: AllTick's code, a dot, an upper-case market (US, HK, SH, SZ, ...).
_CODE = re.compile(r"[A-Z0-9][A-Z0-9.\-]*\.[A-Z]{2,4}")
MAX_DEPTH = 10  # AllTick's deepest book (HK stocks)
CLOSE_NORMAL = 1000
#: The sim's channels per AllTick subscription kind.
TRADES, BOOK = "trades", "quotes"


def redact(token: str) -> str:
    """A token as the sim may show it: enough to tell two apart, not enough to use."""
    return f"{token[:3]}…" if len(token) > 6 else "…"


def is_code(code: object) -> bool:
    return isinstance(code, str) and _CODE.fullmatch(code) is not None


class AllTickSession(Session):
    kind = "alltick"
    batched = False
    text_frames = True
    crypto = False  # the exchange's wildcard index is Alpaca's; AllTick has no `*`

    def __init__(self, exchange: Exchange, conn_id: int, path: str, query: str,
                 now: float) -> None:
        super().__init__(exchange, conn_id, path, Codec.JSON, now)
        tokens = parse_qs(query).get("token", [])
        self._token = tokens[0] if tokens else ""
        self.subs: dict[str, set[str]] = {}
        self.depth: dict[str, int] = {}  # code -> levels asked for
        self.last_request: float | None = None
        self.last_heartbeat = now
        self.requests: list[dict[str, Any]] = []
        self._push_seq = 0

    # -- the connection -----------------------------------------------------------------------
    def open(self, now: float) -> None:
        exchange = self.exchange
        ok = exchange.check_token(self._token)
        code: int | None = None if ok else 401
        if ok and not exchange.claim_connection(self, self._token):  # more than the plan allows
            code = 605
        self._record_auth(redact(self._token) if ok else None, code is None, code, now)
        if code is not None:  # not an answer to any request: cmd_id 0
            self.send_text(wire.response(-1, code))
            self.close(CLOSE_NORMAL, wire.ERRORS[code])
            return
        self.key = redact(self._token)  # what the admin API shows: never the whole token
        self.authenticated = True

    def token_is(self, token: str) -> bool:
        return self._token == token

    def check_timeout(self, now: float) -> None:
        limit = self.exchange.faults.alltick_heartbeat_timeout
        if self.closing is None and now - self.last_heartbeat > limit:
            self.close(CLOSE_NORMAL, "heartbeat timeout")

    def send_text(self, text: str) -> None:
        self.out.append([text.encode()])
        self.exchange.mark_dirty(self)

    # -- requests -----------------------------------------------------------------------------
    def receive(self, payload: str | bytes, now: float) -> None:
        if self.closing is not None:
            return
        try:
            message = json.loads(payload)
        except ValueError:
            message = None
        if not isinstance(message, dict) or not isinstance(message.get("cmd_id"), int):
            self._answer(0, {}, 400, now)
            return
        cmd = message["cmd_id"]
        previous, self.last_request = self.last_request, now
        interval = self.exchange.faults.alltick_request_interval
        if previous is not None and now - previous < interval:
            self._answer(cmd, message, 429, now, gap=now - previous)
            return
        if cmd == wire.HEARTBEAT:
            self.last_heartbeat = now
            self._answer(cmd, message, 200, now)
            return
        data = message.get("data")
        if not isinstance(data, dict):
            self._answer(cmd, message, 601 if data is None else 400, now)
            return
        if cmd in (wire.TRADE_SUB, wire.DEPTH_SUB):
            self._subscribe(cmd, message, data, now)
        elif cmd == wire.CANCEL:
            kind = data.get("cancel_type")
            if kind not in (wire.CANCEL_ALL, wire.CANCEL_DEPTH, wire.CANCEL_TRADES):
                self._answer(cmd, message, 400, now)
                return
            new = {c: set(s) for c, s in self.subs.items()}
            if kind in (wire.CANCEL_ALL, wire.CANCEL_TRADES):
                new.pop(TRADES, None)
            if kind in (wire.CANCEL_ALL, wire.CANCEL_DEPTH):
                new.pop(BOOK, None)
                self.depth = {}
            self._replace(cmd, message, new, now)
        else:
            self._answer(cmd, message, 400, now)

    def _subscribe(self, cmd: int, message: dict[str, Any], data: dict[str, Any],
                   now: float) -> None:
        items = data.get("symbol_list")
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            self._answer(cmd, message, 400, now)
            return
        codes = [i.get("code") for i in items]
        if not all(is_code(c) for c in codes):
            self._answer(cmd, message, 600, now)
            return
        faults = self.exchange.faults
        if faults.refuse_changes > 0:  # injected: refuse this one (429 is worth a retry)
            faults.refuse_changes -= 1
            self._answer(cmd, message, 429, now)
            return
        wanted = {str(c) for c in codes}
        if len(wanted) > self.exchange.options.symbols_per_connection:
            self._answer(cmd, message, 605, now)
            return
        new = {c: set(s) for c, s in self.subs.items()}
        if cmd == wire.TRADE_SUB:
            new[TRADES] = wanted
        else:
            new[BOOK] = wanted
            self.depth = {}
            for item in items:
                level = item.get("depth_level", 1)
                level = level if isinstance(level, int) and level > 0 else 1
                self.depth[str(item["code"])] = min(level, MAX_DEPTH)
        self._replace(cmd, message, new, now)

    def _replace(self, cmd: int, message: dict[str, Any], new: dict[str, set[str]],
                 now: float) -> None:
        new = {channel: codes for channel, codes in new.items() if codes}
        added = {c: sorted(s - self.subs.get(c, set())) for c, s in new.items()}
        removed = {c: sorted(s - new.get(c, set())) for c, s in self.subs.items()}
        self.exchange.resubscribe(self, new, now)
        self.subs = new
        self.exchange.journal.subscription({
            "conn": self.id, "key": self.key, "feed": "alltick", "action": str(cmd),
            "request": {c: sorted(s) for c, s in new.items()}, "result": "ok",
            "added": {c: s for c, s in added.items() if s},
            "removed": {c: s for c, s in removed.items() if s},
            "subscribed": {c: sorted(s) for c, s in new.items()},
        }, now)
        self._answer(cmd, message, 200, now)

    def _answer(self, cmd: int, message: dict[str, Any], ret: int, now: float,
                gap: float | None = None) -> None:
        entry: dict[str, Any] = {"at": now, "cmd_id": cmd, "ret": ret}
        if gap is not None:
            entry["gap"] = round(gap, 6)
        self.requests.append(entry)
        self.send_text(wire.response(cmd, ret, message.get("seq_id", 0), message.get("trace", "")))

    # -- market data ----------------------------------------------------------------------------
    @property
    def cache_key(self) -> object:
        """Pushes carry this connection's own sequence and depth: none is shared."""
        return ("alltick", self.id)

    def encode_event(self, event: MarketEvent) -> bytes:
        """The push for one market event. Per session: the sequence number and the depth are
        the connection's own."""
        self._push_seq += 1
        tick_ms = event.t_ns // 1_000_000
        if isinstance(event, Trade):
            return wire.trade_push(event.symbol, self._push_seq, tick_ms, event.price,
                                   event.size).encode()
        assert isinstance(event, Quote)
        levels = self.depth.get(event.symbol, 1)
        step = max(event.ask - event.bid, 0.01)
        bids = [(round(event.bid - i * step, 4), event.bid_size * (i + 1)) for i in range(levels)]
        asks = [(round(event.ask + i * step, 4), event.ask_size * (i + 1)) for i in range(levels)]
        return wire.depth_push(event.symbol, self._push_seq, tick_ms, bids, asks).encode()

    def describe(self) -> dict[str, Any]:
        info = super().describe()
        info.update(subscriptions={c: sorted(s) for c, s in self.subs.items()},
                    depth=dict(self.depth), requests=list(self.requests))
        return info
