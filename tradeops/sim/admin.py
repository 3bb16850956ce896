"""The admin endpoint: what tests read (journal, connections) and how they break the sim.

No authentication: the sim binds loopback by default and this is a test instrument.

    GET  /admin/status          market, active symbols, counters, current faults
    GET  /admin/connections     {"open": [...live connections...], "closed": [...journal...]}
    GET  /admin/subscriptions   {"log": [...]}   filters: ?conn=ID, ?symbol=SYM
    GET  /admin/orders          {"requests": [...], "updates": [...], "orders": [...]}
    GET  /admin/faults          current fault state
    POST /admin/faults          patch faults: {"reject_auth": true, "delay": 0.5, ...}
    POST /admin/drop            drop every websocket now: {"abrupt": bool, "code": int}
    POST /admin/silence         no market data for N s: {"seconds": N} (0 ends it)
    POST /admin/price           move a symbol's price now: {"symbol": "AAPL", "price": 101.5}
    POST /admin/halt            halt a symbol: {"symbol": "AAPL", "reason": "T1"} (a status;
                                its quotes and trades stop until resumed)
    POST /admin/resume          resume a halted symbol: {"symbol": "AAPL"}
    POST /admin/correct         correct a symbol's last trade: {"symbol", "price", "size"}
    POST /admin/bust            cancel (action C) or error (E) its last trade: {"symbol", "action"}
    POST /admin/clear           forget the journal (subscriptions, connections, orders)
"""

from __future__ import annotations

import json
import math
import time
from typing import TYPE_CHECKING, Any

from aiohttp import web

from tradeops.sim.events import REASONS
from tradeops.sim.market import Correction, is_valid_symbol
from tradeops.sim.options import SimConfigError

if TYPE_CHECKING:
    from tradeops.sim.server import RunningSim


def _bad(message: str) -> web.Response:
    return web.json_response({"error": message}, status=400)


async def _body(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError:
        raise web.HTTPBadRequest(text='{"error": "body is not JSON"}',
                                 content_type="application/json") from None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text='{"error": "body must be a JSON object"}',
                                 content_type="application/json")
    return body


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


class AdminRoutes:
    """The admin endpoints of one running sim (tests and fault injection drive them)."""

    def __init__(self, sim: RunningSim) -> None:
        self.sim = sim
        self.exchange = sim.exchange

    async def status(self, request: web.Request) -> web.Response:
        return web.json_response(self.exchange.status(time.time()))

    async def connections(self, request: web.Request) -> web.Response:
        return web.json_response({"open": self.exchange.connections(),
                                  "closed": list(self.exchange.journal.connections)})

    async def subscriptions(self, request: web.Request) -> web.Response:
        log = list(self.exchange.journal.subscriptions)
        if "conn" in request.query:
            log = [e for e in log if str(e["conn"]) == request.query["conn"]]
        if "symbol" in request.query:
            symbol = request.query["symbol"]
            log = [e for e in log if any(symbol in syms for syms in e["request"].values()
                                         if isinstance(syms, list))]
        return web.json_response({"log": log})

    async def orders(self, request: web.Request) -> web.Response:
        book = self.exchange.book
        return web.json_response({
            "requests": list(self.exchange.journal.requests),
            "updates": list(self.exchange.journal.updates),
            "orders": [dict(o.to_json(), key=o.key) for o in book.orders.values()],
        })

    async def faults(self, request: web.Request) -> web.Response:
        if request.method == "POST":
            try:
                self.exchange.faults.update(await _body(request), time.time())
            except SimConfigError as exc:
                return _bad(str(exc))
        return web.json_response(self.exchange.faults.to_json(time.time()))

    async def drop(self, request: web.Request) -> web.Response:
        body = await _body(request)
        abrupt, code = body.get("abrupt"), body.get("code")
        if abrupt is not None and not isinstance(abrupt, bool):
            return _bad("abrupt must be true or false")
        if code is not None and (not isinstance(code, int) or not 1000 <= code <= 4999):
            return _bad("code must be a websocket close code (1000..4999)")
        dropped = self.sim.drop_all(abrupt=abrupt, code=code)
        self.exchange.faults.drops += 1
        return web.json_response({"dropped": dropped})

    async def silence(self, request: web.Request) -> web.Response:
        seconds = _number((await _body(request)).get("seconds"))
        if seconds is None or seconds < 0:
            return _bad("seconds must be a number >= 0")
        self.exchange.faults.silence(seconds, time.time())
        return web.json_response(self.exchange.faults.to_json(time.time()))

    async def price(self, request: web.Request) -> web.Response:
        body = await _body(request)
        symbol, value = body.get("symbol"), _number(body.get("price"))
        if not isinstance(symbol, str) or not is_valid_symbol(symbol):
            return _bad("symbol must be a valid symbol such as AAPL or BTC/USD")
        if value is None or value <= 0:
            return _bad("price must be a positive number")
        self.exchange.set_mid(symbol, value, time.time())
        self.sim.flush()
        quote = self.exchange.feed.touch(symbol, time.time())
        return web.json_response({"symbol": symbol, "bid": quote.bid if quote else None,
                                  "ask": quote.ask if quote else None})

    async def _symbol(self, request: web.Request) -> tuple[str, dict[str, Any]]:
        body = await _body(request)
        symbol = body.get("symbol")
        if not isinstance(symbol, str) or not is_valid_symbol(symbol):
            raise web.HTTPBadRequest(
                text='{"error": "symbol must be a valid symbol such as AAPL or BTC/USD"}',
                content_type="application/json")
        return symbol, body

    async def halt(self, request: web.Request) -> web.Response:
        symbol, body = await self._symbol(request)
        reason = body.get("reason", "T12")
        if reason not in REASONS:
            return _bad(f"reason must be one of {sorted(r for r in REASONS if r)}")
        now = time.time()
        status = self.exchange.extras.halt(symbol, str(reason), int(now * 1e9))
        self.exchange.inject([status], now)
        self.sim.flush()
        return web.json_response({"symbol": symbol, "status": status.code})

    async def resume(self, request: web.Request) -> web.Response:
        symbol, _ = await self._symbol(request)
        now = time.time()
        status = self.exchange.extras.resume(symbol, int(now * 1e9))
        self.exchange.inject([status], now)
        self.sim.flush()
        return web.json_response({"symbol": symbol, "status": status.code})

    async def correct(self, request: web.Request) -> web.Response:
        symbol, body = await self._symbol(request)
        price, size = _number(body.get("price")), _number(body.get("size"))
        if (body.get("price") is not None and (price is None or price <= 0)) or (
                body.get("size") is not None and (size is None or size <= 0)):
            return _bad("price and size, when given, must be positive numbers")
        now = time.time()
        events = self.exchange.extras.correct(symbol, price, size, int(now * 1e9))
        if events is None:
            return _bad(f"{symbol} has not traded yet: nothing to correct")
        self.exchange.inject(events, now)
        self.sim.flush()
        correction = events[0]
        assert isinstance(correction, Correction)
        return web.json_response({"symbol": symbol,
                                  "original_id": correction.original.trade_id,
                                  "corrected_id": correction.corrected.trade_id,
                                  "updated_bar": len(events) > 1})

    async def bust(self, request: web.Request) -> web.Response:
        symbol, body = await self._symbol(request)
        action = body.get("action", "C")
        if action not in ("C", "E"):
            return _bad("action must be C (cancel) or E (error)")
        now = time.time()
        event = self.exchange.extras.cancel(symbol, str(action), int(now * 1e9))
        if event is None:
            return _bad(f"{symbol} has no trade left to cancel")
        self.exchange.inject([event], now)
        self.sim.flush()
        return web.json_response({"symbol": symbol, "trade_id": event.trade.trade_id,
                                  "action": action})

    async def clear(self, request: web.Request) -> web.Response:
        self.exchange.journal.clear()
        return web.json_response({"cleared": True})

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/admin/status", self.status),
            web.get("/admin/connections", self.connections),
            web.get("/admin/subscriptions", self.subscriptions),
            web.get("/admin/orders", self.orders),
            web.get("/admin/faults", self.faults),
            web.post("/admin/faults", self.faults),
            web.post("/admin/drop", self.drop),
            web.post("/admin/silence", self.silence),
            web.post("/admin/price", self.price),
            web.post("/admin/halt", self.halt),
            web.post("/admin/resume", self.resume),
            web.post("/admin/correct", self.correct),
            web.post("/admin/bust", self.bust),
            web.post("/admin/clear", self.clear),
        ]


def admin_routes(sim: RunningSim) -> list[web.RouteDef]:
    return AdminRoutes(sim).routes()
