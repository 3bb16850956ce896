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


def test_a_late_subscriber_gets_the_current_book_and_the_others_diffs_stay_right() -> None:
    """A second subscriber's snapshot is the book everyone holds; it must not move the base
    the first subscriber's next difference is computed from."""
    depth, first = Depth(), BookKeeper(depth=LEVELS)
    assert depth.current("BTC/USD") is None  # nothing sent yet: the first quote will be
    start = depth.update(quote(100.0, 100.5, 1))
    assert start is not None
    first.apply("BTC/USD", start.bids, start.asks, reset=True)
    late = depth.current("BTC/USD")
    assert late is not None and late.reset and late.t_ns == 1
    assert (late.bids, late.asks) == (start.bids, start.asks)
    change = depth.update(quote(101.0, 101.5, 2))
    assert change is not None
    bids, _ = first.apply("BTC/USD", change.bids, change.asks)
    assert bids[0] == (101.0, 0.5)
