"""Replay of recorded trades and quotes: parsing, speed, looping, the Parquet dependency."""

from __future__ import annotations

from pathlib import Path

import pytest

from tradeops.sim.market import Quote, Trade
from tradeops.sim.options import SimConfigError
from tradeops.sim.replay import ReplayFeed, load_rows, parse_rows

CSV = """timestamp,symbol,type,price,size,bid_price,bid_size,ask_price,ask_size
2024-05-01T13:30:00.000000Z,AAPL,q,,,189.10,300,189.12,200
2024-05-01T13:30:00.500000Z,AAPL,t,189.11,100,,,,
2024-05-01T13:30:01.000000Z,MSFT,quote,,,410.00,100,410.05,100
2024-05-01T13:30:02.000000Z,AAPL,trade,189.20,50,,,,
"""


def feed_for(tmp_path: Path, speed: float) -> ReplayFeed:
    path = tmp_path / "ticks.csv"
    path.write_text(CSV)
    return ReplayFeed(load_rows(path), speed=speed, bar_seconds=60.0, spread_bps=5.0)


def test_csv_rows_replay_at_speed_with_live_timestamps(tmp_path: Path) -> None:
    feed = feed_for(tmp_path, speed=2.0)
    assert feed.advance(100.0) == []  # the clock starts at the first subscription
    feed.activate("AAPL", 100.0)
    first = feed.advance(100.0)
    assert first == [Quote("AAPL", 189.10, 300.0, 189.12, 200.0, 100_000_000_000)]
    assert feed.advance(100.2) == []  # the trade is 0.5 s into the file: 0.25 s at 2x
    (trade,) = feed.advance(100.25)
    assert isinstance(trade, Trade) and (trade.price, trade.size) == (189.11, 100.0)
    assert trade.t_ns == 100_250_000_000
    rest = feed.advance(101.0)
    assert [type(e).__name__ for e in rest] == ["Quote", "Trade"]
    assert feed.touch("MSFT", 101.0) == rest[0]
    assert feed.rows_played == 4


def test_replay_loops_after_the_last_row(tmp_path: Path) -> None:
    feed = feed_for(tmp_path, speed=1.0)
    feed.activate("AAPL", 0.0)
    assert len(feed.advance(2.5)) == 4
    looped = feed.advance(3.0)  # last row at 2 s, then a 1 s gap: the file starts over
    assert len(looped) == 1 and looped[0].t_ns == 3_000_000_000
    assert feed.rows_played == 5


def test_timestamps_as_numbers_short_names_and_inferred_types() -> None:
    rows = parse_rows([
        {"t": "1714570200000", "S": "AAPL", "bp": "1", "bs": "1", "ap": "2", "as": "1"},
        {"t": "1714570200.5", "S": "AAPL", "p": "1.5", "s": "10"},
    ], "inline")
    assert [(r.kind, r.offset_ns) for r in rows] == [("q", 0), ("t", 500_000_000)]


@pytest.mark.parametrize(("record", "message"), [
    ({"symbol": "AAPL", "price": "1"}, "needs timestamp and symbol"),
    ({"timestamp": "yesterday", "symbol": "AAPL", "price": "1"}, "bad timestamp"),
    ({"timestamp": "1", "symbol": "AAPL", "type": "x"}, "type must be"),
    ({"timestamp": "1", "symbol": "AAPL", "type": "t", "price": "-1"}, "positive price"),
    ({"timestamp": "1", "symbol": "AAPL", "type": "q", "bid_price": "1"}, "positive bid"),
    ({"timestamp": "1", "symbol": "AAPL", "price": "abc"}, "not a number"),
])
def test_malformed_rows_are_named(record: dict[str, str], message: str) -> None:
    with pytest.raises(SimConfigError, match=message):
        parse_rows([record], "bad.csv")


def test_parquet_replays_like_csv(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    parquet = pytest.importorskip("pyarrow.parquet")
    table = pa.table({"timestamp": [1.0, 2.0], "symbol": ["AAPL", "AAPL"],
                      "type": ["t", "t"], "price": [1.0, 2.0], "size": [1.0, 1.0]})
    path = tmp_path / "ticks.parquet"
    parquet.write_table(table, str(path))
    assert [r.price for r in load_rows(path)] == [1.0, 2.0]
