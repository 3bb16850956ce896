"""What a gateway says about its feed: live or not (the safety gate's input), and its figures.

Pure: it reads the upstream connections' public counters and the pool's targets, and takes
the time as an argument, so a test can drive it with fake connections and a fake clock.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol


class UpstreamView(Protocol):
    """What health reads of one upstream connection (`gateway.upstream.Upstream`)."""

    @property
    def state(self) -> str: ...
    @property
    def last_tick(self) -> float: ...
    @property
    def last_frame(self) -> float: ...
    @property
    def reconnects(self) -> int: ...
    @property
    def attempts(self) -> int: ...
    @property
    def last_error(self) -> str: ...
    @property
    def malformed(self) -> int: ...


class TickRate:
    """Ticks per second, refreshed at most once a second."""

    def __init__(self, now: float) -> None:
        self._when, self._then, self.per_s = now, 0, 0.0

    def update(self, ticks: int, now: float) -> float:
        if now - self._when >= 1.0:
            self.per_s = (ticks - self._then) / (now - self._when)
            self._when, self._then = now, ticks
        return self.per_s


def liveness(
    upstreams: Mapping[int, UpstreamView],
    symbols_on: Callable[[int], int],
    stale_after: float,
    now: float,
) -> tuple[bool, str]:
    """(live, reason): every connection that carries symbols is live and has delivered
    market data (a trade, quote or bar) within `stale_after` seconds.

    Only market data opens the gate: a greeting, an auth, an acknowledgement or a reconnect
    proves the connection, not the data, so a feed that sends nothing keeps the gate closed
    however often it reconnects. The reason is stable while the cause lasts (health is re-sent
    to clients only when it changes); `last_tick_wall` in the health message gives the age."""
    for conn_id, up in sorted(upstreams.items()):
        if not symbols_on(conn_id):
            continue
        if up.state != "live":
            return False, f"connection {conn_id} is {up.state}: {up.last_error}".rstrip(": ")
        if not up.last_tick:
            return False, f"connection {conn_id}: no market data yet"
        if now - up.last_tick > stale_after:
            return False, f"connection {conn_id}: no tick for over {stale_after:g}s"
    return True, ""


def last_tick_wall(upstreams: Mapping[int, UpstreamView], now: float, wall: float
                   ) -> float | None:
    """When (wall-clock seconds) the newest market data of any connection arrived."""
    ticks = [up.last_tick for up in upstreams.values() if up.last_tick]
    return wall - (now - max(ticks)) if ticks else None


def connection_rows(
    upstreams: Mapping[int, UpstreamView], symbols_on: Callable[[int], int], now: float
) -> list[dict[str, Any]]:
    """One row per upstream connection for `tradeops status`."""
    return [
        {
            "id": conn_id,
            "state": up.state,
            "symbols": symbols_on(conn_id),
            "last_tick_age": round(now - up.last_tick, 3) if up.last_tick else None,
            "reconnects": up.reconnects,
            "attempts": up.attempts,
            "last_error": up.last_error,
            "malformed": up.malformed,
        }
        for conn_id, up in sorted(upstreams.items())
    ]


def order_summary(status: Mapping[str, Any]) -> dict[str, Any]:
    """The order router's status, counted (working, queued, rejected, throttled, unrouted),
    with the accounts whose positions differ from the broker's and what is halted."""
    return {
        "working": len(status["working"]),
        "queued": status["queued"],
        "rejected": status["rejected"],
        "throttled": status["throttled"],
        "unrouted": len(status["unrouted"]),
        "positions_mismatch": sorted(status.get("positions_mismatch", {})),
        "auth_rejected": dict(status.get("auth_rejected", {})),
        "halted": dict(status.get("halted", {})),
        "accounts": dict(status.get("accounts", {})),
        "rejected_by": dict(status.get("rejected_by", {})),
        "auto_cancels": status.get("auto_cancels", 0),
        "working_by_strategy": _count(o["strategy"] for o in status["working"]),
        "positions": dict(status.get("positions", {})),
    }


def _count(items: Iterable[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for item in items:
        counts[item] = counts.get(item, 0) + 1
    return counts
