"""Start order: a tier starts once the one before it has settled (or has had its time).

Tiers (`process.spec.TIERS`): 0 simulated exchanges, 1 gateways, 2 the recorder, 3 strategy
hosts and the proxy. A tier has settled when none of its processes is still starting; a tier
that is not ready after `STARTUP_TIMEOUT` does not hold the next one back (the desk runs
degraded and `status` says why). Pure: the loop passes the states and the time.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from tradeops.supervisor.states import ProcessState as S

STARTUP_TIMEOUT = 30.0
LAST_TIER = 3


@dataclass(frozen=True)
class TierClock:
    """The tier now starting (-1 before the first) and when it started."""

    tier: int = -1
    since: float = 0.0


def next_tier(
    clock: TierClock, processes: Iterable[tuple[int, S]], now: float,
    timeout: float = STARTUP_TIMEOUT,
) -> tuple[TierClock, int | None]:
    """The clock after this turn, and the tier to start now (None: nothing to start)."""
    processes = list(processes)
    current = [state for tier, state in processes if tier == clock.tier]
    settled = all(state is not S.STARTING for state in current)
    late = now - clock.since > timeout
    if clock.tier >= 0 and not settled and not late:
        return clock, None
    later = sorted({tier for tier, _ in processes if tier > clock.tier})
    if not later:
        return TierClock(max(clock.tier, LAST_TIER), clock.since), None
    return TierClock(later[0], now), later[0]
