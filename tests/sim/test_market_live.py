"""The price sources behind a running sim: seeded walk, trading hours, replay."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import websocket

from tradeops.sim import SimThread

from .helpers import Http, WsClient

pytestmark = pytest.mark.e2e


def first_quotes(sim: SimThread, connect: Callable[..., WsClient], n: int) -> list[tuple]:
    client = connect(sim.url + "/v2/iex")
    client.handshake()
    client.send({"action": "subscribe", "quotes": ["AAPL"]})
    quotes: list[tuple] = []
    while len(quotes) < n:
        quotes += [(m["bp"], m["ap"], m["bs"]) for m in client.recv() if m["T"] == "q"]
    return quotes[:n]


def test_same_seed_same_ticks_across_runs(start_sim: Callable[..., SimThread],
                                          connect: Callable[..., WsClient]) -> None:
    a = first_quotes(start_sim(seed=42, rate=200.0), connect, 20)
    b = first_quotes(start_sim(seed=42, rate=200.0), connect, 20)
    c = first_quotes(start_sim(seed=43, rate=200.0), connect, 20)
    assert a == b and a != c


def closed_window() -> str:
    """A one-hour weekday window that does not contain the current time."""
    start = (datetime.now(UTC) + timedelta(hours=2)).replace(minute=0)
    if start.hour > 22 or start.hour < 2:
        start = start.replace(hour=12)
    return f"{start:%H}:00-{start.hour + 1:02d}:00 UTC"


def test_closed_market_sends_nothing_and_orders_wait(start_sim: Callable[..., SimThread],
                                                    connect: Callable[..., WsClient]) -> None:
    sim = start_sim(rate=100.0, hours=closed_window())
    http = Http(sim.http_url)
    assert http.get("/v2/clock")[1]["is_open"] is False
    client = connect(sim.url + "/v2/iex")
    client.handshake()
    client.send({"action": "subscribe", "trades": ["AAPL"]})
    assert client.recv()[0]["T"] == "subscription"
    with pytest.raises(websocket.WebSocketTimeoutException):
        client.recv(timeout=0.3)  # a 100/s walk would have sent ~30 trades by now
    _, order, _ = http.post("/v2/orders", {"symbol": "AAPL", "qty": 1, "side": "buy",
                                           "type": "market", "time_in_force": "day"})
    assert http.get(f"/v2/orders/{order['id']}")[1]["status"] == "new"


def test_replay_serves_the_file_through_the_feed_and_fills_orders(
        start_sim: Callable[..., SimThread], connect: Callable[..., WsClient],
        tmp_path: Path) -> None:
    path = tmp_path / "ticks.csv"
    path.write_text(
        "timestamp,symbol,type,price,size,bid_price,bid_size,ask_price,ask_size\n"
        "2024-05-01T13:30:00Z,AAPL,q,,,189.10,300,189.12,200\n"
        "2024-05-01T13:30:01Z,AAPL,t,189.11,100,,,,\n"
        "2024-05-01T13:30:01Z,MSFT,t,410.00,100,,,,\n"
        "2024-05-01T13:30:02Z,AAPL,q,,,189.20,300,189.22,200\n")
    sim = start_sim(replay=path, speed=20.0)
    client = connect(sim.url + "/v2/iex")
    client.handshake()
    client.send({"action": "subscribe", "quotes": ["AAPL"], "trades": ["AAPL"]})
    assert client.recv()[0]["T"] == "subscription"
    got: list[dict] = []
    while len(got) < 4:
        got += client.recv()
    assert [(m["T"], m.get("bp", m.get("p"))) for m in got[:3]] == [
        ("q", 189.10), ("t", 189.11), ("q", 189.20)]
    assert got[3] == {**got[0], "t": got[3]["t"]}  # the file loops
    http = Http(sim.http_url)
    _, order, _ = http.post("/v2/orders", {"symbol": "AAPL", "qty": 1, "side": "buy",
                                           "type": "market", "time_in_force": "day"})
    filled = http.get(f"/v2/orders/{order['id']}")[1]
    assert filled["status"] == "filled" and filled["filled_avg_price"] in ("189.12", "189.22")
    assert http.admin("status")["market"] == "replay"
