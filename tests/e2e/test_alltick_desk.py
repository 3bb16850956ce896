"""A whole desk on an AllTick broker: `tradeops up` with `adapter: alltick` whose `url` is the
sim's AllTick path; a strategy receives trades and best-level quotes through the bus, across
a forced disconnect and a missed heartbeat, and the sim's request log proves the pacing."""

from __future__ import annotations

import itertools
import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.desk import Desk, assert_nothing_left
from tests.waiting import wait_for
from tradeops.sim.options import SimOptions
from tradeops.sim.server import SimThread

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

TOKEN = "desk-alltick-token-91b7"
SYMBOLS = ["US:AAPL", "US:MSFT", "HK:700", "HK:9988"]
CODES = ["700.HK", "9988.HK", "AAPL.US", "MSFT.US"]


def admin(sim: SimThread, path: str, body: dict[str, Any] | None = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(sim.http_url + path, data=data, method="POST" if data else "GET")
    with urllib.request.urlopen(req, timeout=5) as resp:
        return json.loads(resp.read())


def alltick(sim: SimThread, which: str) -> list[dict[str, Any]]:
    return [c for c in admin(sim, "/admin/connections")[which] if c["kind"] == "alltick"]


class Seen:
    """What the strategy wrote: one line per tick."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def lines(self) -> list[list[str]]:
        if not self.path.exists():
            return []
        return [line.split() for line in self.path.read_text().splitlines() if line]

    def symbols(self, kind: str, after: int = 0) -> set[str]:
        return {line[1] for line in self.lines()[after:] if line[0] == kind}


@pytest.fixture
def sim() -> Iterator[SimThread]:
    with SimThread(SimOptions(keys={TOKEN: ""}, rate=20.0, max_connections=1)) as running:
        yield running


@pytest.fixture
def desk(tmp_path: Path, sim: SimThread) -> Iterator[tuple[Desk, Seen]]:
    out = tmp_path / "ticks.txt"
    body = f"""
brokers:
  at:
    adapter: alltick
    url: {sim.url}/quote-stock-b-ws-api
    credentials: {{token: {TOKEN}}}
    pool: {{symbols_per_connection: 10, max_connections: 1}}
strategies:
  books:
    class: tests.e2e.strategies:TickRecorder
    broker: at
    mode: depth
    symbols: [{", ".join(SYMBOLS)}]
    params: {{out: "{out}"}}
"""
    desk = Desk(tmp_path, "alltickdesk", body)
    try:
        desk.up()
        yield desk, Seen(out)
    finally:
        desk.cleanup()
    assert_nothing_left(desk)


def assert_paced(connections: list[dict[str, Any]]) -> None:
    """Every request the sim saw was accepted and none came under its one-second limit."""
    for conn in connections:
        assert [r for r in conn["requests"] if r["ret"] != 200] == [], conn["requests"]
        times = [r["at"] for r in conn["requests"]]
        assert all(b - a >= 1.0 for a, b in itertools.pairwise(times)), times


def test_a_strategy_on_alltick_gets_ticks_across_a_drop_and_a_missed_heartbeat(
    desk: tuple[Desk, Seen], sim: SimThread,
) -> None:
    _, seen = desk
    wait_for(lambda: seen.symbols("trade") >= set(SYMBOLS) and seen.symbols("quote")
             >= set(SYMBOLS), timeout=30, what="trades and quotes of every symbol")
    quotes = [line for line in seen.lines() if line[0] == "quote"]
    assert all(0 < float(bid) < float(ask) for *_, bid, ask in quotes)

    # Four depth symbols started as one change: one trade list and one book, not 4 + 4.
    (first,) = alltick(sim, "open")
    subscribes = [r["cmd_id"] for r in first["requests"] if r["cmd_id"] != 22000]
    assert subscribes == [22004, 22002], first["requests"]
    assert first["subscriptions"] == {"quotes": CODES, "trades": CODES}
    assert first["depth"] == dict.fromkeys(CODES, 5)

    # A forced disconnect: a new connection, the full list again, ticks again.
    admin(sim, "/admin/drop", {"abrupt": True})
    second = wait_for(lambda: [c for c in alltick(sim, "open")
                               if c["id"] != first["id"] and len(c["requests"]) >= 2
                               and c["subscriptions"].get("quotes")],
                      timeout=30, what="a new connection with the full list")[0]
    assert second["subscriptions"] == {"quotes": CODES, "trades": CODES}
    mark = len(seen.lines())
    wait_for(lambda: seen.symbols("trade", mark) >= set(SYMBOLS), timeout=30,
             what="every symbol's trades after the drop")

    # A missed heartbeat: the server closes, the adapter reconnects and resubscribes.
    admin(sim, "/admin/faults", {"alltick_heartbeat_timeout": 0.5})
    wait_for(lambda: [c for c in alltick(sim, "closed") if c["id"] == second["id"]],
             what="the sim to close the connection for its heartbeat")
    admin(sim, "/admin/faults", {"alltick_heartbeat_timeout": 30})
    closed = [c for c in alltick(sim, "closed") if c["id"] == second["id"]]
    assert closed[0]["reason"] == "heartbeat timeout"
    wait_for(lambda: [c for c in alltick(sim, "open")
                      if c["id"] > second["id"] and c["subscriptions"].get("quotes")],
             timeout=30, what="a connection after the missed heartbeat with the full list")
    mark = len(seen.lines())
    wait_for(lambda: seen.symbols("quote", mark) >= set(SYMBOLS), timeout=30,
             what="every symbol's quotes after the missed heartbeat")
    assert_paced(alltick(sim, "closed") + alltick(sim, "open"))
