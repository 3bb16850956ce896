"""The simulated market: a seeded random walk per symbol, pure and driven by an injected clock.

Each *step* of a symbol's walk moves its mid price by a log-normal increment and emits two
ticks: one `Quote` (the touch, `spread_bps` wide) and one `Trade` (at the bid or the ask).
`rate` is in ticks per second per active symbol (so rate/2 steps), capped at `max_rate` ticks
per second over all symbols, and steps happen only while the trading hours are open. Minute
(`bar_seconds`) bars are built from the trades; they do not count as ticks.

Determinism: each symbol draws from its own generator seeded by (seed, symbol), so the same seed
gives the same sequence of prices and sizes for a symbol whatever else is subscribed or when.
Only the timestamps depend on the clock. Nothing here reads the wall clock: every method takes
`now` (epoch seconds).
"""

from __future__ import annotations

import hashlib
import heapq
import math
import random
import re
from dataclasses import dataclass
from typing import Protocol

from tradeops.sim.hours import TradingHours

_STOCK = re.compile(r"[A-Z][A-Z0-9.]{0,15}")
_CRYPTO = re.compile(r"[A-Z0-9]{1,16}/[A-Z0-9]{1,16}")
#: A walk more than this far behind the clock skips ahead instead of bursting to catch up.
MAX_LAG = 0.5
_TICK = 0.01
_TICKS_PER_STEP = 2  # a quote and a trade


def is_crypto(symbol: str) -> bool:
    return "/" in symbol


def is_valid_symbol(symbol: str) -> bool:
    """Upper-case stock symbols (`AAPL`, `BRK.B`) or crypto pairs (`BTC/USD`)."""
    return bool(_STOCK.fullmatch(symbol) or _CRYPTO.fullmatch(symbol))


@dataclass(slots=True)
class Quote:
    symbol: str
    bid: float
    bid_size: float
    ask: float
    ask_size: float
    t_ns: int


@dataclass(slots=True)
class Trade:
    symbol: str
    price: float
    size: float
    t_ns: int
    trade_id: int


@dataclass(slots=True)
class Bar:
    symbol: str
    open: float
    high: float
    low: float
    close: float
    volume: float
    trades: int
    vwap: float
    t_ns: int
    kind: str = "b"  # Alpaca's message type: b a minute bar, d the day's, u an updated bar


@dataclass(slots=True)
class Status:
    """A trading status change (Alpaca `statuses`): H halted, T trading, ..."""

    symbol: str
    code: str
    message: str
    reason_code: str
    reason_message: str
    t_ns: int


@dataclass(slots=True)
class Luld:
    """Limit up / limit down price bands (Alpaca `lulds`)."""

    symbol: str
    up: float
    down: float
    indicator: str
    t_ns: int


@dataclass(slots=True)
class Correction:
    """A trade corrected after the fact (Alpaca `corrections`)."""

    original: Trade
    corrected: Trade
    t_ns: int

    @property
    def symbol(self) -> str:
        return self.original.symbol


@dataclass(slots=True)
class CancelError:
    """A trade cancelled (action C) or in error (E) (Alpaca `cancelErrors`)."""

    trade: Trade
    action: str
    t_ns: int

    @property
    def symbol(self) -> str:
        return self.trade.symbol


MarketEvent = Quote | Trade | Bar | Status | Luld | Correction | CancelError
#: The stock feed's channel of each market event that is not a trade or a quote.
EVENT_CHANNELS: dict[type, str] = {Status: "statuses", Luld: "lulds",
                                   Correction: "corrections", CancelError: "cancelErrors"}
BAR_CHANNELS: dict[str, str] = {"b": "bars", "d": "dailyBars", "u": "updatedBars"}


class Feed(Protocol):
    """What the exchange needs from a price source (the random walk or a replay)."""

    def activate(self, symbol: str, now: float) -> None: ...
    def deactivate(self, symbol: str) -> None: ...
    def advance(self, now: float) -> list[MarketEvent]: ...
    def touch(self, symbol: str, now: float) -> Quote | None: ...
    def set_mid(self, symbol: str, mid: float, now: float) -> list[MarketEvent]: ...
    def is_open(self, now: float) -> bool: ...


class BarBuilder:
    """Aggregates trades into bars of `seconds`; a bar is emitted once its interval is over."""

    def __init__(self, seconds: float) -> None:
        self._bar_ns = max(1, int(seconds * 1e9))
        # symbol -> [bucket, open, high, low, close, volume, count, price*volume]
        self._open: dict[str, list[float]] = {}
        self._flushed_bucket = -1

    def add(self, trade: Trade) -> Bar | None:
        bucket = trade.t_ns // self._bar_ns
        acc = self._open.get(trade.symbol)
        done = None
        if acc is not None and acc[0] != bucket:
            done = self._bar(trade.symbol, acc)
            acc = None
        p = trade.price
        if acc is None:
            self._open[trade.symbol] = [bucket, p, p, p, p, trade.size, 1, p * trade.size]
        else:
            acc[2] = max(acc[2], p)
            acc[3] = min(acc[3], p)
            acc[4] = p
            acc[5] += trade.size
            acc[6] += 1
            acc[7] += p * trade.size
        return done

    def flush(self, now: float) -> list[Bar]:
        """Bars whose interval ended before `now` (cheap unless a boundary was crossed)."""
        bucket = int(now * 1e9) // self._bar_ns
        if bucket <= self._flushed_bucket:
            return []
        self._flushed_bucket = bucket
        done = [sym for sym, acc in self._open.items() if acc[0] < bucket]
        return [self._bar(sym, self._open.pop(sym)) for sym in done]

    def _bar(self, symbol: str, acc: list[float]) -> Bar:
        volume = acc[5]
        vwap = acc[7] / volume if volume else acc[4]
        return Bar(symbol, acc[1], acc[2], acc[3], acc[4], _round_size(volume), int(acc[6]),
                   round(vwap, 4), int(acc[0]) * self._bar_ns)


def _round_size(size: float) -> float:
    return float(int(size)) if size == int(size) else round(size, 8)


def symbol_seed(seed: int, symbol: str) -> int:
    """A stable 64-bit seed for one symbol's generator (hash() is salted per process)."""
    digest = hashlib.sha256(f"{seed}:{symbol}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


class _Walk:
    __slots__ = ("active", "crypto", "gen", "mid", "quote", "rng", "symbol", "trade_id")

    def __init__(self, seed: int, symbol: str) -> None:
        self.symbol = symbol
        self.rng = random.Random(symbol_seed(seed, symbol))
        self.crypto = is_crypto(symbol)
        self.mid = round(self.rng.uniform(20.0, 500.0), 2)
        self.active = False
        self.gen = 0
        self.trade_id = 0
        self.quote: Quote | None = None


class RandomWalkMarket:
    """The default `Feed`: independent seeded walks for every symbol that someone needs."""

    def __init__(self, *, seed: int, rate: float, max_rate: float, spread_bps: float,
                 volatility: float, hours: TradingHours, bar_seconds: float) -> None:
        self._seed = seed
        self._rate = rate
        self._max_rate = max_rate
        self._half_spread = spread_bps / 20_000.0
        self._volatility = volatility
        self._hours = hours
        self._bars = BarBuilder(bar_seconds)
        self._walks: dict[str, _Walk] = {}
        self._heap: list[tuple[int, int, str]] = []  # (due ns, generation, symbol)
        self._active = 0
        self._closed = False
        #: Steps skipped because the caller fell more than MAX_LAG behind (reported by status).
        self.skipped_steps = 0
        self.steps = 0

    def _walk(self, symbol: str) -> _Walk:
        walk = self._walks.get(symbol)
        if walk is None:
            walk = self._walks[symbol] = _Walk(self._seed, symbol)
        return walk

    def interval(self) -> float:
        """Seconds between two steps (two ticks) of one symbol, given the total cap."""
        ticks_per_symbol = min(self._rate, self._max_rate / max(1, self._active))
        return _TICKS_PER_STEP / ticks_per_symbol

    def is_open(self, now: float) -> bool:
        return self._hours.is_open(now)

    def activate(self, symbol: str, now: float) -> None:
        walk = self._walk(symbol)
        if walk.active:
            return
        walk.active = True
        walk.gen += 1
        self._active += 1
        heapq.heappush(self._heap, (int(now * 1e9), walk.gen, symbol))

    def deactivate(self, symbol: str) -> None:
        walk = self._walks.get(symbol)
        if walk is None or not walk.active:
            return
        walk.active = False
        walk.gen += 1  # its heap entry is now stale and will be dropped when popped
        self._active -= 1

    def touch(self, symbol: str, now: float) -> Quote | None:
        """The current quote of a symbol; a quote around the initial mid if it never stepped."""
        walk = self._walk(symbol)
        if walk.quote is None:
            # Fixed sizes: looking at a symbol must not draw from its generator.
            walk.quote = self._quote(walk, int(now * 1e9), sized=False)
        return walk.quote

    def set_mid(self, symbol: str, mid: float, now: float) -> list[MarketEvent]:
        """Move a symbol's price at once (tests, shocks): emits a quote and a trade at `mid`."""
        walk = self._walk(symbol)
        walk.mid = mid
        t_ns = int(now * 1e9)
        quote = walk.quote = self._quote(walk, t_ns)
        walk.trade_id += 1
        trade = Trade(symbol, round(mid, 2), _lot(walk), t_ns, walk.trade_id)
        events: list[MarketEvent] = [quote, trade]
        bar = self._bars.add(trade)
        if bar is not None:
            events.append(bar)
        return events

    def advance(self, now: float) -> list[MarketEvent]:
        """Every step due at or before `now`, in time order, plus bars that just completed."""
        events: list[MarketEvent] = []
        if not self._hours.is_open(now):
            self._closed = True
            events.extend(self._bars.flush(now))
            return events
        heap = self._heap
        now_ns = int(now * 1e9)
        if self._closed:
            # Reopening: restart every active walk now rather than replaying the closed hours.
            self._closed = False
            heap[:] = [(now_ns, w.gen, w.symbol) for w in self._walks.values() if w.active]
            heapq.heapify(heap)
        # Integer nanoseconds: steps land exactly on the rate's grid, with no float drift.
        interval = max(1, round(self.interval() * 1e9))
        floor = now_ns - int(MAX_LAG * 1e9)
        walks = self._walks
        bars = self._bars
        while heap and heap[0][0] <= now_ns:
            due, gen, symbol = heapq.heappop(heap)
            walk = walks[symbol]
            if gen != walk.gen:
                continue
            if due < floor:
                self.skipped_steps += (floor - due) // interval
                due = floor
            quote, trade = self._step(walk, due)
            events.append(quote)
            events.append(trade)
            bar = bars.add(trade)
            if bar is not None:
                events.append(bar)
            heapq.heappush(heap, (due + interval, gen, symbol))
        events.extend(bars.flush(now))
        return events

    def _quote(self, walk: _Walk, t_ns: int, sized: bool = True) -> Quote:
        mid = walk.mid
        half = max(mid * self._half_spread, _TICK / 2)
        bid = max(_TICK, math.floor((mid - half) * 100.0) / 100.0)
        ask = max(bid + _TICK, math.ceil((mid + half) * 100.0) / 100.0)
        if sized:
            bid_size, ask_size = _lot(walk), _lot(walk)
        else:
            bid_size = ask_size = 1.0 if walk.crypto else 100.0
        return Quote(walk.symbol, round(bid, 2), bid_size, round(ask, 2), ask_size, t_ns)

    def _step(self, walk: _Walk, t_ns: int) -> tuple[Quote, Trade]:
        rng = walk.rng
        walk.mid = max(_TICK, walk.mid * math.exp(self._volatility * rng.gauss(0.0, 1.0)))
        quote = walk.quote = self._quote(walk, t_ns)
        walk.trade_id += 1
        price = quote.bid if rng.random() < 0.5 else quote.ask
        self.steps += 1
        return quote, Trade(walk.symbol, price, _lot(walk), t_ns, walk.trade_id)


def _lot(walk: _Walk) -> float:
    """A quote or trade size: round lots of 100 shares for stocks, fractional for crypto."""
    if walk.crypto:
        return round(walk.rng.random() * 2.0 + 0.0001, 4)
    return float(int(walk.rng.random() * 10.0 + 1.0) * 100)
