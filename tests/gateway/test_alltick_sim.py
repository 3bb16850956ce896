"""A real gateway process with `adapter: alltick` against the sim's AllTick dialect.

The sim counts every request per connection with its arrival time and answer; the tests
read that log to prove the adapter's pacing (no request under the sim's one-second limit,
heartbeats included), its full-list subscriptions and its recovery from a dropped
connection and from a missed heartbeat.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO
from tests.gateway.test_gateway_sim import listening
from tests.waiting import wait_for
from tradeops.bus.names import list_segments
from tradeops.bus.reader import RingReader
from tradeops.gateway.client import GatewayClient
from tradeops.process.paths import RunPaths
from tradeops.protocol.tick import Tick
from tradeops.sim.options import SimOptions
from tradeops.sim.server import SimThread

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

TOKEN = "alltick-test-token-5f3a"
PATH = "/quote-stock-b-ws-api"


def admin(sim: SimThread, path: str, body: dict[str, Any] | None = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(sim.http_url + path, data=data, method="POST" if data else "GET")
    with urllib.request.urlopen(req, timeout=5) as resp:
        return json.loads(resp.read())


class Feed:
    """The sim, a gateway process for its AllTick paths, and a reader of the gateway's bus."""

    def __init__(self, sim: SimThread, socket_path: str, bus: str, log: Path) -> None:
        self.sim, self.socket_path, self.log = sim, socket_path, log
        self.reader = RingReader(bus, "at", start="oldest")
        self.ticks: list[Tick] = []

    def client(self) -> GatewayClient:
        return GatewayClient(self.socket_path, "test")

    def read(self) -> list[Tick]:
        self.ticks += self.reader.read(100_000, 0.0)
        return self.ticks

    def seen(self, kind: str) -> set[str]:
        return {t.symbol for t in self.read() if t.kind == kind}

    def connections(self, which: str = "open") -> list[dict[str, Any]]:
        return [c for c in admin(self.sim, "/admin/connections")[which] if c["kind"] == "alltick"]

    def every_connection(self) -> list[dict[str, Any]]:
        return self.connections("closed") + self.connections("open")


@contextlib.contextmanager
def start_feed(tmp_path: Path, sim: SimThread, token: str, pool: str) -> Iterator[Feed]:
    topology = f"attest{os.getpid()}{abs(hash(str(tmp_path))) % 10000}"
    run_dir = tmp_path / "run"
    (tmp_path / "t.yaml").write_text(
        f"version: 1\nname: {topology}\nsettings: {{run_dir: {run_dir}, stale_after: 2s}}\n"
        "brokers:\n  at:\n    adapter: alltick\n"
        f"    url: {sim.url}{PATH}\n    credentials: {{token: {token}}}\n    pool: {pool}\n"
    )
    log = tmp_path / "gateway.log"
    with log.open("wb") as out:
        gateway = subprocess.Popen(
            [sys.executable, "-m", "tradeops.gateway", "--topology", str(tmp_path / "t.yaml"),
             "--name", "gateway-at", "--run-dir", str(run_dir)],
            cwd=REPO, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
        )
    socket_path = str(run_dir / f"{topology}-gw-at.sock")
    bus = RunPaths(run_dir.resolve(), topology).bus
    try:
        wait_for(lambda: list_segments(bus) and listening(socket_path),
                 what="the gateway's socket and bus")
        feed = Feed(sim, socket_path, bus, log)
        yield feed
        feed.reader.close()
    finally:
        gateway.terminate()
        assert gateway.wait(10) == 0, "the gateway did not stop cleanly on SIGTERM"
        assert list_segments(bus) == [], "the gateway left shared memory behind"


@pytest.fixture
def sim() -> Iterator[SimThread]:
    options = SimOptions(keys={TOKEN: ""}, max_connections=2, symbols_per_connection=3,
                         rate=20.0)
    with SimThread(options) as running:
        yield running


@pytest.fixture
def feed(tmp_path: Path, sim: SimThread) -> Iterator[Feed]:
    with start_feed(tmp_path, sim, TOKEN,
                    "{symbols_per_connection: 3, max_connections: 2}") as started:
        yield started


def assert_paced(connections: list[dict[str, Any]], interval: float = 1.0) -> int:
    """No request on any connection arrived under `interval` after the one before, and the
    sim refused none. Returns how many requests were checked."""
    checked = 0
    for conn in connections:
        requests = conn["requests"]
        assert [r for r in requests if r["ret"] != 200] == [], requests
        times = [r["at"] for r in requests]
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert all(g >= interval for g in gaps), (conn["id"], gaps)
        checked += len(requests)
    return checked


def subscribed(conn: dict[str, Any]) -> dict[str, list[str]]:
    return {kind: codes for kind, codes in conn["subscriptions"].items() if codes}


def test_pool_placement_full_lists_depth_and_pacing(feed: Feed) -> None:
    symbols = ["US:AAPL", "US:MSFT", "HK:700", "US:SPY"]
    with feed.client() as client:
        reply = client.subscribe(symbols, "depth")
        assert reply["ok"], reply
        conns = wait_for(lambda: len(feed.connections()) == 2 and feed.connections(),
                         what="two AllTick connections (3 symbols fit on one)")
        wait_for(lambda: feed.seen("quote") >= set(symbols) and feed.seen("trade") >= set(symbols),
                 timeout=20, what="trades and quotes of every symbol on the bus")
        # Every quote is the book's best level: bid under ask.
        assert all(0 < t.bid < t.ask for t in feed.ticks if t.kind == "quote")
        # The sim holds each connection's whole list, the book at depth 5 (mode depth).
        lists = sorted((subscribed(c) for c in conns), key=lambda s: len(s["trades"]))
        assert lists[0] == {"trades": ["SPY.US"], "quotes": ["SPY.US"]}
        assert lists[1] == {"trades": ["700.HK", "AAPL.US", "MSFT.US"],
                            "quotes": ["700.HK", "AAPL.US", "MSFT.US"]}
        assert all(set(c["depth"].values()) == {5} for c in conns)

        # One more symbol joins the connection with room: its whole list is sent again, and
        # nobody is disconnected.
        small = next(c for c in conns if c["subscriptions"]["trades"] == ["SPY.US"])
        assert client.subscribe(["US:IBM"], "trade")["ok"]
        # The sim's admin view may show the new list a moment after the ack: wait for it.
        wait_for(lambda: subscribed(next(c for c in feed.connections()
                                         if c["id"] == small["id"]))
                 == {"trades": ["IBM.US", "SPY.US"], "quotes": ["SPY.US"]},
                 what="IBM on the connection with room")
        assert feed.connections("closed") == []
        wait_for(lambda: "US:IBM" in feed.seen("trade"), what="IBM's trades")
        assert assert_paced(feed.connections()) >= 5


def test_a_forced_disconnect_reconnects_and_resubscribes_the_full_list(feed: Feed) -> None:
    with feed.client() as client:
        assert client.subscribe(["US:AAPL", "HK:700"], "quote")["ok"]
        wait_for(lambda: feed.seen("trade") >= {"US:AAPL", "HK:700"}, what="first ticks")
        (first,) = feed.connections()
        admin(feed.sim, "/admin/drop", {"abrupt": True})
        wait_for(lambda: client.status()["connections"][0]["reconnects"] >= 1,
                 what="the reconnect")
        again = wait_for(lambda: [c for c in feed.connections()
                                  if c["id"] != first["id"] and c["subscriptions"].get("quotes")],
                         timeout=20, what="a new connection with its book subscribed")
        assert subscribed(again[0]) == {"trades": ["700.HK", "AAPL.US"],
                                        "quotes": ["700.HK", "AAPL.US"]}
        count = len(feed.read())
        wait_for(lambda: len(feed.read()) > count + 10, timeout=10, what="ticks again")
        assert_paced(feed.every_connection())


def test_a_missed_heartbeat_is_closed_by_the_server_and_the_list_resubscribed(
    feed: Feed,
) -> None:
    with feed.client() as client:
        assert client.subscribe(["US:AAPL", "US:MSFT", "HK:700"], "trade")["ok"]
        wait_for(lambda: len(feed.seen("trade")) == 3, what="first ticks")
        (first,) = feed.connections()
        # The adapter beats every 10 s; a window shorter than that is a missed heartbeat.
        admin(feed.sim, "/admin/faults", {"alltick_heartbeat_timeout": 0.5})
        closed = wait_for(lambda: [c for c in feed.connections("closed")
                                   if c["id"] == first["id"]],
                          what="the sim to close the connection")
        admin(feed.sim, "/admin/faults", {"alltick_heartbeat_timeout": 30})
        assert closed[0]["reason"] == "heartbeat timeout"
        again = wait_for(lambda: [c for c in feed.connections() if c["subscriptions"]],
                         timeout=20, what="a new connection with the list subscribed")
        assert subscribed(again[0]) == {"trades": ["700.HK", "AAPL.US", "MSFT.US"]}
        count = len(feed.read())
        wait_for(lambda: len(feed.read()) > count + 10, timeout=10, what="ticks again")
        assert client.status()["connections"][0]["reconnects"] >= 1
        assert_paced(feed.every_connection())


def test_heartbeats_are_paced_with_subscriptions_and_keep_the_connection(
    tmp_path: Path,
) -> None:
    """A heartbeat is due at connect and every 10 s: each waits its slot behind the
    subscriptions (none refused), and the server keeps a connection that beats in time."""
    options = SimOptions(keys={TOKEN: ""}, rate=20.0, alltick_heartbeat_timeout=12.0)
    pool = "{symbols_per_connection: 10, max_connections: 1}"
    with (SimThread(options) as sim, start_feed(tmp_path, sim, TOKEN, pool) as feed,
          feed.client() as client):
        for i, symbol in enumerate(["US:AAPL", "US:MSFT", "HK:700"]):
            assert client.subscribe([symbol], "quote" if i % 2 else "trade")["ok"]

        def beats() -> int:
            (conn,) = feed.connections()
            return sum(1 for r in conn["requests"] if r["cmd_id"] == 22000)

        wait_for(lambda: beats() >= 2, timeout=30, what="two heartbeats")
        (conn,) = feed.connections()
        assert feed.connections("closed") == []
        assert len(conn["requests"]) >= 6  # 2 beats + trades ×3 + a book
        assert_paced([conn])


def test_a_wrong_token_is_an_auth_failure_and_never_shown(tmp_path: Path, sim: SimThread) -> None:
    wrong = "wrong-token-7c1d2e"
    with start_feed(tmp_path, sim, wrong,
                    "{symbols_per_connection: 3, max_connections: 1}") as feed:
        with feed.client() as client:
            reply = client.subscribe(["US:AAPL"], "trade")
            connection = wait_for(lambda: [c for c in client.status()["connections"]
                                           if "auth" in (c.get("last_error") or "")],
                                  what="the auth failure in the gateway's status")
            assert "401" in connection[0]["last_error"]
            assert wrong not in json.dumps(client.status()) + json.dumps(reply)
        closed = feed.connections("closed")
        assert closed and closed[0]["reason"] == "token invalid"
    assert wrong not in feed.log.read_text(), "the token reached the gateway's log"
