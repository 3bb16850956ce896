"""The book table: books in and out, its own layout, and no torn book under a busy writer."""

from __future__ import annotations

import time
from collections.abc import Callable
from multiprocessing.context import SpawnProcess
from pathlib import Path

import pytest

from tests.bus import workers
from tests.bus.conftest import SPAWN
from tradeops.bus import BookReader, BookTable, BookTableFullError
from tradeops.bus.names import shm_path
from tradeops.protocol.book import MAX_LEVELS, BookKeeper, check_levels
from tradeops.protocol.tick import LayoutError, encode_symbol

Spawn = Callable[..., SpawnProcess]


def test_a_book_written_is_read_back_best_first_with_its_times(topology: str) -> None:
    with BookTable(topology, "sim", max_symbols=4) as table, BookReader(topology, "sim") as rd:
        assert rd.book("BTC/USD") is None and rd.version("BTC/USD") == 0
        bids, asks = [(100.0, 1.5), (99.5, 2.0)], [(100.5, 0.25)]
        table.write(encode_symbol("BTC/USD"), 11, 22, bids, asks)
        book = rd.book("BTC/USD")
        assert book is not None
        assert book.bids == tuple(bids) and book.asks == tuple(asks)
        assert (book.exchange_ns, book.receive_ns, book.version) == (11, 22, 1)
        assert book.best_bid == (100.0, 1.5) and book.best_ask == (100.5, 0.25)
        table.write(encode_symbol("BTC/USD"), 12, 23, bids[:1], [])
        again = rd.book("BTC/USD")
        assert again is not None and again.bids == (bids[0],) and again.asks == ()
        assert again.version == 2 and again.best_ask is None


def test_the_table_refuses_a_book_past_max_symbols_by_name(topology: str) -> None:
    with BookTable(topology, "sim", max_symbols=2) as table:
        table.write(encode_symbol("A/USD"), 1, 1, [], [])
        table.write(encode_symbol("B/USD"), 1, 1, [], [])
        with pytest.raises(BookTableFullError, match="C/USD"):
            table.write(encode_symbol("C/USD"), 1, 1, [], [])


def test_a_reader_refuses_a_book_segment_of_another_layout(topology: str) -> None:
    with BookTable(topology, "sim", max_symbols=2) as table:
        path = Path(shm_path(table.name))
        data = bytearray(path.read_bytes())
        data[8:12] = (99).to_bytes(4, "little")  # the layout version
        path.write_bytes(bytes(data))
        with pytest.raises(LayoutError, match="version 99"):
            BookReader(topology, "sim")


def test_the_keeper_applies_a_snapshot_then_changes_and_removals() -> None:
    keeper = BookKeeper(depth=2)
    bids, asks = keeper.apply("X", [(10.0, 1.0), (9.0, 2.0), (8.0, 3.0)], [(11.0, 1.0)],
                              reset=True)
    assert bids == ((10.0, 1.0), (9.0, 2.0)) and asks == ((11.0, 1.0),)
    # An update: the best bid leaves (size 0), a new ask level arrives below the best.
    bids, asks = keeper.apply("X", [(10.0, 0.0)], [(10.5, 4.0)])
    assert bids == ((9.0, 2.0), (8.0, 3.0)) and asks == ((10.5, 4.0), (11.0, 1.0))
    # A new snapshot replaces everything.
    assert keeper.apply("X", [(5.0, 1.0)], [], reset=True) == (((5.0, 1.0),), ())
    with pytest.raises(ValueError, match=f"1..{MAX_LEVELS}"):
        check_levels(MAX_LEVELS + 1)


@pytest.mark.e2e
@pytest.mark.timeout(90)
def test_a_reader_in_another_process_never_sees_a_torn_book(topology: str, spawn: Spawn) -> None:
    ready, stop = SPAWN.Event(), SPAWN.Event()
    writer = spawn(workers.update_books, topology, "sim", ready, stop)
    assert ready.wait(30)
    reads = torn = 0
    versions: set[int] = set()
    try:
        with BookReader(topology, "sim") as reader:
            deadline = time.monotonic() + 30.0  # a generous deadline, not a speed test
            while (reads <= 2000 or len(versions) <= 1000) and time.monotonic() < deadline:
                book = reader.book("BTC/USD")
                assert book is not None
                n, depth = book.exchange_ns, len(book.bids)
                expected = workers.book_levels(n, depth)
                torn += (list(book.bids), list(book.asks)) != expected
                torn += book.receive_ns != workers.book_checksum(book.bids, book.asks)
                torn += depth != (20 if n == 1 else 1 + n % 20)
                versions.add(book.version)
                reads += 1
    finally:
        stop.set()
        writer.join(timeout=30)  # let it close (and unlink) its table
    assert writer.exitcode == 0
    assert torn == 0
    assert reads > 2000 and len(versions) > 1000  # the writer really wrote while we read
