"""The market-data websocket over real sockets, driven by a plain websocket-client."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import msgpack
import pytest
import websocket

from tests.waiting import wait_for
from tradeops.sim import SimThread
from tradeops.sim import server as sim_server

from .helpers import Closed, Http, WsClient, small_receive_buffer

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("path", ["/v2/iex", "/v2/sip", "/v2/test"])
def test_json_dialect_end_to_end(sim: SimThread, connect: Callable[..., WsClient],
                                 path: str) -> None:
    client = connect(sim.url + path)
    client.handshake()
    assert client.last_opcode == websocket.ABNF.OPCODE_TEXT
    client.send({"action": "subscribe", "trades": ["AAPL"], "quotes": ["AAPL"]})
    (ack,) = client.recv()
    assert ack == {"T": "subscription", "trades": ["AAPL"], "quotes": ["AAPL"], "bars": [],
                   "updatedBars": [], "dailyBars": [], "statuses": [], "lulds": [],
                   "corrections": ["AAPL"], "cancelErrors": ["AAPL"]}
    trade = client.recv_until(lambda m: m["T"] == "t")
    quote = client.recv_until(lambda m: m["T"] == "q")
    assert set(trade) == {"T", "S", "i", "x", "p", "s", "c", "z", "t"} and trade["S"] == "AAPL"
    assert set(quote) == {"T", "S", "bx", "bp", "bs", "ax", "ap", "as", "c", "z", "t"}
    assert quote["ap"] > quote["bp"] > 0
    assert datetime.fromisoformat(quote["t"]).tzinfo is not None
    assert len(quote["t"].split(".")[1]) == 10  # nine digits and the Z


def test_msgpack_dialect_uses_binary_frames_and_timestamps(
        sim: SimThread, connect: Callable[..., WsClient]) -> None:
    client = connect(sim.url + "/v2/iex", codec="msgpack")
    client.handshake()
    assert client.last_opcode == websocket.ABNF.OPCODE_BINARY
    client.send({"action": "subscribe", "quotes": ["MSFT"], "bars": ["MSFT"]})
    assert client.recv()[0]["quotes"] == ["MSFT"]
    quote = client.recv_until(lambda m: m["T"] == "q")
    assert client.last_opcode == websocket.ABNF.OPCODE_BINARY
    assert isinstance(quote["t"], msgpack.Timestamp)
    assert abs(quote["t"].to_unix() - datetime.now().timestamp()) < 5


def test_crypto_feed_and_bars(start_sim: Callable[..., SimThread],
                              connect: Callable[..., WsClient]) -> None:
    sim = start_sim(rate=50.0, bar_seconds=0.2)
    client = connect(sim.url + "/v1beta3/crypto/us")
    client.handshake()
    client.send({"action": "subscribe", "trades": ["BTC/USD"], "bars": ["BTC/USD"]})
    (ack,) = client.recv()
    assert ack["orderbooks"] == [] and ack["trades"] == ["BTC/USD"] and "statuses" not in ack
    trade = client.recv_until(lambda m: m["T"] == "t")
    assert set(trade) == {"T", "S", "p", "s", "t", "i", "tks"}
    bar = client.recv_until(lambda m: m["T"] == "b")
    assert bar["S"] == "BTC/USD" and bar["n"] >= 1 and bar["l"] <= bar["vw"] <= bar["h"]
    assert set(bar) == {"T", "S", "o", "h", "l", "c", "v", "t", "n", "vw"}


def test_only_subscribed_symbols_arrive_and_unsubscribe_takes_effect_at_the_ack(
        sim: SimThread, connect: Callable[..., WsClient]) -> None:
    client = connect(sim.url + "/v2/iex")
    client.handshake()
    client.send({"action": "subscribe", "trades": ["AAPL", "MSFT"]})
    client.recv_until(lambda m: m["T"] == "subscription")
    seen: set[str] = set()
    client.recv_until(lambda m: m["T"] == "t" and (seen.add(m["S"]) or seen == {"AAPL", "MSFT"}))
    client.send({"action": "unsubscribe", "trades": ["MSFT"]})
    client.recv_until(lambda m: m["T"] == "subscription" and m["trades"] == ["AAPL"])
    after = [m for _ in range(20) for m in client.recv()]
    assert {m["S"] for m in after} == {"AAPL"}
    assert {m["T"] for m in after} == {"t"}


def test_error_codes_over_the_wire(start_sim: Callable[..., SimThread],
                                  connect: Callable[..., WsClient]) -> None:
    sim = start_sim(keys={"k": "s", "k2": "s2"}, symbols_per_connection=2, max_connections=1,
                    feeds=("iex",), auth_timeout=0.3)
    c = connect(sim.url + "/v2/iex")
    assert c.recv() == [{"T": "success", "msg": "connected"}]
    c.send_raw("this is not json")
    assert c.recv() == [{"T": "error", "code": 400, "msg": "invalid syntax"}]
    c.send({"action": "subscribe", "trades": ["AAPL"]})
    assert c.recv() == [{"T": "error", "code": 401, "msg": "not authenticated"}]
    c.send({"action": "auth", "key": "k", "secret": "nope"})
    assert c.recv() == [{"T": "error", "code": 402, "msg": "auth failed"}]
    c.send({"action": "auth", "key": "k", "secret": "s"})
    assert c.recv() == [{"T": "success", "msg": "authenticated"}]
    c.send({"action": "auth", "key": "k", "secret": "s"})
    assert c.recv() == [{"T": "error", "code": 403, "msg": "already authenticated"}]
    c.send({"action": "subscribe", "quotes": ["A", "B", "C"]})
    assert c.recv() == [{"T": "error", "code": 405, "msg": "symbol limit exceeded"}]
    c.send({"action": "subscribe", "orderbooks": ["AAPL"]})
    assert c.recv() == [{"T": "error", "code": 410,
                         "msg": "invalid subscribe action for this feed"}]
    second = connect(sim.url + "/v2/iex")
    second.recv()
    second.send({"action": "auth", "key": "k", "secret": "s"})
    assert second.recv() == [{"T": "error", "code": 406, "msg": "connection limit exceeded"}]
    with pytest.raises(Closed) as closed:
        second.recv()
    assert closed.value.code == 1008
    sip = connect(sim.url + "/v2/sip")
    sip.recv()
    sip.send({"action": "auth", "key": "k2", "secret": "s2"})
    assert sip.recv() == [{"T": "error", "code": 409, "msg": "insufficient subscription"}]
    with pytest.raises(Closed):
        sip.recv()
    idle = connect(sim.url + "/v2/iex")
    idle.recv()
    assert idle.recv(timeout=3) == [{"T": "error", "code": 404, "msg": "auth timeout"}]
    with pytest.raises(Closed):
        idle.recv(timeout=3)


def test_slow_client_gets_407_and_is_closed(start_sim: Callable[..., SimThread],
                                            connect: Callable[..., WsClient]) -> None:
    # 50k messages/s, about 40 KiB per market step: well under the bound while read.
    sim = start_sim(rate=1000.0, slow_client_bytes=256 * 1024)
    http = Http(sim.http_url)
    client = connect(sim.url + "/v2/iex", sockopt=small_receive_buffer())
    client.handshake()
    symbols = [f"S{i:03d}" for i in range(50)]
    client.send({"action": "subscribe", "trades": symbols, "quotes": symbols})
    # Stop reading: the sim's queue for this client grows until it passes the bound.
    wait_for(lambda: any(c["closing"] == "slow client" for c in http.admin("connections")
                           ["open"]) or http.admin("connections")["closed"], timeout=20,
               what="the sim to mark the client slow")
    backlog = 0
    with pytest.raises(Closed) as closed:
        while True:
            frame = client.recv(timeout=5)
            if frame == [{"T": "error", "code": 407, "msg": "slow client"}]:
                client.recv(timeout=5)
            backlog += len(frame)
    assert closed.value.code == 1008
    # Market data piled up in the buffers while the client was not reading (how much depends
    # on how fast a loaded machine ran the sim: the bound, not the count, is the behaviour).
    assert backlog > 0
    (entry,) = wait_for(lambda: http.admin("connections")["closed"])
    assert entry["reason"] == "slow client"


def test_admin_shows_connections_and_the_subscription_history(
        sim: SimThread, http: Http, connect: Callable[..., WsClient]) -> None:
    first = connect(sim.url + "/v2/iex")
    first.handshake()
    first.send({"action": "subscribe", "trades": ["AAPL"]})
    first.recv_until(lambda m: m["T"] == "subscription")
    first.send({"action": "subscribe", "trades": ["AAPL"], "quotes": ["AAPL", "TSLA"]})
    first.recv_until(lambda m: m["T"] == "subscription")
    other = connect(sim.url + "/v2/sip")
    other.handshake(key="someone-else")
    other.send({"action": "subscribe", "bars": ["TSLA"]})
    other.recv_until(lambda m: m["T"] == "subscription")
    log = http.admin("subscriptions")["log"]
    assert [(e["key"], e["added"]) for e in log] == [
        ("key", {"trades": ["AAPL"]}), ("key", {"quotes": ["AAPL", "TSLA"]}),
        ("someone-else", {"bars": ["TSLA"]})]
    assert len(http.admin("subscriptions?symbol=TSLA")["log"]) == 2
    conns = {c["key"]: c for c in http.admin("connections")["open"]}
    assert conns["key"]["subscriptions"] == {"trades": ["AAPL"], "quotes": ["AAPL", "TSLA"]}
    assert conns["someone-else"]["feed"] == "sip"
    assert set(http.admin("status")["active_symbols"]) == {"AAPL", "TSLA"}
    other.close()
    closed = wait_for(lambda: http.admin("connections")["closed"])
    assert closed[0]["key"] == "someone-else" and closed[0]["reason"].startswith("client closed")
    assert http.post("/admin/clear", auth=False)[0] == 200
    assert http.admin("subscriptions")["log"] == []


@pytest.mark.timeout(30)
def test_a_slow_client_that_never_reads_again_is_cut_off(
        start_sim: Callable[..., SimThread], connect: Callable[..., WsClient],
        monkeypatch: pytest.MonkeyPatch) -> None:
    # The 407 and the close frame cannot reach it; the sim aborts after its close timeout
    # (5 s; shortened here, where it is only waited out).
    monkeypatch.setattr(sim_server, "CLOSE_TIMEOUT", 0.5)
    sim = start_sim(rate=1000.0, slow_client_bytes=256 * 1024)
    http = Http(sim.http_url)
    client = connect(sim.url + "/v2/iex", sockopt=small_receive_buffer())
    client.handshake()
    symbols = [f"S{i:03d}" for i in range(50)]
    client.send({"action": "subscribe", "trades": symbols, "quotes": symbols})
    (entry,) = wait_for(lambda: http.admin("connections")["closed"], timeout=20,
                          what="the sim to give up on the client")
    assert entry["reason"] == "slow client"
    assert http.admin("connections")["open"] == []
    assert http.admin("status")["active_symbols"] == []
