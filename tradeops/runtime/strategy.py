"""The user-facing strategy API.

A strategy is a subclass of :class:`Strategy` named in the topology by its dotted import path
(``recipes.momentum:Momentum``). The host process that runs it supplies a
:class:`StrategyContext`; the strategy never talks to sockets or shared memory itself.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, Literal, Protocol

from tradeops.protocol.modes import Mode
from tradeops.runtime.orders import Order, OrderUpdate


class StrategyContext(Protocol):
    """What a host provides to the strategies it runs (implemented by the host)."""

    def submit(
        self,
        strategy: str,
        symbol: str,
        side: Literal["buy", "sell"],
        qty: float,
        limit: float | None,
        tif: str,
    ) -> str: ...

    def cancel(self, strategy: str, order_id: str) -> None: ...

    def cancel_all(self, strategy: str) -> None: ...

    def orders(self, strategy: str) -> list[Order]: ...

    def position(self, strategy: str, symbol: str) -> float: ...

    def subscribe(self, strategy: str, symbol: str, mode: Mode) -> None: ...

    def unsubscribe(self, strategy: str, symbol: str) -> None: ...

    def last(self, symbol: str) -> Any | None: ...

    def book(self, symbol: str) -> Any | None: ...

    def safe_to_trade(self, symbol: str | None = None) -> tuple[bool, str]: ...

    def now(self) -> float: ...


class DetachedContext:
    """The context of a strategy that no host runs (constructed in a notebook or a test).

    Market data calls fail with a message that says how to run the strategy; time works.
    """

    def _detached(self) -> RuntimeError:
        return RuntimeError(
            "this strategy is not running in a tradeops host; declare it in a topology and "
            "start it with `tradeops up TOPOLOGY.yaml`"
        )

    def submit(
        self,
        strategy: str,
        symbol: str,
        side: Literal["buy", "sell"],
        qty: float,
        limit: float | None,
        tif: str,
    ) -> str:
        raise self._detached()

    def cancel(self, strategy: str, order_id: str) -> None:
        raise self._detached()

    def cancel_all(self, strategy: str) -> None:
        raise self._detached()

    def orders(self, strategy: str) -> list[Order]:
        return []

    def position(self, strategy: str, symbol: str) -> float:
        return 0.0

    def subscribe(self, strategy: str, symbol: str, mode: Mode) -> None:
        raise self._detached()

    def unsubscribe(self, strategy: str, symbol: str) -> None:
        raise self._detached()

    def last(self, symbol: str) -> Any | None:
        raise self._detached()

    def book(self, symbol: str) -> Any | None:
        raise self._detached()

    def safe_to_trade(self, symbol: str | None = None) -> tuple[bool, str]:
        return False, "not running in a tradeops host"

    def now(self) -> float:
        return time.time()


class Strategy:
    """Base class of every strategy.

    Override the callbacks you need; each runs on the host's single thread, so a callback
    must return quickly. An exception raised from a callback stops this strategy alone (its
    neighbours in a bundled process keep running) and is logged with its traceback.

    Available inside: ``self.name``, ``self.params`` (the topology's free-form ``params``),
    ``self.log`` (a loguru logger bound to the strategy's name) and the methods below.
    """

    def __init__(
        self,
        name: str,
        params: Mapping[str, Any] | None = None,
        context: StrategyContext | None = None,
    ) -> None:
        self.name = name
        self.params: Mapping[str, Any] = dict(params or {})
        # Imported here: `validate` and `restart` import strategy classes to check them, and
        # loguru (with asyncio under it) is ~25 ms of that; a host has it loaded already.
        from loguru import logger

        self.log = logger.bind(strategy=name)
        self._context: StrategyContext = context if context is not None else DetachedContext()

    # -- callbacks -------------------------------------------------------------------------
    def on_start(self) -> None:
        """Called once, after the topology's symbols are subscribed."""

    def on_tick(self, tick: Any) -> None:
        """Called for every tick of a subscribed symbol, in priority order across strategies."""

    def on_bar(self, bar: Any) -> None:
        """Called for every bar of a subscribed symbol when the strategy asked for bars
        (``bars: true`` in the topology, or a mode with ``+bars``), in priority order across
        strategies. ``bar`` is a tick of kind ``bar``: ``open``, ``high``, ``low``,
        ``close``, ``volume``, ``vwap``, ``trade_count``, and ``exchange_ns`` the start of
        its interval. Bars never reach ``on_tick``. With ``daily_bars`` or ``updated_bars`` in
        the strategy's ``extras``, the day's bar so far (``bar.kind == "daily_bar"``) and minute
        bars corrected after the fact (``"updated_bar"``) come here too."""

    def on_status(self, status: Any) -> None:
        """Called when a symbol's trading status changes, for a strategy with ``statuses`` in
        its ``extras`` (Alpaca and sim stock feeds). ``status`` is a tick of kind ``status``:
        ``status.exchange`` is the status code (``H`` halted, ``T`` trading, ...),
        ``status.status_message``, ``status.ask_exchange`` the reason code and
        ``status.reason_message``. A halt does not stop the strategy's orders by itself."""

    def on_luld(self, bands: Any) -> None:
        """Called when a symbol's limit up / limit down bands change, for a strategy with
        ``lulds`` in its ``extras``: ``bands.ask`` is the limit up price, ``bands.bid`` the
        limit down price, ``bands.conditions`` the indicator."""

    def on_book(self, book: Any) -> None:
        """Called when the order book of a symbol subscribed at ``mode: depth`` changed, in
        priority order across strategies, with the newest book (``tradeops.protocol.book.Book``:
        ``bids`` and ``asks`` as ``(price, size)`` best first, up to the broker's
        ``book_depth`` a side, ``exchange_ns``, ``version``). A strategy that falls behind
        gets the newest book, not every one in between."""

    def on_order_update(self, update: OrderUpdate) -> None:
        """Called for every update of an order this strategy sent: accepted, rejected (with
        the reason), partially_filled, filled, cancelled."""

    def on_subscription_refused(self, symbol: str, reason: str) -> None:
        """Called when the broker refused this strategy's subscription of `symbol` for good
        (a bad or unlisted symbol, a feed the login does not include), or when a symbol it
        held was lost (the broker refused it again after a reconnect). No ticks of `symbol`
        come until it is subscribed again. By default the refusal is logged as an error.
        (A refusal the broker means as "not now", such as a rate limit, is retried by the
        gateway and not reported here.)"""
        self.log.error("subscription of {} refused: {}", symbol, reason)

    def on_feed_restart(self, broker: str) -> None:
        """Called when `broker`'s bus restarted: its gateway was replaced, so a new bus epoch
        began and `seq` starts again at 1 (it is consecutive within an epoch). The first tick
        of the new epoch carries `FLAG_EPOCH_START` in `tick.flags`. With `resume: replay`
        nothing the new gateway published is skipped. By default it is logged."""
        self.log.info("the bus of broker {} restarted; seq starts again at 1", broker)

    def on_timer(self) -> None:
        """Called every ``timer`` (from the topology) when one is set."""

    def on_stop(self) -> None:
        """Called once when the strategy stops (shutdown, restart, or after it raised)."""

    # -- orders ----------------------------------------------------------------------------
    def buy(self, symbol: str, qty: float, limit: float | None = None, tif: str = "day") -> str:
        """Send a buy order (market, or limit when `limit` is given); returns its order id at
        once. The outcome arrives in `on_order_update`. Refused (as a `rejected` update, with
        the reason) when `safe_to_trade()` is false or a limit of the topology would break."""
        return self._context.submit(self.name, symbol, "buy", qty, limit, tif)

    def sell(self, symbol: str, qty: float, limit: float | None = None, tif: str = "day") -> str:
        """Send a sell order; see `buy`."""
        return self._context.submit(self.name, symbol, "sell", qty, limit, tif)

    def cancel(self, order_id: str) -> None:
        """Ask for one working order to be cancelled (a `cancelled` update confirms it)."""
        self._context.cancel(self.name, order_id)

    def cancel_all(self) -> None:
        """Cancel every working order of this strategy (not its neighbours')."""
        self._context.cancel_all(self.name)

    def orders(self) -> list[Order]:
        """This strategy's working orders, including ones that survived a restart."""
        return self._context.orders(self.name)

    def position(self, symbol: str) -> float:
        """This strategy's position in `symbol` from its fills (negative: short)."""
        return self._context.position(self.name, symbol)

    # -- services --------------------------------------------------------------------------
    def subscribe(self, symbol: str, mode: Mode = "trade") -> None:
        """Ask for ticks of ``symbol`` at ``mode`` (``trade``, ``quote``, ``depth``, each
        also with extras after it in this order: ``+bars``, ``+daily_bars``, ``+updated_bars``,
        ``+statuses``, ``+lulds``, e.g. ``quote+bars+statuses``); a refusal (capacity, bad
        symbol) is logged with a reason. ValueError for a mode that is not one."""
        self._context.subscribe(self.name, symbol, mode)

    def unsubscribe(self, symbol: str) -> None:
        """Stop receiving ``symbol``; the broker subscription ends when nobody else wants it."""
        self._context.unsubscribe(self.name, symbol)

    def last(self, symbol: str) -> Any | None:
        """The latest tick of ``symbol`` from the bus, or None when none has arrived yet."""
        return self._context.last(symbol)

    def book(self, symbol: str) -> Any | None:
        """The newest order book of ``symbol`` from the bus's book table (a depth
        subscription), or None when none has arrived yet."""
        return self._context.book(symbol)

    def safe_to_trade(self, symbol: str | None = None) -> tuple[bool, str]:
        """``(True, "")`` when the broker's market data is live; otherwise ``(False,
        reason)``, the reason naming the broker and how old its newest data is. With a
        `symbol` and `settings.stale_after_symbol` set, that symbol's own newest tick must
        also be fresh. False too while this strategy is stuck (see `callback_timeout`)."""
        return self._context.safe_to_trade(symbol)

    def now(self) -> float:
        """The host's clock in seconds since the epoch (injected in tests)."""
        return self._context.now()
