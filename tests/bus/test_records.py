"""The fast ways in and out of the ring: record rows, the table once per batch, the symbol
filter on raw bytes, and batches read by column."""

from __future__ import annotations

import pytest

from tradeops.bus import LatestTable, RingReader, TableReader, TickRing
from tradeops.bus.batch import COLUMNS, TickBatch
from tradeops.protocol.tick import BAR, QUOTE, RECORD, TRADE, Tick, encode_symbol

AAPL, MSFT, SPY = (encode_symbol(s) for s in ("AAPL", "MSFT", "SPY"))


def test_record_rows_of_each_kind_arrive_with_their_values(topology: str) -> None:
    rows = [
        (TRADE, 0, 0, 11, 21, AAPL, 187.5, 100.0),
        (QUOTE, 1, 0, 12, 22, MSFT, 410.0, 3.0, 410.5, 4.0),
        (BAR, 0, 17, 13, 23, SPY, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 4.0, 0.5, 2.0, 900.0, 2.5),
    ]
    with TickRing(topology, "sim", capacity=64) as ring, RingReader(topology, "sim") as reader:
        assert ring.extend_records(rows) == 3
        trade, quote, bar = reader.read()
    assert trade == Tick.make("trade", "AAPL", seq=1, exchange_ns=11, receive_ns=21,
                              price=187.5, size=100.0)  # fmt: skip
    assert quote == Tick.make("quote", "MSFT", seq=2, exchange_ns=12, receive_ns=22, flags=1,
                              bid=410.0, bid_size=3.0, ask=410.5, ask_size=4.0)  # fmt: skip
    assert (bar.kind, bar.symbol, bar.trade_count, bar.open, bar.high, bar.low) == (
        "bar", "SPY", 17, 1.0, 4.0, 0.5,
    )  # fmt: skip
    assert (bar.close, bar.volume, bar.vwap, bar.receive_ns) == (2.0, 900.0, 2.5, 23)


NO_DETAIL = bytes(32)
NUMBERS = ("price", "size", "bid", "bid_size", "ask", "ask_size", "open", "high", "low",
           "close", "volume", "vwap")  # fmt: skip


def numbers(tick: Tick) -> tuple[float, ...]:
    return tuple(getattr(tick, name) for name in NUMBERS)


def test_a_short_row_zeroes_what_its_kind_does_not_use_in_a_reused_slot(topology: str) -> None:
    full = (BAR, 0, 9, 1, 1, SPY, *([7.0] * 12), 7, b"7777", b"7777", b"7", b"7", b"7" * 14)
    with TickRing(topology, "sim", capacity=8) as ring, RingReader(topology, "sim") as reader:
        ring.extend_records([full] * 8)  # every slot holds sevens
        reader.read()
        ring.extend_records([(TRADE, 0, 0, 2, 2, AAPL, 1.5, 2.0)] * 2)
        ring.extend_records([(TRADE, 0, 0, 2, 2, AAPL, 1.5, 2.0, 9, b"V", b"C", b"", b"@")] * 2)
        ring.extend_records([(QUOTE, 0, 0, 3, 3, MSFT, 1.0, 2.0, 3.0, 4.0)] * 2)
        ring.extend_records([(QUOTE, 0, 0, 3, 3, MSFT, 1.0, 2.0, 3.0, 4.0,
                              b"V", b"Q", b"C", b"R")] * 2)  # fmt: skip
        ticks = reader.read()
    assert len(ticks) == 8
    for tick in ticks[:2]:
        assert numbers(tick) == (1.5, 2.0) + (0.0,) * 10 and tick.detail == NO_DETAIL
        assert tick.trade_count == 0
    for tick in ticks[2:4]:
        assert numbers(tick) == (1.5, 2.0) + (0.0,) * 10
        assert (tick.trade_id, tick.exchange, tick.ask_exchange, tick.tape, tick.taker_side,
                tick.conditions) == (9, "V", "", "C", "", ("@",))  # fmt: skip
    for tick in ticks[4:6]:
        assert numbers(tick) == (0.0, 0.0, 1.0, 2.0, 3.0, 4.0) + (0.0,) * 6
        assert tick.detail == NO_DETAIL
    for tick in ticks[6:]:
        assert numbers(tick) == (0.0, 0.0, 1.0, 2.0, 3.0, 4.0) + (0.0,) * 6
        assert (tick.trade_id, tick.exchange, tick.ask_exchange, tick.tape, tick.taker_side,
                tick.conditions) == (0, "V", "Q", "C", "", ("R",))  # fmt: skip


def test_a_bad_row_is_refused_and_the_rows_before_it_published(topology: str) -> None:
    good = (TRADE, 0, 0, 1, 1, AAPL, 1.0, 1.0)
    with TickRing(topology, "sim", capacity=64) as ring, RingReader(topology, "sim") as reader:
        with pytest.raises(ValueError, match="not a record row"):
            ring.extend_records([good, good, (TRADE, 0, 0, 1, 1, AAPL, 1.0)])  # type: ignore[list-item]
        with pytest.raises(ValueError, match="not a record row"):
            ring.extend_records([good, (TRADE, 0, 0, 1, 1, AAPL, "x", 1.0)])  # type: ignore[list-item]
        assert ring.cursor == 3
        assert [t.seq for t in reader.read()] == [1, 2, 3]
        assert ring.extend_records([good]) == 4  # the refused rows' seqs are reused
        assert [t.seq for t in reader.read()] == [4]


def test_the_table_names_each_symbols_newest_trade_and_quote_as_they_are_written(
    topology: str,
) -> None:
    with (
        LatestTable(topology, "sim", max_symbols=8) as table,
        TickRing(topology, "sim", capacity=16, table=table) as ring,
        TableReader(topology, "sim") as last,
        RingReader(topology, "sim", start="oldest") as reader,
    ):
        assert last.last_trade("AAPL") is None
        for i in range(1, 4):
            ring.append("trade", "AAPL", i, float(i))
            # The table is at least as new as the ring: it names a record once it is
            # written, before the ring publishes it (within the writer's frame).
            trade = last.last_trade("AAPL")
            assert trade is not None and (trade.seq, trade.price) == (i, float(i))
        assert reader.read() == []  # not published yet
        ring.publish()
        assert [t.seq for t in reader.read()] == [1, 2, 3]
        trade = last.last_trade("AAPL")
        assert trade is not None and (trade.seq, trade.price) == (3, 3.0)
        # A batch longer than the ring: the table is brought up to date before a pending
        # slot can be overwritten, so each symbol's entry is its newest record, not a newer
        # record of another symbol that took the slot.
        rows = [(TRADE, 0, 0, 0, 0, SPY, 0.0, 1.0)]  # SPY's newest is the batch's first
        rows += [(TRADE, 0, 0, i, i, (AAPL, MSFT)[i % 2], float(i), 1.0) for i in range(1, 50)]
        rows.append((QUOTE, 0, 0, 50, 50, MSFT, 9.0, 1.0, 9.5, 2.0))
        ring.extend_records(rows)
        for symbol, newest in (("AAPL", 48), ("MSFT", 49), ("SPY", 0)):
            trade = last.last_trade(symbol)
            assert trade is not None
            assert (trade.symbol, trade.price, trade.exchange_ns) == (symbol, newest, newest)
        quote = last.last_quote("MSFT")
        assert quote is not None and (quote.bid, quote.ask, quote.seq) == (9.0, 9.5, 54)


def test_the_symbol_filter_passes_over_other_symbols_without_losing_them(topology: str) -> None:
    with TickRing(topology, "sim", capacity=64) as ring, RingReader(topology, "sim") as reader:
        ring.extend_records(
            [(TRADE, 0, 0, i, i, (AAPL, MSFT, SPY)[i % 3], float(i), 1.0) for i in range(30)]
        )
        picked = reader.read(symbols={MSFT, SPY}, max_ticks=20)
        assert [t.symbol for t in picked] == ["MSFT", "SPY"] * 6 + ["MSFT"]
        assert [t.price for t in picked[:3]] == [1.0, 2.0, 4.0]
        assert (reader.next_seq, reader.lost) == (21, 0)
        rest = reader.read(symbols=frozenset({AAPL}))
        assert [t.seq for t in rest] == [22, 25, 28]
        assert reader.read(symbols={AAPL}) == []


def test_a_batch_reads_by_column_what_read_returns_by_tick(topology: str) -> None:
    rows = [
        (TRADE, 0, 0, 100 + i, 200 + i, (AAPL, MSFT)[i % 2], 1.5 * i, float(i)) for i in range(40)
    ]
    with TickRing(topology, "sim", capacity=32) as ring:
        ring.extend_records(rows[:20])
        with RingReader(topology, "sim", start="oldest") as batches, RingReader(
            topology, "sim", start="oldest"
        ) as ticks:
            ring.extend_records(rows[20:30])  # wraps around the 32-slot ring
            batch = batches.read_batch()
            expected = ticks.read()
    assert len(batch) == len(expected) == 30 and batch.first_seq == 1
    assert batch.ticks() == expected
    for name in COLUMNS:
        assert batch.column(name).tolist() == [getattr(t, name) for t in expected], name
    assert batch.symbols() == [t.symbol_bytes for t in expected]
    array = batch.numpy()
    assert array["price"].tolist() == [t.price for t in expected]
    assert array["symbol"][1] == b"MSFT"
    assert array["exchange_ns"][-1] == 129


def test_the_columns_sit_where_the_record_puts_each_field() -> None:
    values = Tick.make("bar", "AAPL", seq=1, exchange_ns=2, receive_ns=3, price=4, size=5, bid=6,
                       bid_size=7, ask=8, ask_size=9, open=10, high=11, low=12, close=13,
                       volume=14, vwap=15, trade_count=16, flags=17)  # fmt: skip
    batch = TickBatch(1, RECORD.pack(*values) * 2)
    for name in COLUMNS:
        assert batch.column(name).tolist() == [getattr(values, name)] * 2, name


def test_a_lapped_batch_reader_counts_the_loss_and_resyncs(topology: str) -> None:
    with TickRing(topology, "sim", capacity=16) as ring, RingReader(topology, "sim") as reader:
        ring.extend_records([(TRADE, 0, 0, i, i, AAPL, float(i), 1.0) for i in range(40)])
        batch = reader.read_batch()
        assert not batch and (reader.lost, reader.laps) == (40, 1)
        ring.extend_records([(TRADE, 0, 0, 0, 0, AAPL, 1.0, 1.0)] * 3)
        batch = reader.read_batch()
        assert (batch.first_seq, len(batch), batch.column("seq").tolist()) == (41, 3, [41, 42, 43])
