"""The random walk and bars, driven by an injected clock (no sockets, no sleeping)."""

from __future__ import annotations

import itertools
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from tradeops.sim.hours import TradingHours
from tradeops.sim.market import (
    Bar,
    BarBuilder,
    Quote,
    RandomWalkMarket,
    Trade,
    is_valid_symbol,
)

T0 = 1_700_000_000.0  # a Tuesday, 22:13 UTC


def market(seed: int = 1, rate: float = 20.0, max_rate: float = 1e6, spread_bps: float = 5.0,
           hours: str = "24/7", bar_seconds: float = 60.0) -> RandomWalkMarket:
    return RandomWalkMarket(seed=seed, rate=rate, max_rate=max_rate, spread_bps=spread_bps,
                            volatility=0.001, hours=TradingHours.parse(hours),
                            bar_seconds=bar_seconds)


def run(m: RandomWalkMarket, symbols: list[str], seconds: float, start: float = T0,
        step: float = 0.05) -> list[Quote | Trade | Bar]:
    for symbol in symbols:
        m.activate(symbol, start)
    events: list[Quote | Trade | Bar] = []
    for i in range(1, round(seconds / step) + 1):
        events.extend(m.advance(start + i * step))
    return events


def prices(events: list[Quote | Trade | Bar], symbol: str) -> list[tuple[float, float, float]]:
    return [(e.bid, e.ask, e.bid_size) for e in events
            if isinstance(e, Quote) and e.symbol == symbol]


def test_same_seed_gives_the_same_ticks_whatever_else_is_subscribed() -> None:
    alone = prices(run(market(seed=7), ["AAPL"], 2.0), "AAPL")
    crowded = prices(run(market(seed=7), ["MSFT", "AAPL", "TSLA"], 2.0, start=T0 + 123), "AAPL")
    other_seed = prices(run(market(seed=8), ["AAPL"], 2.0), "AAPL")
    assert len(alone) == 21  # 20 ticks/s is 10 steps/s: steps at 0, 0.1, ..., 2.0 s
    assert alone == crowded
    assert alone != other_seed


def test_each_step_is_one_quote_and_one_trade_at_the_touch() -> None:
    events = run(market(rate=40.0), ["AAPL"], 1.0)  # 40 ticks/s: 20 quotes and 20 trades
    quotes = [e for e in events if isinstance(e, Quote)]
    trades = [e for e in events if isinstance(e, Trade)]
    assert len(quotes) == len(trades) == 21
    for quote, trade in zip(quotes, trades, strict=True):
        assert trade.price in (quote.bid, quote.ask)
        assert quote.t_ns == trade.t_ns
        assert quote.ask > quote.bid > 0
        assert quote.bid_size % 100 == 0 and quote.bid_size >= 100
    assert [t.trade_id for t in trades] == list(range(1, 22))
    gaps = {round((b.t_ns - a.t_ns) / 1e9, 6) for a, b in itertools.pairwise(quotes)}
    assert gaps == {0.05}


def test_max_rate_caps_the_total_steps() -> None:
    m = market(rate=200.0, max_rate=400.0)
    events = run(m, [f"S{i}" for i in range(10)], 1.0)
    ticks = sum(1 for e in events if isinstance(e, Quote | Trade))
    assert 400 <= ticks <= 420  # 10 symbols would want 2000 ticks/s; the cap allows 400
    assert m.interval() == pytest.approx(1 / 20)


def test_spread_follows_spread_bps() -> None:
    wide = [e for e in run(market(spread_bps=100.0), ["AAPL"], 1.0) if isinstance(e, Quote)]
    for quote in wide:
        mid = (quote.bid + quote.ask) / 2
        assert (quote.ask - quote.bid) / mid == pytest.approx(0.01, abs=0.0006)
    tight = [e for e in run(market(spread_bps=0.0), ["AAPL"], 1.0) if isinstance(e, Quote)]
    assert all(0.01 <= round(q.ask - q.bid, 2) <= 0.02 for q in tight)  # at least one tick


def test_no_ticks_outside_trading_hours_and_a_restart_without_burst_at_the_open() -> None:
    zone = ZoneInfo("America/New_York")
    closed = datetime(2024, 5, 1, 8, 0, tzinfo=zone).timestamp()  # a Wednesday, before open
    opening = datetime(2024, 5, 1, 9, 30, tzinfo=zone).timestamp()
    m = market(rate=20.0, hours="09:30-16:00 America/New_York")
    assert run(m, ["AAPL"], 60.0, start=closed, step=1.0) == []
    assert m.is_open(opening) and not m.is_open(closed)
    first = m.advance(opening + 0.01)
    assert len([e for e in first if isinstance(e, Quote)]) == 1  # not 5400 s of catch-up
    weekend = datetime(2024, 5, 4, 12, 0, tzinfo=zone).timestamp()
    assert not m.is_open(weekend)


def test_inactive_symbols_stop_and_a_lagging_clock_skips_instead_of_bursting() -> None:
    m = market(rate=20.0)
    m.activate("AAPL", T0)
    m.deactivate("AAPL")
    assert m.advance(T0 + 1.0) == []
    m.activate("AAPL", T0 + 1.0)
    events = m.advance(T0 + 11.0)  # ten seconds late
    assert len([e for e in events if isinstance(e, Quote)]) <= 7  # at most MAX_LAG worth
    assert m.skipped_steps >= 90


def test_touch_does_not_disturb_the_walk_and_set_mid_moves_the_price() -> None:
    plain = prices(run(market(), ["AAPL"], 1.0), "AAPL")
    touched = market()
    quote = touched.touch("AAPL", T0)
    assert quote is not None and quote.ask > quote.bid
    assert prices(run(touched, ["AAPL"], 1.0), "AAPL") == plain
    events = touched.set_mid("AAPL", 50.0, T0 + 2)
    assert isinstance(events[0], Quote) and events[0].bid < 50.0 < events[0].ask
    assert isinstance(events[1], Trade) and events[1].price == 50.0


def test_bars_aggregate_trades_per_interval() -> None:
    builder = BarBuilder(1.0)
    base = int(T0 * 1e9)
    trades = [Trade("AAPL", p, s, base + i * 200_000_000, i)
              for i, (p, s) in enumerate([(10.0, 100), (12.0, 300), (9.0, 100), (11.0, 100)])]
    assert all(builder.add(t) is None for t in trades)
    assert builder.flush(T0 + 0.9) == []
    bar = builder.add(Trade("AAPL", 20.0, 1, base + 1_100_000_000, 9))
    assert bar == Bar("AAPL", 10.0, 12.0, 9.0, 11.0, 600.0, 4, (1000 + 3600 + 900 + 1100) / 600,
                      base)
    (late,) = builder.flush(T0 + 2.5)
    assert (late.open, late.trades, late.t_ns) == (20.0, 1, base + 1_000_000_000)


def test_walk_emits_bars_when_the_interval_ends() -> None:
    events = run(market(rate=40.0, bar_seconds=0.5), ["AAPL"], 1.6)
    bars = [e for e in events if isinstance(e, Bar)]
    assert len(bars) == 3
    assert all(b.trades == 10 and b.low <= b.vwap <= b.high for b in bars)


@pytest.mark.parametrize(("symbol", "valid"), [
    ("AAPL", True), ("BRK.B", True), ("BTC/USD", True), ("aapl", False), ("", False),
    ("A" * 17, False), ("BTC/", False), ("1AB", False),
])
def test_symbol_syntax(symbol: str, valid: bool) -> None:
    assert is_valid_symbol(symbol) is valid
