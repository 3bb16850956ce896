"""The ring, in one process: order, batching, laps, history, late attach, closing."""

from __future__ import annotations

import struct

import pytest

from tradeops.bus import ReadersFullError, RingReader, TickRing, list_segments
from tradeops.bus.names import ring_name, shm_path
from tradeops.protocol.feed import MarketData
from tradeops.protocol.tick import LAYOUT_VERSION, RECORD, LayoutError, SymbolError


def test_a_reader_gets_published_ticks_in_order_with_their_values(topology: str) -> None:
    with TickRing(topology, "sim", capacity=64) as ring, RingReader(topology, "sim") as reader:
        ring.append("trade", "HK:700", 11, 350.2, 100.0, receive_ns=99)
        ring.append("quote", "BTC/USD", 12, 0.0, 0.0, 64000.5, 1.5, 64001.0, 2.0)
        assert reader.read() == []  # appended is not published
        assert ring.publish() == 2
        trade, quote = reader.read()
    assert (trade.seq, trade.kind, trade.symbol, trade.price, trade.size) == (
        1, "trade", "HK:700", 350.2, 100.0,
    )  # fmt: skip
    assert (trade.exchange_ns, trade.receive_ns) == (11, 99)
    assert (quote.seq, quote.kind, quote.symbol) == (2, "quote", "BTC/USD")
    assert (quote.bid, quote.bid_size, quote.ask, quote.ask_size) == (64000.5, 1.5, 64001.0, 2.0)
    assert quote.receive_ns > 0  # stamped by the writer when not given


def test_extend_takes_the_gateways_market_data_and_publishes_once(topology: str) -> None:
    rows = [
        MarketData("trade", "BRK.B", 5, price=412.5, size=3.0),
        MarketData("bar", "AAPL", 6, open=1, high=4, low=0.5, close=2, volume=900, vwap=2.5,
                   trades=17),
    ]  # fmt: skip
    with TickRing(topology, "sim", capacity=64) as ring, RingReader(topology, "sim") as reader:
        assert ring.extend(rows) == 2
        trade, bar = reader.read()
    assert (trade.symbol, trade.price, trade.size, trade.exchange_ns) == ("BRK.B", 412.5, 3.0, 5)
    assert bar.kind == "bar"
    assert (bar.open, bar.high, bar.low, bar.close) == (1.0, 4.0, 0.5, 2.0)
    assert (bar.volume, bar.vwap, bar.trade_count) == (900.0, 2.5, 17)


def test_the_writer_rejects_what_the_record_cannot_hold(topology: str) -> None:
    with TickRing(topology, "sim", capacity=64) as ring:
        with pytest.raises(SymbolError, match="at most 31"):
            ring.append("trade", "X" * 32, 1, 1.0)
        with pytest.raises(ValueError, match="unknown tick kind 'tick'"):
            ring.append("tick", "AAPL", 1, 1.0)
        assert ring.publish() == 0


def test_a_lapped_reader_counts_what_it_lost_and_resyncs_to_the_newest(topology: str) -> None:
    with TickRing(topology, "sim", capacity=16) as ring, RingReader(topology, "sim") as reader:
        for i in range(100):
            ring.write("trade", "AAPL", i, float(i))
        assert reader.read() == []
        assert (reader.lost, reader.laps, reader.next_seq) == (100, 1, 101)
        assert [info.lost for info in ring.readers()] == [100]  # reported for status
        ring.write("trade", "AAPL", 100, 100.0)
        assert [t.seq for t in reader.read()] == [101]
        assert reader.lost == 100


def test_a_lapped_reader_can_resync_to_the_oldest_kept(topology: str) -> None:
    with (
        TickRing(topology, "sim", capacity=64) as ring,
        RingReader(topology, "sim", resync="oldest") as reader,
    ):
        for i in range(200):
            ring.append("trade", "AAPL", i, float(i))
        ring.publish()
        # 200 published, 64 kept, less a 1/16 margin the writer may be overwriting: the read
        # resyncs to 141 and returns what follows.
        assert [t.seq for t in reader.read()] == list(range(141, 201))
        assert (reader.lost, reader.laps) == (140, 1)


def test_history_can_be_replayed_from_an_older_seq(topology: str) -> None:
    with TickRing(topology, "sim", capacity=64) as ring:
        for i in range(1, 51):
            ring.append("trade", "AAPL", i, float(i))
        ring.publish()
        with RingReader(topology, "sim", start=10) as reader:
            assert [t.seq for t in reader.read()] == list(range(10, 51))
            assert reader.seek(3) == 3
            assert [t.price for t in reader.read(max_ticks=2)] == [3.0, 4.0]
        with RingReader(topology, "sim", start="oldest") as reader:
            assert reader.read()[0].seq == 1
        for i in range(51, 101):
            ring.append("trade", "AAPL", i, float(i))
        ring.publish()
        with RingReader(topology, "sim", start=5) as reader:
            # Seqs 1..36 were overwritten: the reader starts at the oldest kept, counts the gap.
            assert reader.next_seq == 37
            assert reader.lost == 32
            assert [t.seq for t in reader.read()] == list(range(37, 101))


def test_a_reader_attaching_late_starts_at_the_newest(topology: str) -> None:
    with TickRing(topology, "sim", capacity=64) as ring:
        for i in range(20):
            ring.write("trade", "AAPL", i, 1.0)
        with RingReader(topology, "sim") as reader:
            assert reader.read() == []
            assert reader.next_seq == 21
            ring.write("quote", "AAPL", 21, 0.0, 0.0, 1.0, 1.0, 2.0, 1.0)
            assert [t.seq for t in reader.read()] == [21]


def test_the_ring_wraps_around_without_losing_a_reader_that_keeps_up(topology: str) -> None:
    with TickRing(topology, "sim", capacity=16) as ring, RingReader(topology, "sim") as reader:
        got: list[int] = []
        for i in range(1, 101):
            ring.append("trade", "AAPL", i, float(i))
            if i % 7 == 0:
                ring.publish()
                got += [t.seq for t in reader.read()]
        ring.publish()
        got += [t.seq for t in reader.read()]
    assert got == list(range(1, 101))
    assert reader.lost == 0


def test_reader_slots_are_limited_and_given_back(topology: str) -> None:
    with TickRing(topology, "sim", capacity=16, max_readers=2) as ring:
        first = RingReader(topology, "sim")
        second = RingReader(topology, "sim")
        with pytest.raises(ReadersFullError, match="all 2 reader slots"):
            RingReader(topology, "sim")
        assert [info.slot for info in ring.readers()] == [0, 1]
        first.close()
        third = RingReader(topology, "sim")
        assert third.slot == 0
        second.close()
        third.close()
        assert ring.readers() == []


def test_closing_removes_the_ring_and_doorbells_and_tells_readers(topology: str) -> None:
    ring = TickRing(topology, "sim", capacity=16)
    reader = RingReader(topology, "sim")
    assert list_segments(topology) == [
        f"tradeops-{topology}.sim.bell.0",
        f"tradeops-{topology}.sim.ring",
    ]
    assert not reader.stale()
    ring.close()
    assert list_segments(topology) == []
    assert reader.stale()
    assert reader.wait(5.0) is False  # returns at once: the writer is gone
    reader.close()


def test_attaching_to_a_missing_ring_fails_clearly(topology: str) -> None:
    with pytest.raises(FileNotFoundError):
        RingReader(topology, "nobody")


def test_a_reader_refuses_a_ring_of_an_unknown_layout_version(topology: str) -> None:
    with TickRing(topology, "sim", capacity=16):
        path = shm_path(ring_name(topology, "sim"))
        with open(path, "r+b") as segment:  # what a future tradeops would have written
            segment.seek(8)
            segment.write(struct.pack("<I", LAYOUT_VERSION + 1))
        newer = f"has bus layout version {LAYOUT_VERSION + 1}; this tradeops reads"
        with pytest.raises(LayoutError, match=newer):
            RingReader(topology, "sim")
        assert list_segments(topology) == [f"tradeops-{topology}.sim.ring"]  # no bell left


def test_a_lap_while_copying_keeps_the_chunks_copied_intact_before_it(
    topology: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tradeops.bus import reader as reader_module

    with TickRing(topology, "sim", capacity=2048) as ring, RingReader(topology, "sim") as reader:
        for i in range(1000):
            ring.append("trade", "AAPL", i, float(i))
        ring.publish()
        copies = []

        class Overwriting:  # the writer laps the reader while it copies its second chunk
            def iter_unpack(self, buf: memoryview) -> object:
                copies.append(len(buf))
                if len(copies) == 2:
                    for i in range(2048):
                        ring.append("trade", "AAPL", i, -1.0)
                    ring.publish()
                return RECORD.iter_unpack(buf)

        monkeypatch.setattr(reader_module, "RECORD", Overwriting())
        ticks = reader.read(max_ticks=1000)
        assert [t.seq for t in ticks] == list(range(1, reader_module.CHUNK + 1))
        assert all(t.price >= 0 for t in ticks)
        assert reader.laps == 1
        assert reader.next_seq == ring.cursor + 1  # resynced to the newest
        assert reader.lost == ring.cursor - reader_module.CHUNK
