"""The NATS side of a bridge without NATS: subject names, batches and their reassembly."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tradeops.bus import remove_segments
from tradeops.bus.reader import RingReader
from tradeops.bus.ring import TickRing
from tradeops.cluster import subjects, wire
from tradeops.protocol.tick import RECORD_SIZE


@pytest.mark.parametrize("symbol", ["AAPL", "BRK.B", "BTC/USD", "NSE:RELIANCE", "a b*>%", "",
                                    "ÆØ.x"])
def test_a_symbol_is_one_subject_token_and_back(symbol: str) -> None:
    token = subjects.escape_symbol(symbol)
    assert token and not any(c in token for c in ".*> \t")
    assert subjects.unescape_symbol(token) == symbol


def test_subjects() -> None:
    assert subjects.ticks("desk", "sim", "BRK.B") == "tradeops.desk.tick.sim.BRK%2EB"
    assert subjects.ticks("desk", "sim") == "tradeops.desk.tick.sim.*"
    assert subjects.control("desk", "sim") == "tradeops.desk.ctl.sim"


@pytest.fixture
def names() -> Iterator[str]:
    name = f"test-{uuid.uuid4().hex[:12]}"
    yield name
    assert remove_segments(name) == [], "bus files left behind"


def _source(ns: str, symbols: list[str]) -> bytes:
    """Records as a gateway's ring holds them: write them, read them back raw."""
    ring = TickRing(ns, "up", capacity=64)
    try:
        reader = RingReader(ns, "up", start="newest")
        for i, symbol in enumerate(symbols):
            ring.append("trade", symbol, 1000 + i, 10.0 + i, 1.0)
        ring.publish()
        batch = reader.read_batch(1000)
        reader.close()
        return batch.data
    finally:
        ring.close()


def test_a_read_split_by_symbol_is_reassembled_in_seq_order(names: str) -> None:
    records = _source(names, ["A", "B", "A", "C", "B", "A"])
    parts = wire.split_by_symbol(records)
    assert sorted(len(p) // RECORD_SIZE for p in parts.values()) == [1, 2, 3]
    messages = [wire.encode(7, 1, 6, p) for p in parts.values()]
    again = wire.Reassembly()
    out = b"".join(again.add(wire.decode(m)) for m in messages)
    assert out == records and not again.waiting


def test_a_lost_part_leaves_the_rest_in_order_when_the_next_read_begins(names: str) -> None:
    records = _source(names, ["A", "B", "A", "B"])
    parts = list(wire.split_by_symbol(records).values())
    again = wire.Reassembly()
    assert again.add(wire.decode(wire.encode(1, 1, 4, parts[0]))) == b""
    nxt = _source(names + "n", ["C"])
    out = again.add(wire.decode(wire.encode(1, 5, 5, nxt)))
    assert out == parts[0] + nxt


def test_a_batch_of_another_layout_is_refused() -> None:
    message = bytearray(wire.encode(1, 1, 1, bytes(RECORD_SIZE)))
    message[4] = 99
    with pytest.raises(wire.WireError, match="same tradeops version"):
        wire.decode(bytes(message))
    with pytest.raises(wire.WireError, match="not a tick batch"):
        wire.decode(b"x" * 40)
