"""The sim as an OpenAlgo server: its REST order API, sans-I/O, on the sim's one order book.

Served under `/api/v1/` (as OpenAlgo's `restx_api` namespaces are), every call a POST of JSON
with the API key in the body (`apikey`). Orders go into the same book as the Alpaca dialect's,
on the account of that key, so they fill against the sim's market the same way.

- `placeorder` {strategy, exchange, symbol, action BUY/SELL, quantity, pricetype MARKET or
  LIMIT (SL and SL-M are refused: the book has no stops), product MIS/CNC/NRML, price,
  trigger_price, disclosed_quantity} → `{"status": "success", "orderid"}`;
- `cancelorder` {strategy, orderid} → `{"status": "success", "orderid"}`;
- `cancelallorder` {strategy} → `{"status": "success", "canceled_orders", "failed_cancellations",
  "message"}`;
- `orderstatus` {strategy, orderid} → `{"status": "success", "data": {orderid, order_status
  (open, complete, cancelled, rejected), action, exchange, symbol, quantity, price,
  trigger_price, pricetype, product, timestamp, average_price}}`;
- `orderbook` → `{"status": "success", "data": {"orders": [...], "statistics": {...}}}`;
- `positionbook` → `{"status": "success", "data": [{symbol, exchange, product, quantity,
  average_price, ltp, pnl}]}` (one row per symbol, with the product of its latest order).

Errors are `{"status": "error", "message": ...}` with OpenAlgo's HTTP codes: 400 for a body its
schema refuses (the message maps each field to its problems, as marshmallow writes them), 403
for an API key it does not accept ("Invalid openalgo apikey"), 404 for an unknown order, 429
over the sim's `order_rate_limit` (placeorder, cancelorder, cancelallorder).

As OpenAlgo reports them: a partly filled order is `open` (orderstatus has no filled
quantity), and `average_price` is non-zero only once the order is `complete`.
"""

from __future__ import annotations

import json
import math
from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from tradeops.sim.orders import Order, OrderRequest, OrderRequestError
from tradeops.sim.trading import ApiError, Reply, TradingApi

if TYPE_CHECKING:
    from tradeops.sim.exchange import Exchange

PREFIX = "/api/v1/"
#: OpenAlgo's VALID_EXCHANGES (utils/constants.py).
EXCHANGES = ("NSE", "NFO", "CDS", "BSE", "BFO", "BCD", "MCX", "NCDEX", "NCO", "NSE_INDEX",
             "BSE_INDEX", "MCX_INDEX", "GLOBAL_INDEX", "CRYPTO")
PRICETYPES = ("MARKET", "LIMIT", "SL", "SL-M")
PRODUCTS = ("MIS", "NRML", "CNC")
ACTIONS = {"submit": "placeorder", "cancel": "cancelorder", "cancel_all": "cancelallorder"}
_ORDER_ACTIONS = {path: action for action, path in ACTIONS.items()}
_REQUIRED = {
    "placeorder": ("apikey", "strategy", "exchange", "symbol", "action", "quantity"),
    "cancelorder": ("apikey", "strategy", "orderid"),
    "cancelallorder": ("apikey", "strategy"),
    "orderstatus": ("apikey", "strategy", "orderid"),
    "orderbook": ("apikey",),
    "positionbook": ("apikey",),
}
_STATUS = {"accepted": "open", "new": "open", "partially_filled": "open", "filled": "complete",
           "canceled": "cancelled", "expired": "cancelled", "rejected": "rejected"}
_IST = ZoneInfo("Asia/Kolkata")


class OpenAlgoError(Exception):
    def __init__(self, status: int, message: object,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(str(message))
        self.status, self.message, self.headers = status, message, headers or {}


def _invalid(field: str, problem: str) -> OpenAlgoError:
    return OpenAlgoError(400, str({field: [problem]}))


def _number(body: dict[str, Any], field: str, default: float | None = None) -> float:
    value = body.get(field, default)
    try:
        if value is None or isinstance(value, bool):
            raise ValueError
        number = float(value)
    except (TypeError, ValueError):
        raise _invalid(field, "Not a valid number.") from None
    if not math.isfinite(number):
        raise _invalid(field, "Not a valid number.")
    return number


def _timestamp(t_ns: int) -> str:
    """OpenAlgo's order time: DD-MMM-YYYY HH:MM:SS, India time."""
    return datetime.fromtimestamp(t_ns / 1e9, _IST).strftime("%d-%b-%Y %H:%M:%S")


def _qty(x: float) -> int | float:
    return int(x) if x == int(x) else x


class OpenAlgoOrderApi:
    """OpenAlgo's order endpoints against the exchange's book; `trading` lends its per-key
    rate-limit windows, so both dialects on one key share the sim's order budget."""

    def __init__(self, exchange: Exchange, trading: TradingApi) -> None:
        self.exchange = exchange
        self.trading = trading
        self.meta: dict[str, tuple[str, str, str]] = {}  # order id → strategy, product, type
        self.products: dict[tuple[str, str], str] = {}  # (key, symbol) → last order's product

    def handle(self, method: str, path: str, body: bytes, now: float) -> Reply:
        """Answer one request; never raises for anything a client can send."""
        name = path.removeprefix(PREFIX).strip("/")
        action = _ORDER_ACTIONS.get(name)
        entry: dict[str, Any] = {"action": action, "method": method, "path": path,
                                 "dialect": "openalgo"}
        try:
            if name not in _REQUIRED:
                raise OpenAlgoError(404, f"endpoint not found: {path}")
            if method != "POST":
                raise OpenAlgoError(405, "The method is not allowed for the requested URL.")
            try:
                request = json.loads(body or b"null")
            except ValueError:
                raise OpenAlgoError(400, "request body is not valid JSON") from None
            if not isinstance(request, dict):
                raise OpenAlgoError(400, "request body must be a JSON object")
            missing = {f: ["Missing data for required field."]
                       for f in _REQUIRED[name] if request.get(f) in (None, "")}
            if missing:
                raise OpenAlgoError(400, str(missing))
            key = str(request["apikey"])
            exchange = self.exchange
            if exchange.faults.reject_auth or (exchange.options.keys
                                               and key not in exchange.options.keys):
                raise OpenAlgoError(403, "Invalid openalgo apikey")
            entry["key"] = key
            if action is not None:
                try:
                    self.trading._throttle(key, now)
                except ApiError as exc:
                    raise OpenAlgoError(429, "rate limit exceeded", exc.reply.headers) from None
            reply = Reply(200, getattr(self, "_" + name)(key, request, now, entry))
        except OrderRequestError as exc:
            reply = Reply(exc.status if exc.status == 404 else 400,
                          {"status": "error", "message": exc.message})
        except OpenAlgoError as exc:
            reply = Reply(exc.status, {"status": "error", "message": exc.message}, exc.headers)
            entry["reason"] = exc.message
        if action is not None:
            entry["status"] = reply.status
            self.exchange.journal.request(entry, now)
        return reply

    def _placeorder(self, key: str, body: dict[str, Any], now: float,
                    entry: dict[str, Any]) -> dict[str, Any]:
        venue, name = str(body["exchange"]), str(body["symbol"])
        if venue not in EXCHANGES:
            raise _invalid("exchange", f"Must be one of: {', '.join(EXCHANGES)}.")
        side = str(body["action"]).lower()
        if side not in ("buy", "sell"):
            raise _invalid("action", "Must be one of: BUY, SELL, buy, sell.")
        qty = _number(body, "quantity")
        if qty <= 0:
            raise _invalid("quantity", "Quantity must be a positive number.")
        if venue != "CRYPTO" and qty != int(qty):
            raise _invalid("quantity", f"Fractional quantity ({qty}) is not allowed for "
                                       "non-crypto exchanges.")
        pricetype = str(body.get("pricetype", "MARKET"))
        if pricetype not in PRICETYPES:
            raise _invalid("pricetype", f"Must be one of: {', '.join(PRICETYPES)}.")
        product = str(body.get("product", "MIS"))
        if product not in PRODUCTS:
            raise _invalid("product", f"Must be one of: {', '.join(PRODUCTS)}.")
        price = _number(body, "price", 0.0)
        if price < 0:
            raise _invalid("price", "Price must be a non-negative number.")
        if pricetype in ("SL", "SL-M"):
            raise OpenAlgoError(400, f"the sim does not simulate {pricetype} (stop) orders; "
                                     "send MARKET or LIMIT")
        if pricetype == "LIMIT" and price <= 0:
            raise OpenAlgoError(400, "a LIMIT order needs a price above 0")
        symbol = f"{venue}:{name}"
        exchange = self.exchange
        if not exchange.listed(symbol):
            raise OpenAlgoError(400, f"Symbol '{name}' not found for exchange '{venue}'")
        request = OrderRequest(symbol, qty, side, pricetype.lower(), "day",
                               price if pricetype == "LIMIT" else None, None, False)
        entry.update(request={k: v for k, v in body.items() if k != "apikey"}, symbol=symbol)
        order, _, updates = exchange.book.submit(
            key, request, exchange.touch(symbol, now), int(now * 1e9),
            reject=exchange.faults.reject_orders)
        self.meta[order.id] = (str(body["strategy"]), product, pricetype)
        self.products[(key, symbol)] = product
        entry["order_id"] = order.id
        exchange.publish(updates, now)
        exchange.refresh_active(now)
        return {"status": "success", "orderid": order.id}

    def _cancelorder(self, key: str, body: dict[str, Any], now: float,
                     entry: dict[str, Any]) -> dict[str, Any]:
        order_id = str(body["orderid"])
        entry["order_id"] = order_id
        exchange = self.exchange
        exchange.publish(exchange.book.cancel(key, order_id, int(now * 1e9)), now)
        exchange.refresh_active(now)
        return {"status": "success", "orderid": order_id}

    def _cancelallorder(self, key: str, body: dict[str, Any], now: float,
                        entry: dict[str, Any]) -> dict[str, Any]:
        exchange = self.exchange
        orders, updates = exchange.book.cancel_all(key, int(now * 1e9))
        exchange.publish(updates, now)
        exchange.refresh_active(now)
        ids = [o.id for o in orders]
        entry["order_ids"] = ids
        return {"status": "success", "canceled_orders": ids, "failed_cancellations": [],
                "message": f"Canceled {len(ids)} orders. Failed to cancel 0 orders."}

    def _orderstatus(self, key: str, body: dict[str, Any], now: float,
                     entry: dict[str, Any]) -> dict[str, Any]:
        order_id = str(body["orderid"])
        order = self.exchange.book.orders.get(order_id)
        if order is None or order.key != key:
            raise OpenAlgoError(404, f"Order {order_id} not found")
        data = self._row(order)
        avg = order.filled_notional / order.filled_qty if order.filled_qty else 0.0
        data["average_price"] = round(avg, 2) if data["order_status"] == "complete" else 0.0
        return {"status": "success", "data": data}

    def _orderbook(self, key: str, body: dict[str, Any], now: float,
                   entry: dict[str, Any]) -> dict[str, Any]:
        orders = sorted((o for o in self.exchange.book.orders.values() if o.key == key),
                        key=lambda o: o.created_ns)
        rows = [self._row(o) for o in orders]

        def count(**match: str) -> int:
            return sum(1 for r in rows if all(r[k] == v for k, v in match.items()))

        return {"status": "success", "data": {"orders": rows, "statistics": {
            "total_buy_orders": count(action="BUY"), "total_sell_orders": count(action="SELL"),
            "total_completed_orders": count(order_status="complete"),
            "total_open_orders": count(order_status="open"),
            "total_rejected_orders": count(order_status="rejected")}}}

    def _positionbook(self, key: str, body: dict[str, Any], now: float,
                      entry: dict[str, Any]) -> dict[str, Any]:
        account = self.exchange.book.accounts.get(key)
        rows: list[dict[str, Any]] = []
        for symbol, pos in sorted(account.positions.items()) if account else []:
            venue, _, name = symbol.rpartition(":")
            quote = self.exchange.feed.touch(symbol, now)
            ltp = (quote.bid + quote.ask) / 2 if quote is not None else pos.avg_price
            rows.append({"symbol": name, "exchange": venue,
                         "product": self.products.get((key, symbol), "MIS"),
                         "quantity": _qty(pos.qty), "average_price": round(pos.avg_price, 2),
                         "ltp": round(ltp, 2), "pnl": round((ltp - pos.avg_price) * pos.qty, 2)})
        return {"status": "success", "data": rows}

    def _row(self, order: Order) -> dict[str, Any]:
        """An order as OpenAlgo's orderbook lists it."""
        req = order.request
        venue, _, name = req.symbol.rpartition(":")
        _, product, pricetype = self.meta.get(
            order.id, ("", "MIS", "LIMIT" if req.limit_price is not None else "MARKET"))
        return {"symbol": name, "exchange": venue, "action": req.side.upper(),
                "quantity": _qty(req.qty), "price": req.limit_price or 0.0,
                "trigger_price": 0.0, "pricetype": pricetype, "product": product,
                "orderid": order.id, "order_status": _STATUS.get(order.status, "open"),
                "timestamp": _timestamp(order.created_ns)}
