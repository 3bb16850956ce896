"""The latest-value table: last trade and quote per symbol, never torn across processes."""

from __future__ import annotations

import time
from collections.abc import Callable
from multiprocessing.context import SpawnProcess

import pytest

from tests.bus import workers
from tests.bus.conftest import SPAWN
from tradeops.bus import LatestTable, TableFullError, TableReader, TickRing
from tradeops.protocol.tick import SymbolError, Tick

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


def test_table_readers_see_the_writer_close(topology: str) -> None:
    table = LatestTable(topology, "sim", max_symbols=2)
    reader = TableReader(topology, "sim")
    assert not reader.stale()
    table.close()
    assert reader.stale()
    reader.close()
    with pytest.raises(FileNotFoundError):
        TableReader(topology, "sim")
