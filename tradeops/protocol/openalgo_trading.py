"""OpenAlgo's REST order API, client side, sans-I/O: the router's requests in OpenAlgo's words.

The order router speaks one vocabulary, Alpaca's (`alpaca_trading.HttpRequest`: submit,
cancel, cancel-all, open orders, an order by its routing id, positions). `OpenAlgoOrders`
turns each of those into the OpenAlgo call that does the same thing, and OpenAlgo's answer
back into the shape the router reads, so the router, its journal, limits, halts, auto_cancel
and reconciliation work unchanged on an OpenAlgo broker.

- submit (`POST /v2/orders`) → `placeorder` {strategy, exchange, symbol, action, quantity,
  pricetype, product, price, trigger_price, disclosed_quantity};
- cancel (`DELETE /v2/orders/{id}`) → `cancelorder` {strategy, orderid};
- cancel-all (`DELETE /v2/orders`) → `cancelallorder` {strategy};
- open orders (`GET /v2/orders`) → `orderbook`, keeping orders `open` or `trigger pending`;
- one order (`GET /v2/orders:by_client_order_id`) → `orderstatus` {strategy, orderid};
- positions (`GET /v2/positions`) → `positionbook`, keeping rows of the configured product.

Each is a POST of JSON under `/api/v1/` with the API key in the body (`apikey`).

OpenAlgo has no client order id: the routing id (`t1.STRATEGY.UNIQUE`) cannot travel with the
order. This class keeps routing id ↔ OpenAlgo order id from each `placeorder` answer (and a
gateway seeds it from its journal's `accepted` lines at start), so updates still reach the
strategy that owns the order. The strategy's name goes in OpenAlgo's `strategy` field.

OpenAlgo's `orderstatus` carries no filled quantity: an order is reported filled, all of it at
`average_price`, when its status becomes `complete`; an `open` order that is partly filled
looks unfilled (docs/brokers/openalgo.md says what follows from that).
"""

from __future__ import annotations

import json
import urllib.parse
from dataclasses import dataclass
from typing import Any

from tradeops.protocol import alpaca_trading as at

PREFIX = "/api/v1"
PRODUCTS = ("MIS", "CNC", "NRML")
DEFAULT_PRODUCT = "MIS"
DEFAULT_URL = "http://127.0.0.1:5000"  # OpenAlgo's own default host
#: The only time in force OpenAlgo's placeorder has: orders live for the trading day.
TIFS = ("day",)
#: Strategy API order types → OpenAlgo pricetype (the Strategy API sends market or limit).
PRICETYPES = {"market": "MARKET", "limit": "LIMIT", "stop": "SL-M", "stop_limit": "SL"}
#: OpenAlgo's order_status (lower case, as its brokers' mappings write it) → Alpaca's status,
#: which the router reads. Anything else (a broker's intermediate state) is still working.
STATUSES = {"open": "new", "trigger pending": "new", "complete": "filled",
            "cancelled": "canceled", "canceled": "canceled", "rejected": "rejected"}
WORKING = ("open", "trigger pending")
FALLBACK_STRATEGY = "tradeops"


@dataclass(frozen=True)
class Call:
    """One OpenAlgo REST call: a POST of `body` (with the API key) to `path`."""

    path: str
    body: dict[str, Any]


@dataclass(frozen=True)
class Answer:
    """What the router gets back, in its own vocabulary: an HTTP status and a JSON body."""

    status: int
    body: Any = None

    def encoded(self) -> bytes:
        return json.dumps(self.body).encode() if self.body is not None else b""


def split_symbol(symbol: str) -> tuple[str, str]:
    """`NSE:RELIANCE` → ("NSE", "RELIANCE"); ValueError naming the form otherwise."""
    exchange, sep, name = symbol.partition(":")
    if not sep or not exchange or not name:
        raise ValueError(f"{symbol!r} is not EXCHANGE:SYMBOL (e.g. NSE:RELIANCE)")
    return exchange, name


def message_of(body: Any) -> str:
    """The message of OpenAlgo's `{"status": "error", "message": ...}` (a validation error's
    is an object of field → problems) as one line."""
    message = body.get("message") if isinstance(body, dict) else None
    if isinstance(message, dict | list):
        return json.dumps(message)
    return str(message or "no message")


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


class OpenAlgoOrders:
    """The translation for one account (one API key). Not thread-safe: one sender uses it."""

    def __init__(self, api_key: str, product: str = DEFAULT_PRODUCT) -> None:
        if product not in PRODUCTS:
            raise ValueError(f"product {product!r}: one of {', '.join(PRODUCTS)}")
        self._api_key = api_key
        self.product = product
        self.order_ids: dict[str, str] = {}  # routing id → OpenAlgo order id
        self.routing_ids: dict[str, str] = {}  # OpenAlgo order id → routing id

    def know(self, client_order_id: str, order_id: str) -> None:
        """An order of ours and its OpenAlgo id (from a placeorder answer or the journal)."""
        if client_order_id and order_id:
            self.order_ids[client_order_id] = order_id
            self.routing_ids[order_id] = client_order_id

    def _post(self, path: str, **fields: Any) -> Call:
        return Call(f"{PREFIX}/{path}", {"apikey": self._api_key, **fields})

    def call_for(self, request: at.HttpRequest) -> Call | Answer:
        """The OpenAlgo call that carries out `request`, or the answer at once when no call
        is needed (or none can do it)."""
        url = urllib.parse.urlsplit(request.path)
        path, query = url.path, dict(urllib.parse.parse_qsl(url.query))
        if request.method == "POST" and path == "/v2/orders":
            return self._place(request.body or {})
        if request.method == "DELETE" and path == "/v2/orders":
            return self._post("cancelallorder", strategy=FALLBACK_STRATEGY)
        if request.method == "DELETE" and path.startswith("/v2/orders/"):
            target = path.removeprefix("/v2/orders/")
            owner = at.owner_of(self.routing_ids.get(target, "")) or FALLBACK_STRATEGY
            return self._post("cancelorder", strategy=owner, orderid=target)
        if request.method == "GET" and path == "/v2/orders":
            return self._post("orderbook")
        if request.method == "GET" and path == "/v2/orders:by_client_order_id":
            cid = query.get("client_order_id", "")
            order_id = self.order_ids.get(cid)
            if order_id is None:  # no placeorder answer ever named it: OpenAlgo has no other
                return Answer(404, {"message": f"no OpenAlgo order id is known for {cid}"})
            return self._post("orderstatus", strategy=at.owner_of(cid) or FALLBACK_STRATEGY,
                              orderid=order_id)
        if request.method == "GET" and path == "/v2/positions":
            return self._post("positionbook")
        return Answer(501, {"message": f"OpenAlgo has no equivalent of {request.method} "
                                       f"{path}"})

    def _place(self, body: dict[str, Any]) -> Call | Answer:
        cid = str(body.get("client_order_id", ""))
        try:
            exchange, symbol = split_symbol(str(body.get("symbol", "")))
        except ValueError as exc:
            return Answer(422, {"message": str(exc)})
        tif = str(body.get("time_in_force", "day"))
        if tif not in TIFS:
            return Answer(422, {"message": f"OpenAlgo orders are DAY orders; time in force "
                                           f"{tif!r} is not available"})
        pricetype = PRICETYPES.get(str(body.get("type", "market")))
        if pricetype is None:
            return Answer(422, {"message": f"order type {body.get('type')!r} has no OpenAlgo "
                                           "pricetype"})
        limit = body.get("limit_price")
        return self._post(
            "placeorder", strategy=at.owner_of(cid) or FALLBACK_STRATEGY, exchange=exchange,
            symbol=symbol, action=str(body.get("side", "")).upper(),
            quantity=str(body.get("qty")), pricetype=pricetype, product=self.product,
            price=str(limit) if limit is not None else "0", trigger_price="0",
            disclosed_quantity="0")

    def answer(self, request: at.HttpRequest, call: Call, status: int, body: Any) -> Answer:
        """OpenAlgo's answer to `call` (made for `request`) in the router's vocabulary."""
        ok = 200 <= status < 300 and isinstance(body, dict) and body.get("status") == "success"
        if not ok:
            # An HTTP error keeps its status; a 200 that says error is a refusal (422).
            return Answer(status if status >= 400 else 422,
                          {"message": message_of(body)})
        name = call.path.removeprefix(PREFIX + "/")
        if name == "placeorder":
            order_id = str(body.get("orderid", ""))
            cid = str((request.body or {}).get("client_order_id", ""))
            self.know(cid, order_id)
            asked = request.body or {}
            return Answer(200, {"id": order_id, "client_order_id": cid, "status": "new",
                                **{k: asked.get(k) for k in ("symbol", "side", "qty", "type",
                                                             "limit_price", "time_in_force")},
                                "filled_qty": 0, "filled_avg_price": None})
        if name == "cancelorder":
            return Answer(204)
        if name == "cancelallorder":
            return Answer(207, [{"id": str(i), "status": 200}
                                for i in body.get("canceled_orders") or []])
        if name == "orderstatus":
            data = body.get("data") if isinstance(body.get("data"), dict) else {}
            return Answer(200, self._from_openalgo(data))
        if name == "orderbook":
            data = body.get("data")
            orders = data.get("orders") if isinstance(data, dict) else data
            return Answer(200, [self._from_openalgo(o) for o in orders or []
                                if isinstance(o, dict)
                                and str(o.get("order_status", "")).lower() in WORKING])
        if name == "positionbook":
            rows = body.get("data") if isinstance(body.get("data"), list) else []
            return Answer(200, self.positions(rows))
        return Answer(200, body)

    def positions(self, rows: list[Any]) -> list[dict[str, Any]]:
        """positionbook rows of this account's product as `{symbol: EXCHANGE:SYMBOL, qty}`,
        net quantity signed (negative: short), summed per symbol."""
        net: dict[str, float] = {}
        for row in rows:
            if not isinstance(row, dict) or str(row.get("product", "")).upper() != self.product:
                continue
            symbol = f"{row.get('exchange', '')}:{row.get('symbol', '')}"
            net[symbol] = net.get(symbol, 0.0) + _number(row.get("quantity"))
        return [{"symbol": s, "qty": q} for s, q in sorted(net.items()) if q]

    def _from_openalgo(self, data: dict[str, Any]) -> dict[str, Any]:
        """An OpenAlgo order (orderstatus data or an orderbook row) as the router reads one."""
        order_id = str(data.get("orderid", ""))
        cid = self.routing_ids.get(order_id, "")
        state = str(data.get("order_status", "")).lower()
        status = STATUSES.get(state, "new")
        qty = _number(data.get("quantity"))
        filled = qty if status == "filled" else 0.0
        avg = _number(data.get("average_price")) if status == "filled" else 0.0
        limit = str(data.get("pricetype", "")).upper() in ("LIMIT", "SL")
        return {
            "id": order_id, "client_order_id": cid, "status": status,
            "broker_status": state,
            "symbol": f"{data.get('exchange', '')}:{data.get('symbol', '')}",
            "side": str(data.get("action", "")).lower(), "qty": qty,
            "type": "limit" if limit else "market",
            "limit_price": _number(data.get("price")) if limit else None,
            "time_in_force": "day", "filled_qty": filled, "filled_avg_price": avg or None,
        }
