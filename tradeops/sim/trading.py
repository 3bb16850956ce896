"""The REST trading API in Alpaca's dialect, sans-I/O: a request in, a status and JSON out.

Routes (all under `/v2`, authenticated with `APCA-API-KEY-ID` / `APCA-API-SECRET-KEY`):
`GET /account`, `GET /clock`, `POST /orders`, `GET /orders`, `DELETE /orders` (cancel all,
207), `GET /orders/{id}`, `DELETE /orders/{id}` (204), `GET /orders:by_client_order_id`,
`GET /positions`, `GET /positions/{symbol}`; and the historical trades of Alpaca's market-data
API, `GET /stocks/trades` and `GET /stocks/{symbol}/trades` (`history.py`).

Order requests (submit, cancel, cancel-all) are rate limited per key by `order_rate_limit`
(a sliding window: refused with 429 when `count` requests were accepted in the last `seconds`;
refused requests do not count) and every one of them, whatever its outcome, is written to the
journal's `requests` log.
"""

from __future__ import annotations

import json
import math
import re
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from tradeops.sim import history
from tradeops.sim.exchange import Exchange
from tradeops.sim.market import is_crypto
from tradeops.sim.orders import Order, OrderRequestError, asset_id, fmt, parse_order_request

_ORDER = re.compile(r"/v2/orders/([^/]+)")
_POSITION = re.compile(r"/v2/positions/(.+)")  # aiohttp decodes BTC%2FUSD to BTC/USD
_ORDER_ACTIONS = {("POST", "/v2/orders"): "submit", ("DELETE", "/v2/orders"): "cancel_all"}


@dataclass
class Reply:
    status: int
    body: object = None  # JSON-able, or None for an empty body
    headers: dict[str, str] = field(default_factory=dict)


class ApiError(Exception):
    def __init__(self, status: int, code: int, message: str,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.reply = Reply(status, {"code": code, "message": message}, headers or {})


def _ns(now: float) -> int:
    return int(now * 1e9)


class TradingApi:
    def __init__(self, exchange: Exchange) -> None:
        self.exchange = exchange
        self._windows: dict[str, deque[float]] = {}

    def handle(self, method: str, path: str, headers: Mapping[str, str],
               query: Mapping[str, str], body: bytes, now: float) -> Reply:
        """Answer one request; never raises for anything a client can send."""
        action = _ORDER_ACTIONS.get((method, path))
        if action is None and method == "DELETE" and _ORDER.fullmatch(path):
            action = "cancel"
        entry: dict[str, Any] = {"action": action, "method": method, "path": path}
        try:
            key = self._authenticate(headers)
            entry["key"] = key
            rate_headers = self._throttle(key, now) if action else {}
            reply = self._route(method, path, key, query, body, now, entry)
            reply.headers.update(rate_headers)
        except OrderRequestError as exc:
            reply = ApiError(exc.status, exc.code, exc.message).reply
        except ApiError as exc:
            reply = exc.reply
            if isinstance(reply.body, dict):
                entry["reason"] = reply.body.get("message")
        if action is not None:
            entry["status"] = reply.status
            self.exchange.journal.request(entry, now)
        return reply

    def _authenticate(self, headers: Mapping[str, str]) -> str:
        key = headers.get("APCA-API-KEY-ID")
        secret = headers.get("APCA-API-SECRET-KEY")
        if key is None or secret is None or not self.exchange.check_credentials(key, secret):
            raise ApiError(401, 40110000, "request is not authorized")
        return key

    def _throttle(self, key: str, now: float) -> dict[str, str]:
        limit = self.exchange.options.order_rate_limit
        if limit is None:
            return {}
        count, seconds = limit
        window = self._windows.setdefault(key, deque())
        while window and window[0] <= now - seconds:
            window.popleft()
        if len(window) >= count:
            reset = window[0] + seconds
            raise ApiError(429, 42910000, "rate limit exceeded", {
                "X-RateLimit-Limit": str(count), "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": str(math.ceil(reset)),
                "Retry-After": str(max(1, math.ceil(reset - now)))})
        window.append(now)
        return {"X-RateLimit-Limit": str(count),
                "X-RateLimit-Remaining": str(count - len(window)),
                "X-RateLimit-Reset": str(math.ceil(window[0] + seconds))}

    def _route(self, method: str, path: str, key: str, query: Mapping[str, str], body: bytes,
               now: float, entry: dict[str, Any]) -> Reply:
        if method == "POST" and path == "/v2/orders":
            return self._submit(key, body, now, entry)
        if method == "DELETE" and path == "/v2/orders":
            return self._cancel_all(key, now, entry)
        match = _ORDER.fullmatch(path)
        if method == "DELETE" and match:
            entry["order_id"] = match.group(1)
            book = self.exchange.book
            self.exchange.publish(book.cancel(key, match.group(1), _ns(now)), now)
            self.exchange.refresh_active(now)
            return Reply(204)
        if method != "GET":
            raise ApiError(405, 40510000, f"method {method} not allowed on {path}")
        if path == "/v2/stocks/trades" or (
                path.startswith("/v2/stocks/") and path.endswith("/trades")):
            single = None if path == "/v2/stocks/trades" else path.split("/")[3]
            symbols = [single] if single else [
                s for s in query.get("symbols", "").split(",") if s]
            status, reply = history.answer(self.exchange.history, symbols, dict(query), single)
            if status != 200:
                raise ApiError(status, int(reply["code"]), str(reply["message"]))
            return Reply(200, reply)
        if path == "/v2/account":
            return Reply(200, self._account(key, now))
        if path == "/v2/clock":
            return Reply(200, self._clock(now))
        if path == "/v2/calendar":
            return Reply(200, self._calendar(query, now))
        if path == "/v2/orders":
            return Reply(200, self._list_orders(key, query))
        if path == "/v2/orders:by_client_order_id":
            order = self.exchange.book.by_client_id(key, query.get("client_order_id", ""))
            if order is None:
                raise ApiError(404, 40410000, "order not found")
            return Reply(200, order.to_json())
        if match:
            return Reply(200, self.exchange.book.get(key, match.group(1)).to_json())
        if path == "/v2/positions":
            return Reply(200, self._positions(key, now))
        match = _POSITION.fullmatch(path)
        if match:
            wanted = match.group(1).replace("%2F", "/").replace("%2f", "/")
            for position in self._positions(key, now):
                symbol = str(position["symbol"])
                if wanted in (symbol, symbol.replace("/", "")):
                    return Reply(200, position)
            raise ApiError(404, 40410000, "position does not exist")
        raise ApiError(404, 40410000, f"endpoint not found: {method} {path}")

    def _submit(self, key: str, body: bytes, now: float, entry: dict[str, Any]) -> Reply:
        try:
            request = json.loads(body or b"null")
        except ValueError:
            raise ApiError(422, 40010001, "request body is not valid JSON") from None
        if isinstance(request, dict):
            entry.update(request=request, client_order_id=request.get("client_order_id"),
                         symbol=request.get("symbol"))
        exchange = self.exchange
        try:
            parsed = parse_order_request(request, exchange.listed)
            order, accepted, updates = exchange.book.submit(
                key, parsed, exchange.touch(parsed.symbol, now), _ns(now),
                reject=exchange.faults.reject_orders)
        except OrderRequestError as exc:
            raise ApiError(exc.status, exc.code, exc.message) from None
        entry.update(order_id=order.id, client_order_id=order.client_order_id)
        exchange.publish(updates, now)
        exchange.refresh_active(now)
        return Reply(200, accepted)

    def _cancel_all(self, key: str, now: float, entry: dict[str, Any]) -> Reply:
        orders, updates = self.exchange.book.cancel_all(key, _ns(now))
        self.exchange.publish(updates, now)
        self.exchange.refresh_active(now)
        entry["order_ids"] = [o.id for o in orders]
        return Reply(207, [{"id": o.id, "status": 200, "body": o.to_json()} for o in orders])

    def _list_orders(self, key: str, query: Mapping[str, str]) -> list[dict[str, object]]:
        status = query.get("status", "open")
        symbols = {s for s in query.get("symbols", "").split(",") if s}
        try:
            limit = min(500, max(1, int(query.get("limit", "50"))))
        except ValueError:
            raise ApiError(422, 40010001, "limit must be an integer") from None

        def wanted(order: Order) -> bool:
            if order.key != key or (symbols and order.symbol not in symbols):
                return False
            return status == "all" or (status == "open") == order.working

        orders = [o for o in self.exchange.book.orders.values() if wanted(o)]
        orders.sort(key=lambda o: o.created_ns, reverse=query.get("direction", "desc") != "asc")
        return [o.to_json() for o in orders[:limit]]

    def _mark(self, symbol: str, now: float) -> float:
        quote = self.exchange.feed.touch(symbol, now)
        return (quote.bid + quote.ask) / 2 if quote is not None else 0.0

    def _positions(self, key: str, now: float) -> list[dict[str, object]]:
        account = self.exchange.book.accounts.get(key)
        result: list[dict[str, object]] = []
        for symbol, pos in sorted(account.positions.items()) if account else []:
            mark = self._mark(symbol, now) or pos.avg_price
            cost = abs(pos.qty) * pos.avg_price
            value = pos.qty * mark
            pl = (mark - pos.avg_price) * pos.qty
            result.append({
                "asset_id": asset_id(symbol), "symbol": symbol,
                "exchange": "CRYPTO" if is_crypto(symbol) else "NASDAQ",
                "asset_class": "crypto" if is_crypto(symbol) else "us_equity",
                "asset_marginable": not is_crypto(symbol),
                "avg_entry_price": fmt(round(pos.avg_price, 6)), "qty": fmt(abs(pos.qty)),
                "side": "long" if pos.qty > 0 else "short",
                "market_value": fmt(round(value, 6)), "cost_basis": fmt(round(cost, 6)),
                "unrealized_pl": fmt(round(pl, 6)),
                "unrealized_plpc": fmt(round(pl / cost, 6)) if cost else "0",
                "unrealized_intraday_pl": fmt(round(pl, 6)),
                "unrealized_intraday_plpc": fmt(round(pl / cost, 6)) if cost else "0",
                "current_price": fmt(round(mark, 6)), "lastday_price": fmt(round(mark, 6)),
                "change_today": "0", "qty_available": fmt(abs(pos.qty)),
            })
        return result

    def _account(self, key: str, now: float) -> dict[str, object]:
        account = self.exchange.book.account(key, _ns(now))
        long_value = short_value = 0.0
        for symbol, pos in account.positions.items():
            value = pos.qty * (self._mark(symbol, now) or pos.avg_price)
            if value >= 0:
                long_value += value
            else:
                short_value += value
        equity = account.cash + long_value + short_value
        money = {name: fmt(round(value, 2)) for name, value in {
            "cash": account.cash, "equity": equity, "last_equity": equity,
            "portfolio_value": equity, "buying_power": max(0.0, equity),
            "regt_buying_power": max(0.0, equity), "daytrading_buying_power": 0.0,
            "non_marginable_buying_power": max(0.0, account.cash),
            "long_market_value": long_value, "short_market_value": short_value,
            "initial_margin": 0.0, "maintenance_margin": 0.0,
            "last_maintenance_margin": 0.0, "sma": 0.0, "accrued_fees": 0.0,
            "pending_transfer_in": 0.0, "pending_transfer_out": 0.0}.items()}
        return {
            "id": account.id, "account_number": account.number, "status": "ACTIVE",
            "crypto_status": "ACTIVE", "currency": "USD", "pattern_day_trader": False,
            "trading_blocked": False, "transfers_blocked": False, "account_blocked": False,
            "created_at": datetime.fromtimestamp(account.created_ns / 1e9,
                                                 UTC).isoformat(),
            "trade_suspended_by_user": False, "multiplier": "1", "shorting_enabled": True,
            "daytrade_count": 0, **money,
        }

    def _calendar(self, query: Mapping[str, str], now: float) -> list[dict[str, str]]:
        """Alpaca's trading days between `start` and `end` (dates; default: today and the
        next 30 days), from the sim's hours. A 24/7 market has every day, 00:00-23:59."""
        hours = self.exchange.hours
        today = datetime.fromtimestamp(now, ZoneInfo(hours.zone)).date()
        try:
            start = date.fromisoformat(query.get("start", today.isoformat())[:10])
            default_end = (today + timedelta(days=30)).isoformat()
            end = date.fromisoformat(query.get("end", default_end)[:10])
        except ValueError:
            raise ApiError(422, 42210000, "start and end must be dates: YYYY-MM-DD") from None
        days: list[dict[str, str]] = []
        day = start
        while day <= end and len(days) < 1000:
            for opens, closes in hours.sessions_on(day) if not hours.always else [(None, None)]:
                days.append({
                    "date": day.isoformat(),
                    "open": opens.strftime("%H:%M") if opens else "00:00",
                    "close": closes.strftime("%H:%M") if closes else "23:59",
                    "session_open": opens.strftime("%H%M") if opens else "0000",
                    "session_close": closes.strftime("%H%M") if closes else "2359",
                    "settlement_date": (day + timedelta(days=1)).isoformat(),
                })
            day += timedelta(days=1)
        return days

    def _clock(self, now: float) -> dict[str, object]:
        hours = self.exchange.hours
        return {"timestamp": datetime.fromtimestamp(now, UTC).isoformat(),
                "is_open": hours.is_open(now),
                "next_open": hours.next_open(now).isoformat(),
                "next_close": hours.next_close(now).isoformat()}
