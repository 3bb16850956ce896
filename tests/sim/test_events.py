"""The sim's market events beyond trades and quotes (sim/events.py): pure state, no I/O."""

from __future__ import annotations

from tradeops.sim.events import MarketExtras
from tradeops.sim.market import Bar, CancelError, Correction, Luld, Quote, Status, Trade

MINUTE = 60 * 10**9


def bar(t_ns: int, close: float, symbol: str = "AAPL", volume: float = 100.0) -> Bar:
    return Bar(symbol, close - 1, close + 1, close - 2, close, volume, 4, close, t_ns)


def test_each_minute_bar_is_followed_by_the_days_bar_and_any_change_of_bands() -> None:
    extras = MarketExtras()
    first = list(extras.expand([bar(0, 100.0)]))
    assert [type(e).__name__ for e in first] == ["Bar", "Bar", "Luld"]
    day, luld = first[1], first[2]
    assert isinstance(day, Bar) and day.kind == "d" and day.volume == 100.0
    assert isinstance(luld, Luld) and (luld.up, luld.down) == (105.0, 95.0)
    second = list(extras.expand([bar(MINUTE, 100.0, volume=50.0)]))
    assert [e.kind for e in second if isinstance(e, Bar)] == ["b", "d"]  # bands unchanged
    assert isinstance(second[1], Bar) and second[1].volume == 150.0 and second[1].trades == 8
    # A new UTC day starts its daily bar again; crypto has no bands.
    nextday = list(extras.expand([bar(86_400 * 10**9, 120.0), bar(0, 5.0, "BTC/USD")]))
    assert isinstance(nextday[1], Bar) and nextday[1].volume == 100.0
    assert not any(isinstance(e, Luld) and e.symbol == "BTC/USD" for e in nextday)


def test_a_halt_stops_quotes_and_trades_until_resumed() -> None:
    extras = MarketExtras()
    status = extras.halt("AAPL", "T1", 5)
    assert isinstance(status, Status) and (status.code, status.reason_message) == (
        "H", "Halt News Pending")
    events = [Quote("AAPL", 1, 1, 2, 1, 6), Trade("AAPL", 1.5, 1, 6, 1),
              Trade("MSFT", 1.5, 1, 6, 1), bar(0, 1.0)]
    kept = list(extras.expand(events))
    assert [(type(e).__name__, e.symbol) for e in kept][:2] == [("Trade", "MSFT"), ("Bar", "AAPL")]
    assert extras.resume("AAPL", 7).code == "T" and not extras.halted
    assert len([e for e in extras.expand(events) if e.symbol == "AAPL"]) >= 3


def test_a_correction_updates_the_bar_only_once_that_bar_was_sent() -> None:
    extras = MarketExtras(bar_ns=MINUTE)
    assert extras.correct("AAPL", 1.0, None, 1) is None  # nothing traded yet
    list(extras.expand([Trade("AAPL", 100.0, 10, MINUTE + 5, 41)]))
    only = extras.correct("AAPL", 99.0, None, MINUTE + 6)  # its bar is still open
    assert only is not None and len(only) == 1 and isinstance(only[0], Correction)
    assert (only[0].original.trade_id, only[0].corrected.price) == (41, 99.0)
    list(extras.expand([bar(MINUTE, 100.0)]))  # now the bar of that trade is sent
    events = extras.correct("AAPL", 90.0, 20, MINUTE + 7)
    assert events is not None and len(events) == 2
    updated = events[1]
    assert isinstance(updated, Bar) and updated.kind == "u" and updated.low == 90.0
    assert updated.volume == 100.0 - 10 + 20
    cancel = extras.cancel("AAPL", "C", MINUTE + 8)
    assert isinstance(cancel, CancelError) and cancel.trade.price == 90.0
    assert extras.cancel("AAPL", "C", MINUTE + 9) is None  # nothing left to cancel
