"""Unmodified client libraries against the proxy: alpaca-py and OpenAlgo's feed client.

alpaca-py's `run()` never returns by itself and its connect/auth reads have no timeout, so
the SDK runs in a daemon thread and every wait has a deadline. The
OpenAlgo protocol is checked twice: with a bare websocket-client speaking it as its SDK does
(always), and with the `openalgo` package itself when it is installed (the dev extra).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

import msgpack
import pytest
import websocket

from tests.waiting import wait_for
from tradeops.protocol.alpaca import to_ns

from .helpers import TOKEN, ProxyDesk

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(60)]
DEADLINE = 15.0


class Received:
    """What SDK callbacks received, thread-safe, with waits that have a deadline."""

    def __init__(self) -> None:
        self.items: list[Any] = []
        self.changed = threading.Condition()

    def add(self, item: Any) -> None:
        with self.changed:
            self.items.append(item)
            self.changed.notify_all()

    async def handler(self, item: Any) -> None:
        self.add(item)

    def wait_for(self, predicate: Callable[[Any], bool], timeout: float = DEADLINE) -> Any:
        with self.changed:
            found = self.changed.wait_for(
                lambda: next((i for i in self.items if predicate(i)), None), timeout
            )
        assert found is not None, f"nothing matching arrived in {timeout}s: {self.items[-5:]}"
        return found


@pytest.fixture
def run_stream() -> Iterator[Callable[[Any], None]]:
    """Run an alpaca-py stream in a daemon thread; stop it, with a deadline, at teardown."""
    running: list[tuple[Any, threading.Thread]] = []

    def run(stream: Any) -> None:
        thread = threading.Thread(target=stream.run, daemon=True, name="alpaca-sdk")
        thread.start()
        running.append((stream, thread))

    yield run
    for stream, thread in running:
        threading.Thread(target=stream.stop, daemon=True).start()
        thread.join(DEADLINE)  # it notices stop() at its next message (ticks keep flowing)
        assert not thread.is_alive(), "the SDK stream did not stop"


def test_alpaca_py_at_the_root_path_as_proxy_agent_users_have_it(
    desk: ProxyDesk, run_stream: Callable[[Any], None]
) -> None:
    """`url_override="ws://host:8765"`, no path: the Alpaca proxy agent's setting. The client
    waits for the greeting, so its silence says it speaks Alpaca: it gets the /v2/iex feed."""
    pytest.importorskip("alpaca")
    from alpaca.data.live import StockDataStream
    from alpaca.data.models import Trade

    received = Received()
    stream = StockDataStream("any-key", TOKEN, url_override=desk.url)
    stream.subscribe_trades(received.handler, "SDKR")
    run_stream(stream)
    trade = received.wait_for(lambda i: isinstance(i, Trade))
    assert trade.symbol == "SDKR" and trade.price > 0


def test_alpaca_py_receives_typed_trades_and_quotes(
    desk: ProxyDesk, run_stream: Callable[[Any], None]
) -> None:
    pytest.importorskip("alpaca")
    from alpaca.data.live import StockDataStream
    from alpaca.data.models import Quote, Trade

    received = Received()
    # key: anything; secret: the proxy's token (docs/proxy.md)
    stream = StockDataStream("any-key", TOKEN, url_override=desk.url + "/v2/iex")
    stream.subscribe_trades(received.handler, "SDKA")
    stream.subscribe_quotes(received.handler, "SDKA", "SDKB")
    run_stream(stream)
    trade = received.wait_for(lambda i: isinstance(i, Trade))
    quote = received.wait_for(lambda i: isinstance(i, Quote) and i.symbol == "SDKB")
    assert trade.symbol == "SDKA" and trade.price > 0 and trade.size > 0
    assert trade.timestamp.tzinfo is not None and isinstance(trade.id, int)
    assert 0 < quote.bid_price < quote.ask_price and quote.bid_size > 0
    assert not any(isinstance(i, Trade) and i.symbol == "SDKB" for i in received.items)
    row = wait_for(
        lambda: next((c for c in desk.state().get("client_list", [])
                      if c.get("dialect") == "alpaca" and c["symbols"] == 2), None),
        what="the SDK's connection in status",
    )  # fmt: skip
    assert row["codec"] == "msgpack" and row["name"] == "any-key" and row["path"] == "/v2/iex"


def test_alpaca_py_receives_typed_bars_built_by_the_sim(
    private_desk: Callable[..., ProxyDesk], run_stream: Callable[[Any], None]
) -> None:
    pytest.importorskip("alpaca")
    from alpaca.data.live import StockDataStream
    from alpaca.data.models import Bar

    desk = private_desk(rate=40.0, bar_seconds=1.0)
    received = Received()
    stream = StockDataStream("any-key", TOKEN, url_override=desk.url + "/v2/iex")
    stream.subscribe_bars(received.handler, "BARA")
    run_stream(stream)
    first = received.wait_for(lambda i: isinstance(i, Bar))
    second = received.wait_for(lambda i: isinstance(i, Bar) and i.timestamp > first.timestamp)
    for bar in (first, second):
        assert bar.symbol == "BARA" and bar.low <= bar.open <= bar.high and bar.volume > 0
        assert bar.trade_count is not None and bar.trade_count > 0
    assert (second.timestamp - first.timestamp).total_seconds() >= 1.0
    # Bars were all this client asked for: no trade or quote reaches it.
    assert all(isinstance(i, Bar) for i in received.items)


def test_alpaca_wrong_secret_is_refused_with_402(desk: ProxyDesk) -> None:
    ws = websocket.create_connection(
        desk.url + "/v2/iex", timeout=5, header=["Content-Type: application/msgpack"]
    )
    try:
        assert msgpack.unpackb(ws.recv()) == [{"T": "success", "msg": "connected"}]
        ws.send_binary(msgpack.packb({"action": "auth", "key": "k", "secret": "guess"}))
        assert msgpack.unpackb(ws.recv()) == [{"T": "error", "code": 402, "msg": "auth failed"}]
        ws.send_binary(msgpack.packb({"action": "subscribe", "trades": ["SDKC"]}))
        assert msgpack.unpackb(ws.recv())[0]["code"] == 401  # still not authenticated
    finally:
        ws.close()


class OpenAlgoWire:
    """A websocket-client app sending exactly what openalgo's FeedAPI sends."""

    def __init__(self, url: str, key: str = TOKEN) -> None:
        self.received = Received()
        self.closed = threading.Event()
        self.app = websocket.WebSocketApp(
            url, on_message=lambda ws, m: self.received.add(json.loads(m)),
            on_open=lambda ws: ws.send(json.dumps({"action": "authenticate", "api_key": key})),
            on_close=lambda ws, code, reason: self.closed.set(),
        )  # fmt: skip
        self.thread = threading.Thread(target=self.app.run_forever, daemon=True)
        self.thread.start()

    def send(self, message: dict[str, Any]) -> None:
        self.app.send(json.dumps(message))

    def close(self) -> None:
        self.app.close()
        self.thread.join(DEADLINE)


def test_openalgo_protocol_ltp_and_quote(desk: ProxyDesk) -> None:
    client = OpenAlgoWire(desk.url)
    try:
        auth = client.received.wait_for(lambda m: m.get("type") == "auth")
        assert auth["status"] == "success"
        for mode in (1, 2):
            client.send({"action": "subscribe", "symbol": "OALA", "exchange": "NASDAQ",
                         "mode": mode, "depth": 5})
        ack = client.received.wait_for(lambda m: m.get("type") == "subscribe")
        assert ack["subscriptions"][0]["status"] == "success"
        ltp = client.received.wait_for(lambda m: m.get("mode") == 1)
        quote = client.received.wait_for(lambda m: m.get("mode") == 2 and "bid" in m["data"])
        assert ltp["type"] == "market_data" and ltp["exchange"] == "NASDAQ"
        assert ltp["symbol"] == "OALA" and ltp["data"]["ltp"] > 0
        assert 0 < quote["data"]["bid"] < quote["data"]["ask"]
        client.send({"action": "ping"})
        assert client.received.wait_for(lambda m: m.get("type") == "pong")["status"] == "success"
    finally:
        client.close()


def test_openalgo_wrong_key_is_told_and_closed(desk: ProxyDesk) -> None:
    client = OpenAlgoWire(desk.url, key="guess")
    try:
        reply = client.received.wait_for(lambda m: m.get("type") == "auth")
        assert reply["status"] == "error" and reply["code"] == "AUTHENTICATION_ERROR"
        assert client.closed.wait(DEADLINE)
    finally:
        client.close()


def test_the_openalgo_sdk_receives_ltp_and_quotes(desk: ProxyDesk) -> None:
    openalgo = pytest.importorskip("openalgo")
    port = int(desk.url.rsplit(":", 1)[1])
    client = openalgo.api(api_key=TOKEN, host="http://127.0.0.1:5000", ws_port=port)
    assert client.connect() is True  # authenticated within its 5 s
    ltps, quotes = Received(), Received()
    try:
        instruments = [{"exchange": "NASDAQ", "symbol": "OALB"}]
        assert client.subscribe_ltp(instruments, on_data_received=ltps.add)
        assert client.subscribe_quote(instruments, on_data_received=quotes.add)
        ltp = ltps.wait_for(lambda m: m["data"]["ltp"] > 0)
        quote = quotes.wait_for(lambda m: m["data"]["ltp"] > 0)
        assert (ltp["symbol"], ltp["exchange"], ltp["mode"]) == ("OALB", "NASDAQ", 1)
        assert quote["mode"] == 2
        assert client.get_ltp()["ltp"]["NASDAQ"]["OALB"]["ltp"] > 0
    finally:
        client.disconnect()


class DirectClient:
    """A plain Alpaca client of the sim itself, beside the proxy: what the broker said."""

    def __init__(self, url: str, symbol: str) -> None:
        self.ws = websocket.create_connection(url + "/v2/iex", timeout=5)
        assert json.loads(self.ws.recv())[0]["msg"] == "connected"
        self.ws.send(json.dumps({"action": "auth", "key": "direct", "secret": "x"}))
        assert json.loads(self.ws.recv())[0]["msg"] == "authenticated"
        self.ws.send(json.dumps({"action": "subscribe", "trades": [symbol], "quotes": [symbol]}))
        self.seen: list[dict[str, Any]] = []

    def trade(self, trade_id: int) -> dict[str, Any]:
        """The sim's own message of trade `trade_id`, read until it comes."""
        def found() -> dict[str, Any] | None:
            return next((m for m in self.seen if m.get("T") == "t" and m["i"] == trade_id), None)
        while found() is None:
            self.seen += json.loads(self.ws.recv())
        message = found()
        assert message is not None
        return message

    def close(self) -> None:
        self.ws.close()


def test_alpaca_py_gets_every_stock_channel_and_what_the_broker_said(
    private_desk: Callable[..., ProxyDesk], run_stream: Callable[[Any], None]
) -> None:
    """Side by side with a plain client of the sim: trades keep the broker's id, exchange,
    conditions and tape, quotes their exchanges; daily and updated bars, LULD bands,
    statuses, corrections and cancel/errors all reach an unmodified alpaca-py."""
    pytest.importorskip("alpaca")
    from alpaca.data.live import StockDataStream
    from alpaca.data.models import Bar, Quote, Trade, TradeCancel, TradeCorrection, TradingStatus

    desk = private_desk(rate=40.0, bar_seconds=1.0)
    direct = DirectClient(desk.sim.url, "CHNA")
    got = {name: Received() for name in ("trades", "quotes", "daily", "updated", "statuses",
                                         "lulds", "corrections", "cancels")}
    stream = StockDataStream("any-key", TOKEN, url_override=desk.url + "/v2/iex")
    stream.subscribe_trades(got["trades"].handler, "CHNA")
    stream.subscribe_quotes(got["quotes"].handler, "CHNA")
    stream.subscribe_daily_bars(got["daily"].handler, "CHNA")
    stream.subscribe_updated_bars(got["updated"].handler, "CHNA")
    stream.subscribe_trading_statuses(got["statuses"].handler, "CHNA")
    stream._subscribe(got["lulds"].handler, ("CHNA",), stream._handlers["lulds"])  # no public API
    stream.register_trade_corrections(got["corrections"].handler)
    stream.register_trade_cancels(got["cancels"].handler)
    run_stream(stream)
    try:
        trade = got["trades"].wait_for(lambda i: isinstance(i, Trade))
        # The same trade as the broker sent it: same id, same instant, same numbers.
        said = direct.trade(trade.id)
        assert to_ns(said["t"]) // 1000 == int(trade.timestamp.timestamp() * 1e6 + 0.5)
        assert trade.exchange == said["x"] == "V"
        assert trade.conditions == said["c"] == ["@"] and trade.tape == said["z"] == "C"
        assert trade.price == said["p"] and trade.size == said["s"]
        quote = got["quotes"].wait_for(lambda i: isinstance(i, Quote))
        assert (quote.bid_exchange, quote.ask_exchange, quote.conditions, quote.tape) == (
            "V", "V", ["R"], "C")
        daily = got["daily"].wait_for(lambda i: isinstance(i, Bar))
        assert daily.symbol == "CHNA" and daily.low <= daily.close <= daily.high
        assert daily.trade_count is not None and daily.trade_count > 0
        luld = got["lulds"].wait_for(lambda i: isinstance(i, dict) and i.get("T") == "l")
        assert luld["S"] == "CHNA" and luld["d"] < luld["u"] and luld["i"] == "B"

        desk.admin("/admin/halt", {"symbol": "CHNA", "reason": "T1"})
        halt = got["statuses"].wait_for(lambda i: isinstance(i, TradingStatus))
        assert (halt.status_code, halt.status_message, halt.reason_code) == (
            "H", "Trading Halt", "T1")
        assert halt.reason_message == "Halt News Pending"
        # Halted, the last trade's minute bar closes: a correction then updates it.
        fixed = wait_for(lambda: (r := desk.admin("/admin/correct", {
            "symbol": "CHNA", "price": 77.77}))["updated_bar"] and r, what="a closed bar")
        correction = got["corrections"].wait_for(
            lambda i: isinstance(i, TradeCorrection)
            and i.corrected_id == fixed["corrected_id"])
        assert correction.original_id == fixed["original_id"]
        assert correction.corrected_price == 77.77 and correction.exchange == "V"
        updated = got["updated"].wait_for(lambda i: isinstance(i, Bar))
        assert 77.77 in (updated.high, updated.low)  # the corrected price is in the bar now
        busted = desk.admin("/admin/bust", {"symbol": "CHNA", "action": "C"})
        cancel = got["cancels"].wait_for(lambda i: isinstance(i, TradeCancel))
        assert cancel.id == busted["trade_id"] == fixed["corrected_id"]
        assert cancel.action == "C" and cancel.price == 77.77
        desk.admin("/admin/resume", {"symbol": "CHNA"})
        resumed = got["statuses"].wait_for(
            lambda i: isinstance(i, TradingStatus) and i.status_code == "T")
        assert resumed.status_message == "Trading Resumption"
    finally:
        direct.close()
    # Each channel was asked of the broker once, by the gateway, only because a client did.
    asked = [e["request"] for e in desk.broker_log() if e["action"] == "subscribe"
             and e.get("key") != "direct"]
    channels = {c for request in asked for c in request}
    assert {"statuses", "lulds", "dailyBars", "updatedBars", "trades", "quotes"} <= channels
    assert "bars" not in channels and "orderbooks" not in channels
