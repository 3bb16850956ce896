"""OpenAlgo's websocket proxy protocol, server side, as its clients speak it. Sans-I/O.

JSON both ways (TEXT frames). The client speaks first (docs/proxy.md; OpenAlgo's own proxy is
``websocket_proxy/server.py`` at https://github.com/marketcalls/openalgo, its client
``openalgo/feed.py`` at https://github.com/marketcalls/openalgo-python-library)::

    → {"action": "authenticate", "api_key": "<the proxy token>"}
    ← {"type": "auth", "status": "success", ...}
    → {"action": "subscribe", "symbol": "AAPL", "exchange": "NASDAQ", "mode": 1, "depth": 5}
      (or "symbols": [{"symbol", "exchange"}, ...]; mode 1/2/3 or "LTP"/"Quote"/"Depth")
    ← {"type": "subscribe", "status": "success", "subscriptions": [{...}], ...}
    ← {"type": "market_data", "symbol": "AAPL", "exchange": "NASDAQ", "mode": 1,
       "data": {"ltp": 187.5, "timestamp": ms, "ltt": ms}}
    → {"action": "unsubscribe", ...} / {"action": "unsubscribe_all"} / {"action": "ping"}

`exchange` chooses the broker (``settings.proxy.exchanges``, else a broker of that name);
symbols pass through verbatim. Each (exchange, symbol, mode) is a subscription of its own
and receives ``market_data`` tagged with that mode, as OpenAlgo's proxy does, so a client
holding LTP and Quote of one symbol gets both. Mode 1 is sent per trade; modes 2 and 3 per
trade and per quote, with the latest trade and quote known: Quote carries ``ltp``,
``last_trade_quantity``, ``bid``/``ask``/``bid_qty``/``ask_qty``; Depth one level per side
(the best bid and ask: the bus carries no deeper book). Session figures (open, high, low,
close, volume) are not carried. Errors carry ``"type"`` as well as OpenAlgo's
``status``/``code``/``message``, so the SDK logs them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from tradeops.protocol.book import Book
from tradeops.protocol.downstream import (
    CLOSE_POLICY,
    Cache,
    DownstreamSession,
    Key,
    NeedChange,
    Result,
    SessionConfig,
)
from tradeops.protocol.modes import Mode, join
from tradeops.protocol.tick import DEPTH as DEPTH_KIND
from tradeops.protocol.tick import QUOTE, TRADE, Tick

LTP, QUOTE_MODE, DEPTH = 1, 2, 3
MODE_LABELS: Final = {"ltp": LTP, "quote": QUOTE_MODE, "depth": DEPTH}
#: What each OpenAlgo mode needs from the gateway.
GATEWAY_MODE: Final[dict[int, Mode]] = {LTP: "trade", QUOTE_MODE: "quote", DEPTH: "quote"}
Instrument = tuple[str, str]  # (exchange, symbol)


def is_openalgo(message: object) -> bool:
    """True for OpenAlgo's first message: ``{"action": "authenticate", "api_key": ...}``."""
    return isinstance(message, dict) and "authenticate" in (
        message.get("action"), message.get("type"))


def parse_mode(value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and value in GATEWAY_MODE:
        return value
    if isinstance(value, str):
        return MODE_LABELS.get(value.strip().lower()) or (
            int(value) if value.strip() in ("1", "2", "3") else None)
    return None


def _ms(ns: int) -> int:
    return ns // 1_000_000


@dataclass(frozen=True)
class _OpenAlgoRequest:
    action: str
    request_id: object
    mode: int
    accepted: list[tuple[Instrument, str]]  # (instrument, broker)
    failed: list[dict[str, Any]]
    before: dict[Instrument, set[int]]


class OpenAlgoSession(DownstreamSession):
    dialect = "openalgo"

    def __init__(
        self, config: SessionConfig, now: float, clock_ns: Callable[[], int] = time.time_ns
    ) -> None:
        """`clock_ns` is the server's time that `pong` reports (the wall clock in the proxy;
        a fixed function in tests): the session reads no clock of its own."""
        super().__init__(config, now)
        self._clock_ns = clock_ns
        self.subs: dict[Instrument, set[int]] = {}
        self._routes: dict[Key, list[tuple[str, int]]] = {}  # (broker, symbol) → (exch, mode)
        self._last_trade: dict[Key, Tick] = {}
        self._last_quote: dict[Key, Tick] = {}
        self._pending: _OpenAlgoRequest | None = None

    def bus_symbol(self, broker: str, exchange: str, symbol: str) -> str:
        """The symbol on `broker`'s bus: `EXCHANGE:SYMBOL` for brokers whose symbols carry
        their exchange (an OpenAlgo or AllTick upstream), else the symbol as the client
        wrote it."""
        return f"{exchange}:{symbol}" if broker in self.config.qualified else symbol

    def broker_of(self, exchange: str) -> str | None:
        """The broker an exchange code maps to: the table, else a broker of that name."""
        broker = self.config.exchanges.get(exchange)
        if broker is not None:
            return broker
        matches = [b for b in self.config.brokers if b.lower() == exchange.lower()]
        return matches[0] if matches else None

    # -- messages in ------------------------------------------------------------------------------
    def receive(self, payload: str | bytes, now: float) -> NeedChange | None:
        if self.closing is not None:
            return None
        try:
            message = json.loads(payload)
        except (ValueError, UnicodeDecodeError):
            self.error("INVALID_JSON", "messages are JSON objects")
            return None
        if not isinstance(message, dict):
            self.error("INVALID_JSON", "messages are JSON objects")
            return None
        action = message.get("action") or message.get("type")
        rid = message.get("request_id")
        if action == "authenticate":
            self._authenticate(message)
            return None
        if not self.authenticated:
            self.error("NOT_AUTHENTICATED", "authenticate first", rid)
            return None
        if action == "ping":
            self.send({"type": "pong", "status": "success", "server_timestamp": _ms(
                self._clock_ns())} | ({"request_id": rid} if rid is not None else {}))
            return None
        if action in ("subscribe", "unsubscribe"):
            return self._change(str(action), message, rid)
        if action == "unsubscribe_all":
            everything = [(i, self.broker_of(i[0]) or "") for i in self.subs]
            pending = _OpenAlgoRequest("unsubscribe", rid, 0, everything, [], self._copy())
            self.subs.clear()
            return self._ask(pending)
        self.error("INVALID_ACTION", f"unknown action {action!r}", rid)
        return None

    def _authenticate(self, message: dict[str, Any]) -> None:
        if self.authenticated:
            self.send({"type": "auth", "status": "success", "message": "Already authenticated"})
            return
        if not self.config.token_ok(message.get("api_key", message.get("apikey"))):
            self.refused += 1
            self.send({"type": "auth", "status": "error", "code": "AUTHENTICATION_ERROR",
                       "message": "Invalid API key"})
            self.close(CLOSE_POLICY, "auth failed")
            return
        self.authenticated = True
        self.name = "openalgo"
        self.send({"type": "auth", "status": "success", "message": "Authentication successful",
                   "broker": ",".join(self.config.brokers), "user_id": "tradeops",
                   "supported_features": {"ltp": True, "quote": True, "depth": True}})

    def _instruments(self, message: dict[str, Any]) -> list[Any]:
        if isinstance(message.get("symbols"), list):
            return list(message["symbols"])
        return [{"symbol": message.get("symbol") or message.get("exchange_token"),
                 "exchange": message.get("exchange")}]

    def _change(self, action: str, message: dict[str, Any], rid: object) -> NeedChange | None:
        mode = parse_mode(message.get("mode", LTP))
        if mode is None and (action == "subscribe" or "mode" in message):
            self.error("INVALID_MODE", "mode is 1 (LTP), 2 (Quote) or 3 (Depth)", rid)
            return None
        accepted: list[tuple[Instrument, str]] = []
        failed: list[dict[str, Any]] = []
        before = self._copy()
        symbols = {s for _, s in self.subs}
        for item in self._instruments(message):
            symbol = item.get("symbol") if isinstance(item, dict) else None
            exchange = item.get("exchange") if isinstance(item, dict) else None
            if not isinstance(symbol, str) or not isinstance(exchange, str) or not symbol:
                failed.append({"symbol": symbol, "exchange": exchange, "status": "error",
                               "message": "each instrument needs `symbol` and `exchange`"})
                continue
            broker = self.broker_of(exchange)
            problem = (f"exchange {exchange!r} is not mapped to a broker "
                       "(settings.proxy.exchanges)") if broker is None else (
                self.config.check_symbol(broker, self.bus_symbol(broker, exchange, symbol))
                if action == "subscribe" else None)
            if action == "subscribe" and not problem and symbol not in symbols and (
                    len(symbols) >= self.config.max_symbols):
                problem = f"at most {self.config.max_symbols} symbols per client"
            if problem or broker is None:
                failed.append({"symbol": symbol, "exchange": exchange, "status": "error",
                               "message": problem})
                continue
            symbols.add(symbol)
            held = self.subs.setdefault((exchange, symbol), set())
            if action == "subscribe" and mode is not None:
                held.add(mode)
            elif mode is None:
                held.clear()
            else:
                held.discard(mode)
            if not held:
                del self.subs[(exchange, symbol)]
            accepted.append(((exchange, symbol), broker))
        if failed:
            self.count_error()
        return self._ask(_OpenAlgoRequest(action, rid, mode or 0, accepted, failed, before))

    def _ask(self, pending: _OpenAlgoRequest) -> NeedChange | None:
        """The change of need per (broker, symbol) between before the request and now."""
        self._pending = pending
        old, new = self._needs(pending.before), self._needs(self.subs)
        wants = {k: new.get(k) for k in old.keys() | new.keys() if old.get(k) != new.get(k)}
        self._reroute()
        return self._request_change(wants)

    def resolved(self, results: Mapping[Key, Result]) -> None:
        pending, self._pending = self._pending, None
        if pending is None:
            return
        refused = {k: r for k, r in results.items() if not r.ok}
        for instrument, broker in pending.accepted:
            if (broker, self.bus_symbol(broker, *instrument)) in refused:  # as it was before
                held = pending.before.get(instrument)
                if held:
                    self.subs[instrument] = set(held)
                else:
                    self.subs.pop(instrument, None)
        self._reroute()
        rid = {"request_id": pending.request_id} if pending.request_id is not None else {}
        if pending.action == "unsubscribe":
            done = [{"symbol": i[1], "exchange": i[0], "mode": pending.mode or None}
                    for i, _ in pending.accepted]
            self.send({"type": "unsubscribe", "status": "success" if not pending.failed
                       else "partial", "message": "Unsubscription processing complete",
                       "successful": done, "failed": pending.failed, **rid})
            return
        subscriptions = list(pending.failed)
        for (exchange, symbol), broker in pending.accepted:
            result = results.get((broker, self.bus_symbol(broker, exchange, symbol)),
                                 Result(True))
            entry: dict[str, Any] = {"symbol": symbol, "exchange": exchange,
                                     "status": "success" if result.ok else "error",
                                     "mode": pending.mode, "broker": broker,
                                     "depth": 5 if pending.mode == DEPTH
                                     and broker in self.config.book_brokers else 1}
            if result.reason:
                entry["message"] = result.reason
            subscriptions.append(entry)
        good = sum(e["status"] == "success" for e in subscriptions)
        status = "success" if good == len(subscriptions) else ("partial" if good else "error")
        self.send({"type": "subscribe", "status": status, "subscriptions": subscriptions,
                   "message": "Subscription processing complete", **rid})

    # -- messages out -----------------------------------------------------------------------------
    def ticks(self, broker: str, ticks: Sequence[Tick], cache: Cache) -> int:
        routes, count = self._routes, 0
        encoded = cache.get("openalgo")
        if encoded is None:
            encoded = cache["openalgo"] = {}
        books = broker in self.config.book_brokers
        for tick in ticks:
            key = (broker, tick.symbol)
            targets = routes.get(key)
            if not targets:
                continue
            code = tick.kind_code
            if code == TRADE:
                self._last_trade[key] = tick
            elif code == QUOTE:
                self._last_quote[key] = tick
            elif code != DEPTH_KIND:
                continue
            trade, quote = self._last_trade.get(key), self._last_quote.get(key)
            state = (trade.seq if trade else 0, quote.seq if quote else 0)
            for exchange, mode in targets:
                if mode == LTP and code != TRADE:
                    continue
                if code == DEPTH_KIND and mode != DEPTH:
                    continue  # a book change is news to depth subscribers only
                if books and mode == DEPTH and code == QUOTE:
                    continue  # the book's own record follows the quote it tops
                ck = (exchange, mode, tick.seq, state)
                item = encoded.get(ck)
                if item is None:
                    book = self.config.book(broker, tick.symbol) if mode == DEPTH else None
                    item = encoded[ck] = self._encode(exchange, mode, tick, trade, quote, book)
                self.out.append((item, True))
                count += 1
        return count

    def seed(self, key: Key, trade: Tick | None, quote: Tick | None) -> None:
        """The latest trade and quote when a subscription starts (from the bus's table)."""
        if trade is not None:
            self._last_trade.setdefault(key, trade)
        if quote is not None:
            self._last_quote.setdefault(key, quote)

    @staticmethod
    def _encode(exchange: str, mode: int, tick: Tick, trade: Tick | None,
                quote: Tick | None, book: Book | None = None) -> bytes:
        ltp = trade.price if trade else 0.0
        data: dict[str, Any] = {"ltp": ltp, "timestamp": _ms(tick.exchange_ns)}
        if trade is not None:
            data["ltt"] = _ms(trade.exchange_ns)
        if mode == QUOTE_MODE:
            data["last_trade_quantity"] = trade.size if trade else 0.0
            if quote is not None:
                data.update(bid=quote.bid, ask=quote.ask, bid_qty=quote.bid_size,
                            ask_qty=quote.ask_size)
        elif mode == DEPTH:
            if book is not None:  # up to 5 levels a side, as OpenAlgo's depth mode carries
                buy = [{"price": p, "quantity": q, "orders": 0} for p, q in book.bids[:5]]
                sell = [{"price": p, "quantity": q, "orders": 0} for p, q in book.asks[:5]]
            else:  # a feed without books: the best level
                buy = [{"price": quote.bid, "quantity": quote.bid_size}] if quote else []
                sell = [{"price": quote.ask, "quantity": quote.ask_size}] if quote else []
            data["depth"] = {"buy": buy, "sell": sell}
        name = tick.symbol  # a bus symbol that carries its exchange loses it on the wire
        if name.startswith(exchange + ":"):
            name = name[len(exchange) + 1:]
        message = {"type": "market_data", "symbol": name, "exchange": exchange,
                   "mode": mode, "data": data}
        return json.dumps(message, separators=(",", ":")).encode()

    def lost(self, key: Key, reason: str) -> None:
        broker, symbol = key
        gone = [i for i in self.subs if self.broker_of(i[0]) == broker
                and self.bus_symbol(broker, *i) == symbol]
        for instrument in gone:
            del self.subs[instrument]
            self.error("SUBSCRIPTION_LOST", f"{instrument[0]}:{symbol}: {reason}")
        self._reroute()

    def slow(self) -> None:
        self.out.clear()
        self.error("SLOW_CLIENT", "the connection fell too far behind; reconnect")
        super().slow()

    def auth_timeout(self) -> None:
        self.error("AUTHENTICATION_ERROR", "no authenticate message in time")
        super().auth_timeout()

    def holding(self) -> dict[Key, Mode]:
        return self._needs(self.subs)

    # -- helpers ----------------------------------------------------------------------------------
    def _copy(self) -> dict[Instrument, set[int]]:
        return {i: set(m) for i, m in self.subs.items()}

    def _needs(self, subs: Mapping[Instrument, set[int]]) -> dict[Key, Mode]:
        needs: dict[Key, Mode] = {}
        for (exchange, symbol), modes in subs.items():
            broker = self.broker_of(exchange)
            if broker is None or not modes:
                continue
            mode = GATEWAY_MODE[max(modes)]
            if max(modes) == DEPTH and broker in self.config.book_brokers:
                mode = "depth"  # whole books: up to 5 levels a side from the book table
            key = (broker, self.bus_symbol(broker, exchange, symbol))
            needs[key] = join(needs.get(key), mode) or mode
        return needs

    def _reroute(self) -> None:
        routes: dict[Key, list[tuple[str, int]]] = {}
        for (exchange, symbol), modes in self.subs.items():
            broker = self.broker_of(exchange)
            if broker is not None:
                routes.setdefault((broker, self.bus_symbol(broker, exchange, symbol)),
                                  []).extend((exchange, m) for m in sorted(modes))
        self._routes = routes
        for key in list(self._last_trade.keys() | self._last_quote.keys()):
            if key not in routes:
                self._last_trade.pop(key, None)
                self._last_quote.pop(key, None)

    def send(self, message: dict[str, Any]) -> None:
        self.out.append((json.dumps(message, separators=(",", ":")).encode(), True))

    def error(self, code: str, message: str, rid: object = None) -> None:
        body: dict[str, Any] = {"type": "error", "status": "error", "code": code,
                                "message": message}
        if rid is not None:
            body["request_id"] = rid
        self.send(body)
        if code not in ("SLOW_CLIENT", "SUBSCRIPTION_LOST"):
            self.count_error()
