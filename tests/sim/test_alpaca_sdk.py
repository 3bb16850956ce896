"""The official Alpaca SDK, unmodified, against the sim: typed market data, orders, fills.

alpaca-py's `run()` never returns by itself and its connect/auth reads have no timeout, so
every SDK stream runs in a daemon thread and every wait has a deadline.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tradeops.sim import SimThread

from .helpers import Http, wait_until

pytest.importorskip("alpaca")

from alpaca.data.live import CryptoDataStream, StockDataStream
from alpaca.data.models import Bar, Quote, Trade
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderSide, OrderStatus, TimeInForce
from alpaca.trading.models import Order, Position, TradeAccount, TradeUpdate
from alpaca.trading.requests import LimitOrderRequest, MarketOrderRequest
from alpaca.trading.stream import TradingStream

DEADLINE = 15.0


class Received:
    """Collects what an SDK handler receives, and wakes waiters."""

    def __init__(self) -> None:
        self.items: list[Any] = []
        self.changed = threading.Condition()

    async def handler(self, item: Any) -> None:
        with self.changed:
            self.items.append(item)
            self.changed.notify_all()

    def wait_for(self, predicate: Callable[[Any], bool], timeout: float = DEADLINE) -> Any:
        with self.changed:
            found = self.changed.wait_for(
                lambda: next((i for i in self.items if predicate(i)), None), timeout)
        if found is None:
            raise AssertionError(f"nothing matching arrived within {timeout} s: {self.items}")
        return found


@pytest.fixture
def run_sdk() -> Iterator[Callable[[Any, SimThread], None]]:
    """Run an SDK stream in a daemon thread; stop it (with a deadline) at teardown."""
    running: list[tuple[Any, threading.Thread, SimThread]] = []

    def run(stream: Any, sim: SimThread) -> None:
        thread = threading.Thread(target=stream.run, daemon=True, name="alpaca-sdk")
        thread.start()
        running.append((stream, thread, sim))

    yield run
    for stream, thread, sim in running:
        stopper = threading.Thread(target=stream.stop, daemon=True, name="alpaca-sdk-stop")
        stopper.start()
        stopper.join(DEADLINE)
        # The SDK notices stop() at its next read (up to 5 s); a drop wakes it at once.
        Http(sim.http_url).post("/admin/drop", auth=False)
        thread.join(DEADLINE)
        assert not thread.is_alive(), "the SDK stream did not stop"


def test_stock_data_stream_receives_typed_quotes_trades_and_bars(
        start_sim: Callable[..., SimThread], run_sdk: Callable[[Any, SimThread], None]) -> None:
    sim = start_sim(rate=50.0, bar_seconds=0.3)
    received = Received()
    stream = StockDataStream("key", "secret", url_override=sim.url + "/v2/iex")
    stream.subscribe_quotes(received.handler, "AAPL")
    stream.subscribe_trades(received.handler, "AAPL")
    stream.subscribe_bars(received.handler, "AAPL")
    run_sdk(stream, sim)
    quote = received.wait_for(lambda i: isinstance(i, Quote))
    trade = received.wait_for(lambda i: isinstance(i, Trade))
    bar = received.wait_for(lambda i: isinstance(i, Bar))
    assert quote.symbol == trade.symbol == bar.symbol == "AAPL"
    assert 0 < quote.bid_price < quote.ask_price and quote.timestamp.tzinfo is not None
    assert trade.price > 0 and trade.size > 0 and bar.trade_count >= 1
    (conn,) = Http(sim.http_url).admin("connections")["open"]
    assert conn["codec"] == "msgpack"  # alpaca-py asked for msgpack and got it


def test_crypto_data_stream_receives_typed_trades(start_sim: Callable[..., SimThread],
                                                 run_sdk: Callable[[Any, SimThread], None]) -> None:
    sim = start_sim(rate=50.0)
    received = Received()
    stream = CryptoDataStream("key", "secret", url_override=sim.url + "/v1beta3/crypto/us")
    stream.subscribe_trades(received.handler, "BTC/USD")
    run_sdk(stream, sim)
    trade = received.wait_for(lambda i: isinstance(i, Trade))
    assert trade.symbol == "BTC/USD" and trade.price > 0


def test_trading_client_orders_and_trading_stream_fills(
        sim: SimThread, run_sdk: Callable[[Any, SimThread], None]) -> None:
    received = Received()
    stream = TradingStream("key", "secret", url_override=sim.url + "/stream")
    stream.subscribe_trade_updates(received.handler)
    run_sdk(stream, sim)
    http = Http(sim.http_url)
    wait_until(lambda: any(c["kind"] == "trade" and c["streams"]
                           for c in http.admin("connections")["open"]), DEADLINE,
               "the TradingStream to listen")
    client = TradingClient("key", "secret", url_override=sim.http_url)
    order = client.submit_order(MarketOrderRequest(
        symbol="AAPL", qty=3, side=OrderSide.BUY, time_in_force=TimeInForce.DAY))
    assert isinstance(order, Order) and order.status == OrderStatus.ACCEPTED
    fill: TradeUpdate = received.wait_for(
        lambda u: u.event == "fill" and u.order.id == order.id)
    assert fill.qty == 3 and fill.position_qty == 3 and fill.price
    assert fill.order.status == OrderStatus.FILLED
    resting = client.submit_order(LimitOrderRequest(
        symbol="MSFT", qty=1, side=OrderSide.BUY, time_in_force=TimeInForce.GTC,
        limit_price=1.0))
    client.cancel_order_by_id(resting.id)
    canceled = received.wait_for(lambda u: u.event == "canceled")
    assert canceled.order.id == resting.id
    (position,) = client.get_all_positions()
    assert isinstance(position, Position) and position.symbol == "AAPL" and position.qty == "3"
    account = client.get_account()
    assert isinstance(account, TradeAccount) and float(account.cash or 0) < 100_000
    assert client.get_clock().is_open
    assert [o.id for o in client.get_orders()] == []
