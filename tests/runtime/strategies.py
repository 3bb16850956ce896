"""Strategies the host's unit tests load by import path; each records its calls in CALLS."""

from __future__ import annotations

from typing import Any

from tradeops import Strategy

CALLS: list[tuple[str, str, Any]] = []  # (strategy, callback, what it got)


class Probe(Strategy):
    """Records on_start (with the orders and AAPL position it sees), ticks, timers, stops;
    raises in on_tick from its params.raise_at-th tick on."""

    def on_start(self) -> None:
        orders = [o.order_id for o in self.orders()]
        CALLS.append((self.name, "on_start", (orders, self.position("AAPL"))))

    def on_tick(self, tick: Any) -> None:
        CALLS.append((self.name, "on_tick", (tick.seq, tick.kind)))
        if len([c for c in CALLS if c[:2] == (self.name, "on_tick")]) >= self.params.get(
            "raise_at", float("inf")
        ):
            raise RuntimeError(f"boom from {self.name}")

    def on_bar(self, bar: Any) -> None:
        CALLS.append((self.name, "on_bar", (bar.seq, bar.kind)))

    def on_status(self, status: Any) -> None:
        CALLS.append((self.name, "on_status", (status.seq, status.kind)))

    def on_luld(self, bands: Any) -> None:
        CALLS.append((self.name, "on_luld", (bands.seq, bands.kind)))

    def on_book(self, book: Any) -> None:
        newest = self.book(book.symbol)
        CALLS.append((self.name, "on_book", (book.symbol, book.version, newest is book)))

    def on_timer(self) -> None:
        CALLS.append((self.name, "on_timer", self.now()))

    def on_stop(self) -> None:
        CALLS.append((self.name, "on_stop", None))

    def on_subscription_refused(self, symbol: str, reason: str) -> None:
        CALLS.append((self.name, "on_subscription_refused", (symbol, reason)))
