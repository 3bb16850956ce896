"""Segment names carry the topology; removal touches only that topology's files."""

from __future__ import annotations

import pytest

from tradeops.bus import LatestTable, TickRing, list_segments, remove_segments
from tradeops.bus.names import bell_name, ring_name, table_name


def test_names_carry_topology_and_broker() -> None:
    assert ring_name("desk", "alpaca") == "tradeops-desk.alpaca.ring"
    assert table_name("desk", "alpaca") == "tradeops-desk.alpaca.table"
    assert bell_name("desk", "alpaca", 3) == "tradeops-desk.alpaca.bell.3"


@pytest.mark.parametrize("bad", ["a.b", "a/b", "", "-x", "a b"])
def test_names_that_would_be_ambiguous_or_unsafe_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="cannot name a bus segment"):
        ring_name(bad, "alpaca")
    with pytest.raises(ValueError, match="cannot name a bus segment"):
        table_name("desk", bad)


def test_removing_a_topology_leaves_others_alone(topology: str) -> None:
    longer = f"{topology}-2"
    with TickRing(longer, "sim", capacity=8), LatestTable(longer, "sim", max_symbols=1):
        ring = TickRing(topology, "sim", capacity=8)
        assert list_segments(topology) == [f"tradeops-{topology}.sim.ring"]
        assert remove_segments(topology) == [f"tradeops-{topology}.sim.ring"]
        assert list_segments(topology) == []
        assert len(list_segments(longer)) == 2
        ring.close()  # its file is gone already: closing must not fail
    assert list_segments(longer) == []
