"""The sim's crypto order books: a snapshot, then only what changed, always topped by the quote."""

from __future__ import annotations

from tradeops.protocol.book import BookKeeper
from tradeops.sim.depth import LEVELS, Depth, levels
from tradeops.sim.market import Quote


def quote(bid: float, ask: float, t_ns: int) -> Quote:
    return Quote("BTC/USD", bid, 0.5, ask, 0.75, t_ns)


def test_a_snapshot_then_differences_rebuild_each_quotes_book() -> None:
    depth, keeper = Depth(), BookKeeper(depth=LEVELS)
    first = depth.update(quote(100.0, 100.5, 1))
    assert first is not None and first.reset and len(first.bids) == len(first.asks) == LEVELS
    keeper.apply("BTC/USD", first.bids, first.asks, reset=True)
    for n, (bid, ask) in enumerate([(100.5, 101.0), (100.25, 100.5), (99.0, 99.5)], 2):
        change = depth.update(quote(bid, ask, n))
        assert change is not None and not change.reset
        assert any(size == 0 for _, size in change.bids + change.asks)  # levels went away
        bids, asks = keeper.apply("BTC/USD", change.bids, change.asks)
        want_bids, want_asks = levels(quote(bid, ask, n))
        assert bids == tuple(sorted(want_bids.items(), reverse=True))
        assert asks == tuple(sorted(want_asks.items()))
        assert bids[0] == (bid, 0.5) and asks[0] == (ask, 0.75)  # the quote tops the book
    assert depth.update(quote(99.0, 99.5, 9)) is None  # nothing changed: nothing sent
