"""Orders in Alpaca's trading dialect: validating a request and rendering an order. Pure.

`parse_order_request` accepts the body of `POST /v2/orders` as alpaca-py and plain clients send
it (numbers as JSON numbers or strings) and raises `OrderRequestError` with the HTTP status,
Alpaca error code and message for anything the exchange refuses outright. `Order.to_json()`
renders the order object every REST answer and trade update carries, with Alpaca's field set
(numbers as strings, RFC 3339 times, `order_class` "simple").
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from tradeops.sim.market import is_crypto, is_valid_symbol

SIDES = ("buy", "sell")
TYPES = ("market", "limit")
TIME_IN_FORCE = ("day", "gtc", "ioc", "fok")
#: Alpaca's codes: 40010001 for a malformed request, 42210000 for an unprocessable one.
CODE_INVALID = 40010001
CODE_UNPROCESSABLE = 42210000
_ASSET_NS = uuid.UUID("6f0b6b7e-5b1c-4c0e-9d3a-7a1d2e3f4a5b")


class OrderRequestError(Exception):
    """A request the exchange refuses without creating an order (HTTP 4xx)."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def body(self) -> dict[str, object]:
        return {"code": self.code, "message": self.message}


@dataclass(frozen=True)
class OrderRequest:
    symbol: str
    qty: float
    side: str
    type: str
    time_in_force: str
    limit_price: float | None
    client_order_id: str | None
    extended_hours: bool


def _invalid(message: str) -> OrderRequestError:
    return OrderRequestError(422, CODE_INVALID, message)


def _positive(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise _invalid(f"invalid {name}")
    try:
        number = float(value)
    except ValueError:
        raise _invalid(f"invalid {name}") from None
    if not math.isfinite(number):
        raise _invalid(f"invalid {name}")
    if number <= 0:
        raise _invalid(f"{name} must be > 0")
    return number


def parse_order_request(body: object, listed: Callable[[str], bool]) -> OrderRequest:
    """Validate a `POST /v2/orders` body; `listed(symbol)` says whether the exchange lists it."""
    if not isinstance(body, Mapping):
        raise _invalid("request body must be a JSON object")
    symbol = body.get("symbol")
    if not isinstance(symbol, str) or not symbol:
        raise _invalid("symbol is required")
    if not is_valid_symbol(symbol) or not listed(symbol):
        raise OrderRequestError(422, CODE_UNPROCESSABLE, f'asset "{symbol}" not found')
    if body.get("notional") is not None:
        raise _invalid("notional orders are not supported by the sim; send qty")
    if body.get("qty") is None:
        raise _invalid("qty is required")
    qty = _positive(body.get("qty"), "qty")
    side = body.get("side")
    if side not in SIDES:
        raise _invalid(f"invalid side {side!r}: must be buy or sell")
    order_type = body.get("type", body.get("order_type"))
    if order_type not in TYPES:
        raise _invalid(f"invalid order type {order_type!r}: the sim supports market and limit")
    tif = body.get("time_in_force")
    if tif not in TIME_IN_FORCE:
        raise _invalid(f"invalid time_in_force {tif!r}: one of {', '.join(TIME_IN_FORCE)}")
    limit_price = None
    if order_type == "limit":
        if body.get("limit_price") is None:
            raise _invalid("limit_price is required for limit orders")
        limit_price = _positive(body.get("limit_price"), "limit_price")
    elif body.get("limit_price") is not None:
        raise _invalid("limit_price must not be set for market orders")
    client_order_id = body.get("client_order_id")
    if client_order_id is not None and (
            not isinstance(client_order_id, str) or not 0 < len(client_order_id) <= 128):
        raise _invalid("client_order_id must be a string of 1 to 128 characters")
    extended = body.get("extended_hours", False)
    if not isinstance(extended, bool):
        raise _invalid("extended_hours must be true or false")
    return OrderRequest(symbol, qty, str(side), str(order_type), str(tif), limit_price,
                        client_order_id, extended)


def fmt(number: float) -> str:
    """A decimal string as Alpaca writes quantities and prices: `1`, `0.5`, `189.12`."""
    if number == int(number) and abs(number) < 1e15:
        return str(int(number))
    return f"{number:.9f}".rstrip("0").rstrip(".")


def iso(t_ns: int) -> str:
    """RFC 3339 with microseconds and a Z, as pydantic and datetime.fromisoformat read it."""
    moment = datetime.fromtimestamp(t_ns // 1000 / 1e6, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "Z"


def asset_id(symbol: str) -> str:
    """A stable asset UUID per symbol, as Alpaca gives every asset one."""
    return str(uuid.uuid5(_ASSET_NS, symbol))


@dataclass(slots=True)
class Order:
    id: str
    key: str
    client_order_id: str
    request: OrderRequest
    created_ns: int
    status: str = "accepted"
    updated_ns: int = 0
    filled_qty: float = 0.0
    filled_notional: float = 0.0
    filled_ns: int | None = None
    canceled_ns: int | None = None
    failed_ns: int | None = None

    @property
    def symbol(self) -> str:
        return self.request.symbol

    @property
    def remaining(self) -> float:
        return round(self.request.qty - self.filled_qty, 9)

    @property
    def working(self) -> bool:
        return self.status in ("accepted", "new", "partially_filled")

    def to_json(self) -> dict[str, object]:
        req = self.request
        avg = self.filled_notional / self.filled_qty if self.filled_qty else None
        created = iso(self.created_ns)
        return {
            "id": self.id,
            "client_order_id": self.client_order_id,
            "created_at": created,
            "updated_at": iso(self.updated_ns or self.created_ns),
            "submitted_at": created,
            "filled_at": iso(self.filled_ns) if self.filled_ns else None,
            "expired_at": None,
            "canceled_at": iso(self.canceled_ns) if self.canceled_ns else None,
            "failed_at": iso(self.failed_ns) if self.failed_ns else None,
            "replaced_at": None,
            "replaced_by": None,
            "replaces": None,
            "asset_id": asset_id(req.symbol),
            "symbol": req.symbol,
            "asset_class": "crypto" if is_crypto(req.symbol) else "us_equity",
            "notional": None,
            "qty": fmt(req.qty),
            "filled_qty": fmt(self.filled_qty),
            "filled_avg_price": fmt(round(avg, 6)) if avg is not None else None,
            "order_class": "",
            "order_type": req.type,
            "type": req.type,
            "side": req.side,
            "position_intent": None,
            "time_in_force": req.time_in_force,
            "limit_price": fmt(req.limit_price) if req.limit_price is not None else None,
            "stop_price": None,
            "status": self.status,
            "extended_hours": req.extended_hours,
            "legs": None,
            "trail_percent": None,
            "trail_price": None,
            "hwm": None,
        }
