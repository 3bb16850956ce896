"""Start order as a pure function: a tier starts when the one before it has settled."""

from __future__ import annotations

from tradeops.supervisor.states import ProcessState as S
from tradeops.supervisor.tiers import TierClock, next_tier


def test_the_first_tier_starts_at_once_and_the_next_waits_for_it() -> None:
    states = [(0, S.STOPPED), (1, S.STOPPED), (3, S.STOPPED)]
    clock, tier = next_tier(TierClock(), states, now=10.0)
    assert (clock, tier) == (TierClock(0, 10.0), 0)
    starting = [(0, S.STARTING), (1, S.STOPPED), (3, S.STOPPED)]
    assert next_tier(clock, starting, now=11.0) == (clock, None)
    running = [(0, S.RUNNING), (1, S.STOPPED), (3, S.STOPPED)]
    assert next_tier(clock, running, now=12.0) == (TierClock(1, 12.0), 1)


def test_a_tier_that_is_late_does_not_hold_the_next_back() -> None:
    clock = TierClock(1, 0.0)
    states = [(1, S.STARTING), (3, S.STOPPED)]
    assert next_tier(clock, states, now=29.0, timeout=30.0) == (clock, None)
    assert next_tier(clock, states, now=31.0, timeout=30.0) == (TierClock(3, 31.0), 3)


def test_a_failed_tier_counts_as_settled_and_missing_tiers_are_skipped() -> None:
    clock = TierClock(0, 0.0)
    states = [(0, S.BACKOFF), (3, S.STOPPED)]  # no gateways, no proxy
    assert next_tier(clock, states, now=1.0) == (TierClock(3, 1.0), 3)
    done = TierClock(3, 1.0)
    assert next_tier(done, [(3, S.RUNNING)], now=2.0) == (done, None)
