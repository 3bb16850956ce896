"""A small momentum signal: compares the last price with the mean of the previous `lookback`.

It logs when the signal flips. With `params.trade: true` it also trades the signal: on each flip
it sends a market order that takes its position in the symbol to `+qty` (long), `-qty`
(short) or 0 (flat), with `params.qty` (default 1). It sends nothing while `safe_to_trade()`
is false or while an earlier order for the symbol is still working. Without `trade` (the
default) it only reports what it would do.

    params: {lookback: 20, threshold_bps: 2.0, trade: true, qty: 10}
"""

from __future__ import annotations

from collections import deque
from typing import Any

from tradeops import Strategy


class Momentum(Strategy):
    def on_start(self) -> None:
        self.lookback = int(self.params.get("lookback", 20))
        self.threshold_bps = float(self.params.get("threshold_bps", 2.0))
        self.prices: dict[str, deque[float]] = {}
        self.signal: dict[str, int] = {}
        self.trade = bool(self.params.get("trade", False))
        self.qty = float(self.params.get("qty", 1))
        self.log.info(
            "momentum started: lookback={} threshold={}bps", self.lookback, self.threshold_bps
        )

    def on_tick(self, tick: Any) -> None:
        price = getattr(tick, "price", 0.0) or _mid(tick)
        if not price:
            return
        window = self.prices.setdefault(tick.symbol, deque(maxlen=self.lookback))
        if len(window) == self.lookback:
            mean = sum(window) / len(window)
            move_bps = (price - mean) / mean * 1e4
            signal = (
                1 if move_bps > self.threshold_bps else -1 if move_bps < -self.threshold_bps else 0
            )
            if signal != self.signal.get(tick.symbol, 0):
                self.signal[tick.symbol] = signal
                side = {1: "long", -1: "short", 0: "flat"}[signal]
                self.log.info(
                    "{} {} at {:.2f} ({:+.1f}bps vs mean)", tick.symbol, side, price, move_bps
                )
                if self.trade:
                    self.follow(tick.symbol, signal)
        window.append(price)

    def follow(self, symbol: str, signal: int) -> None:
        """Send the market order that takes the position in `symbol` to `signal * qty`."""
        ok, why = self.safe_to_trade(symbol)
        if not ok:
            self.log.info("{}: not trading the signal: {}", symbol, why)
            return
        if any(o.symbol == symbol for o in self.orders()):
            self.log.info("{}: an order is still working; not adding another", symbol)
            return
        delta = signal * self.qty - self.position(symbol)
        if delta > 0:
            self.buy(symbol, delta)
        elif delta < 0:
            self.sell(symbol, -delta)


def _mid(tick: Any) -> float:
    bid, ask = getattr(tick, "bid", 0.0), getattr(tick, "ask", 0.0)
    return float((bid + ask) / 2) if bid and ask else 0.0
