"""What a strategy reaches through its own methods (`self.subscribe`, `self.buy`, ...) when a
host runs it: the host's side of `StrategyContext`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from loguru import logger

from tradeops.protocol.modes import Mode
from tradeops.runtime.orders import Order

if TYPE_CHECKING:
    from tradeops.runtime.host import Host


class HostContext:
    """What a strategy reaches through `self.subscribe`, `self.buy`, ... (StrategyContext)."""

    def __init__(self, host: Host, name: str) -> None:
        self._host, self._name = host, name

    def submit(
        self,
        strategy: str,
        symbol: str,
        side: Literal["buy", "sell"],
        qty: float,
        limit: float | None,
        tif: str,
    ) -> str:
        return self._host.trading.submit(strategy, symbol, side, qty, limit, tif)

    def cancel(self, strategy: str, order_id: str) -> None:
        self._host.trading.cancel(strategy, order_id)

    def cancel_all(self, strategy: str) -> None:
        self._host.trading.cancel_all(strategy)

    def orders(self, strategy: str) -> list[Order]:
        return self._host.trading.orders(strategy)

    def position(self, strategy: str, symbol: str) -> float:
        return self._host.trading.position(strategy, symbol)

    def subscribe(self, strategy: str, symbol: str, mode: Mode) -> None:
        with logger.contextualize(strategy=strategy):  # also from on_tick, not contextualized
            self._host._subscribe(strategy, symbol, mode)

    def unsubscribe(self, strategy: str, symbol: str) -> None:
        with logger.contextualize(strategy=strategy):
            self._host._unsubscribe(strategy, symbol)

    def last(self, symbol: str) -> Any | None:
        feed = self._host.feeds[self._host.slots[self._name].broker]
        return feed.last(symbol)

    def book(self, symbol: str) -> Any | None:
        feed = self._host.feeds[self._host.slots[self._name].broker]
        return feed.book(symbol)

    def safe_to_trade(self, symbol: str | None = None) -> tuple[bool, str]:
        return self._host.safe_to_trade(self._name, symbol)

    def now(self) -> float:
        return self._host.clock()
