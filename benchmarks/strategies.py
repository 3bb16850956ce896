"""Strategies the benchmarks run inside real host processes."""

from __future__ import annotations

import time
from typing import Any

from tradeops import Strategy


class FirstTick(Strategy):
    """Writes the wall-clock time of the first tick it handles to params.out."""

    def on_start(self) -> None:
        self._done = False

    def on_tick(self, tick: Any) -> None:
        if not self._done:
            self._done = True
            with open(self.params["out"], "w") as f:
                f.write(repr(time.time()))


class RoundTrip(Strategy):
    """Sends one market order at a time, alternating buy and sell, and records the time from
    `buy`/`sell` to the `accepted` and to the `filled` update; writes them to params.out
    after params.count round trips."""

    def on_start(self) -> None:
        self.count = int(self.params.get("count", 200))
        self.inflight: dict[str, float] = {}
        self.accepted: list[float] = []
        self.filled: list[float] = []
        self.side = 0

    def on_tick(self, tick: Any) -> None:
        if self.inflight or len(self.filled) >= self.count or not self.safe_to_trade()[0]:
            return
        send = self.buy if self.side % 2 == 0 else self.sell
        self.side += 1
        self.inflight[send(self.params["symbol"], 1)] = time.perf_counter()

    def on_order_update(self, update: Any) -> None:
        start = self.inflight.get(update.order_id)
        if start is None:
            return
        elapsed = time.perf_counter() - start
        if update.event == "accepted":
            self.accepted.append(elapsed)
        elif update.event in ("filled", "rejected", "cancelled"):
            del self.inflight[update.order_id]
            if update.event == "filled":
                self.filled.append(elapsed)
            if len(self.filled) == self.count:
                with open(self.params["out"], "w") as f:
                    f.write(repr({"accepted": self.accepted, "filled": self.filled}))
