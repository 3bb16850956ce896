"""The NATS side of a bridge without NATS: subject names, batches and a node's filter."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.bus.records import ring_records
from tradeops.bus import remove_segments
from tradeops.bus.reader import RingReader
from tradeops.bus.ring import TickRing
from tradeops.cluster import subjects, wire
from tradeops.protocol.tick import RECORD_SIZE, encode_symbol


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


def test_a_read_splits_by_symbol_and_filters_for_a_node_in_seq_order(names: str) -> None:
    records = ring_records(names, ["A", "B", "A", "C", "B", "A"])
    parts = wire.split_by_symbol(records)
    assert sorted(len(p) // RECORD_SIZE for p in parts.values()) == [1, 2, 3]
    wanted = frozenset({encode_symbol("A"), encode_symbol("C")})
    mine = wire.only(records, wanted)
    seqs = [int.from_bytes(mine[i : i + 8], "little") for i in range(0, len(mine), RECORD_SIZE)]
    assert seqs == [1, 3, 4, 6]  # A, A, C, A: their own seqs, in order
    assert wire.only(records, frozenset({encode_symbol(s) for s in "ABC"})) is records
    assert wire.only(records, frozenset()) == b""
    batch = wire.decode(wire.encode(7, 1, 6, mine))
    assert (batch.first, batch.last, batch.count) == (1, 6, 4)  # the whole read's range


def test_a_batch_of_another_layout_is_refused() -> None:
    message = bytearray(wire.encode(1, 1, 1, bytes(RECORD_SIZE)))
    message[4] = 99
    with pytest.raises(wire.WireError, match="same tradeops version"):
        wire.decode(bytes(message))
    with pytest.raises(wire.WireError, match="not a tick batch"):
        wire.decode(b"x" * 40)


def test_books_travel_with_their_depth_records(names: str) -> None:
    ns = names + "b"
    ring = TickRing(ns, "up", capacity=64)
    try:
        reader = RingReader(ns, "up", start="newest")
        ring.append("trade", "AAPL", 1, 10.0, 1.0)
        ring.append("depth", "BTC/USD", 2, 0.0, 0.0, 9.0, 1.0, 11.0, 2.0)
        ring.append("depth", "BTC/USD", 3, 0.0, 0.0, 9.5, 1.0, 11.0, 2.0)
        ring.append("depth", "ETH/USD", 4, 0.0, 0.0, 1.0, 1.0, 2.0, 2.0)
        ring.publish()
        records = reader.read_batch(100).data
        reader.close()
    finally:
        ring.close()
    assert wire.depth_symbols(records) == [encode_symbol("BTC/USD"), encode_symbol("ETH/USD")]
    books = [("BTC/USD", 3, 4, [[9.5, 1.0], [9.0, 3.0]], [[11.0, 2.0]])]
    batch = wire.decode(wire.encode(5, 1, 4, records, books))
    assert batch.records == records and (batch.epoch, batch.first, batch.last) == (5, 1, 4)
    assert batch.books == (("BTC/USD", 3, 4, [[9.5, 1.0], [9.0, 3.0]], [[11.0, 2.0]]),)
    plain = wire.decode(wire.encode(5, 1, 4, records))
    assert plain.books == () and plain.records == records
