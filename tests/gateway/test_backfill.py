"""Backfill's parts without a broker: outage windows, and late ticks on a real ring."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tradeops.bus import LatestTable, RingReader, TableReader, TickRing, remove_segments
from tradeops.gateway.backfill import Outage, Outages
from tradeops.protocol.feed import MarketData, market_rows
from tradeops.protocol.tick import FLAG_BACKFILL, RecordRow


def trades(*times: int) -> list[RecordRow]:
    """Trades as the gateway's upstream threads hand them over: the bus's record rows."""
    rows, _ = market_rows([MarketData("trade", "AAPL", t, 1.0, 1.0) for t in times], 0)
    return rows


def test_an_outage_runs_from_the_newest_tick_before_to_the_first_after() -> None:
    outages = Outages()
    assert outages.seen(1, trades(10, 20)) is None
    outages.down(1, ["MSFT", "AAPL"])
    outages.down(1, ["AAPL"])  # a second drop before data resumed: the same outage
    assert outages.seen(2, trades(25)) is None  # another connection's ticks
    assert outages.seen(1, trades(50, 60)) == Outage(1, ("AAPL", "MSFT"), 20, 50)
    assert outages.seen(1, trades(70)) is None


def test_no_outage_before_any_data_or_without_symbols() -> None:
    outages = Outages()
    outages.down(1, ["AAPL"])
    assert outages.seen(1, trades(5)) is None
    outages.down(1, [])
    assert outages.seen(1, trades(9)) is None


@pytest.fixture
def bus() -> Iterator[str]:
    name = f"test-{uuid.uuid4().hex[:12]}"
    yield name
    assert remove_segments(name) == []


def test_a_late_tick_is_on_the_ring_flagged_but_never_the_latest_value(bus: str) -> None:
    table = LatestTable(bus, "b")
    ring = TickRing(bus, "b", table=table)
    try:
        ring.append(*MarketData("trade", "AAPL", 2_000, 101.0, 5.0))
        ring.append_late(*MarketData("trade", "AAPL", 1_000, 99.0, 7.0), 0, FLAG_BACKFILL)
        ring.publish()
        with RingReader(bus, "b", start="oldest") as reader:
            first, late = reader.read()
        assert (first.flags, late.flags) == (0, FLAG_BACKFILL)
        assert (late.price, late.exchange_ns) == (99.0, 1_000)
        with TableReader(bus, "b") as latest:
            last = latest.last_trade("AAPL")
        assert last is not None and last.price == 101.0
    finally:
        ring.close()
        table.close()


def test_backfill_is_refused_where_there_is_no_history_to_ask(tmp_path: object) -> None:
    from pathlib import Path

    from tests.topology.helpers import base, only, run

    data = base()
    data["brokers"]["sim"].update(feed="crypto", backfill=True)
    data["strategies"] = {}
    data["processes"] = {}
    finding = only(run(Path(str(tmp_path)), data), "backfill-not-supported")
    assert "crypto feed" in finding.message and finding.name == "sim"
