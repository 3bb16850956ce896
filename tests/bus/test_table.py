"""The latest-value table: last trade and quote per symbol, never torn across processes."""

from __future__ import annotations

import time
from collections.abc import Callable
from multiprocessing.context import SpawnProcess

import pytest

from tests.bus import workers
from tests.bus.conftest import SPAWN
from tradeops.bus import LatestTable, RingReader, TableFullError, TableReader, TickRing
from tradeops.protocol.tick import TRADE, SymbolError, Tick, encode_symbol

Spawn = Callable[..., SpawnProcess]


def test_the_ring_keeps_the_last_trade_and_quote_of_each_symbol(topology: str) -> None:
    with (
        LatestTable(topology, "sim", max_symbols=8) as table,
        TickRing(topology, "sim", capacity=64, table=table) as ring,
        TableReader(topology, "sim") as reader,
    ):
        assert reader.last_trade("HK:700") is None
        ring.append("trade", "HK:700", 1, 350.0, 100.0)
        ring.append("quote", "HK:700", 2, 0.0, 0.0, 349.8, 5.0, 350.2, 7.0)
        ring.append("trade", "HK:700", 3, 351.0, 200.0)
        ring.append("trade", "BRK.B", 4, 412.0, 1.0)
        ring.append("bar", "BRK.B", 5, open=1.0, close=2.0)  # bars are not kept
        ring.publish()
        trade = reader.last_trade("HK:700")
        quote = reader.last_quote("HK:700")
        assert trade is not None and (trade.seq, trade.price, trade.size) == (3, 351.0, 200.0)
        assert quote is not None and (quote.bid, quote.ask, quote.ask_size) == (349.8, 350.2, 7.0)
        assert reader.last_quote("BRK.B") is None
        brk = reader.last_trade("BRK.B")
        assert brk is not None and brk.kind == "trade"
        assert reader.last_trade("MSFT") is None
        assert reader.symbols() == ["BRK.B", "HK:700"]
        with pytest.raises(SymbolError):
            reader.last_trade("")


def test_a_quiet_symbols_last_values_outlive_many_laps_of_the_ring(topology: str) -> None:
    # The table names records in the ring and copies one only before the ring overwrites it:
    # a symbol that traded once, long ago, still has its trade and quote after 50 laps.
    with (
        LatestTable(topology, "sim", max_symbols=8) as table,
        TickRing(topology, "sim", capacity=16, table=table) as ring,
        TableReader(topology, "sim") as reader,
    ):
        ring.append("trade", "QUIET", 1, 10.0, 1.0)
        ring.append("quote", "QUIET", 2, 0.0, 0.0, 9.9, 1.0, 10.1, 2.0)
        ring.publish()
        for n in range(800):
            ring.extend_records([(TRADE, 0, 0, n, n, encode_symbol("BUSY"), float(n), 1.0)])
            busy = reader.last_trade("BUSY")
            assert busy is not None and busy.price == float(n)  # in the ring, or copied
        trade, quote = reader.last_trade("QUIET"), reader.last_quote("QUIET")
        assert trade is not None and (trade.seq, trade.price) == (1, 10.0)
        assert quote is not None and (quote.seq, quote.bid, quote.ask) == (2, 9.9, 10.1)
        assert ring.cursor == 802  # 50 laps of 16


def test_a_reference_reads_through_to_the_ring_and_survives_its_gateway(topology: str) -> None:
    table = LatestTable(topology, "sim", max_symbols=8)
    ring = TickRing(topology, "sim", capacity=64, table=table)
    reader = TableReader(topology, "sim")
    try:
        ring.write("trade", "AAPL", 1, 187.5, 100.0)
        ring.write("trade", "AAPL", 2, 187.6, 50.0)
        trade = reader.last_trade("AAPL")
        assert trade is not None and (trade.seq, trade.price) == (2, 187.6)
        # Big frames: the newest reference is always the newest record.
        ring.extend_records([(TRADE, 0, 0, n, n, encode_symbol("AAPL"), float(n), 1.0)
                             for n in range(3, 200)])  # fmt: skip
        trade = reader.last_trade("AAPL")
        assert trade is not None and (trade.seq, trade.price) == (199, 199.0)
    finally:
        ring.close()  # the gateway stops: its ring is unlinked; the reader keeps its map
    trade = reader.last_trade("AAPL")
    assert trade is not None and trade.price == 199.0
    reader.close()
    table.close()


def test_a_backfilled_trade_never_becomes_the_latest_even_at_a_spill(topology: str) -> None:
    with (
        LatestTable(topology, "sim", max_symbols=8) as table,
        TickRing(topology, "sim", capacity=8, table=table) as ring,
        TableReader(topology, "sim") as reader,
    ):
        ring.write("trade", "AAPL", 1, 100.0, 1.0)
        for n in range(12):  # late trades across several spill boundaries (every 4)
            ring.append_late("trade", "AAPL", 0, 90.0 + n, 1.0)
            ring.publish()
            trade = reader.last_trade("AAPL")
            assert trade is not None and trade.price == 100.0, n


def test_the_table_holds_max_symbols_whatever_their_hashes(topology: str) -> None:
    symbols = [f"S{i}" for i in range(100)]
    with LatestTable(topology, "sim", max_symbols=100) as table:
        for i, symbol in enumerate(symbols):
            table.put(Tick.make("trade", symbol, seq=i + 1, price=float(i)))
        with pytest.raises(TableFullError, match="already holds 100 symbols"):
            table.put(Tick.make("trade", "ONE-TOO-MANY", price=1.0))
        with TableReader(topology, "sim") as reader:
            prices = [reader.last_trade(symbol) for symbol in symbols]
            assert [t.price if t else None for t in prices] == [float(i) for i in range(100)]
            assert len(reader.symbols()) == 100


@pytest.mark.e2e
def test_a_reader_in_another_process_never_sees_a_torn_entry(topology: str, spawn: Spawn) -> None:
    ready, stop = SPAWN.Event(), SPAWN.Event()
    writer = spawn(workers.update_table, topology, "sim", ready, stop)
    assert ready.wait(30)
    reads = torn = 0
    last_trade = last_quote = -1
    try:
        with TableReader(topology, "sim") as reader:
            # Read until both sides have done plenty (a generous deadline, not a speed test).
            deadline = time.monotonic() + 30.0
            while (reads <= 1000 or last_trade <= 1000) and time.monotonic() < deadline:
                trade = reader.last_trade("BTC/USD")
                quote = reader.last_quote("BTC/USD")
                assert trade is not None and quote is not None
                torn += not (trade.seq == trade.price == trade.size == trade.vwap)
                torn += trade.seq != trade.exchange_ns
                torn += not (quote.seq == quote.bid == quote.ask == quote.ask_size)
                assert trade.seq >= last_trade and quote.seq >= last_quote  # never goes back
                last_trade, last_quote = trade.seq, quote.seq
                reads += 1
    finally:
        stop.set()
        writer.join(timeout=30)  # let it close (and unlink) its table
    assert writer.exitcode == 0
    assert torn == 0
    assert reads > 1000
    assert last_trade > 1000  # the writer really was updating while we read


@pytest.mark.e2e
def test_a_reader_through_a_racing_small_ring_never_sees_a_torn_or_older_trade(
    topology: str, spawn: Spawn
) -> None:
    ready, stop = SPAWN.Event(), SPAWN.Event()
    writer = spawn(workers.update_ring_table, topology, "sim", ready, stop)
    assert ready.wait(30)
    reads = torn = 0
    last = {"BTC/USD": -1, "ETH/USD": -1}
    try:
        with TableReader(topology, "sim") as reader:
            deadline = time.monotonic() + 30.0
            while (reads <= 2000 or last["ETH/USD"] <= 2000) and time.monotonic() < deadline:
                for symbol in last:
                    trade = reader.last_trade(symbol)
                    assert trade is not None
                    n = trade.exchange_ns
                    torn += not (n == trade.price == trade.size == trade.receive_ns)
                    assert n >= last[symbol], f"{symbol} went back from {last[symbol]} to {n}"
                    last[symbol] = n
                reads += 1
    finally:
        stop.set()
        writer.join(timeout=30)
    assert writer.exitcode == 0
    assert torn == 0
    assert reads > 2000
    assert last["ETH/USD"] > 2000  # the ring (64 slots) lapped ETH's reference many times


def test_table_readers_see_the_writer_close(topology: str) -> None:
    table = LatestTable(topology, "sim", max_symbols=2)
    reader = TableReader(topology, "sim")
    assert not reader.stale()
    table.close()
    assert reader.stale()
    reader.close()
    with pytest.raises(FileNotFoundError):
        TableReader(topology, "sim")


def test_a_full_table_leaves_a_new_symbol_out_and_its_ticks_still_flow(topology: str) -> None:
    # Before, the reference that did not fit raised at every publish from then on, and the
    # ring published nothing more.
    with (
        LatestTable(topology, "sim", max_symbols=2) as table,
        TickRing(topology, "sim", capacity=64, table=table) as ring,
        TableReader(topology, "sim") as last,
        RingReader(topology, "sim", start="oldest") as reader,
    ):
        rows = [(TRADE, 0, 0, n, n, encode_symbol(s), float(n), 1.0)
                for n, s in enumerate(["A", "B", "C", "A", "C"], 1)]  # fmt: skip
        assert ring.extend_records(rows) == 5
        assert [t.symbol for t in reader.read()] == ["A", "B", "C", "A", "C"]
        assert ring.untabled == {encode_symbol("C")}
        a, b = last.last_trade("A"), last.last_trade("B")
        assert a is not None and b is not None and (a.price, b.price) == (4.0, 2.0)
        assert last.last_trade("C") is None
        ring.write("trade", "B", 6, 6.0, 1.0)  # the table keeps working for what it holds
        b = last.last_trade("B")
        assert b is not None and b.price == 6.0
