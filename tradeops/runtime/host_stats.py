"""A host's figures for `tradeops status`, and what its watchdog reports (runtime/host.py).

`StuckReports` runs on the watchdog's thread while the host's thread is blocked in a
strategy: it marks the strategy stuck (its orders are refused), logs where it is, publishes
the figures the blocked loop cannot, and with `on_stuck: restart` ends the process.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from loguru import logger

from tradeops.process import child
from tradeops.runtime.watchdog import EXIT_STUCK

if TYPE_CHECKING:
    from tradeops.runtime.host import Host

STATS_EVERY = 1.0


@dataclass
class HostStats:
    ticks: int = 0
    lost: int = 0
    errors: int = 0
    lag_ns: int = 0
    last_error: str = ""
    rate: tuple[float, int, float] = field(default_factory=lambda: (time.monotonic(), 0, 0.0))


def publish_stats(host: Host, now: float) -> None:
    """Publish the host's figures for `tradeops status` (its state file)."""
    when, then, _ = host.stats.rate
    rate = (host.stats.ticks - then) / (now - when) if now > when else 0.0
    host.stats.rate = (now, host.stats.ticks, rate)
    host.last_stats = now
    child.write_state(
        host.paths.run_dir,
        host.spec.name,
        {
            "ticks": host.stats.ticks,
            "ticks_per_s": round(rate, 1),
            "lag_ms": round(host.stats.lag_ns / 1e6, 3),
            "lost": host.stats.lost,
            "errors": host.stats.errors,
            "last_error": host.stats.last_error,
            "strategies": {
                s.name: {"running": s.running, "error": s.error, "stuck": s.stuck}
                for s in host.slots.values()
            },
            "refused": dict(host.refused),
            "cursors": {b: f.cursor for b, f in host.feeds.items()},
            "epochs": {b: f.epoch for b, f in host.feeds.items()},
        },
    )


class StuckReports:
    def __init__(self, host: Host) -> None:
        self.host = host

    def stuck(self, name: str, method: str, seconds: float, stack: str) -> None:
        slot = self.host.slots.get(name)
        if slot is None:
            return
        slot.stuck = f"stuck in {method} of {name} for {seconds:.0f}s"
        logger.error("{}: {} (callback_timeout {:g}s); its orders are refused; where it is:\n{}",
                     name, slot.stuck, self.host.callback_timeout, stack)
        publish_stats(self.host, self.host.monotonic())
        if self.host.on_stuck == "restart":
            logger.error("on_stuck: restart: ending the process so the supervisor restarts it")
            assert self.host.watchdog is not None
            self.host.watchdog.close()
            os._exit(EXIT_STUCK)

    def still_stuck(self, name: str, method: str, seconds: float) -> None:
        slot = self.host.slots.get(name)
        if slot is not None:
            slot.stuck = f"stuck in {method} of {name} for {seconds:.0f}s"
            if self.host.monotonic() - self.host.last_stats >= STATS_EVERY:
                publish_stats(self.host, self.host.monotonic())

    def free(self, name: str) -> None:
        slot = self.host.slots.get(name)
        if slot is not None and slot.stuck:
            logger.warning("{}: its callback returned after being {}", name, slot.stuck)
            slot.stuck = ""
