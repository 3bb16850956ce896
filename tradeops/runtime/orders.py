"""What a strategy sees of its orders: `Order` and `OrderUpdate`, plain immutable values."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

OrderEvent = Literal["accepted", "rejected", "partially_filled", "filled", "cancelled"]
FINAL = ("filled", "cancelled", "rejected")


@dataclass(frozen=True)
class Order:
    """One order as the strategy sent it, and how far it got.

    `order_id` is the id `buy`/`sell` returned; `status` is new (not yet acknowledged),
    working, partially_filled, filled, cancelled or rejected."""

    order_id: str
    symbol: str
    side: Literal["buy", "sell"]
    qty: float
    limit: float | None = None
    tif: str = "day"
    status: str = "new"
    filled_qty: float = 0.0
    avg_price: float | None = None
    client_order_id: str = ""
    broker_order_id: str | None = None

    @property
    def working(self) -> bool:
        return self.status not in FINAL

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Order:
        limit, avg = data.get("limit"), data.get("avg_price")
        return cls(
            order_id=str(data.get("order_id", "")),
            symbol=str(data.get("symbol", "")),
            side="sell" if data.get("side") == "sell" else "buy",
            qty=float(data.get("qty") or 0.0),
            limit=float(limit) if limit is not None else None,
            tif=str(data.get("tif", "day")),
            status=str(data.get("status", "new")),
            filled_qty=float(data.get("filled_qty") or 0.0),
            avg_price=float(avg) if avg is not None else None,
            client_order_id=str(data.get("client_order_id") or ""),
            broker_order_id=data.get("broker_order_id"),
        )


@dataclass(frozen=True)
class OrderUpdate:
    """What happened to an order. `reason` explains a rejection (which limit, what the broker
    said); `fill_qty`/`fill_price` describe the fill of a (partially_)filled event;
    `position` is the strategy's position in the symbol after it."""

    event: OrderEvent
    order: Order
    reason: str = ""
    fill_qty: float = 0.0
    fill_price: float | None = None
    position: float = 0.0

    @property
    def order_id(self) -> str:
        return self.order.order_id
