"""A host's view of its strategies' orders: what they sent, how it went, their positions.

The gateway is the authority; this mirror is kept current by its updates so that
`self.orders()` and `self.position()` answer without a round trip. Orders refused before
leaving the process (not safe to trade, gateway unreachable) are journalled here and their
`rejected` updates delivered on the host's next pass, never from inside `buy()`.
"""

from __future__ import annotations

import itertools
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from loguru import logger

from tradeops.gateway.client import GatewayError
from tradeops.gateway.journal import Journal, journal_path
from tradeops.protocol.alpaca_trading import base36
from tradeops.runtime.orders import FINAL, Order, OrderUpdate

if TYPE_CHECKING:
    from tradeops.runtime.host import Host


class HostOrders:
    def __init__(self, host: Host) -> None:
        self.host = host
        self.book: dict[str, dict[str, Order]] = {}
        self.positions: dict[tuple[str, str], float] = {}
        self._local: deque[tuple[str, OrderUpdate]] = deque()
        self._ids = itertools.count(1)
        self._prefix = base36(time.time_ns() // 1_000_000)  # ids stay unique across restarts
        self._journal: Journal | None = None

    def take_local(self) -> Iterator[tuple[str, OrderUpdate]]:
        """Updates of orders refused inside this process, to deliver now."""
        while self._local:
            yield self._local.popleft()

    def on_snapshot(self, message: dict[str, Any]) -> None:
        """The gateway's answer to hello: a strategy's surviving orders and positions."""
        name = str(message.get("strategy"))
        self.book[name] = {o.order_id: o for o in map(Order.from_json, message["working"])}
        for symbol, qty in (message.get("positions") or {}).items():
            self.positions[(name, symbol)] = float(qty)
        if self.book[name]:
            logger.info("{} has {} working order(s) from before", name, len(self.book[name]))

    def submit(
        self, strategy: str, symbol: str, side: str, qty: float, limit: float | None, tif: str
    ) -> str:
        order_id = f"{self._prefix}-{next(self._ids)}"
        order = Order(order_id, symbol, "sell" if side == "sell" else "buy", qty, limit, tif)
        ok, why = self.host.safe_to_trade(strategy, symbol)
        reason = f"not safe to trade: {why}"
        feed = self.host.feeds[self.host.slots[strategy].broker]
        if ok:
            try:
                feed.client.send(
                    {
                        "op": "order",
                        "strategy": strategy,
                        "order_id": order_id,
                        "symbol": symbol,
                        "side": side,
                        "qty": qty,
                        "limit": limit,
                        "tif": tif,
                    }
                )
            except GatewayError as exc:
                ok, reason = False, f"the gateway is unreachable: {exc}"
        if not ok:
            rejected = replace(order, status="rejected")
            self._local_journal().write(
                "rejected",
                strategy=strategy,
                order_id=order_id,
                symbol=symbol,
                side=side,
                qty=qty,
                reason=reason,
            )
            self._local.append(
                (
                    strategy,
                    OrderUpdate(
                        "rejected",
                        rejected,
                        reason=reason,
                        position=self.position(strategy, symbol),
                    ),
                )
            )
            return order_id
        self.book.setdefault(strategy, {})[order_id] = order
        return order_id

    def cancel(self, strategy: str, order_id: str) -> None:
        feed = self.host.feeds[self.host.slots[strategy].broker]
        feed.client.send({"op": "cancel", "strategy": strategy, "order_id": order_id})

    def cancel_all(self, strategy: str) -> None:
        feed = self.host.feeds[self.host.slots[strategy].broker]
        feed.client.send({"op": "cancel_all", "strategy": strategy})

    def orders(self, strategy: str) -> list[Order]:
        return [o for o in self.book.get(strategy, {}).values() if o.working]

    def position(self, strategy: str, symbol: str) -> float:
        return self.positions.get((strategy, symbol), 0.0)

    def on_update(self, message: dict[str, Any]) -> tuple[str, OrderUpdate] | None:
        """Fold a gateway order update in; returns (strategy, update) to deliver."""
        name = str(message.get("strategy"))
        order = Order.from_json(message.get("order") or {})
        book = self.book.setdefault(name, {})
        if order.status in FINAL or message.get("event") in FINAL:
            book.pop(order.order_id, None)
        else:
            book[order.order_id] = order
        position = float(message.get("position") or 0.0)
        self.positions[(name, order.symbol)] = position
        fill_price = message.get("fill_price")
        update = OrderUpdate(
            message["event"],
            order,
            reason=str(message.get("reason") or ""),
            fill_qty=float(message.get("fill_qty") or 0.0),
            fill_price=float(fill_price) if fill_price is not None else None,
            position=position,
        )
        return name, update

    def _local_journal(self) -> Journal:
        if self._journal is None:
            self._journal = Journal(journal_path(self.host.paths.run_dir))
        return self._journal

    def close(self) -> None:
        if self._journal is not None:
            self._journal.close()
