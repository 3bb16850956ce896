"""`TickRing.write_records`: a mirror of another ring keeps its seq numbers, so a gap
upstream is a gap here, and its readers pass the gap in order."""

from __future__ import annotations

import pytest

from tests.bus.records import ring_records
from tradeops.bus.reader import RingReader
from tradeops.bus.ring import TickRing
from tradeops.bus.table import LatestTable, TableReader
from tradeops.protocol.tick import RECORD_SIZE


def test_a_mirror_ring_keeps_upstream_seqs_and_shows_a_gap(topology: str) -> None:
    records = ring_records(topology, ["A", "B", "A", "B", "A", "B"])
    keep = records[:2 * RECORD_SIZE] + records[4 * RECORD_SIZE:]  # seqs 3 and 4 lost
    table = LatestTable(topology, "down")
    mirror = TickRing(topology, "down", capacity=64, table=table)
    try:
        reader = RingReader(topology, "down", start="newest")
        assert mirror.write_records(keep) == 6
        assert mirror.write_records(records[:RECORD_SIZE]) == 6  # a duplicate: dropped
        ticks = reader.read(100)
        assert [(t.seq, t.kind, t.symbol) for t in ticks] == [
            (1, "trade", "A"), (2, "trade", "B"), (3, "unknown", ""), (4, "unknown", ""),
            (5, "trade", "A"), (6, "trade", "B")]
        assert [t.price for t in ticks if t.symbol] == [10.0, 11.0, 14.0, 15.0]
        latest = TableReader(topology, "down")
        last = latest.last_trade("A")
        assert last is not None and last.seq == 5
        latest.close()
        reader.close()
        with pytest.raises(ValueError, match="whole number"):
            mirror.write_records(b"x" * 10)
    finally:
        mirror.close()
        table.close()


def test_a_mirror_joining_late_starts_at_the_upstream_seq(topology: str) -> None:
    records = ring_records(topology, ["A"] * 10)
    mirror = TickRing(topology, "late", capacity=64)
    try:
        reader = RingReader(topology, "late", start="newest")
        mirror.write_records(records[7 * RECORD_SIZE:])  # seqs 8..10
        ticks = reader.read(100)
        assert [t.seq for t in ticks if t.symbol] == [8, 9, 10]
        assert reader.lost == 0
        reader.close()
    finally:
        mirror.close()
