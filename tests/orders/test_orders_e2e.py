"""Orders through real processes: host → gateway → simulated exchange → back to the strategy."""

from __future__ import annotations

import json
import os
import signal
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.desk import Desk, assert_nothing_left
from tests.waiting import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]
RISKY_LIMITS = "limits: {max_order_qty: 10}"
FAR = 1.0  # a buy limit far below any price the walk reaches: it rests


def bot(
    name: str, tmp: Path, orders: list[list[Any]], symbol: str = "AAPL", limits: str = ""
) -> str:
    return f"""
  {name}:
    class: tests.orders.strategies:OrderBot
    broker: sim
    symbols: [AAPL, MSFT]
    {limits}
    params: {{out: "{tmp / (name + ".jsonl")}", symbol: {symbol}, orders: {json.dumps(orders)}}}
"""


def body(strategies: str, processes: str = "", orders: str = "") -> str:
    return f"""
brokers:
  sim:
    adapter: sim
    market: {{seed: 5, rate: 40}}
    {orders}
strategies:
{strategies}
processes:
{processes}
"""


def events(tmp: Path, name: str) -> list[dict[str, Any]]:
    path = tmp / f"{name}.jsonl"
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def sim_orders(desk: Desk) -> dict[str, Any]:
    http = desk.proc("sim-sim")["detail"]["http"]
    with urllib.request.urlopen(f"{http}/admin/orders", timeout=5) as resp:
        data: dict[str, Any] = json.loads(resp.read())
    return data


def of(orders: list[dict[str, Any]], strategy: str) -> list[dict[str, Any]]:
    return [o for o in orders if o["client_order_id"].startswith(f"t1.{strategy}.")]


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Desk, Path]]:
    """One desk for the tests that only watch their own strategies' orders: a, b and c
    (a and b in one process) trade at market; risky breaches its limit. None of them
    silences, limits or kills anything the others need."""
    tmp = tmp_path_factory.mktemp("orders")
    strategies = (
        bot("a", tmp, [["buy", 1, None], ["buy", 2, None]])
        + bot("b", tmp, [["buy", 3, None]])
        + bot("c", tmp, [["sell", 4, None], ["buy", 5, None]])
        + bot("risky", tmp, [["buy", 50, FAR], ["buy", 5, FAR]], limits=RISKY_LIMITS)
    )
    processes = "  pair:\n    strategies: [a, b]\n"
    desk = Desk(tmp, "ordshared", body(strategies, processes))
    try:
        desk.up()
        yield desk, tmp
    finally:
        desk.cleanup()
    assert_nothing_left(desk)


def test_each_strategy_receives_exactly_its_own_fills(shared: tuple[Desk, Path]) -> None:
    _, tmp_path = shared
    expected = {"a": 2, "b": 1, "c": 2}
    for name, count in expected.items():
        wait_for(
            lambda n=name, c=count: (
                len([e for e in events(tmp_path, n) if e["event"] == "filled"]) == c
            ),
            timeout=15,
            what=f"{name}'s fills",
        )
    for name in expected:
        mine = events(tmp_path, name)
        sent = {e["order_id"] for e in mine if e["event"] == "sent"}
        updated = {e["order_id"] for e in mine if e["event"] not in ("sent", "start")}
        assert updated == sent, f"{name} got updates for orders it did not send"
        assert all(
            e["client_order_id"].startswith(f"t1.{name}.") for e in mine if "client_order_id" in e
        )
    positions = {
        n: [e["position"] for e in events(tmp_path, n) if e["event"] == "filled"][-1]
        for n in expected
    }
    assert positions == {"a": 3.0, "b": 3.0, "c": 1.0}


def test_a_limit_breach_is_rejected_before_the_broker(shared: tuple[Desk, Path]) -> None:
    desk, tmp_path = shared
    rejected = wait_for(
        lambda: [e for e in events(tmp_path, "risky") if e["event"] == "rejected"],
        timeout=15,
        what="the rejection",
    )
    assert "max_order_qty 10" in rejected[0]["reason"]
    wait_for(
        lambda: any(e["event"] == "accepted" for e in events(tmp_path, "risky")),
        what="the order within limits to be accepted",
    )
    reached = of(sim_orders(desk)["orders"], "risky")
    assert [float(o["qty"]) for o in reached] == [5.0], "the breaching order reached the exchange"


def test_a_burst_stays_under_the_rate_limit(make_desk: Any, tmp_path: Path) -> None:
    burst = [["buy", 1, FAR]] * 100  # five times what the limit lets through
    strategies = bot("burst", tmp_path, burst)
    orders = "orders: {rate_limit: 20/min, queue_size: 1000}"
    processes = "  g:\n    strategies: [burst]\n    auto_cancel: none\n"
    desk: Desk = make_desk("ordrate", body(strategies, processes, orders))
    desk.up()
    # The gateway counts every request it makes (Alpaca does), including the two it makes at
    # start (surviving orders, the account's positions), so 18 to 20 of the burst fit in the
    # first minute.
    wait_for(
        lambda: len([e for e in events(tmp_path, "burst") if e["event"] == "accepted"]) >= 18,
        timeout=20,
        what="the first orders accepted",
    )
    requests = sim_orders(desk)["requests"]
    assert [r for r in requests if r["status"] == 429] == []
    assert 18 <= len([r for r in requests if r["action"] == "submit"]) <= 20  # the rest wait
    assert not [e for e in events(tmp_path, "burst") if e["event"] == "rejected"]


def kill_host(desk: Desk, group: str) -> None:
    pid = desk.proc(group)["pid"]
    os.kill(pid, signal.SIGKILL)
    wait_for(
        lambda: (
            desk.proc(group)["pid"] not in (None, pid) and desk.proc(group)["state"] == "running"
        ),
        timeout=15,
        what="the restart",
    )


def working_at_sim(desk: Desk, strategy: str) -> list[dict[str, Any]]:
    return [
        o
        for o in of(sim_orders(desk)["orders"], strategy)
        if o["status"] in ("accepted", "new", "partially_filled")
    ]


def test_auto_cancel_when_a_host_is_killed(make_desk: Any, tmp_path: Path) -> None:
    """kill -9 of a host whose group says auto_cancel: strategy: its orders are cancelled at
    the exchange, its neighbour's (another group, auto_cancel: none) stay. The policies'
    other cases (account, none, queued submits) are tests/gateway/test_router.py's."""
    strategies = bot("victim", tmp_path, [["buy", 1, FAR], ["buy", 2, FAR]]) + bot(
        "neighbour", tmp_path, [["buy", 3, FAR]]
    )
    processes = (
        "  victims:\n    strategies: [victim]\n    auto_cancel: strategy\n"
        "  neighbours:\n    strategies: [neighbour]\n    auto_cancel: none\n"
    )
    desk: Desk = make_desk("ordkill", body(strategies, processes))
    desk.up()
    wait_for(
        lambda: (
            len(working_at_sim(desk, "victim")) == 2 and len(working_at_sim(desk, "neighbour")) == 1
        ),
        timeout=15,
        what="resting orders",
    )
    kill_host(desk, "victims")
    wait_for(
        lambda: working_at_sim(desk, "victim") == [],
        timeout=10,
        what="the victim's orders cancelled",
    )
    assert len(working_at_sim(desk, "neighbour")) == 1
    listing = desk.cli("orders", "--file", str(desk.file), "--strategy", "neighbour")
    assert listing.returncode == 0 and "working orders: 1" in listing.stdout
    journal = [json.loads(x) for x in (desk.run_dir / "orders.jsonl").read_text().splitlines()]
    assert [e["policy"] for e in journal if e["event"] == "auto_cancel"] == ["strategy"]


def test_orders_are_refused_locally_when_not_safe_to_trade(make_desk: Any, tmp_path: Path) -> None:
    strategies = bot("eager", tmp_path, [["buy", 1, FAR]]).replace(
        "params: {", "timer: 200ms\n    params: {when_unsafe: true, "
    )
    desk: Desk = make_desk("ordstale", body(strategies))
    desk.file.write_text(
        desk.file.read_text().replace("settings:\n", "settings:\n  stale_after: 1s\n", 1)
    )
    desk.up()
    http = desk.proc("sim-sim")["detail"]["http"]
    request = urllib.request.Request(
        f"{http}/admin/silence", data=b'{"seconds": 30}', method="POST"
    )
    urllib.request.urlopen(request, timeout=5).close()
    rejected = wait_for(
        lambda: [e for e in events(tmp_path, "eager") if e["event"] == "rejected"],
        timeout=15,
        what="the local rejection",
    )
    reason = rejected[0]["reason"]
    assert "not safe to trade" in reason and "broker 'sim'" in reason
    assert "no tick" in reason or "no market data yet" in reason, reason
    assert sim_orders(desk)["requests"] == []  # nothing reached the exchange
