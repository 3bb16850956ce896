"""The gateway's loop and upstream threads against a real simulated exchange on loopback.

The gateway runs on a thread here so the tests can read its state; tests/e2e runs it as a
process. Ticks go to a recording sink instead of the bus.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tradeops.gateway.backoff import BackoffPolicy
from tradeops.gateway.client import GatewayClient
from tradeops.gateway.pool import Pool
from tradeops.gateway.server import GatewayServer
from tradeops.gateway.upstream import UpstreamConfig
from tradeops.protocol.alpaca import MarketData, MarketDataSession
from tradeops.sim.options import SimOptions
from tradeops.sim.server import SimThread

FAST = BackoffPolicy(base=0.05, cap=0.5, slow_base=1.0, slow_cap=5.0, connection_limit=1.0)


class RecordingSink:
    def __init__(self) -> None:
        self.ticks: list[MarketData] = []
        self.lock = threading.Lock()

    def write(self, connection: int, ticks: list[MarketData]) -> None:
        with self.lock:
            self.ticks.extend(ticks)

    def count(self) -> int:
        with self.lock:
            return len(self.ticks)


def admin(sim: SimThread, path: str, body: dict[str, Any] | None = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(sim.http_url + path, data=data, method="POST" if data else "GET")
    with urllib.request.urlopen(req, timeout=5) as resp:
        return json.loads(resp.read())


def wait_for(predicate: Callable[[], Any], timeout: float = 10.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what or predicate}")


class Desk:
    def __init__(
        self, sim: SimThread, server: GatewayServer, sink: RecordingSink, socket_path: str
    ) -> None:
        self.sim, self.server, self.sink, self.socket_path = sim, server, sink, socket_path

    def client(self, name: str = "test") -> GatewayClient:
        return GatewayClient(self.socket_path, name)


@pytest.fixture
def desk(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Desk]:
    marker = request.node.get_closest_marker("sim")
    sim_kwargs: dict[str, Any] = marker.kwargs if marker else {}
    key = sim_kwargs.pop("client_key", "key")
    options = SimOptions(
        symbols_per_connection=5, max_connections=3, keys={"key": "secret"}, rate=20.0, **sim_kwargs
    )
    sink = RecordingSink()
    socket_path = str(tmp_path / "gw.sock")
    with SimThread(options) as sim:
        config = UpstreamConfig(
            url=sim.url + "/v2/iex",
            session=lambda: MarketDataSession(key, "secret", "msgpack"),
            ping_interval=0.5,
            silence_after=1.0,
            backoff=FAST,
        )
        server = GatewayServer(
            "sim", Pool("sim", 5, 3), lambda conn: config, sink, socket_path, stale_after=2.0
        )
        server.bind()
        stop = threading.Event()
        thread = threading.Thread(target=server.serve, args=(stop,), daemon=True)
        thread.start()
        try:
            yield Desk(sim, server, sink, socket_path)
        finally:
            stop.set()
            thread.join(10)
            assert not thread.is_alive()


def symbols(n: int, start: int = 0) -> list[str]:
    return [f"SYM{chr(65 + i)}" for i in range(start, start + n)]


def open_connections(sim: SimThread) -> list[dict[str, Any]]:
    return list(admin(sim, "/admin/connections")["open"])


def test_twelve_symbols_on_three_connections_then_a_thirteenth_incrementally(desk: Desk) -> None:
    with desk.client() as client:
        reply = client.subscribe(symbols(12), "quote")
        assert reply["ok"], reply
        assert len(open_connections(desk.sim)) == 3
        wait_for(lambda: {t.symbol for t in desk.sink.ticks} >= set(symbols(12)), what="ticks")
        before = admin(desk.sim, "/admin/subscriptions")["log"]
        closed_before = len(admin(desk.sim, "/admin/connections")["closed"])

        reply = client.subscribe(symbols(1, start=12), "quote")
        assert reply["ok"], reply
        after = admin(desk.sim, "/admin/subscriptions")["log"]
        new = after[len(before) :]
        assert len(new) == 1, new  # one incremental subscribe, nothing else
        assert new[0]["action"] == "subscribe" and new[0]["result"] == "ok"
        assert new[0]["added"] == {"quotes": ["SYMM"], "trades": ["SYMM"]}
        assert len(admin(desk.sim, "/admin/connections")["closed"]) == closed_before
        assert len(open_connections(desk.sim)) == 3


def test_sixteen_symbols_are_refused_with_a_reason(desk: Desk) -> None:
    with desk.client() as client:
        reply = client.subscribe(symbols(16), "trade")
        assert reply["ok"] is False
        refused = {s: r for s, r in reply["results"].items() if not r["ok"]}
        assert list(refused) == ["SYMP"]
        assert "broker 'sim' is full" in refused["SYMP"]["reason"]
        assert "5 per connection × 3" in refused["SYMP"]["reason"]


def test_drop_all_leads_to_reconnect_and_resubscribe(desk: Desk) -> None:
    with desk.client() as client:
        assert client.subscribe(["AAPL", "MSFT"], "trade")["ok"]
        wait_for(lambda: desk.sink.count() > 0, what="first ticks")
        admin(desk.sim, "/admin/drop", {"abrupt": True})
        wait_for(lambda: desk.server.upstreams[0].reconnects >= 1, what="the reconnect")
        seen = desk.sink.count()
        wait_for(lambda: desk.sink.count() > seen + 10, timeout=5, what="ticks again")
        subs = admin(desk.sim, "/admin/subscriptions")["log"]
        resubscribed = [e for e in subs if e["action"] == "subscribe"]
        assert sorted(resubscribed[-1]["request"]["trades"]) == ["AAPL", "MSFT"]


def test_a_silent_broker_is_detected_and_reconnected(desk: Desk) -> None:
    with desk.client() as client:
        assert client.subscribe(["AAPL"], "trade")["ok"]
        wait_for(lambda: desk.sink.count() > 0, what="first ticks")
        admin(desk.sim, "/admin/silence", {"seconds": 1.5})
        up = desk.server.upstreams[0]
        wait_for(lambda: "silent" in up.last_error, timeout=5, what="silence detected")
        seen = desk.sink.count()
        wait_for(lambda: desk.sink.count() > seen, timeout=8, what="ticks after silence")


@pytest.mark.sim(client_key="wrong")
def test_a_wrong_key_is_an_auth_failure_retried_slowly(desk: Desk) -> None:
    with desk.client() as client:
        reply = client.subscribe(["AAPL"], "trade")
        result = reply["results"]["AAPL"]
        assert result["queued"] is True and "auth" in result["reason"]
        up = desk.server.upstreams[0]
        wait_for(lambda: up.attempts >= 2, timeout=5, what="a second attempt")
        time.sleep(1.5)  # a window in which a tight loop would make hundreds of attempts
        assert up.attempts <= 3, up.attempts
        status = client.status()
        assert status["live"] is False and "402" in status["reason"]
        assert "wrong" not in json.dumps(status)  # the key never appears in status
