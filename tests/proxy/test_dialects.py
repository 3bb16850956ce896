"""The three client-facing dialects alone, sans-I/O: frames in, frames out.

The Alpaca frames are what alpaca-py 0.44 put on the wire (recorded with a capturing server:
its auth, and its subscribe after reassembly); the OpenAlgo ones are what openalgo 1.0.47's
feed client sends (`json.dumps` of the dicts in `openalgo/feed.py`).
"""

from __future__ import annotations

import json
from typing import Any

import msgpack

from tradeops.protocol.alpaca_server import AlpacaDataSession, alpaca_code
from tradeops.protocol.book import Book
from tradeops.protocol.codec import Codec
from tradeops.protocol.downstream import ClientFrame, Result, SessionConfig
from tradeops.protocol.native import NativeSession
from tradeops.protocol.openalgo import OpenAlgoSession, parse_mode
from tradeops.protocol.tick import Tick
from tradeops.proxy.config import symbol_problem
from tradeops.topology.model import Broker

SIM = Broker.model_validate({"adapter": "sim"})
ALPACA_AUTH = bytes.fromhex(
    "83a6616374696f6ea461757468a36b6579a7616e792d6b6579a6736563726574a6733363726574"
)
ALPACA_SUBSCRIBE = bytes.fromhex(
    "83a674726164657392a44141504ca44d534654a671756f74657391a44141504ca6616374696f6ea9"
    "737562736372696265"
)
OPENALGO_AUTH = json.dumps({"action": "authenticate", "api_key": "s3cret"})
OPENALGO_LTP = json.dumps(
    {"action": "subscribe", "symbol": "AAPL", "exchange": "NASDAQ", "mode": 1, "depth": 5}
)


def config(**kw: Any) -> SessionConfig:
    base: dict[str, Any] = {
        "brokers": ("sim",),
        "token": "s3cret",
        "check_symbol": lambda broker, symbol: symbol_problem(SIM, symbol),
        "alpaca_broker": "sim",
        "exchanges": {"NASDAQ": "sim"},
        "max_errors": 5,
    }
    return SessionConfig(**{**base, **kw})


def decoded(frames: list[ClientFrame]) -> list[Any]:
    return [json.loads(p) if text else msgpack.unpackb(p, timestamp=3) for p, text in frames]


def trade(seq: int, symbol: str = "AAPL", price: float = 101.5) -> Tick:
    return Tick.make("trade", symbol, seq=seq, exchange_ns=1_700_000_000_123_456_789,
                     receive_ns=1_700_000_000_200_000_000, price=price, size=3)


def quote(seq: int, symbol: str = "AAPL") -> Tick:
    return Tick.make("quote", symbol, seq=seq, exchange_ns=1_700_000_000_300_000_000,
                     bid=101.0, bid_size=2, ask=101.2, ask_size=4)


# -- native ---------------------------------------------------------------------------------------


def hello(session: NativeSession, **fields: Any) -> list[Any]:
    assert session.receive(json.dumps({"op": "hello", "v": 1, **fields}), 0.0) is None
    return decoded(session.take())


def test_native_hello_needs_the_token_and_counts_refusals() -> None:
    s = NativeSession(config(), 0.0)
    s.health("sim", True, "")
    (reply,) = hello(s, token="s3cret", client="dash")
    assert reply["op"] == "hello" and reply["v"] == 1
    assert reply["brokers"] == {"sim": {"live": True, "reason": ""}}
    wrong = NativeSession(config(), 0.0)
    (error,) = hello(wrong, token="guess")
    assert error["code"] == "auth-failed" and wrong.closing is not None and wrong.refused == 1


def test_native_requires_hello_first() -> None:
    s = NativeSession(config(token=None), 0.0)
    s.receive('{"op": "subscribe", "symbols": ["AAPL"]}', 0.0)
    (error,) = decoded(s.take())
    assert error["code"] == "hello-first" and s.closing is not None


def test_native_subscribe_asks_for_good_symbols_and_answers_in_order() -> None:
    s = NativeSession(config(token=None), 0.0)
    hello(s)
    request = {"op": "subscribe", "id": 7, "symbols": ["MSFT", "bad!", "AAPL"], "mode": "quote"}
    change = s.receive(json.dumps(request), 0.0)
    assert change is not None
    assert dict(change.wants) == {("sim", "MSFT"): "quote", ("sim", "AAPL"): "quote"}
    s.resolved({("sim", "MSFT"): Result(True), ("sim", "AAPL"): Result(False, "full")})
    (ack,) = decoded(s.take())
    assert ack["id"] == 7 and ack["ok"] is False
    assert list(ack["results"]) == ["MSFT", "bad!", "AAPL"]
    assert ack["results"]["bad!"]["code"] == "bad-symbol"
    assert ack["results"]["AAPL"] == {"ok": False, "code": "refused", "reason": "full"}
    assert s.holding() == {("sim", "MSFT"): "quote"}


def test_native_caps_symbols_per_client() -> None:
    s = NativeSession(config(token=None, max_symbols=2), 0.0)
    hello(s)
    change = s.receive('{"op": "subscribe", "symbols": ["A", "B", "C"]}', 0.0)
    assert change is not None and len(change.wants) == 2
    s.resolved({k: Result(True) for k in change.wants})
    (ack,) = decoded(s.take())
    assert ack["results"]["C"]["code"] == "too-many-symbols"


def test_native_ticks_follow_each_clients_mode_and_codec() -> None:
    cache: dict[Any, bytes] = {}
    frames = []
    for mode, codec in (("trade", Codec.JSON), ("quote", Codec.MSGPACK)):
        s = NativeSession(config(token=None), 0.0, codec)
        hello(s)
        change = s.receive(s_msg(codec, {"op": "subscribe", "symbols": ["AAPL"], "mode": mode}), 0)
        assert change is not None
        s.resolved({("sim", "AAPL"): Result(True)})
        s.take()
        n = s.ticks("sim", [trade(1), quote(2), trade(3, "MSFT")], cache)
        frames.append((n, decoded(s.take())))
    (n_trade, [json_frame]), (n_quote, [pack_frame]) = frames
    assert n_trade == 1 and [t["kind"] for t in json_frame["ticks"]] == ["trade"]
    assert json_frame["ticks"][0] == {"seq": 1, "kind": "trade", "symbol": "AAPL",
                                      "ts": 1_700_000_000_123_456_789,
                                      "rx": 1_700_000_000_200_000_000, "price": 101.5,
                                      "size": 3.0}
    assert n_quote == 2 and pack_frame["op"] == "ticks" and pack_frame["broker"] == "sim"
    assert [t["kind"] for t in pack_frame["ticks"]] == ["trade", "quote"]


def s_msg(codec: Codec, message: dict[str, Any]) -> str | bytes:
    return json.dumps(message) if codec is Codec.JSON else msgpack.packb(message)


def test_native_bars_come_only_with_a_bars_mode() -> None:
    bar = Tick.make("bar", "AAPL", seq=4, exchange_ns=60_000_000_000, open=1.0, high=2.0,
                    low=0.5, close=1.5, volume=300.0, vwap=1.25, trade_count=4)
    kinds = {}
    for mode in ("quote", "trade+bars"):
        s = NativeSession(config(token=None), 0.0, Codec.JSON)
        hello(s)
        change = s.receive(json.dumps({"op": "subscribe", "symbols": ["AAPL"], "mode": mode}), 0)
        assert change is not None and dict(change.wants) == {("sim", "AAPL"): mode}
        s.resolved({("sim", "AAPL"): Result(True)})
        s.take()
        s.ticks("sim", [trade(1), quote(2), bar], {})
        kinds[mode] = [t["kind"] for frame in decoded(s.take()) for t in frame["ticks"]]
    assert kinds == {"quote": ["trade", "quote"], "trade+bars": ["trade", "bar"]}


def test_native_depth_carries_the_book_of_each_change() -> None:
    book = Book("AAPL", ((100.0, 1.0), (99.5, 2.0)), ((100.5, 3.0),), 1, 2, 7)
    s = NativeSession(config(token=None, book=lambda broker, symbol: book), 0.0, Codec.JSON)
    hello(s)
    change = s.receive(json.dumps({"op": "subscribe", "symbols": ["AAPL"], "mode": "depth"}), 0)
    assert change is not None and dict(change.wants) == {("sim", "AAPL"): "depth"}
    s.resolved({("sim", "AAPL"): Result(True)})
    s.take()
    depth_tick = Tick.make("depth", "AAPL", seq=3, bid=100.0, bid_size=1.0, ask=100.5,
                           ask_size=3.0)
    assert s.ticks("sim", [quote(2), depth_tick], {}) == 2
    (frame,) = decoded(s.take())
    quote_item, depth_item = frame["ticks"]
    assert quote_item["kind"] == "quote" and depth_item["kind"] == "depth"
    assert depth_item["bids"] == [[100.0, 1.0], [99.5, 2.0]]
    assert depth_item["asks"] == [[100.5, 3.0]] and depth_item["version"] == 7


def test_native_errors_then_closes_a_client_that_keeps_breaking_the_rules() -> None:
    s = NativeSession(config(token=None), 0.0)
    hello(s)
    for payload in ("{not json", "[1, 2]", '{"op": "dance"}', '{"op": "subscribe"}'):
        assert s.receive(payload, 0.0) is None
    codes = [m["code"] for m in decoded(s.take())]
    assert codes == ["bad-message", "bad-message", "unknown-op", "bad-message"]
    assert s.closing is None
    s.receive("\x00", 0.0)
    assert s.closing == (1008, "too many errors")


def test_native_reports_health_changes_and_lost_symbols() -> None:
    s = NativeSession(config(token=None), 0.0)
    hello(s)
    change = s.receive('{"op": "subscribe", "symbols": ["AAPL"]}', 0.0)
    assert change is not None
    s.resolved({("sim", "AAPL"): Result(True, "gateway restarting", True)})
    (ack,) = decoded(s.take())
    assert ack["results"]["AAPL"] == {"ok": True, "queued": True, "reason": "gateway restarting"}
    s.health("sim", False, "no tick for 30s")
    s.lost(("sim", "AAPL"), "broker refused: 405")
    status, lost = decoded(s.take())
    assert status == {"op": "status", "broker": "sim", "live": False, "reason": "no tick for 30s"}
    assert lost["op"] == "lost" and s.holding() == {}


# -- alpaca ---------------------------------------------------------------------------------------


def alpaca(token: str | None = "s3cret", codec: Codec = Codec.MSGPACK, **kw: Any) -> Any:
    s = AlpacaDataSession(config(token=token, **kw), 0.0, "/v2/iex", codec)
    s.open(0.0)
    return s


def test_alpaca_greets_then_answers_the_recorded_auth_frame_with_one_frame() -> None:
    s = alpaca()
    assert s.receive(ALPACA_AUTH, 0.0) is None
    frames = s.take()
    assert len(frames) == 2 and all(not text for _, text in frames)  # binary, one each
    assert decoded(frames) == [[{"T": "success", "msg": "connected"}],
                               [{"T": "success", "msg": "authenticated"}]]


def test_alpaca_wrong_secret_is_402_and_no_feed_is_409() -> None:
    s = alpaca(token="other")
    s.take()
    s.receive(ALPACA_AUTH, 0.0)
    assert decoded(s.take()) == [[{"T": "error", "code": 402, "msg": "auth failed"}]]
    assert s.closing is None and s.refused == 1  # Alpaca leaves it open for another try
    none = alpaca(alpaca_broker=None)
    none.take()
    none.receive(ALPACA_AUTH, 0.0)
    assert decoded(none.take())[0][0]["code"] == 409 and none.closing is not None


def test_alpaca_subscribe_acks_the_full_set_and_forwards_refusals() -> None:
    s = alpaca()
    s.receive(ALPACA_AUTH, 0.0)
    s.take()
    change = s.receive(ALPACA_SUBSCRIBE, 0.0)  # trades AAPL, MSFT; quotes AAPL
    assert change is not None
    assert dict(change.wants) == {("sim", "AAPL"): "quote", ("sim", "MSFT"): "trade"}
    s.resolved({("sim", "AAPL"): Result(True),
                ("sim", "MSFT"): Result(False, "broker refused: 405 symbol limit exceeded")})
    error, ack = decoded(s.take())
    assert error == [{"T": "error", "code": 405, "msg": "symbol limit exceeded"}]
    assert ack[0]["T"] == "subscription"
    assert ack[0]["trades"] == ["AAPL"] and ack[0]["quotes"] == ["AAPL"]
    assert ack[0]["bars"] == [] and ack[0]["statuses"] == []
    # As Alpaca: a symbol's corrections and cancel/errors come with its trades.
    assert ack[0]["corrections"] == ack[0]["cancelErrors"] == ["AAPL"]
    # alpaca-py re-sends the whole set: nothing new to ask, the set comes back at once
    assert s.receive(ALPACA_SUBSCRIBE, 0.0) is not None  # MSFT again (it was refused)


def test_alpaca_unserved_channels_get_410_and_stay_out_of_the_set() -> None:
    s = alpaca(token=None)
    s.receive(ALPACA_AUTH, 0.0)
    s.take()
    msg = {"action": "subscribe", "trades": ["AAPL"], "news": ["AAPL"]}
    change = s.receive(msgpack.packb(msg), 0.0)
    assert change is not None
    s.resolved({("sim", "AAPL"): Result(True)})
    error, ack = decoded(s.take())
    assert error[0]["code"] == 410 and "news" not in ack[0] and ack[0]["trades"] == ["AAPL"]
    unsub = s.receive(msgpack.packb({"action": "unsubscribe", "trades": ["AAPL"]}), 0.0)
    assert unsub is not None and dict(unsub.wants) == {("sim", "AAPL"): None}


def test_alpaca_every_market_channel_is_asked_of_the_gateway_as_a_mode_extra() -> None:
    s = alpaca(token=None, codec=Codec.JSON)
    s.receive(json.dumps({"action": "auth", "key": "k", "secret": "x"}), 0.0)
    change = s.receive(json.dumps({
        "action": "subscribe", "statuses": ["AAPL"], "lulds": ["AAPL"], "dailyBars": ["MSFT"],
        "updatedBars": ["MSFT"], "quotes": ["MSFT"]}), 0.0)
    assert change is not None
    assert dict(change.wants) == {("sim", "AAPL"): "trade+statuses+lulds",
                                  ("sim", "MSFT"): "quote+daily_bars+updated_bars"}
    s.resolved({("sim", "AAPL"): Result(True), ("sim", "MSFT"): Result(True)})
    ack = decoded(s.take())[-1][0]
    assert ack["statuses"] == ack["lulds"] == ["AAPL"] and ack["trades"] == []
    assert ack["dailyBars"] == ack["updatedBars"] == ["MSFT"]
    assert s.holding() == {("sim", "AAPL"): "trade+statuses+lulds",
                           ("sim", "MSFT"): "quote+daily_bars+updated_bars"}
    status = Tick.make("status", "AAPL", seq=9, exchange_ns=1_700_000_000_000_000_000,
                       exchange="H", ask_exchange="T1", tape="C", status_message="Trading Halt",
                       reason_message="News Pending")
    luld = Tick.make("luld", "AAPL", seq=10, bid=90.0, ask=110.0, conditions=["B"], tape="C")
    daily = Tick.make("daily_bar", "MSFT", seq=11, open=1, high=2, low=1, close=2, volume=9)
    # AAPL's trade is not sent: this client holds AAPL's statuses and bands, not its trades.
    assert s.ticks("sim", [trade(8), status, luld, daily], {}) == 3
    ((payload, _),) = s.take()
    out = json.loads(payload)
    assert out[0] == {"T": "s", "S": "AAPL", "sc": "H", "sm": "Trading Halt", "rc": "T1",
                      "rm": "News Pending", "t": "2023-11-14T22:13:20.000000000Z", "z": "C"}
    assert {k: out[1][k] for k in ("T", "u", "d", "i", "z")} == {
        "T": "l", "u": 110.0, "d": 90.0, "i": "B", "z": "C"}
    assert out[2]["T"] == "d" and out[2]["c"] == 2.0
    drop = s.receive(json.dumps({"action": "unsubscribe", "lulds": ["AAPL"]}), 0.0)
    assert drop is not None and dict(drop.wants) == {("sim", "AAPL"): "trade+statuses"}


def test_alpaca_trades_carry_the_brokers_id_exchange_conditions_and_tape() -> None:
    s = alpaca(token=None, codec=Codec.JSON)
    s.receive(json.dumps({"action": "auth", "key": "k", "secret": "x"}), 0.0)
    change = s.receive(json.dumps({"action": "subscribe", "trades": ["AAPL"],
                                   "quotes": ["AAPL"]}), 0.0)
    assert change is not None
    s.resolved({("sim", "AAPL"): Result(True)})
    s.take()
    said = Tick.make("trade", "AAPL", seq=5, exchange_ns=1, price=1.5, size=100,
                     trade_id=96921, exchange="V", conditions=["@", "I"], tape="C")
    quote_said = Tick.make("quote", "AAPL", seq=6, exchange_ns=1, bid=1, bid_size=2, ask=3,
                           ask_size=4, exchange="V", ask_exchange="Q", conditions=["R"],
                           tape="C")
    correction = Tick.make("correction", "AAPL", seq=7, exchange_ns=1, price=1.6, size=100,
                           bid=1.5, bid_size=100, ask=96921.0, trade_id=96999, exchange="V",
                           tape="C")
    cancel = Tick.make("cancel_error", "AAPL", seq=8, exchange_ns=1, price=1.5, size=100,
                       trade_id=96921, exchange="V", conditions=["C"], tape="C")
    unsaid = trade(9)  # from a feed that gives no detail (AllTick): our seq as the id
    assert s.ticks("sim", [said, quote_said, correction, cancel, unsaid], {}) == 5
    ((payload, _),) = s.take()
    out = json.loads(payload)
    assert out[0] == {"T": "t", "S": "AAPL", "i": 96921, "x": "V", "p": 1.5, "s": 100,
                      "c": ["@", "I"], "z": "C", "t": "1970-01-01T00:00:00.000000001Z"}
    assert out[1] == {"T": "q", "S": "AAPL", "bx": "V", "bp": 1.0, "bs": 2, "ax": "Q",
                      "ap": 3.0, "as": 4, "c": ["R"], "z": "C",
                      "t": "1970-01-01T00:00:00.000000001Z"}
    assert {k: out[2][k] for k in ("T", "oi", "op", "os", "ci", "cp", "cs", "x")} == {
        "T": "c", "oi": 96921, "op": 1.5, "os": 100, "ci": 96999, "cp": 1.6, "cs": 100,
        "x": "V"}
    assert {k: out[3][k] for k in ("T", "i", "p", "s", "a")} == {
        "T": "x", "i": 96921, "p": 1.5, "s": 100, "a": "C"}
    assert out[4]["i"] == 9 and "x" not in out[4] and "c" not in out[4]


def test_alpaca_crypto_has_no_statuses_and_its_trades_keep_the_taker_side() -> None:
    s = AlpacaDataSession(config(token=None, check_symbol=lambda broker, symbol: None), 0.0,
                          "/v1beta3/crypto/us", Codec.JSON)
    s.open(0.0)
    s.receive(json.dumps({"action": "auth", "key": "k", "secret": "x"}), 0.0)
    s.take()
    change = s.receive(json.dumps({"action": "subscribe", "trades": ["BTC/USD"],
                                   "statuses": ["BTC/USD"]}), 0.0)
    assert change is not None and dict(change.wants) == {("sim", "BTC/USD"): "trade"}
    s.resolved({("sim", "BTC/USD"): Result(True)})
    error, ack = decoded(s.take())
    assert error[0]["code"] == 410 and "statuses" not in ack[0]
    tick = Tick.make("trade", "BTC/USD", seq=3, exchange_ns=1, price=5, size=0.5,
                     trade_id=44, taker_side="S")
    assert s.ticks("sim", [tick], {}) == 1
    ((payload, _),) = s.take()
    assert json.loads(payload) == [{"T": "t", "S": "BTC/USD", "i": 44, "p": 5.0, "s": 0.5,
                                    "t": "1970-01-01T00:00:00.000000001Z", "tks": "S"}]


def test_alpaca_bars_are_asked_of_the_gateway_only_for_a_client_that_holds_them() -> None:
    s = alpaca(token=None, codec=Codec.JSON)
    s.receive(json.dumps({"action": "auth", "key": "k", "secret": "x"}), 0.0)
    change = s.receive(json.dumps({"action": "subscribe", "bars": ["AAPL"],
                                   "quotes": ["MSFT"]}), 0.0)
    assert change is not None
    assert dict(change.wants) == {("sim", "AAPL"): "trade+bars", ("sim", "MSFT"): "quote"}
    s.resolved({("sim", "AAPL"): Result(True), ("sim", "MSFT"): Result(True)})
    ack = decoded(s.take())[-1]  # after the greeting and the auth reply
    assert ack[0]["bars"] == ["AAPL"] and ack[0]["trades"] == []
    bar = Tick.make("bar", "AAPL", seq=7, exchange_ns=60_000_000_000, open=1.0, high=2.0,
                    low=0.5, close=1.5, volume=300.0, vwap=1.25, trade_count=4)
    # Only the bar goes out: this client holds AAPL's bars, not its trades.
    assert s.ticks("sim", [trade(5), bar], {}) == 1
    ((payload, _),) = s.take()
    (item,) = json.loads(payload)
    assert item["T"] == "b" and (item["o"], item["c"], item["v"], item["n"]) == (1.0, 1.5, 300, 4)
    more = s.receive(json.dumps({"action": "subscribe", "quotes": ["AAPL"]}), 0.0)
    assert more is not None and dict(more.wants) == {("sim", "AAPL"): "quote+bars"}
    s.resolved({("sim", "AAPL"): Result(True)})
    drop = s.receive(json.dumps({"action": "unsubscribe", "bars": ["AAPL"]}), 0.0)
    assert drop is not None and dict(drop.wants) == {("sim", "AAPL"): "quote"}


def test_alpaca_data_is_msgpack_with_timestamps_or_json_with_rfc3339() -> None:
    for codec in (Codec.MSGPACK, Codec.JSON):
        s = alpaca(token=None, codec=codec)
        s.receive(json.dumps({"action": "auth", "key": "k", "secret": "x"}), 0.0)
        change = s.receive(json.dumps({"action": "subscribe", "trades": ["AAPL"]}), 0.0)
        assert change is not None
        s.resolved({("sim", "AAPL"): Result(True)})
        s.take()
        assert s.ticks("sim", [trade(5), quote(6)], {}) == 1
        ((payload, text),) = s.take()
        if codec is Codec.MSGPACK:
            (message,) = msgpack.unpackb(payload)
            assert not text and isinstance(message["t"], msgpack.Timestamp)
            assert message["t"].to_unix_nano() == 1_700_000_000_123_456_789
        else:
            (message,) = json.loads(payload)
            assert text and message["t"] == "2023-11-14T22:13:20.123456789Z"
        assert (message["T"], message["S"], message["p"], message["s"], message["i"]) == (
            "t", "AAPL", 101.5, 3, 5)


def test_alpaca_protocol_errors_use_alpacas_codes() -> None:
    s = alpaca()
    s.receive(msgpack.packb({"action": "subscribe", "trades": ["AAPL"]}), 0.0)
    s.receive(b"\xc1garbage", 0.0)
    s.receive(msgpack.packb({"action": "auth", "key": 1}), 0.0)
    codes = [f[0]["code"] for f in decoded(s.take())[1:]]
    assert codes == [401, 400, 400]
    assert alpaca_code("broker 'sim' is full: 3000 symbols") == 405
    assert alpaca_code("broker connection down (subscription: 409 insufficient)") == 409
    s.slow()
    assert decoded(s.take())[-1][0]["code"] == 407 and s.closing is not None


# -- openalgo -------------------------------------------------------------------------------------


def openalgo(token: str | None = "s3cret") -> OpenAlgoSession:
    s = OpenAlgoSession(config(token=token), 0.0)
    s.receive(OPENALGO_AUTH, 0.0)
    return s


def test_openalgo_auth_success_and_a_visible_failure() -> None:
    (ok,) = decoded(openalgo().take())
    assert ok["type"] == "auth" and ok["status"] == "success"
    bad = openalgo(token="other")
    (error,) = decoded(bad.take())
    assert error["type"] == "auth" and error["status"] == "error"  # the SDK logs it
    assert error["code"] == "AUTHENTICATION_ERROR" and bad.closing is not None


def test_openalgo_ltp_subscription_gets_ltp_per_trade_only() -> None:
    s = openalgo()
    s.take()
    change = s.receive(OPENALGO_LTP, 0.0)
    assert change is not None and dict(change.wants) == {("sim", "AAPL"): "trade"}
    s.resolved({("sim", "AAPL"): Result(True)})
    (ack,) = decoded(s.take())
    assert ack["type"] == "subscribe" and ack["status"] == "success"
    assert ack["subscriptions"][0]["mode"] == 1  # an int: the SDK maps it to "LTP"
    assert s.ticks("sim", [quote(1), trade(2)], {}) == 1
    (data,) = decoded(s.take())
    assert data == {"type": "market_data", "symbol": "AAPL", "exchange": "NASDAQ", "mode": 1,
                    "data": {"ltp": 101.5, "timestamp": 1_700_000_000_123,
                             "ltt": 1_700_000_000_123}}


def test_openalgo_bulk_quote_and_depth_carry_the_latest_trade_and_quote() -> None:
    s = openalgo()
    s.take()
    bulk = {"action": "subscribe", "symbols": [{"symbol": "AAPL", "exchange": "NASDAQ"},
                                               {"symbol": "AAPL", "exchange": "NYSE"}],
            "mode": "Quote"}
    change = s.receive(json.dumps(bulk), 0.0)
    assert change is not None and dict(change.wants) == {("sim", "AAPL"): "quote"}
    s.resolved(dict.fromkeys(change.wants, Result(True)))
    (ack,) = decoded(s.take())
    assert ack["status"] == "partial"  # NYSE is mapped to no broker
    assert "not mapped" in ack["subscriptions"][0]["message"]
    depth = s.receive(json.dumps({"action": "subscribe", "symbol": "AAPL",
                                  "exchange": "NASDAQ", "mode": 3}), 0.0)
    assert depth is None  # already held at quote: nothing to ask
    s.take()
    s.ticks("sim", [trade(1), quote(2)], {})
    messages = decoded(s.take())
    assert [(m["mode"], "depth" in m["data"]) for m in messages] == [
        (2, False), (3, True), (2, False), (3, True)]
    last_quote = messages[2]["data"]
    assert last_quote["ltp"] == 101.5 and last_quote["bid"] == 101.0 and last_quote["ask"] == 101.2
    assert messages[3]["data"]["depth"] == {"buy": [{"price": 101.0, "quantity": 2.0}],
                                           "sell": [{"price": 101.2, "quantity": 4.0}]}


def test_openalgo_depth_on_a_broker_with_books_carries_five_levels_a_side() -> None:
    levels = tuple((100.0 - i, 1.0 + i) for i in range(8))
    book = Book("AAPL", levels, tuple((101.0 + i, 2.0 + i) for i in range(8)), 1, 2, 3)
    s = OpenAlgoSession(config(token=None, book_brokers=frozenset({"sim"}),
                               book=lambda broker, symbol: book if symbol == "AAPL" else None),
                        0.0)
    s.receive(OPENALGO_AUTH, 0.0)
    s.take()
    change = s.receive(json.dumps({"action": "subscribe", "symbol": "AAPL",
                                   "exchange": "NASDAQ", "mode": 3}), 0.0)
    assert change is not None and dict(change.wants) == {("sim", "AAPL"): "depth"}
    s.resolved({("sim", "AAPL"): Result(True)})
    (ack,) = decoded(s.take())
    assert ack["subscriptions"][0]["depth"] == 5
    depth_tick = Tick.make("depth", "AAPL", seq=3, exchange_ns=1_700_000_000_400_000_000,
                           bid=100.0, bid_size=1.0, ask=101.0, ask_size=2.0)
    # The quote does not repeat the book; the trade and the book change each send one.
    assert s.ticks("sim", [trade(1), quote(2), depth_tick], {}) == 2
    messages = decoded(s.take())
    assert [m["mode"] for m in messages] == [3, 3]
    depth = messages[1]["data"]["depth"]
    assert depth["buy"] == [{"price": p, "quantity": q, "orders": 0} for p, q in levels[:5]]
    assert len(depth["sell"]) == 5 and depth["sell"][0]["price"] == 101.0


def test_openalgo_ping_unsubscribe_and_mode_labels() -> None:
    s = openalgo()
    s.take()
    s.receive('{"action": "ping"}', 0.0)
    (pong,) = decoded(s.take())
    assert pong["type"] == "pong" and pong["status"] == "success"
    change = s.receive(OPENALGO_LTP, 0.0)
    assert change is not None
    s.resolved({("sim", "AAPL"): Result(True)})
    s.take()
    unsub = s.receive(json.dumps({"action": "unsubscribe", "symbol": "AAPL",
                                  "exchange": "NASDAQ", "mode": 1}), 0.0)
    assert unsub is not None and dict(unsub.wants) == {("sim", "AAPL"): None}
    s.resolved({("sim", "AAPL"): Result(True)})
    (reply,) = decoded(s.take())
    assert reply["type"] == "unsubscribe" and reply["successful"][0]["symbol"] == "AAPL"
    assert [parse_mode(v) for v in (1, "LTP", "quote", "Depth", "3", 4, True)] == [
        1, 1, 2, 3, 3, None, None]
    s.receive('{"action": "dance"}', 0.0)
    assert decoded(s.take())[0]["code"] == "INVALID_ACTION"


def test_native_ticks_carry_the_brokers_detail_and_the_new_kinds() -> None:
    from tradeops.protocol.native import tick_message

    trade_said = Tick.make("trade", "AAPL", seq=1, price=1.5, size=100, trade_id=96921,
                           exchange="V", conditions=["@", "I"], tape="C")
    assert tick_message(trade_said) == {
        "seq": 1, "kind": "trade", "symbol": "AAPL", "ts": 0, "rx": 0, "price": 1.5,
        "size": 100.0, "trade_id": 96921, "exchange": "V", "tape": "C", "conditions": ["@", "I"]}
    quiet = tick_message(trade(2))  # a feed that said nothing more: nothing more is sent
    assert set(quiet) == {"seq", "kind", "symbol", "ts", "rx", "price", "size"}
    quote_said = tick_message(Tick.make("quote", "AAPL", bid=1, ask=2, exchange="V",
                                        ask_exchange="Q"))
    assert (quote_said["bid_exchange"], quote_said["ask_exchange"]) == ("V", "Q")
    status = tick_message(Tick.make("status", "AAPL", exchange="H", ask_exchange="T1",
                                    status_message="Trading Halt", reason_message="News"))
    assert {k: status[k] for k in ("kind", "status_code", "status_message", "reason_code",
                                   "reason_message")} == {
        "kind": "status", "status_code": "H", "status_message": "Trading Halt",
        "reason_code": "T1", "reason_message": "News"}
    luld = tick_message(Tick.make("luld", "AAPL", bid=9, ask=11, conditions=["B"]))
    assert (luld["limit_up"], luld["limit_down"], luld["indicator"]) == (11.0, 9.0, "B")
    assert "conditions" not in luld
    fix = tick_message(Tick.make("correction", "AAPL", price=2, size=5, bid=1, bid_size=5,
                                 ask=77.0, trade_id=78))
    assert (fix["original_price"], fix["original_id"], fix["trade_id"]) == (1.0, 77, 78)
    bust = tick_message(Tick.make("cancel_error", "AAPL", price=2, size=5, trade_id=78,
                                  conditions=["E"]))
    assert bust["action"] == "E" and "conditions" not in bust
