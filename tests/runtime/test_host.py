"""The strategy host's loop with a fake feed, a fake gateway client and a fake clock.

No process, no bus, no socket: the test hands the host ticks and gateway messages, turns
the monotonic clock by hand, calls `step()`, and reads what the strategies were called with
(tests/runtime/strategies.py) and what the gateway was asked.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.runtime.strategies import CALLS
from tradeops.gateway.client import GatewayError
from tradeops.process import child
from tradeops.process.paths import RunPaths
from tradeops.process.spec import ProcessSpec
from tradeops.protocol.book import Book
from tradeops.protocol.tick import Tick
from tradeops.runtime.config import HostConfig
from tradeops.runtime.host import Host
from tradeops.runtime.host_stats import StuckReports
from tradeops.topology.load import load_topology


class FakeClient:
    """The gateway connection: records subscriptions, hands over queued messages."""

    def __init__(self, snapshots: list[dict[str, Any]]) -> None:
        self.inbox = list(snapshots)
        self.asked: list[tuple[str, tuple[str, ...], str | None]] = []
        self.live = (True, "")
        self.last_tick: float | None = None
        self.broken = False
        self.closed = False

    def poll(self, timeout: float = 0.0) -> list[dict[str, Any]]:
        if self.broken:
            raise GatewayError("the gateway closed the connection")
        messages, self.inbox = self.inbox, []
        return messages

    def subscribe(self, symbols: list[str], mode: str) -> dict[str, Any]:
        self.asked.append(("subscribe", tuple(symbols), mode))
        return {"results": {s: {"ok": False, "reason": f"broker refused: 410 {s}"}
                            if s.startswith("BAD") else {"ok": True} for s in symbols}}

    def unsubscribe(self, symbols: list[str]) -> dict[str, Any]:
        self.asked.append(("unsubscribe", tuple(symbols), None))
        return {"ok": True}

    def fileno(self) -> int:
        return -1

    def close(self) -> None:
        self.closed = True


class FakeFeed:
    """One broker's bus as the host reads it: the ticks the test queued."""

    def __init__(self, broker: str, client: FakeClient) -> None:
        self.broker, self.client = broker, client
        self.pending: list[Tick] = []
        self.cursor = 0
        self.passed = 0
        self.epoch = 1  # the bus's session id: one gateway run
        self.closed = False
        self.books: dict[str, Book] = {}  # the book table, as the test sets it
        self.book_delivered: dict[str, int] = {}

    def push(self, kind: str, symbol: str) -> None:
        self.cursor += 1
        self.pending.append(Tick.make(kind, symbol, seq=self.cursor, price=1.0, size=1.0))

    def read(self) -> list[Tick]:
        ticks, self.pending = self.pending, []
        return ticks

    def take_lost(self) -> int:
        return 0

    def wait(self, timeout: float, also: list[int] | None = None) -> bool:
        return False

    def last(self, symbol: str) -> Tick | None:
        return None

    def book(self, symbol: str) -> Book | None:
        return self.books.get(symbol)

    def close(self) -> None:
        self.closed = True


def strategy(name: str, symbols: str = "[AAPL]", extra: str = "") -> str:
    return (f"  {name}:\n    class: tests.runtime.strategies:Probe\n    broker: sim\n"
            f"    symbols: {symbols}\n{extra}")  # fmt: skip


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


Make = Callable[..., tuple[Host, list[FakeFeed]]]


@pytest.fixture
def make(tmp_path: Path) -> Iterator[Make]:
    """`make(strategies_yaml, snapshots=[...])`: a started host running every strategy of
    the topology in one group, on fake feeds (one per connect: a reconnect gets a new one)."""
    CALLS.clear()
    hosts: list[Host] = []

    def build(strategies: str, snapshots: list[dict[str, Any]] | None = None,
              clock: Clock | None = None) -> tuple[Host, list[FakeFeed]]:
        file = tmp_path / "t.yaml"
        file.write_text(f"version: 1\nname: hosting\nbrokers:\n  sim: {{adapter: sim}}\n"
                        f"strategies:\n{strategies}")  # fmt: skip
        topology = load_topology(file)
        names = tuple(topology.strategies)
        feeds: list[FakeFeed] = []

        def connect(broker: str) -> FakeFeed:
            first = snapshots if not feeds else []
            default = [{"op": "orders", "strategy": n, "working": [], "positions": {}}
                       for n in names]  # fmt: skip
            feeds.append(FakeFeed(broker, FakeClient(default if first is None else first)))
            return feeds[-1]

        host = Host(HostConfig.of(topology, "bundle", names),
                    ProcessSpec("bundle", "host", strategies=names),
                    RunPaths(tmp_path, "hosting"), tmp_path, lambda: 1.7e9,
                    monotonic=clock or Clock(), connect=connect)  # type: ignore[arg-type]
        host.start()
        hosts.append(host)
        return host, feeds

    yield build
    for host in hosts:
        host.stop()


def calls(method: str) -> list[tuple[str, Any]]:
    return [(name, arg) for name, m, arg in CALLS if m == method]


def test_ticks_go_to_subscribers_in_priority_order_then_topology_order(make: Make) -> None:
    host, (feed,) = make(
        strategy("slow", extra="    priority: low\n    mode: quote\n")
        + strategy("a", extra="    mode: quote\n")
        + strategy("fast", extra="    priority: critical\n    mode: quote\n")
        + strategy("b", symbols="[AAPL, MSFT]")
        + strategy("mid", extra="    priority: high\n    mode: quote\n")
    )
    # The gateway is asked once per symbol for the strongest mode any strategy holds.
    assert ("subscribe", ("AAPL",), "quote") in feed.client.asked
    assert ("subscribe", ("MSFT",), "trade") in feed.client.asked
    feed.push("trade", "AAPL")
    feed.push("quote", "AAPL")
    feed.push("trade", "MSFT")
    assert host.step() is True
    assert calls("on_tick") == [
        ("fast", (1, "trade")), ("mid", (1, "trade")), ("a", (1, "trade")), ("b", (1, "trade")),
        ("slow", (1, "trade")),
        ("fast", (2, "quote")), ("mid", (2, "quote")), ("a", (2, "quote")), ("slow", (2, "quote")),
        ("b", (3, "trade")),
    ]  # fmt: skip
    assert host.stats.ticks == 3


def test_a_raising_strategy_is_stopped_alone_and_its_symbols_released(
    make: Make, tmp_path: Path
) -> None:
    host, (feed,) = make(
        strategy("flaky", "[AAPL, MSFT]", "    mode: quote\n    params: {raise_at: 2}\n")
        + strategy("steady", symbols="[AAPL]")
    )
    for _ in range(3):
        feed.push("trade", "AAPL")
    feed.push("trade", "MSFT")
    host.step()
    # flaky raised on its 2nd tick and got nothing after; steady got every tick.
    assert [s for s, _ in calls("on_tick")].count("flaky") == 2
    steady = [arg for s, arg in calls("on_tick") if s == "steady"]
    assert steady == [(1, "trade"), (2, "trade"), (3, "trade")]
    assert calls("on_stop") == [("flaky", None)]
    # What only flaky held is released; AAPL drops to steady's weaker mode.
    assert feed.client.asked[-2:] in (
        [("subscribe", ("AAPL",), "trade"), ("unsubscribe", ("MSFT",), None)],
        [("unsubscribe", ("MSFT",), None), ("subscribe", ("AAPL",), "trade")],
    )
    host.step()  # stats are published on the first pass and every second after
    state = child.read_state(tmp_path, "bundle")
    assert state["errors"] == 1 and "boom from flaky" in state["last_error"]
    assert state["strategies"]["flaky"]["running"] is False
    assert state["strategies"]["steady"] == {"running": True, "error": "", "stuck": ""}
    feed.push("trade", "AAPL")
    host.step()
    assert calls("on_tick")[-1] == ("steady", (5, "trade"))


def test_timers_fire_on_the_monotonic_clock_and_skip_missed_periods(make: Make) -> None:
    clock = Clock()
    host, _ = make(strategy("ticker", extra="    timer: 1s\n") + strategy("quiet"), clock=clock)
    host.step()
    assert calls("on_timer") == []
    assert host._idle_timeout() == 0.25  # the idle wait never exceeds a quarter second...
    clock.now += 0.9
    assert host._idle_timeout() == pytest.approx(0.1)  # ...and ends when a timer is due
    host.step()
    assert calls("on_timer") == []
    clock.now += 0.1
    assert host.step() is True
    assert calls("on_timer") == [("ticker", 1.7e9)]  # strategies read the wall clock
    clock.now += 5.5  # a stall: five periods missed, one call
    host.step()
    host.step()
    assert len(calls("on_timer")) == 2
    clock.now += 0.99
    host.step()
    assert len(calls("on_timer")) == 2
    clock.now += 0.01
    host.step()
    assert len(calls("on_timer")) == 3


def test_on_start_sees_the_orders_and_positions_that_survived_a_restart(make: Make) -> None:
    working = {"order_id": "o-1", "client_order_id": "t1.keeper.x", "symbol": "AAPL",
               "side": "buy", "qty": 2, "limit": 1.0, "status": "working"}  # fmt: skip
    make(strategy("keeper"), snapshots=[
        {"op": "orders", "strategy": "keeper", "working": [working], "positions": {"AAPL": 3}},
    ])  # fmt: skip
    assert calls("on_start") == [("keeper", (["o-1"], 3.0))]


def test_a_lost_gateway_is_reconnected_and_every_held_symbol_resubscribed(make: Make) -> None:
    host, feeds = make(strategy("a", symbols="[AAPL, MSFT]") + strategy("b", symbols="[SPY]"))
    first = feeds[0]
    first.client.broken = True
    host.step()
    assert len(feeds) == 2 and first.closed
    assert sorted(feeds[1].client.asked) == [
        ("subscribe", ("AAPL",), "trade"), ("subscribe", ("MSFT",), "trade"),
        ("subscribe", ("SPY",), "trade"),
    ]  # fmt: skip
    feeds[1].push("trade", "SPY")
    host.step()
    assert calls("on_tick") == [("b", (1, "trade"))]


def test_a_refused_subscription_reaches_only_the_strategy_that_asked(make: Make) -> None:
    host, _ = make(strategy("asker", "[AAPL, BADSYM]") + strategy("other"))
    assert calls("on_subscription_refused") == []  # not before on_start
    host.step()
    assert calls("on_subscription_refused") == [
        ("asker", ("BADSYM", "broker refused: 410 BADSYM"))]
    assert host.refused == {"BADSYM": "broker refused: 410 BADSYM"}


def test_a_lost_symbol_reaches_every_strategy_that_held_it(make: Make) -> None:
    host, (feed,) = make(strategy("one") + strategy("two"))
    feed.client.inbox.append({"op": "event", "kind": "lost", "symbol": "AAPL",
                              "reason": "broker refused: 409 insufficient subscription"})
    host.step()
    assert sorted(name for name, _ in calls("on_subscription_refused")) == ["one", "two"]


def test_safe_to_trade_names_the_broker_and_the_age_of_its_data(make: Make) -> None:
    host, (feed,) = make(strategy("s"))
    assert host.safe_to_trade("s") == (True, "")
    feed.client.live = (False, "connection 0: no tick for over 30s")
    feed.client.last_tick = 1.7e9 - 42.0  # the host's clock reads 1.7e9
    assert host.safe_to_trade("s") == (
        False, "broker 'sim': connection 0: no tick for over 30s; newest data 42.0s old")


def test_a_stuck_strategy_is_not_safe_to_trade(make: Make) -> None:
    host, _ = make(strategy("s"))
    reports = StuckReports(host)
    reports.stuck("s", "on_tick", 12.0, "(stack)")
    assert host.safe_to_trade("s") == (False, "strategy 's' is stuck in on_tick")
    state = child.read_state(host.paths.run_dir, "bundle")
    assert state["strategies"]["s"]["stuck"] == "stuck in on_tick of s for 12s"
    reports.free("s")
    assert host.safe_to_trade("s") == (True, "")


def test_configured_symbols_are_asked_for_in_one_request_per_mode(make: Make) -> None:
    """One request becomes one broker change: a broker with one request a second (AllTick)
    would otherwise take N seconds to start N symbols."""
    _, (feed,) = make(strategy("a", symbols="[AAPL, MSFT, SPY, QQQ]")
                      + strategy("b", symbols="[AAPL, IBM]", extra="    mode: quote\n"))
    assert sorted(feed.client.asked) == [
        ("subscribe", ("AAPL", "IBM"), "quote"),
        ("subscribe", ("MSFT", "SPY", "QQQ"), "trade"),
    ]


def test_a_refusal_in_a_batch_reaches_only_the_strategies_that_named_it(make: Make) -> None:
    host, _ = make(strategy("asker", "[AAPL, BADSYM, MSFT]") + strategy("other", "[AAPL]"))
    host.step()
    assert calls("on_subscription_refused") == [
        ("asker", ("BADSYM", "broker refused: 410 BADSYM"))]


def test_bars_go_to_on_bar_and_books_to_on_book_in_priority_order_once_per_version(
    make: Make,
) -> None:
    host, (feed,) = make(
        strategy("plain", extra="    mode: quote\n")
        + strategy("barred", extra="    bars: true\n    priority: low\n")
        + strategy("deep", extra="    mode: depth\n")
        + strategy("deeper", extra="    mode: depth\n    priority: critical\n")
    )
    # One request, for the join of what the strategies want: depth with bars.
    assert feed.client.asked == [("subscribe", ("AAPL",), "depth+bars")]
    feed.books["AAPL"] = Book("AAPL", ((1.0, 2.0),), ((1.1, 3.0),), 1, 2, 1)
    feed.push("trade", "AAPL")  # 1
    feed.push("bar", "AAPL")  # 2
    feed.push("depth", "AAPL")  # 3: book version 1
    feed.push("depth", "AAPL")  # 4: still version 1 (a host behind): no second call
    host.step()
    feed.books["AAPL"] = Book("AAPL", ((1.0, 1.0),), ((1.1, 3.0),), 1, 2, 2)
    feed.push("depth", "AAPL")  # 5: version 2
    host.step()
    assert calls("on_bar") == [("barred", (2, "bar"))]
    assert calls("on_book") == [
        ("deeper", ("AAPL", 1, True)), ("deep", ("AAPL", 1, True)),
        ("deeper", ("AAPL", 2, True)), ("deep", ("AAPL", 2, True)),
    ]
    # No bar or book ever reaches on_tick; every strategy gets the trade.
    assert sorted(calls("on_tick")) == [(n, (1, "trade")) for n in
                                        ("barred", "deep", "deeper", "plain")]


def test_extras_bring_daily_and_updated_bars_statuses_and_bands_and_never_corrections(
    make: Make,
) -> None:
    host, (feed,) = make(
        strategy("watch", extra="    extras: [statuses, lulds, daily_bars]\n")
        + strategy("plain")
    )
    assert feed.client.asked == [("subscribe", ("AAPL",), "trade+daily_bars+statuses+lulds")]
    for kind in ("trade", "daily_bar", "updated_bar", "status", "luld", "correction",
                 "cancel_error"):
        feed.push(kind, "AAPL")  # 1..7
    host.step()
    assert calls("on_bar") == [("watch", (2, "daily_bar"))]  # no updated bars: not asked
    assert calls("on_status") == [("watch", (4, "status"))]
    assert calls("on_luld") == [("watch", (5, "luld"))]
    # Corrections and cancel/errors are the proxy's clients' business, not a strategy's.
    assert sorted(calls("on_tick")) == [("plain", (1, "trade")), ("watch", (1, "trade"))]
    with pytest.raises(ValueError, match="not a mode: a base of trade"):
        host._subscribe("plain", "MSFT", "trade+news")
