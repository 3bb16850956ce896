"""The sim's AllTick dialect without sockets: request bytes in, response and push bytes out."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tradeops.protocol import alltick as wire
from tradeops.protocol.codec import Codec
from tradeops.sim.alltick import AllTickSession
from tradeops.sim.exchange import Exchange
from tradeops.sim.market import Quote, Trade
from tradeops.sim.options import SimConfigError, SimOptions

NOW = 1_700_000_000.0
PATH = "/quote-stock-b-ws-api"


def exchange(**options: Any) -> Exchange:
    return Exchange(SimOptions(**options), NOW)


def said(session: AllTickSession) -> list[dict[str, Any]]:
    return [json.loads(item) for chunk in session.take() for item in chunk]


def connect(x: Exchange, token: str = "secret-token") -> AllTickSession:
    session = x.open_session(PATH, Codec.JSON, NOW, f"token={token}")
    assert isinstance(session, AllTickSession)
    return session


def request(cmd: int, data: object, seq: int = 7) -> str:
    return json.dumps({"cmd_id": cmd, "seq_id": seq, "trace": "t1", "data": data})


def subscribe_trades(*codes: str) -> str:
    return request(wire.TRADE_SUB, {"symbol_list": [{"code": c} for c in codes]})


def test_a_wrong_token_is_answered_401_and_closed_and_never_shown() -> None:
    x = exchange(keys={"good-token-1": ""})
    session = connect(x, "wrong-token-9")
    assert session.take() == [[b'{"ret":401,"msg":"token invalid","cmd_id":0,"seq_id":0,'
                               b'"trace":"","data":{}}']]
    assert session.closing == (1000, "token invalid")
    assert "wrong-token-9" not in json.dumps(session.describe())
    good = connect(x, "good-token-1")
    assert good.authenticated and good.closing is None
    assert "good-token-1" not in json.dumps(good.describe())


def test_connections_per_token_are_bounded() -> None:
    x = exchange(max_connections=1)
    first, second = connect(x), connect(x)
    assert first.closing is None
    assert said(second)[0]["ret"] == 605 and second.closing is not None


def test_a_subscription_replaces_the_last_list_of_its_kind() -> None:
    x = exchange()
    s = connect(x)
    s.receive(subscribe_trades("AAPL.US", "700.HK"), NOW)
    assert said(s) == [{"ret": 200, "msg": "ok", "cmd_id": 22005, "seq_id": 7, "trace": "t1",
                        "data": {}}]
    s.receive(subscribe_trades("MSFT.US"), NOW + 1.0)
    said(s)
    assert s.subs == {"trades": {"MSFT.US"}}
    assert x.active_symbols == {"MSFT.US"}
    book = request(wire.DEPTH_SUB, {"symbol_list": [{"code": "700.HK", "depth_level": 5}]})
    s.receive(book, NOW + 2.0)
    assert said(s)[0]["cmd_id"] == 22003
    assert s.subs == {"trades": {"MSFT.US"}, "quotes": {"700.HK"}} and s.depth == {"700.HK": 5}
    s.receive(request(wire.CANCEL, {"cancel_type": wire.CANCEL_TRADES}), NOW + 3.0)
    assert said(s)[0] == {"ret": 200, "msg": "ok", "cmd_id": 22007, "seq_id": 7,
                          "trace": "t1", "data": {}}
    assert s.subs == {"quotes": {"700.HK"}}


def test_requests_faster_than_one_a_second_are_refused_429_heartbeats_included() -> None:
    x = exchange()
    s = connect(x)
    s.receive(request(wire.HEARTBEAT, {}), NOW)
    s.receive(subscribe_trades("AAPL.US"), NOW + 0.999)
    s.receive(subscribe_trades("AAPL.US"), NOW + 2.0)
    answers = [(m["cmd_id"], m["ret"]) for m in said(s)]
    assert answers == [(22001, 200), (22005, 429), (22005, 200)]
    assert [r["ret"] for r in s.requests] == [200, 429, 200]
    assert s.requests[1]["gap"] == pytest.approx(0.999)
    assert s.subs == {"trades": {"AAPL.US"}}


def test_bad_requests_get_alltick_codes_and_change_nothing() -> None:
    x = exchange(symbols_per_connection=2)
    s = connect(x)
    cases = [
        ("{not json", 400),
        (request(wire.TRADE_SUB, None), 601),
        (request(wire.TRADE_SUB, {"symbol_list": "AAPL.US"}), 400),
        (subscribe_trades("AAPL"), 600),  # a code needs its market: AAPL.US
        (subscribe_trades("A.US", "B.US", "C.US"), 605),
        (request(wire.CANCEL, {"cancel_type": 9}), 400),
        (request(12345, {}), 400),
    ]
    for i, (raw, code) in enumerate(cases):
        s.receive(raw, NOW + 2.0 * i)
        assert [m["ret"] for m in said(s)] == [code], raw
    assert s.subs == {}


def test_no_heartbeat_within_the_window_closes_the_connection() -> None:
    x = exchange(alltick_heartbeat_timeout=30.0)
    s = connect(x)
    s.receive(request(wire.HEARTBEAT, {}), NOW + 20.0)
    s.check_timeout(NOW + 49.0)
    assert s.closing is None
    s.check_timeout(NOW + 50.5)
    assert s.closing == (1000, "heartbeat timeout")


def test_the_heartbeat_window_is_a_runtime_fault() -> None:
    x = exchange()
    s = connect(x)
    x.faults.update({"alltick_heartbeat_timeout": 0.5}, NOW)
    s.check_timeout(NOW + 1.0)
    assert s.closing == (1000, "heartbeat timeout")
    with pytest.raises(SimConfigError, match="alltick_heartbeat_timeout"):
        x.faults.update({"alltick_heartbeat_timeout": 0}, NOW)


def test_pushes_carry_trades_and_a_book_of_the_requested_depth() -> None:
    x = exchange()
    s = connect(x)
    s.receive(subscribe_trades("AAPL.US"), NOW)
    s.receive(request(wire.DEPTH_SUB, {"symbol_list": [{"code": "AAPL.US", "depth_level": 3}]}),
              NOW + 1.0)
    said(s)
    t_ns = 1_700_000_001_234_000_000
    x.dispatch([Trade("AAPL.US", 101.5, 200, t_ns, 1),
                Quote("AAPL.US", 101.4, 300, 101.6, 100, t_ns)], NOW + 1.5)
    trade, book = said(s)
    assert trade == {"cmd_id": 22998, "data": {
        "code": "AAPL.US", "seq": "1", "tick_time": "1700000001234", "price": "101.5",
        "volume": "200", "turnover": "20300", "trade_direction": 0}}
    assert book["cmd_id"] == 22999
    bids = [(float(b["price"]), float(b["volume"])) for b in book["data"]["bids"]]
    asks = [(float(a["price"]), float(a["volume"])) for a in book["data"]["asks"]]
    assert bids == [(101.4, 300), (101.2, 600), (101.0, 900)]
    assert asks == [(101.6, 100), (101.8, 200), (102.0, 300)]
    # The client's own decoder reads the best level back as a quote.
    (quote,) = wire.AllTickSession("t").receive(json.dumps(book))
    assert (quote.kind, quote.symbol, quote.bid, quote.ask) == ("quote", "US:AAPL", 101.4, 101.6)


def test_bad_alltick_options_are_refused_by_name() -> None:
    with pytest.raises(SimConfigError, match="alltick_heartbeat_timeout must be a positive"):
        SimOptions(alltick_heartbeat_timeout=0).check()
    with pytest.raises(SimConfigError, match="alltick_request_interval must be zero or more"):
        SimOptions(alltick_request_interval=-1).check()
    with pytest.raises(SimConfigError, match="alltick_request_interval must not be negative"):
        exchange().faults.update({"alltick_request_interval": -0.5}, NOW)


def test_a_zero_interval_lets_every_request_through() -> None:
    x = exchange(alltick_request_interval=0.0)
    s = connect(x)
    s.receive(request(wire.HEARTBEAT, {}), NOW)
    s.receive(subscribe_trades("AAPL.US"), NOW)
    assert [m["ret"] for m in said(s)] == [200, 200]
