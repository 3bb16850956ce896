"""How the proxy writes to a client (proxy/connection.py): its own websocket framing, one
socket write per batch while the client keeps up, and everything waiting in one write per
drain once it is behind, every message still whole and in order."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from websockets.frames import Frame, Opcode

from tests.proxy.test_client_close import TOKEN, RawClient, config, serving
from tests.waiting import wait_for_async
from tradeops.protocol.tick import Tick
from tradeops.proxy.connection import wire
from tradeops.proxy.server import ProxyServer


@pytest.mark.parametrize("size", [0, 1, 125, 126, 127, 65535, 65536, 70000])
@pytest.mark.parametrize("text", [True, False])
def test_a_frame_is_what_websockets_writes_for_the_same_message(size: int, text: bool) -> None:
    payload = b"x" * size
    opcode = Opcode.TEXT if text else Opcode.BINARY
    assert wire(payload, text) == Frame(opcode, payload).serialize(mask=False, extensions=[])


async def subscribed(server: ProxyServer, name: str, symbol: str) -> RawClient:
    """A native client named `name`, said hello and subscribed to `symbol`'s trades."""
    client = await RawClient.open(server.port)
    client.send({"op": "hello", "v": 1, "token": TOKEN, "client": name})
    await client.next(lambda m: isinstance(m, dict) and m.get("op") == "hello")
    client.send({"op": "subscribe", "id": 1, "symbols": [symbol], "mode": "trade"})
    await client.next(lambda m: isinstance(m, dict) and m.get("id") == 1)
    return client


@pytest.mark.e2e
@pytest.mark.timeout(60)
def test_a_client_behind_gets_what_waited_in_fewer_writes_every_tick_in_order(
    tmp_path: Path,
) -> None:
    async def scenario(server: ProxyServer) -> None:
        client = await subscribed(server, "lagging", "LAG")
        (conn,) = server.conns.values()
        writes: list[int] = []
        write = conn.ws.write_wire

        def counted(data: bytes) -> None:
            writes.append(len(data))
            write(data)

        conn.ws.write_wire = counted  # type: ignore[method-assign]
        seq = 0

        def batch() -> None:
            nonlocal seq
            ticks = [Tick.make("trade", "LAG", seq=seq + i + 1, price=100.0, size=1)
                     for i in range(20)]  # fmt: skip
            seq += 20
            server.deliver("sim", ticks)

        batch()  # the client keeps up: one write for the batch
        assert len(writes) == 1 and conn.queued == 0
        # It stops reading: batches go straight out until its socket is behind, then wait.
        await wait_for_async(lambda: batch() or len(conn.outbox) >= 5,
                             what="batches waiting for a client that does not read")
        waiting, before = len(conn.outbox), len(writes)
        got: list[int] = []

        def all_read(m: Any) -> bool:
            if isinstance(m, dict) and m.get("op") == "ticks":
                got.extend(t["seq"] for t in m["ticks"])
            return len(got) == seq

        await client.next(all_read)  # it reads again: everything arrives, whole, in order
        assert got == list(range(1, seq + 1))
        assert conn.queued == 0 and not conn.outbox
        assert 0 < len(writes) - before < waiting  # what waited went out coalesced
        client.close()

    asyncio.run(serving(config(tmp_path), scenario))


@pytest.mark.e2e
@pytest.mark.timeout(60)
def test_a_client_whose_delivery_fails_is_closed_and_the_others_get_the_batch(
    tmp_path: Path,
) -> None:
    async def scenario(server: ProxyServer) -> None:
        clients = [await subscribed(server, name, "ODD") for name in ("broken", "fine")]
        broken_conn = min(server.conns.values(), key=lambda c: c.id)
        assert broken_conn.session is not None

        def fails(*args: Any) -> int:  # the fault: a bug this client's session runs into
            raise KeyError("a bug")

        broken_conn.session.symbol_ticks = fails  # type: ignore[method-assign]
        server.deliver("sim", [Tick.make("trade", "ODD", seq=i, price=1.0, size=1)
                               for i in range(1, 4)])  # fmt: skip
        fine = await clients[1].next(lambda m: isinstance(m, dict) and m.get("op") == "ticks")
        assert [t["seq"] for t in fine["ticks"]] == [1, 2, 3]
        closed = await clients[0].next(lambda e: type(e).__name__ == "Frame"
                                       and e.opcode is Opcode.CLOSE)  # fmt: skip
        assert int.from_bytes(closed.data[:2], "big") == 1011
        assert broken_conn.id not in server.conns and server.stats.errors == 1
        for client in clients:
            client.close()

    asyncio.run(serving(config(tmp_path), scenario))
