"""A small momentum signal: compares the last price with the mean of the previous `lookback`.

It logs when the signal flips. Order placement is switched on with `params.trade: true` once
the gateway routes orders; until then it only reports what it would do.
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
        window.append(price)


def _mid(tick: Any) -> float:
    bid, ask = getattr(tick, "bid", 0.0), getattr(tick, "ask", 0.0)
    return float((bid + ask) / 2) if bid and ask else 0.0
