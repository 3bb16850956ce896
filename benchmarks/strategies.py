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
