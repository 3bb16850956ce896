"""A slow client, and a client that sends garbage, cost every other client nothing."""

from __future__ import annotations

import json
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgpack
import pytest
import websocket
from websockets.exceptions import ConnectionClosed

from tests.waiting import wait_for
from tradeops.bus.reader import RingReader

from .helpers import Collector, NativeClient, ProxyDesk

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(60)]


def ring_seqs(desk: ProxyDesk, symbols: set[str], lo: int, hi: int) -> list[int]:
    """The seqs of every tick of `symbols` the gateway published between lo and hi."""
    with RingReader(desk.bus, "sim", start="oldest") as reader:
        ticks = reader.read(1_000_000, 0.0)
    return [t.seq for t in ticks if lo <= t.seq <= hi and t.symbol in symbols]


def assert_lost_nothing(desk: ProxyDesk, client: NativeClient, symbols: set[str]) -> int:
    seqs = [t["seq"] for t in client.ticks]
    assert seqs == sorted(seqs) and len(seqs) == len(set(seqs)), "out of order or duplicated"
    assert seqs == ring_seqs(desk, symbols, seqs[0], seqs[-1]), "the client missed ticks"
    return len(seqs)


def slow_socket(url: str) -> socket.socket:
    """A TCP connection with a tiny receive buffer: what a stalled client looks like."""
    host, port = url.removeprefix("ws://").rsplit(":", 1)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((host, int(port)))
    return sock


def test_a_slow_client_is_cut_off_while_a_fast_one_loses_nothing(
    private_desk: Callable[..., ProxyDesk],
) -> None:
    desk = private_desk("queue: 300", rate=300.0)
    symbols = [f"SLOW{c}" for c in "ABCDEFGH"]
    fast = desk.native("fast")
    assert fast.subscribe(symbols, "quote")["ok"]
    reader = Collector(fast)
    reader.start()
    # max_queue=1: the client library stops reading the socket after one unread frame.
    slow = NativeClient(desk.url + "/", sock=slow_socket(desk.url), max_queue=1)
    slow.hello("slow")
    assert slow.subscribe(symbols, "quote")["ok"]  # ...and never reads again

    state = wait_for(lambda: desk.state().get("dropped_slow") == 1 and desk.state(),
                     timeout=30, what="the slow client to be dropped")
    assert state["gateways"]["sim"]["lost"] == 0  # the proxy itself kept up with the bus
    dropped_at = len(fast.ticks)
    wait_for(lambda: len(fast.ticks) > max(dropped_at + 500, 1001), what="ticks after the drop")
    fast.close()
    reader.join(10)
    assert assert_lost_nothing(desk, fast, set(symbols)) > 1000

    with pytest.raises(ConnectionClosed):  # the slow one was closed (reading drains it)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            slow.recv(timeout=5)
    errors = [m for m in slow.other if m.get("op") == "error"]
    assert errors == [] or errors[-1]["code"] == "slow-client"
    clients = wait_for(lambda: (s := desk.state()) and s["clients"] == 0 and s, what="clean")
    assert clients["subscriptions"] == {}  # the dropped client's lease ended with it


def test_a_flood_of_malformed_frames_leaves_other_clients_unaffected(
    desk: ProxyDesk, clients: Callable[[ProxyDesk, str], NativeClient]
) -> None:
    symbols = ["FLDA", "FLDB"]
    good = clients(desk, "good")
    assert good.subscribe(symbols, "quote")["ok"]
    reader = Collector(good)
    reader.start()
    errors_before = desk.state().get("errors", 0)

    bad = clients(desk, "bad")
    flood = [f"b{i}" for i in range(2000)]  # a symbol flood, every one malformed
    garbage: list[Any] = ["{nope", b"\x00\xff\xfe", "[]", '{"op": 7}', '{"op": "dance"}',
                          json.dumps({"op": "subscribe", "symbols": "x" * 40}),
                          json.dumps({"op": "subscribe", "broker": "nope", "symbols": []}),
                          json.dumps({"op": "subscribe", "symbols": flood})]
    with pytest.raises(ConnectionClosed) as closed:
        for i in range(1000):
            bad.ws.send(garbage[i % len(garbage)])
            bad.recv(timeout=5)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
    assert closed.value.rcvd.reason == "too many errors"
    codes = {m["code"] for m in bad.other if m.get("op") == "error"}
    assert {"bad-message", "unknown-op", "unknown-broker"} <= codes

    huge = clients(desk, "huge")
    with pytest.raises(ConnectionClosed) as too_big:
        huge.ws.send("x" * 100_000)  # over max_message (64 KiB)
        huge.recv(timeout=5)
    assert too_big.value.rcvd is not None and too_big.value.rcvd.code == 1009

    silent = NativeClient(desk.url + "/")  # connects, never says hello: no crash, no leak
    seen = len(good.ticks)
    wait_for(lambda: len(good.ticks) > seen + 20, what="ticks after the flood")
    late = clients(desk, "late")  # the proxy still takes new clients
    assert late.subscribe(["FLDA"])["ok"]
    good.close()
    reader.join(10)
    assert assert_lost_nothing(desk, good, set(symbols)) > 20
    wait_for(lambda: desk.state().get("errors", 0) >= errors_before + 100, what="errors counted")
    silent.close()


def test_tls_when_given_a_certificate_and_key(
    private_desk: Callable[..., ProxyDesk], tmp_path: Path
) -> None:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    desk = private_desk(f"tls_cert: '{cert}', tls_key: '{key}'")
    assert desk.url.startswith("wss://127.0.0.1:")
    client = desk.native("tls", ssl=ssl.create_default_context(cafile=str(cert)))
    try:
        assert client.subscribe(["TLSA"])["ok"]
        client.wait_ticks(lambda t: len(t) > 0)
    finally:
        client.close()


def test_conflate_keeps_a_slow_client_with_the_latest_values(
    private_desk: Callable[..., ProxyDesk],
) -> None:
    desk = private_desk("queue: 200, slow_client: conflate", rate=300.0)
    symbols = [f"CONF{c}" for c in "ABCD"]
    slow = NativeClient(desk.url + "/", sock=slow_socket(desk.url), max_queue=1)
    slow.hello("dawdler")
    assert slow.subscribe(symbols, "quote")["ok"]  # then stops reading for a while
    wait_for(lambda: desk.state().get("conflated", 0) > 1000, timeout=30,
             what="ticks conflated for the stalled client")
    slow.ticks.clear()
    reader = Collector(slow)  # it catches up: still connected, still subscribed
    reader.start()
    wait_for(lambda: len(slow.ticks) > 2000, timeout=30, what="ticks after catching up")
    state = desk.state()
    assert state["dropped_slow"] == 0 and state["clients"] == 1
    assert {t["symbol"] for t in slow.ticks} == set(symbols)
    slow.close()
    reader.join(10)


def test_a_refusal_reaches_only_the_client_that_asked(
    private_desk: Callable[..., ProxyDesk],
) -> None:
    desk = private_desk(broker="pool: {symbols_per_connection: 2, max_connections: 1}")
    holder = desk.native("holder")
    assert holder.subscribe(["REFA"])["ok"]
    ws = websocket.create_connection(desk.url + "/v2/iex", timeout=10,
                                     header=["Content-Type: application/msgpack"])
    try:
        ws.recv()
        ws.send_binary(msgpack.packb({"action": "auth", "key": "k", "secret": "s3cret"}))
        assert msgpack.unpackb(ws.recv())[0]["msg"] == "authenticated"
        ws.send_binary(msgpack.packb({"action": "subscribe", "trades": ["REFA", "REFB", "REFC"]}))
        error, ack = msgpack.unpackb(ws.recv()), msgpack.unpackb(ws.recv())
        assert error == [{"T": "error", "code": 405, "msg": "symbol limit exceeded"}]
        assert ack[0]["T"] == "subscription" and len(ack[0]["trades"]) == 2  # the pool's two
        assert "REFA" in ack[0]["trades"]
    finally:
        ws.close()
    holder.ticks.clear()
    assert {t["symbol"] for t in holder.wait_ticks(lambda t: len(t) > 3)} == {"REFA"}
    holder.close()
