"""Logs every `every`-th tick it receives, and a count per symbol on each timer.

It keeps nothing: to record ticks to disk, use the recorder (`settings.record`,
docs/data.md)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from tradeops import Strategy


class TickLogger(Strategy):
    def on_start(self) -> None:
        self.every = max(1, int(self.params.get("every", 100)))
        self.counts: Counter[str] = Counter()
        self.log.info("logging every {}th tick", self.every)

    def on_tick(self, tick: Any) -> None:
        self.counts[tick.symbol] += 1
        if self.counts[tick.symbol] % self.every == 1:
            self.log.info("{}", tick)

    def on_timer(self) -> None:
        if self.counts:
            self.log.info("ticks so far: {}", dict(self.counts))
