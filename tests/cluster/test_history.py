"""A broker's JetStream history against a real nats-server (-js, its store in tmp): the stream
is made bounded as configured, and searched by bus seq across epochs, chunks and lost parts."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_cluster import NatsServer
from tradeops.cluster import history, subjects, wire
from tradeops.protocol.tick import RECORD_SIZE
from tradeops.topology.model import JetStream

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(60)]


def record(seq: int, symbol: bytes) -> bytes:
    return seq.to_bytes(8, "little") + bytes([1]) + bytes(23) + symbol.ljust(32, b"\0") + \
        bytes(RECORD_SIZE - 64)


def seqs(records: bytes) -> list[int]:
    return [int.from_bytes(records[i:i + 8], "little")
            for i in range(0, len(records), RECORD_SIZE)]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[NatsServer]:
    nats = NatsServer(tmp_path / "nats.log", store=tmp_path / "js")
    nats.start()
    try:
        yield nats
    finally:
        nats.stop()


async def publish(nc: Any, epoch: int, first: int, reads: int, size: int,
                  drop: frozenset[tuple[int, bytes]] = frozenset()) -> None:
    """`reads` ring reads of `size` records from seq `first`, split by symbol as the bridge
    does; a (read's first seq, symbol) in `drop` is a part lost on the way."""
    seq = first
    for _ in range(reads):
        records = b"".join(record(s, b"AAPL" if s % 3 else b"BRK.B")
                           for s in range(seq, seq + size))
        for raw, part in wire.split_by_symbol(records).items():
            if (seq, raw.rstrip(b"\0")) in drop:
                continue
            symbol = raw.rstrip(b"\0").decode()
            await nc.publish(subjects.ticks("d", "sim", symbol),
                             wire.encode(epoch, seq, seq + size - 1, part))
        seq += size
    await nc.flush()


def test_the_stream_is_bounded_and_found_by_bus_seq(server: NatsServer) -> None:
    async def main() -> None:
        import nats

        nc = await nats.connect(f"nats://127.0.0.1:{server.port}")
        js = nc.jetstream()
        name = await history.ensure_stream(js, "d", "sim", JetStream())
        info = await js.stream_info(name)
        assert info.config.subjects == ["tradeops.d.tick.sim.>"]
        assert info.config.max_age == 3600 and info.config.max_bytes == 1 << 30
        # Made sure of again with other bounds: the stream follows the topology.
        await history.ensure_stream(js, "d", "sim", JetStream(max_age=None, max_bytes=2 << 20))
        info = await js.stream_info(name)
        assert not info.config.max_age and info.config.max_bytes == 2 << 20

        await publish(nc, 100, 1, 200, 5)  # an earlier gateway: seqs 1-1000 of epoch 100
        # Something else published on a tick subject is passed over, not history.
        await nc.publish(subjects.ticks("d", "sim", "AAPL"), b"not a tick batch")
        await publish(nc, 200, 1, 200, 5, drop=frozenset({(501, b"BRK.B")}))  # epoch 200
        # JetStream stores what it captured on its own queue: wait until all of it is in.
        deadline = asyncio.get_running_loop().time() + 30
        while (await js.stream_info(name)).state.messages < 400 + 1 + 399:
            assert asyncio.get_running_loop().time() < deadline, "the stream never filled"
            await asyncio.sleep(0.05)

        records, after = await history.fetch(js, "d", "sim", 200, 37, 400, 1000)
        assert seqs(records) == list(range(37, 401)) and after == 401
        # Chunks: at most `limit` records, and `next` exactly after the last one given.
        records, after = await history.fetch(js, "d", "sim", 200, 37, 400, 100)
        assert seqs(records) == list(range(37, 137)) and after == 137
        # A lost part is absent from the answer, below its `next`: the caller sees a gap.
        records, after = await history.fetch(js, "d", "sim", 200, 490, 520, 1000)
        assert after == 521
        # The dropped part held the BRK.B records (seqs divisible by 3) of read 501-505.
        assert seqs(records) == [s for s in range(490, 521)
                                 if not (501 <= s <= 505 and s % 3 == 0)]
        # The other epoch's same seqs are never mixed in.
        records, _ = await history.fetch(js, "d", "sim", 100, 990, 2000, 1000)
        assert seqs(records) == list(range(990, 1001))
        # Beyond what the stream holds: nothing, and the range is done.
        records, after = await history.fetch(js, "d", "sim", 200, 5000, 6000, 1000)
        assert records == b"" and after == 6001
        assert (await js.consumers_info(name)) == []  # each fetch's consumer is gone again
        await nc.close()

    asyncio.run(main())


def test_a_server_without_jetstream_is_said_with_the_fix(tmp_path: Path) -> None:
    plain = NatsServer(tmp_path / "plain.log")
    plain.start()

    async def main() -> None:
        import nats

        nc = await nats.connect(f"nats://127.0.0.1:{plain.port}")
        try:
            with pytest.raises(history.HistoryError, match="start nats-server with -js"):
                await history.ensure_stream(nc.jetstream(), "d", "sim", JetStream())
            with pytest.raises(history.HistoryError):
                await history.fetch(nc.jetstream(), "d", "sim", 1, 1, 10, 100)
        finally:
            await nc.close()

    try:
        asyncio.run(main())
    finally:
        plain.stop()
