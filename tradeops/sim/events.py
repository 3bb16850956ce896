"""The sim's market events beyond trades, quotes and minute bars, as Alpaca sends them.

Derived from the market, whatever feeds it (the random walk or a replay):

- a **daily bar** (``dailyBars``, type ``d``) after every minute bar: the day so far (UTC
  day), as Alpaca sends one after each minute bar during the session;
- **LULD bands** (``lulds``, type ``l``) for a stock when a minute bar moves its reference
  price enough to change them: the bar's close ±5 % (a tier-1 band), indicator ``B``.

Injected through the admin endpoint (docs/sim.md), as a test needs them:

- a **status** (``statuses``, type ``s``): a halt stops the symbol's quotes and trades until
  it is resumed (``H`` Trading Halt, then ``T`` Trading Resumption);
- a **correction** (``corrections``, type ``c``) of a symbol's last trade, followed by an
  **updated bar** (``updatedBars``, type ``u``) when the trade's minute bar was already sent;
- a **cancel/error** (``cancelErrors``, type ``x``) of a symbol's last trade.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace

from tradeops.sim.market import (
    Bar,
    CancelError,
    Correction,
    Luld,
    MarketEvent,
    Quote,
    Status,
    Trade,
    is_crypto,
)

NS_PER_DAY = 86_400 * 10**9
BAND = 0.05  # tier-1 LULD band: 5 % around the reference price
#: Status codes the sim sends, with Alpaca's (CTA/UTP) messages.
HALT = ("H", "Trading Halt")
RESUME = ("T", "Trading Resumption")
#: Reason codes a halt may give (`reason` of the admin call), with their messages.
REASONS = {
    "T1": "Halt News Pending",
    "T2": "Halt News Dissemination",
    "T12": "Halt Further Information Requested",
    "LUDP": "Volatility Trading Pause",
    "MWC1": "Market Wide Circuit Breaker Halt - Level 1",
    "": "",
}


@dataclass
class _Day:
    day: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    trades: int
    notional: float


@dataclass
class MarketExtras:
    """Per-symbol state for the derived and injected events (one per exchange)."""

    bar_ns: int = 60 * 10**9  # the minute bars' length
    days: dict[str, _Day] = field(default_factory=dict)
    bands: dict[str, tuple[float, float]] = field(default_factory=dict)
    halted: dict[str, str] = field(default_factory=dict)  # symbol -> reason code
    last_trade: dict[str, Trade] = field(default_factory=dict)
    sent_bars: dict[str, Bar] = field(default_factory=dict)  # the newest minute bar sent
    next_id: int = 1 << 40  # ids of corrected trades: far above the walk's own

    def expand(self, events: Iterable[MarketEvent]) -> Iterator[MarketEvent]:
        """The events, less a halted symbol's quotes and trades, each minute bar followed by
        its daily bar and any change of the symbol's LULD bands."""
        halted = self.halted
        for event in events:
            if halted and event.symbol in halted and isinstance(event, Quote | Trade):
                continue  # halted: no quotes, no trades (bars still close, events still go)
            yield event
            if isinstance(event, Trade):
                self.last_trade[event.symbol] = event
            elif isinstance(event, Bar) and event.kind == "b":
                self.sent_bars[event.symbol] = event
                yield self._daily(event)
                luld = self._bands(event)
                if luld is not None:
                    yield luld

    def _daily(self, bar: Bar) -> Bar:
        day = bar.t_ns // NS_PER_DAY
        acc = self.days.get(bar.symbol)
        if acc is None or acc.day != day:
            acc = self.days[bar.symbol] = _Day(day, bar.open, bar.high, bar.low, bar.close,
                                               0.0, 0, 0.0)
        acc.high = max(acc.high, bar.high)
        acc.low = min(acc.low, bar.low)
        acc.close = bar.close
        acc.volume += bar.volume
        acc.trades += bar.trades
        acc.notional += bar.vwap * bar.volume
        vwap = round(acc.notional / acc.volume, 4) if acc.volume else acc.close
        return Bar(bar.symbol, acc.open, acc.high, acc.low, acc.close, round(acc.volume, 8),
                   acc.trades, vwap, day * NS_PER_DAY, "d")

    def _bands(self, bar: Bar) -> Luld | None:
        if is_crypto(bar.symbol):
            return None
        bands = (round(bar.close * (1 + BAND), 2), round(bar.close * (1 - BAND), 2))
        if self.bands.get(bar.symbol) == bands:
            return None
        self.bands[bar.symbol] = bands
        return Luld(bar.symbol, bands[0], bands[1], "B", bar.t_ns)

    # -- injected ------------------------------------------------------------------------------
    def halt(self, symbol: str, reason: str, t_ns: int) -> Status:
        self.halted[symbol] = reason
        return Status(symbol, HALT[0], HALT[1], reason, REASONS.get(reason, ""), t_ns)

    def resume(self, symbol: str, t_ns: int) -> Status:
        reason = self.halted.pop(symbol, "")
        return Status(symbol, RESUME[0], RESUME[1], reason, REASONS.get(reason, ""), t_ns)

    def correct(self, symbol: str, price: float | None, size: float | None,
                t_ns: int) -> list[MarketEvent] | None:
        """A correction of the symbol's last trade (None when it has not traded), and the
        updated bar when that trade's minute bar was sent already."""
        original = self.last_trade.get(symbol)
        if original is None:
            return None
        self.next_id += 1
        corrected = replace(original, price=original.price if price is None else price,
                            size=original.size if size is None else size,
                            trade_id=self.next_id)
        self.last_trade[symbol] = corrected
        events: list[MarketEvent] = [Correction(original, corrected, t_ns)]
        bar = self.sent_bars.get(symbol)
        # Only a bar already sent is updated; a trade of the bar still open is in the next
        # minute bar as it first traded.
        if bar is not None and bar.t_ns <= original.t_ns < bar.t_ns + self.bar_ns:
            volume = bar.volume - original.size + corrected.size
            updated = replace(bar, high=max(bar.high, corrected.price),
                              low=min(bar.low, corrected.price), volume=volume, kind="u")
            self.sent_bars[symbol] = replace(updated, kind="b")
            events.append(updated)
        return events

    def cancel(self, symbol: str, action: str, t_ns: int) -> CancelError | None:
        trade = self.last_trade.pop(symbol, None)
        return None if trade is None else CancelError(trade, action, t_ns)
