"""The gateway's book of orders: risk checks, routing ids, and what each broker event means
for the strategy that owns the order. Pure: no sockets, no clocks.

An order's life here: `new` (checked, given a routing id, queued for the rate limit) →
`sent` (the REST call is out) → `working` once the broker accepts it → `partially_filled` →
`filled`; or `cancelled` / `rejected` at any point. Every change produces an update for the
owning strategy: {"event": accepted|rejected|partially_filled|filled|cancelled, ...}.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tradeops.protocol.alpaca_trading import TradeUpdate, broker_number, owner_of, routing_id
from tradeops.topology.model import Strategy, Topology

LIVE = ("new", "sent", "working", "partially_filled")
TIFS = ("day", "gtc", "ioc", "fok", "opg", "cls")
# Alpaca's events, as the strategy-facing event names.
EVENTS = {
    "new": "accepted",
    "accepted": "accepted",
    "partial_fill": "partially_filled",
    "fill": "filled",
    "canceled": "cancelled",
    "expired": "cancelled",
    "rejected": "rejected",
    "done_for_day": "cancelled",
}


@dataclass
class OrderRecord:
    strategy: str
    local_id: str
    client_order_id: str
    symbol: str
    side: str
    qty: float
    limit: float | None
    tif: str
    status: str = "new"
    broker_id: str | None = None
    filled_qty: float = 0.0
    avg_price: float | None = None
    reason: str = ""
    cancel_requested: bool = False

    @property
    def live(self) -> bool:
        return self.status in LIVE

    @property
    def signed_remaining(self) -> float:
        remaining = max(0.0, self.qty - self.filled_qty)
        return remaining if self.side == "buy" else -remaining

    def to_json(self) -> dict[str, Any]:
        return {
            "order_id": self.local_id,
            "client_order_id": self.client_order_id,
            "broker_order_id": self.broker_id,
            "symbol": self.symbol,
            "side": self.side,
            "qty": self.qty,
            "limit": self.limit,
            "tif": self.tif,
            "status": self.status,
            "filled_qty": self.filled_qty,
            "avg_price": self.avg_price,
        }


Update = tuple[str, dict[str, Any]]  # (strategy, the update it receives)


@dataclass
class OrderDesk:
    broker: str
    strategies: dict[str, Strategy]
    orders: dict[str, OrderRecord] = field(default_factory=dict)  # by client_order_id
    by_local: dict[tuple[str, str], str] = field(default_factory=dict)
    positions: dict[tuple[str, str], float] = field(default_factory=dict)
    # What the journal knew when this gateway started (restore), per client order id:
    # (strategy, symbol, side, filled), the filled part raised by what the broker says.
    journal_orders: dict[str, tuple[str, str, str, float]] = field(default_factory=dict)

    @classmethod
    def for_broker(cls, topology: Topology, broker: str) -> OrderDesk:
        return cls(broker, {n: s for n, s in topology.strategies.items() if s.broker == broker})

    # -- new orders -------------------------------------------------------------------------
    def check(
        self,
        strategy: str,
        symbol: str,
        side: str,
        qty: float,
        limit: float | None,
        tif: str,
        price: float | None,
        checking: str = "",
    ) -> str | None:
        """Why this order must not go to the broker, or None. `price`: the latest price of
        the symbol (for max_notional when there is no limit price); `checking`: the routing
        id of the order being checked, when it is already in the book (it counts once, as
        the order, not again among the working ones)."""
        cfg = self.strategies.get(strategy)
        if cfg is None:
            return f"strategy '{strategy}' does not trade on broker '{self.broker}'"
        if side not in ("buy", "sell"):
            return f"side must be buy or sell, not {side!r}"
        if not qty > 0:
            return f"qty must be greater than zero, not {qty}"
        if limit is not None and not limit > 0:
            return f"limit price must be greater than zero, not {limit}"
        if tif not in TIFS:
            return f"time in force must be one of {', '.join(TIFS)}, not {tif!r}"
        allowed = cfg.limits.symbols if cfg.limits.symbols is not None else cfg.symbols
        if symbol not in allowed:
            source = "limits.symbols" if cfg.limits.symbols is not None else "symbols"
            return f"{symbol} is not among strategy '{strategy}''s {source}"
        lim = cfg.limits
        if lim.max_order_qty is not None and qty > lim.max_order_qty:
            return f"qty {qty:g} exceeds limits.max_order_qty {lim.max_order_qty:g}"
        if lim.max_position is not None:
            signed = qty if side == "buy" else -qty
            exposure = (
                self.position(strategy, symbol)
                + signed
                + sum(
                    o.signed_remaining
                    for o in self.working(strategy)
                    if o.symbol == symbol and o.side == side and o.client_order_id != checking
                )
            )
            if abs(exposure) > lim.max_position:
                return (
                    f"position would reach {exposure:g} {symbol} (with working orders), "
                    f"beyond limits.max_position {lim.max_position:g}"
                )
        if lim.max_notional is not None:
            at = limit if limit is not None else price
            if at is None:
                return f"no price for {symbol} yet to check limits.max_notional; retry later"
            if qty * at > lim.max_notional:
                return (
                    f"notional {qty * at:,.2f} exceeds limits.max_notional {lim.max_notional:,.2f}"
                )
        return None

    def new(
        self,
        strategy: str,
        local_id: str,
        symbol: str,
        side: str,
        qty: float,
        limit: float | None,
        tif: str,
    ) -> OrderRecord:
        cid = routing_id(strategy)
        # An order the desk places itself (flatten) has no local id: its routing id is it.
        record = OrderRecord(strategy, local_id or cid, cid, symbol, side, qty, limit, tif)
        self.orders[record.client_order_id] = record
        self.by_local[(strategy, record.local_id)] = record.client_order_id
        return record

    def rejected(self, record: OrderRecord, reason: str) -> Update:
        record.status, record.reason = "rejected", reason
        return self._update(record, "rejected", reason=reason)

    # -- the broker's answers -----------------------------------------------------------------
    def on_submitted(self, cid: str, order: dict[str, Any] | None, error: str) -> list[Update]:
        """The POST came back: the broker's order object, or an error message."""
        record = self.orders.get(cid)
        if record is None:
            return []
        if order is None:
            return [self.rejected(record, f"broker refused: {error}")]
        record.broker_id = str(order.get("id") or record.broker_id or "")
        if record.status in ("new", "sent"):
            record.status = "working"
            return [self._update(record, "accepted")]
        return []

    def on_trade_update(self, update: TradeUpdate) -> list[Update]:
        cid = update.client_order_id
        record = self.orders.get(cid) or self._adopt(update.order)
        if record is None:
            return []
        event = EVENTS.get(update.event)
        if event is None:
            return []
        filled = fill_number(update.order.get("filled_qty"), "filled_qty", cid)
        avg = update.order.get("filled_avg_price")
        avg_price = (fill_number(avg, "filled_avg_price", cid) if avg not in (None, "")
                     else update.price)  # fmt: skip
        record.broker_id = str(update.order.get("id") or record.broker_id or "")
        fill_qty = filled - record.filled_qty
        if fill_qty > 0:
            key = (record.strategy, record.symbol)
            signed = fill_qty if record.side == "buy" else -fill_qty
            self.positions[key] = self.positions.get(key, 0.0) + signed
            record.filled_qty = filled
            record.avg_price = avg_price
        if event == "accepted":
            if record.status in ("new", "sent"):
                record.status = "working"
                return [self._update(record, "accepted")]
            return []  # the POST's answer already said so
        if event in ("partially_filled", "filled"):
            if fill_qty <= 0:
                return []
            record.status = event
            return [self._update(record, event, fill_qty=fill_qty, fill_price=update.price)]
        if not record.live:
            return []
        record.status = event
        reason = str(update.order.get("status", "")) if event == "rejected" else ""
        return [self._update(record, event, reason=reason or update.event)]

    def _adopt(self, order: dict[str, Any]) -> OrderRecord | None:
        """An order of ours this gateway does not know (it restarted): take it over."""
        cid = str(order.get("client_order_id", ""))
        strategy = owner_of(cid)
        if strategy is None or strategy not in self.strategies:
            return None
        limit = order.get("limit_price")
        record = OrderRecord(
            strategy,
            cid,
            cid,
            str(order.get("symbol", "")),
            str(order.get("side", "")),
            float(order.get("qty") or 0),
            float(limit) if limit not in (None, "") else None,
            str(order.get("time_in_force", "day")),
            status="working",
            broker_id=str(order.get("id", "")),
            filled_qty=float(order.get("filled_qty") or 0),
        )
        if order.get("status") == "partially_filled":
            record.status = "partially_filled"
        self.orders[cid] = record
        self.by_local[(strategy, cid)] = cid
        return record

    def adopt_open(self, orders: list[dict[str, Any]]) -> int:
        """Take over the broker's open orders that carry our routing ids (gateway start)."""
        return sum(
            1
            for o in orders
            if o.get("client_order_id") not in self.orders and self._adopt(o) is not None
        )

    # -- cancels ------
    def find(self, strategy: str, local_id: str) -> OrderRecord | None:
        cid = self.by_local.get((strategy, local_id))
        return self.orders.get(cid) if cid else None

    def cancelled_before_sending(self, record: OrderRecord) -> Update:
        record.status = "cancelled"
        return self._update(record, "cancelled", reason="cancelled before it reached the broker")

    def working(self, strategy: str) -> list[OrderRecord]:
        return [o for o in self.orders.values() if o.strategy == strategy and o.live]

    def restore(self, fills: Mapping[str, tuple[str, str, str, float]]) -> None:
        """Positions as the journal knows them (a gateway starting: they must not reset)."""
        self.journal_orders = dict(fills)
        for strategy, symbol, side, qty in fills.values():
            if qty and strategy in self.strategies:
                key = (strategy, symbol)
                self.positions[key] = self.positions.get(key, 0.0) + (
                    qty if side == "buy" else -qty)

    def fill_missed(self, cid: str, broker_filled: float) -> None:
        """The broker says `cid` filled more than the journal knew (fills lost in a crash):
        count the difference into the position once."""
        known = self.journal_orders.get(cid)
        if known is None:
            return
        strategy, symbol, side, counted = known
        extra = broker_filled - counted
        if extra > 0:
            self.journal_orders[cid] = (strategy, symbol, side, broker_filled)
            key = (strategy, symbol)
            self.positions[key] = self.positions.get(key, 0.0) + (
                extra if side == "buy" else -extra)

    def position(self, strategy: str, symbol: str) -> float:
        return self.positions.get((strategy, symbol), 0.0)

    def positions_of(self, strategy: str) -> dict[str, float]:
        return {sym: qty for (s, sym), qty in self.positions.items() if s == strategy and qty}

    def _update(self, record: OrderRecord, event: str, **extra: Any) -> Update:
        return record.strategy, {
            "op": "order_update",
            "strategy": record.strategy,
            "event": event,
            "order": record.to_json(),
            "position": self.position(record.strategy, record.symbol),
            **extra,
        }


class UnreadableUpdate(ValueError):
    """A broker's order update whose fill numbers are not numbers: nothing of it is applied
    (a fill that cannot be counted must not move a position or an order's state)."""


def fill_number(value: object, field: str, cid: str) -> float:
    """A fill number of an order update (`broker_number`); 0 when absent; UnreadableUpdate
    for one that is not a number or is negative."""
    try:
        number = broker_number(value)
    except ValueError:
        number = -1.0
    if number is None:
        return 0.0
    if number < 0:
        raise UnreadableUpdate(f"order {cid}: {field} {value!r} is not a quantity")
    return number
