"""recipes/momentum.py: `params.trade` really trades the signal, and only when it may."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from recipes.momentum import Momentum
from tradeops.runtime.orders import Order
from tradeops.runtime.strategy import DetachedContext


@dataclass
class Trade:
    symbol: str
    price: float
    kind: str = "trade"


@dataclass
class Context(DetachedContext):
    """A host stand-in that records orders and fills them at once."""

    sent: list[tuple[str, str, float]] = field(default_factory=list)
    held: dict[str, float] = field(default_factory=dict)
    working: list[Order] = field(default_factory=list)
    safe: tuple[bool, str] = (True, "")

    def submit(self, strategy: str, symbol: str, side: Any, qty: float, limit: float | None,
               tif: str) -> str:
        self.sent.append((symbol, side, qty))
        self.held[symbol] = self.held.get(symbol, 0.0) + (qty if side == "buy" else -qty)
        return f"o{len(self.sent)}"

    def position(self, strategy: str, symbol: str) -> float:
        return self.held.get(symbol, 0.0)

    def orders(self, strategy: str) -> list[Order]:
        return self.working

    def safe_to_trade(self, symbol: str | None = None) -> tuple[bool, str]:
        return self.safe


def run(params: dict[str, Any], prices: list[float], ctx: Context) -> None:
    strategy = Momentum("m", {"lookback": 3, "threshold_bps": 10, **params}, ctx)
    strategy.on_start()
    for price in prices:
        strategy.on_tick(Trade("AAPL", price))


UP_THEN_DOWN = [100, 100, 100, 101, 101, 101, 101, 99, 99]


def test_without_trade_it_only_reports() -> None:
    ctx = Context()
    run({}, UP_THEN_DOWN, ctx)
    assert ctx.sent == []


def test_with_trade_it_follows_the_signal_to_the_target_position() -> None:
    ctx = Context()
    run({"trade": True, "qty": 5}, UP_THEN_DOWN, ctx)
    # long 5 on the rise; on the fall the flip goes through to short 5 (sell 10) or flat.
    assert ctx.sent[0] == ("AAPL", "buy", 5.0)
    assert all(side == "sell" for _, side, _ in ctx.sent[1:]) and len(ctx.sent) >= 2
    assert ctx.held["AAPL"] in (-5.0, 0.0)


def test_it_sends_nothing_when_not_safe_or_an_order_is_working() -> None:
    closed = Context(safe=(False, "broker 'sim': no tick for over 30s"))
    run({"trade": True}, UP_THEN_DOWN, closed)
    assert closed.sent == []
    busy = Context(working=[Order("o0", "AAPL", "buy", 1.0)])
    run({"trade": True}, UP_THEN_DOWN, busy)
    assert busy.sent == []
