"""The sim's order books for crypto symbols, Alpaca's `orderbooks` channel: pure, no clock.

Each book is built from the symbol's quote: the best bid and ask are the quote's (so a book's
top always matches the quote sent with it), and :data:`LEVELS` levels a side follow at one
spread apart, deeper levels larger. Alpaca sends a snapshot (``"r": true``) when a client
subscribes, then only what changed: a level whose size changed or is new, and a level that
went away with size 0. So does the sim, so the gateway's book keeping runs against real
incremental updates.
"""

from __future__ import annotations

from dataclasses import dataclass

from tradeops.sim.market import Quote

#: Levels a side the sim's books hold (more than the bus's default 5, fewer than its 20).
LEVELS = 10

Side = dict[float, float]


@dataclass(slots=True)
class BookChange:
    """One `orderbooks` message: a snapshot (``reset``) or the levels that changed."""

    symbol: str
    bids: list[tuple[float, float]]
    asks: list[tuple[float, float]]
    reset: bool
    t_ns: int


def levels(quote: Quote) -> tuple[Side, Side]:
    """The whole book implied by a quote: LEVELS a side, one spread apart."""
    step = max(quote.ask - quote.bid, 1e-8)
    bids = {round(quote.bid - i * step, 8): round(quote.bid_size * (1 + 0.5 * i), 8)
            for i in range(LEVELS)}
    asks = {round(quote.ask + i * step, 8): round(quote.ask_size * (1 + 0.5 * i), 8)
            for i in range(LEVELS)}
    bids[quote.bid] = quote.bid_size  # exactly the quote's, whatever the rounding did
    asks[quote.ask] = quote.ask_size
    return {p: s for p, s in bids.items() if p > 0}, asks


def _diff(old: Side, new: Side) -> list[tuple[float, float]]:
    gone = [(p, 0.0) for p in old if p not in new]
    changed = [(p, s) for p, s in new.items() if old.get(p) != s]
    return gone + changed


class Depth:
    """The last book sent per symbol, to send snapshots and differences."""

    def __init__(self) -> None:
        self._last: dict[str, tuple[Side, Side]] = {}
        self._last_ns: dict[str, int] = {}

    def snapshot(self, quote: Quote) -> BookChange:
        bids, asks = self._last[quote.symbol] = levels(quote)
        self._last_ns[quote.symbol] = quote.t_ns
        return BookChange(quote.symbol, sorted(bids.items(), reverse=True), sorted(asks.items()),
                          True, quote.t_ns)

    def current(self, symbol: str) -> BookChange | None:
        """The last book sent of `symbol`, whole, as a snapshot for a new subscriber; None
        before the first. It changes nothing: the others' next difference is still from the
        book they have."""
        last = self._last.get(symbol)
        if last is None:
            return None
        bids, asks = last
        return BookChange(symbol, sorted(bids.items(), reverse=True), sorted(asks.items()),
                          True, self._last_ns[symbol])

    def update(self, quote: Quote) -> BookChange | None:
        """What changed since the last book of the symbol (a snapshot if none was sent);
        None when nothing did."""
        last = self._last.get(quote.symbol)
        if last is None:
            return self.snapshot(quote)
        bids, asks = levels(quote)
        self._last[quote.symbol] = (bids, asks)
        self._last_ns[quote.symbol] = quote.t_ns
        change = BookChange(quote.symbol, _diff(last[0], bids), _diff(last[1], asks), False,
                            quote.t_ns)
        return change if change.bids or change.asks else None
