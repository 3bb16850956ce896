"""Strategies the order tests run in real host processes. Each writes what it sees, one JSON
line per event, to params.out."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tradeops import Strategy
from tradeops.runtime.orders import OrderUpdate


class OrderBot(Strategy):
    """On start: records `self.orders()`, then sends `params.orders` (a list of
    [side, qty, limit-or-null]) on `params.symbol` once the feed is live: once per desk, not
    again after a restart of its process (which sends `params.each_restart` instead)."""

    def on_start(self) -> None:
        self._out = open(self.params["out"], "a", buffering=1)  # noqa: SIM115
        self._emit("start", orders=[o.order_id for o in self.orders()])
        self._marker = Path(self.params["out"] + ".sent")
        self._todo = (list(self.params.get("each_restart", [])) if self._marker.exists()
                      else list(self.params.get("orders", [])))

    def on_timer(self) -> None:
        # params.when_unsafe: send on the timer once the feed is NOT live (to be refused).
        if self.params.get("when_unsafe") and not self.safe_to_trade()[0]:
            self._send()

    def on_tick(self, tick: Any) -> None:
        if not self.params.get("when_unsafe") and self.safe_to_trade()[0]:
            self._send()

    def _send(self) -> None:
        if not self._todo:
            return
        todo, self._todo = self._todo, []
        self._marker.touch()
        for side, qty, limit in todo:
            send = self.buy if side == "buy" else self.sell
            order_id = send(self.params["symbol"], qty, limit)
            self._emit("sent", order_id=order_id)

    def on_order_update(self, update: OrderUpdate) -> None:
        self._emit(
            update.event,
            order_id=update.order_id,
            reason=update.reason,
            fill_qty=update.fill_qty,
            position=update.position,
            client_order_id=update.order.client_order_id,
        )

    def on_stop(self) -> None:
        self._out.close()

    def _emit(self, event: str, **fields: Any) -> None:
        self._out.write(json.dumps({"event": event, "strategy": self.name, **fields}) + "\n")


class CancellingBot(OrderBot):
    """An OrderBot that cancels each of its orders as soon as the broker accepted it."""

    def on_order_update(self, update: OrderUpdate) -> None:
        super().on_order_update(update)
        if update.event == "accepted":
            self.cancel(update.order_id)
