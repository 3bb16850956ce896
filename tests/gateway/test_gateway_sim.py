"""A real gateway process against a real simulated exchange on loopback.

The gateway runs as `python -m tradeops.gateway` (what the supervisor starts), ticks are read
from its shared-memory bus, and its state from its socket's `status` and the sim's admin log.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO
from tests.waiting import wait_for
from tradeops.bus.names import list_segments
from tradeops.bus.reader import RingReader
from tradeops.gateway.client import GatewayClient
from tradeops.process.paths import RunPaths
from tradeops.protocol.tick import Tick
from tradeops.sim.options import SimOptions
from tradeops.sim.server import SimThread

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]


def admin(sim: SimThread, path: str, body: dict[str, Any] | None = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(sim.http_url + path, data=data, method="POST" if data else "GET")
    with urllib.request.urlopen(req, timeout=5) as resp:
        return json.loads(resp.read())




def listening(path: str) -> bool:
    """Whether the gateway accepts on its socket (the file exists from bind, before listen)."""
    with socket.socket(socket.AF_UNIX) as probe:
        try:
            probe.connect(path)
        except OSError:
            return False
    return True


class Desk:
    """A sim, a gateway process for it, and a reader of the gateway's bus."""

    def __init__(
        self, sim: SimThread, gateway: subprocess.Popen[bytes], topology: str, socket_path: str
    ) -> None:
        self.sim, self.gateway, self.topology = sim, gateway, topology
        self.socket_path = socket_path
        self.reader = RingReader(topology, "sim", start="oldest")
        self.ticks: list[Tick] = []

    def client(self, name: str = "test") -> GatewayClient:
        return GatewayClient(self.socket_path, name)

    def count(self) -> int:
        self.ticks += self.reader.read(100_000, 0.0)
        return len(self.ticks)

    def status(self, client: GatewayClient) -> dict[str, Any]:
        return client.status()


@pytest.fixture
def desk(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Desk]:
    marker = request.node.get_closest_marker("sim")
    key = (marker.kwargs if marker else {}).get("client_key", "key")
    topology = f"gwtest{os.getpid()}{abs(hash(request.node.name)) % 10000}"
    run_dir = tmp_path / "run"
    (tmp_path / "t.yaml").write_text(
        f"version: 1\nname: {topology}\nsettings: {{run_dir: {run_dir}, stale_after: 2s}}\n"
        "brokers:\n  sim:\n    adapter: sim\n    silence_after: 1s\n"
        f"    credentials: {{key: {key}, secret: secret}}\n"
        "    pool: {symbols_per_connection: 5, max_connections: 3}\n"
    )
    options = SimOptions(
        symbols_per_connection=5, max_connections=3, keys={"key": "secret"}, rate=20.0
    )
    with SimThread(options) as sim:
        gateway = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tradeops.gateway",
                "--topology",
                str(tmp_path / "t.yaml"),
                "--name",
                "gateway-sim",
                "--run-dir",
                str(run_dir),
                "--url",
                sim.url,
            ],
            cwd=REPO,
            stdin=subprocess.DEVNULL,
        )
        socket_path = str(run_dir / f"{topology}-gw-sim.sock")
        bus = RunPaths(run_dir.resolve(), topology).bus
        try:
            wait_for(
                lambda: list_segments(bus) and listening(socket_path),
                what="the gateway's socket and bus",
            )
            desk = Desk(sim, gateway, bus, socket_path)
            yield desk
            desk.reader.close()
        finally:
            gateway.terminate()
            assert gateway.wait(10) == 0, "the gateway did not stop cleanly on SIGTERM"
            assert list_segments(bus) == [], "the gateway left shared memory behind"


def symbols(n: int, start: int = 0) -> list[str]:
    return [f"SYM{chr(65 + i)}" for i in range(start, start + n)]


def open_connections(sim: SimThread) -> list[dict[str, Any]]:
    """The sim's open market-data connections (the gateway also holds a trade stream)."""
    return [c for c in admin(sim, "/admin/connections")["open"] if c["kind"] == "data"]


def test_twelve_symbols_on_three_connections_then_a_thirteenth_incrementally(desk: Desk) -> None:
    with desk.client() as client:
        reply = client.subscribe(symbols(12), "quote")
        assert reply["ok"], reply
        assert len(open_connections(desk.sim)) == 3
        wait_for(
            lambda: desk.count() and {t.symbol for t in desk.ticks} >= set(symbols(12)),
            what="ticks of every symbol on the bus",
        )
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
        wait_for(lambda: desk.count() > 0, what="first ticks")
        admin(desk.sim, "/admin/drop", {"abrupt": True})
        wait_for(lambda: client.status()["connections"][0]["reconnects"] >= 1, what="the reconnect")
        seen = desk.count()
        wait_for(lambda: desk.count() > seen + 10, timeout=5, what="ticks again")
        subs = admin(desk.sim, "/admin/subscriptions")["log"]
        resubscribed = [e for e in subs if e["action"] == "subscribe"]
        assert sorted(resubscribed[-1]["request"]["trades"]) == ["AAPL", "MSFT"]


def test_a_silent_broker_is_detected_and_reconnected(desk: Desk) -> None:
    with desk.client() as client:
        assert client.subscribe(["AAPL"], "trade")["ok"]
        wait_for(lambda: desk.count() > 0, what="first ticks")
        admin(desk.sim, "/admin/silence", {"seconds": 1.5})
        wait_for(
            lambda: "silent" in client.status()["connections"][0]["last_error"],
            timeout=5,
            what="silence detected",
        )
        seen = desk.count()
        wait_for(lambda: desk.count() > seen, timeout=8, what="ticks after silence")


def test_a_feed_without_ticks_keeps_the_gate_closed_while_it_reconnects(desk: Desk) -> None:
    """A market that sends nothing from the start (stale_after 2 s, silence_after 1 s here):
    reconnects come every second or so, each with a greeting, an auth and an acknowledgement,
    but no market data, so the gate never opens."""
    admin(desk.sim, "/admin/silence", {"seconds": 60})
    with desk.client() as client:
        client.subscribe(["AAPL"], "trade")
        wait_for(lambda: client.status()["connections"][0]["state"] == "live",
                 what="the connection to authenticate")
        samples = []
        end = time.monotonic() + 3 * 2.0  # three times stale_after, sampled
        while time.monotonic() < end:
            status = client.status()
            samples.append((status["live"], status["reason"]))
            client.poll(0.1)
        assert all(not live for live, _ in samples), [s for s in samples if s[0]]
        assert client.status()["connections"][0]["reconnects"] >= 2
        assert any("no market data yet" in reason for _, reason in samples), samples
        assert client.live[0] is False


@pytest.mark.sim(client_key="wrong")
def test_a_wrong_key_is_an_auth_failure_retried_slowly(desk: Desk) -> None:
    with desk.client() as client:
        reply = client.subscribe(["AAPL"], "trade")
        result = reply["results"]["AAPL"]
        assert result["queued"] is True and "auth" in result["reason"]
        # It backs off on the slow schedule an auth failure gets (30 s and more, see
        # test_backoff.py), not in a tight loop: one attempt, then waiting, cause `auth`.
        status = wait_for(
            lambda: (s := client.status())["connections"][0]["state"] == "backoff" and s,
            what="the connection to back off",
        )
        assert status["connections"][0]["last_error"].startswith("auth: "), status
        assert status["connections"][0]["attempts"] == 1, status
        closed = admin(desk.sim, "/admin/connections")["closed"]
        assert len([c for c in closed if c["kind"] == "data"]) == 1  # the sim saw one try
        assert status["live"] is False and "402" in status["reason"]
        assert "wrong" not in json.dumps(status)  # the key never appears in status
