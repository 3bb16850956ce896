"""Order books through the bus, in real processes: the sim's crypto `orderbooks` (snapshot,
then changes) → the gateway's books → the book table → on_book and self.book()."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.waiting import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]


def test_a_depth_strategy_sees_books_whose_best_levels_match_the_quotes(
    tmp_path: Path, make_desk: Any
) -> None:
    books, quotes = tmp_path / "books.txt", tmp_path / "quotes.txt"
    desk = make_desk("books", f"""
brokers:
  sim:
    adapter: sim
    feed: crypto
    book_depth: 3
    market: {{seed: 9, rate: 40}}
strategies:
  depth:
    class: tests.e2e.strategies:BookRecorder
    broker: sim
    symbols: [BTC/USD, ETH/USD]
    mode: depth
    params: {{out: "{books}", quotes: "{quotes}"}}
""")
    desk.up()

    def lines(path: Path) -> list[str]:
        return path.read_text().splitlines() if path.exists() else []

    wait_for(lambda: sum("BTC/USD" in x for x in lines(books)) >= 20
             and sum("ETH/USD" in x for x in lines(books)) >= 20, 60, "20 books of each symbol")
    desk.stop()

    by_time = {}
    for row in lines(quotes):
        symbol, ns, bid, bid_size, ask, ask_size = row.split()
        by_time[(symbol, int(ns))] = (float(bid), float(bid_size), float(ask), float(ask_size))
    matched = 0
    versions: dict[str, int] = {}
    for row in lines(books):
        head, bid_text, ask_text = row.split(" | ")
        symbol, ns, version, n_bids, n_asks = head.split()
        bids = [tuple(map(float, level.split(":"))) for level in bid_text.split()]
        asks = [tuple(map(float, level.split(":"))) for level in ask_text.split()]
        # book_depth: 3 levels a side (the sim's books hold 10), best first.
        assert (int(n_bids), int(n_asks)) == (3, 3) and len(bids) == len(asks) == 3
        assert bids == sorted(bids, reverse=True) and asks == sorted(asks)
        assert bids[0][0] < asks[0][0]
        # Versions only grow: on_book never goes back to an older book.
        assert int(version) > versions.get(symbol, 0)
        versions[symbol] = int(version)
        quote = by_time.get((symbol, int(ns)))
        if quote is None:  # the snapshot at subscribe, from before the first quote
            continue
        assert (bids[0][0], bids[0][1], asks[0][0], asks[0][1]) == quote, (row, quote)
        matched += 1
    assert matched >= 30
