"""The watchdog with a fake clock: a callback that does not return is reported once, kept
current, cleared when it returns; after a stop it ends the process."""

from __future__ import annotations

import threading
from typing import Any

from tradeops.runtime.gate import broker_gate, symbol_gate
from tradeops.runtime.watchdog import EXIT_STUCK, STOP_GRACE, Watchdog


class Record:
    def __init__(self) -> None:
        self.events: list[tuple[Any, ...]] = []
        self.exited: list[int] = []


def watchdog(stop: threading.Event | None = None) -> tuple[Watchdog, Record]:
    rec = Record()
    dog = Watchdog(
        timeout=5.0,
        stop=stop or threading.Event(),
        on_stuck=lambda n, m, s, stack: rec.events.append(("stuck", n, m, s, bool(stack))),
        on_still_stuck=lambda n, m, s: rec.events.append(("still", n, m, s)),
        on_free=lambda n: rec.events.append(("free", n)),
        exit_process=rec.exited.append,
    )
    return dog, rec


def test_a_callback_that_keeps_returning_is_never_stuck() -> None:
    dog, rec = watchdog()
    for now in range(0, 60):
        dog.current = ("fast", "on_tick")
        dog.calls += 1  # a new call each time the watchdog looks
        dog.check(float(now))
    assert rec.events == []


def test_a_blocked_callback_is_reported_once_then_kept_current_then_cleared() -> None:
    dog, rec = watchdog()
    dog.current, dog.calls = ("slow", "on_tick"), 1
    dog.check(100.0)
    dog.check(104.0)
    assert rec.events == []
    dog.check(105.0)
    assert rec.events == [("stuck", "slow", "on_tick", 5.0, True)]
    dog.check(112.0)
    assert rec.events[-1] == ("still", "slow", "on_tick", 12.0)
    dog.current = None  # it returned
    dog.check(113.0)
    assert rec.events[-1] == ("free", "slow")
    assert rec.exited == []


def test_after_a_stop_a_blocked_callback_ends_the_process() -> None:
    stop = threading.Event()
    dog, rec = watchdog(stop)
    dog.current, dog.calls = ("slow", "on_tick"), 1
    dog.check(0.0)
    stop.set()  # SIGTERM (the supervisor died, or `tradeops stop`)
    dog.check(1.0)
    assert rec.exited == []
    dog.check(1.0 + STOP_GRACE)
    assert rec.exited == [EXIT_STUCK]


def test_after_a_stop_an_idle_host_is_left_to_finish() -> None:
    stop = threading.Event()
    dog, rec = watchdog(stop)
    stop.set()
    dog.check(0.0)
    dog.check(100.0)
    assert rec.exited == []


def test_the_gates_say_why_and_how_old() -> None:
    assert broker_gate("sim", True, "", None, 100.0) == (True, "")
    assert broker_gate("sim", False, "connection 0: no market data yet", None, 100.0) == (
        False, "broker 'sim': connection 0: no market data yet")
    assert symbol_gate("AAPL", None, 10**18, 5.0) == (False, "no tick of AAPL yet")
    assert symbol_gate("AAPL", 10**18 - 2 * 10**9, 10**18, 5.0) == (True, "")
    assert symbol_gate("AAPL", 10**18 - 12 * 10**9, 10**18, 5.0) == (
        False, "no tick of AAPL for 12.0s (stale after 5s)")
