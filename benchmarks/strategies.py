"""Strategies the benchmarks run inside real host processes."""

from __future__ import annotations

import os
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
            now = repr(time.time())
            tmp = self.params["out"] + ".tmp"
            with open(tmp, "w") as f:
                f.write(now)
            os.replace(tmp, self.params["out"])  # a reader never sees it half written


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


class LatencyProbe(Strategy):
    """Records, for every tick in a window, how old it is when `on_tick` holds it: from the
    exchange's timestamp and from the gateway's receipt. After `warmup` seconds it measures
    for `window` seconds, then writes the tick count and the sorted samples' p50/p99 (ns) as
    JSON to params.out. Needs a `timer` to notice the window's end without ticks."""

    def on_start(self) -> None:
        self.begin = time.time() + float(self.params.get("warmup", 2.0))
        self.end = self.begin + float(self.params.get("window", 4.0))
        self.begin_ns, self.end_ns = int(self.begin * 1e9), int(self.end * 1e9)
        self.from_ts: list[int] = []
        self.from_rx: list[int] = []
        self.written = False

    def on_tick(self, tick: Any) -> None:
        now = time.time_ns()
        if self.begin_ns <= now < self.end_ns:
            self.from_ts.append(now - tick.exchange_ns)
            self.from_rx.append(now - tick.receive_ns)

    def on_timer(self) -> None:
        if self.written or time.time() < self.end:
            return
        self.written = True

        def pcts(values: list[int]) -> list[int]:
            values.sort()
            if not values:
                return [0, 0]
            return [values[len(values) // 2], values[min(len(values) - 1, len(values) * 99 // 100)]]

        import json
        import os

        out = self.params["out"]
        with open(out + ".tmp", "w") as f:  # renamed into place: the bench sees it whole
            json.dump({"n": len(self.from_ts), "ts": pcts(self.from_ts),
                       "rx": pcts(self.from_rx)}, f)  # fmt: skip
        os.replace(out + ".tmp", out)
