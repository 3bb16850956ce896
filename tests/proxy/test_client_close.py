"""Who closes decides what happens to a client's queue, checked on a real proxy server in
this process (a raw websocket client over a plain socket, so nothing reads unless we do).

A client that closes gets nothing more: its queue is dropped and its lease released the
moment its close frame arrives, even when it has stopped reading (before, the proxy kept
flushing to it and held its subscriptions until its TCP connection ended). When the proxy
closes, the queue still goes out first: the client reads why before the close.
"""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path
from typing import Any

import pytest
from websockets.client import ClientProtocol
from websockets.frames import Close, Frame, Opcode
from websockets.http11 import Response
from websockets.uri import parse_uri

from tests.waiting import wait_for_async
from tradeops.process.paths import RunPaths
from tradeops.protocol.tick import Tick
from tradeops.proxy.config import ProxyConfig
from tradeops.proxy.server import ProxyServer
from tradeops.topology.load import load_topology

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(60)]
TOKEN = "s3cret"


class RawClient:
    """websockets' sans-I/O client protocol on a socket whose reads we control."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, url: str
                 ) -> None:
        self.reader, self.writer = reader, writer
        self.protocol = ClientProtocol(parse_uri(url))
        self.events: list[Any] = []

    @classmethod
    async def open(cls, port: int) -> RawClient:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # fills fast when unread
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
        reader, writer = await asyncio.open_connection(sock=sock)
        client = cls(reader, writer, f"ws://127.0.0.1:{port}/")
        client.protocol.send_request(client.protocol.connect())
        client.flush()
        await client.next(lambda e: isinstance(e, Response))
        return client

    def flush(self) -> None:
        for data in self.protocol.data_to_send():
            if data:
                self.writer.write(data)

    def send(self, message: dict[str, Any]) -> None:
        self.protocol.send_text(json.dumps(message).encode())
        self.flush()

    async def next(self, wanted: Any) -> Any:
        """Read until an event `wanted` accepts (decoded JSON for text frames)."""
        while True:
            for event in self.protocol.events_received():
                if isinstance(event, Frame) and event.opcode is Opcode.TEXT:
                    event = json.loads(event.data)
                self.events.append(event)
                if wanted(event):
                    return event
            data = await asyncio.wait_for(self.reader.read(65536), 10)
            if data:
                self.protocol.receive_data(data)
            else:
                self.protocol.receive_eof()
                if not self.protocol.events_received:
                    raise AssertionError(f"closed before the event came; saw {self.events}")

    def close(self) -> None:
        self.writer.close()


def config(tmp_path: Path) -> ProxyConfig:
    file = tmp_path / "t.yaml"
    file.write_text(
        f"version: 1\nname: closing\nsettings:\n  run_dir: {tmp_path}\n"
        f"  proxy: {{listen: '127.0.0.1:0', token: {TOKEN}}}\n"
        "brokers:\n  sim: {adapter: sim}\n"
    )
    return ProxyConfig.from_topology(load_topology(file), RunPaths(tmp_path, "closing"))


async def serving(config: ProxyConfig, scenario: Any) -> None:
    """Run `scenario(server)` against a proxy with no gateway behind it: subscribes are
    answered `queued`, and the test hands the fan-out its ticks itself."""
    server = ProxyServer(config)
    await server.start(0)
    try:
        await scenario(server)
    finally:
        await server.close()


def ticks(symbol: str, n: int) -> list[Tick]:
    return [Tick.make("trade", symbol, seq=i, price=100.0 + i, size=1) for i in range(n)]


def test_a_client_that_closes_is_released_at_once_and_its_queue_dropped(tmp_path: Path) -> None:
    async def scenario(server: ProxyServer) -> None:
        client = await RawClient.open(server.port)
        client.send({"op": "hello", "v": 1, "token": TOKEN, "client": "quitter"})
        await client.next(lambda m: isinstance(m, dict) and m.get("op") == "hello")
        client.send({"op": "subscribe", "id": 1, "symbols": ["QUIT"], "mode": "trade"})
        ack = await client.next(lambda m: isinstance(m, dict) and m.get("id") == 1)
        assert ack["ok"], ack
        (conn,) = server.conns.values()
        assert dict(server.registry.holders("sim", "QUIT")) == {conn.id: "trade"}

        # The client stops reading; ticks pile up in the kernel, then in its outbox.
        def stuck() -> bool:
            server.deliver("sim", ticks("QUIT", 50))
            return conn.queued > 0 and conn.ws.transport.get_write_buffer_size() > 0

        await wait_for_async(stuck, what="a queue the client does not read")
        client.protocol.send_close(1000, "done")  # it closes, and never reads again
        client.flush()
        await wait_for_async(lambda: conn.ws.protocol.close_rcvd is not None,
                             what="the proxy to receive the close frame")
        # Right then, not once its TCP connection ends: released, and nothing left to flush.
        assert server.conns == {}
        assert dict(server.registry.holders("sim", "QUIT")) == {}
        assert server.status()["clients"] == 0
        assert (len(conn.outbox), conn.queued, conn.conflated) == (0, 0, None)
        server.deliver("sim", ticks("QUIT", 5))
        assert len(conn.outbox) == 0
        client.close()

    asyncio.run(serving(config(tmp_path), scenario))


def test_when_the_proxy_closes_what_is_queued_goes_out_first(tmp_path: Path) -> None:
    async def scenario(server: ProxyServer) -> None:
        client = await RawClient.open(server.port)
        client.send({"op": "hello", "v": 1, "token": "guess", "client": "intruder"})
        close = await client.next(lambda e: isinstance(e, Frame) and e.opcode is Opcode.CLOSE)
        errors = [e for e in client.events if isinstance(e, dict)]
        assert errors == [{"op": "error", "code": "auth-failed",
                           "message": "wrong or missing token"}]
        assert client.events.index(errors[0]) < client.events.index(close)
        assert Close.parse(close.data).code == 1008
        await wait_for_async(lambda: server.conns == {}, what="the proxy to forget the client")
        client.close()

    asyncio.run(serving(config(tmp_path), scenario))
