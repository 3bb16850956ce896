"""Order matching, positions and accounts of the simulated exchange. Pure.

One account per API key. Orders match against the simulated market's quotes, never against
each other: a buy takes the ask, a sell hits the bid, each quote offering its size once
(orders share it in time priority). A market order, or a limit order that is marketable on
arrival, fills at the touch at once; what the touch cannot fill keeps working and fills on the
next quotes. A resting limit order fills at its limit price when the walk crosses it (ask <=
limit for a buy, bid >= limit for a sell). `ioc` cancels what the touch cannot fill, `fok`
cancels unless the touch fills all. There is no buying-power check and shorting is allowed.

Every change returns `Update`s: the trade-update events (`new`, `partial_fill`, `fill`,
`canceled`, `rejected`) the `/stream` endpoint sends, in order.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field

from tradeops.sim.market import Quote
from tradeops.sim.orders import Order, OrderRequest, OrderRequestError, fmt, iso


class OrderNotFound(OrderRequestError):
    def __init__(self, order_id: str) -> None:
        super().__init__(404, 40410000, f"order not found: {order_id}")


@dataclass(frozen=True, slots=True)
class Update:
    """One trade-update event, with the order as it was at that moment."""

    key: str
    event: str
    order: dict[str, object]
    t_ns: int
    price: float | None = None
    qty: float | None = None
    position_qty: float | None = None
    execution_id: str | None = None

    def to_json(self) -> dict[str, object]:
        """The `data` of a `trade_updates` message."""
        data: dict[str, object] = {"event": self.event, "order": self.order,
                                   "timestamp": iso(self.t_ns)}
        if self.execution_id is not None:
            data["execution_id"] = self.execution_id
            data["price"] = fmt(self.price or 0.0)
            data["qty"] = fmt(self.qty or 0.0)
            data["position_qty"] = fmt(self.position_qty or 0.0)
        return data


@dataclass(slots=True)
class Position:
    qty: float = 0.0
    avg_price: float = 0.0

    def apply(self, signed_qty: float, price: float) -> None:
        new_qty = round(self.qty + signed_qty, 9)
        if self.qty == 0 or (self.qty > 0) == (signed_qty > 0):
            self.avg_price = (self.avg_price * abs(self.qty) + price * abs(signed_qty)) / abs(
                new_qty)
        elif abs(signed_qty) > abs(self.qty):
            self.avg_price = price  # flipped through zero: the rest opened at this price
        self.qty = new_qty
        if new_qty == 0:
            self.avg_price = 0.0


@dataclass(slots=True)
class Account:
    key: str
    id: str
    number: str
    cash: float
    created_ns: int
    positions: dict[str, Position] = field(default_factory=dict)


class Book:
    """All orders and accounts; ids come from a generator seeded by the sim's seed."""

    def __init__(self, *, seed: int, cash: float) -> None:
        self._rng = random.Random(seed)
        self._cash = cash
        self.accounts: dict[str, Account] = {}
        self.orders: dict[str, Order] = {}
        self._by_client: dict[tuple[str, str], Order] = {}
        self._working: dict[str, list[Order]] = {}

    def _uuid(self) -> str:
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    def account(self, key: str, now_ns: int) -> Account:
        account = self.accounts.get(key)
        if account is None:
            number = f"PA{self._rng.getrandbits(40):012d}"[:14]
            account = Account(key, self._uuid(), number, self._cash, now_ns)
            self.accounts[key] = account
        return account

    def working_symbols(self) -> set[str]:
        return {symbol for symbol, orders in self._working.items() if orders}

    def by_client_id(self, key: str, client_order_id: str) -> Order | None:
        return self._by_client.get((key, client_order_id))

    def get(self, key: str, order_id: str) -> Order:
        order = self.orders.get(order_id)
        if order is None or order.key != key:
            raise OrderNotFound(order_id)
        return order

    def submit(self, key: str, request: OrderRequest, touch: Quote | None, now_ns: int,
               *, reject: bool = False) -> tuple[Order, dict[str, object], list[Update]]:
        """Accept an order and fill what the touch allows (`touch` None: no market now).

        Returns the order, its JSON as accepted (what `POST /v2/orders` answers, before any
        event), and the updates in order. Raises OrderRequestError for a duplicate client id.
        """
        self.account(key, now_ns)
        client_id = request.client_order_id or self._uuid()
        if (key, client_id) in self._by_client:
            raise OrderRequestError(422, 40010001, "client_order_id must be unique")
        order = Order(self._uuid(), key, client_id, request, now_ns, updated_ns=now_ns)
        self.orders[order.id] = order
        self._by_client[(key, client_id)] = order
        accepted = order.to_json()
        if reject:
            order.status = "rejected"
            order.failed_ns = now_ns
            return order, accepted, [Update(key, "rejected", order.to_json(), now_ns)]
        order.status = "new"
        updates = [Update(key, "new", order.to_json(), now_ns)]
        tif = request.time_in_force
        available = 0.0
        if touch is not None:
            price = touch.ask if request.side == "buy" else touch.bid
            size = touch.ask_size if request.side == "buy" else touch.bid_size
            if _crosses(request, price):
                available = size
        if tif == "fok" and available < request.qty:
            available = 0.0
        if available > 0 and touch is not None:
            price = touch.ask if request.side == "buy" else touch.bid
            updates.append(self._fill(order, min(available, request.qty), price, now_ns))
        if order.working:
            if tif in ("ioc", "fok"):
                updates.append(self._cancel(order, now_ns))
            else:
                self._working.setdefault(request.symbol, []).append(order)
        return order, accepted, updates

    def on_quote(self, quote: Quote) -> list[Update]:
        """Fill working orders of the quote's symbol that the new touch reaches."""
        orders = self._working.get(quote.symbol)
        if not orders:
            return []
        updates: list[Update] = []
        ask_left, bid_left = quote.ask_size, quote.bid_size
        for order in orders:
            req = order.request
            if req.side == "buy":
                if ask_left > 0 and _crosses(req, quote.ask):
                    price = quote.ask if req.type == "market" else req.limit_price or quote.ask
                    qty = min(ask_left, order.remaining)
                    ask_left -= qty
                    updates.append(self._fill(order, qty, price, quote.t_ns))
            elif bid_left > 0 and _crosses(req, quote.bid):
                price = quote.bid if req.type == "market" else req.limit_price or quote.bid
                qty = min(bid_left, order.remaining)
                bid_left -= qty
                updates.append(self._fill(order, qty, price, quote.t_ns))
        if updates:
            self._working[quote.symbol] = [o for o in orders if o.working]
        return updates

    def cancel(self, key: str, order_id: str, now_ns: int) -> list[Update]:
        """Cancel one working order; 404 if unknown, 422 if it is no longer cancelable."""
        order = self.get(key, order_id)
        if not order.working:
            raise OrderRequestError(422, 42210000,
                                    f"order is not cancelable (status {order.status})")
        return [self._cancel(order, now_ns)]

    def cancel_all(self, key: str, now_ns: int) -> tuple[list[Order], list[Update]]:
        """Cancel every working order of an account; returns the orders and their updates."""
        canceled: list[Order] = []
        updates: list[Update] = []
        for order in list(self.orders.values()):
            if order.key == key and order.working:
                updates.append(self._cancel(order, now_ns))
                canceled.append(order)
        return canceled, updates

    def _fill(self, order: Order, qty: float, price: float, t_ns: int) -> Update:
        req = order.request
        qty = round(qty, 9)
        order.filled_qty = round(order.filled_qty + qty, 9)
        order.filled_notional += qty * price
        order.updated_ns = t_ns
        done = order.remaining <= 0
        order.status = "filled" if done else "partially_filled"
        if done:
            order.filled_ns = t_ns
        account = self.accounts[order.key]
        signed = qty if req.side == "buy" else -qty
        account.cash -= signed * price
        position = account.positions.setdefault(req.symbol, Position())
        position.apply(signed, price)
        if position.qty == 0:
            del account.positions[req.symbol]
        return Update(order.key, "fill" if done else "partial_fill", order.to_json(), t_ns,
                      price=price, qty=qty, position_qty=position.qty,
                      execution_id=self._uuid())

    def _cancel(self, order: Order, now_ns: int) -> Update:
        order.status = "canceled"
        order.canceled_ns = order.updated_ns = now_ns
        working = self._working.get(order.symbol)
        if working and order in working:
            working.remove(order)
        return Update(order.key, "canceled", order.to_json(), now_ns)


def _crosses(request: OrderRequest, price: float) -> bool:
    if request.type == "market":
        return True
    limit = request.limit_price or 0.0
    return price <= limit if request.side == "buy" else price >= limit
