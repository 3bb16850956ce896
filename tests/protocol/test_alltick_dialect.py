"""AllTick's dialect, sans-I/O: recorded pushes and acks in, full-list requests out."""

from __future__ import annotations

import json

from tradeops.gateway.pool import Transition
from tradeops.protocol.alltick import AllTickSession, from_wire, to_wire
from tradeops.protocol.feed import Failure, MarketData, Subscribed

# Shapes from AllTick's published API (protocol numbers 22004/22005, 22998, 22999).
TRADE_PUSH = {
    "cmd_id": 22998,
    "data": {
        "code": "700.HK",
        "seq": "1605509068000001",
        "tick_time": "1605509068000",
        "price": "651.12",
        "volume": "300",
        "turnover": "12345.6",
        "trade_direction": 1,
    },
}
DEPTH_PUSH = {
    "cmd_id": 22999,
    "data": {
        "code": "700.HK",
        "seq": "1605509068000001",
        "tick_time": "1605509068000",
        "bids": [{"price": "9.12", "volume": "100"}],
        "asks": [{"price": "9.13", "volume": "200"}],
    },
}


def test_symbols_translate_both_ways() -> None:
    assert to_wire("HK:700") == "700.HK" and from_wire("700.HK") == "HK:700"
    assert to_wire("US:BRK.B") == "BRK.B.US" and from_wire("BRK.B.US") == "US:BRK.B"


def test_token_travels_in_the_url_and_there_is_no_greeting() -> None:
    session = AllTickSession("t0k")
    assert session.url("wss://quote.alltick.io/quote-stock-b-ws-api") == (
        "wss://quote.alltick.io/quote-stock-b-ws-api?token=t0k"
    )
    assert session.auth() is None and session.greeting is False
    beat = json.loads(session.heartbeat() or "")
    assert beat["cmd_id"] == 22000


def test_every_change_sends_the_full_list() -> None:
    session = AllTickSession("t")
    confirmed = {"HK:700": "trade", "HK:9988": "quote"}
    moves = [Transition("US:AAPL", None, "depth"), Transition("HK:700", "trade", None)]
    frames = [json.loads(f) for f in session.change_frames(confirmed, moves)]
    assert [f["cmd_id"] for f in frames] == [22004, 22002]
    assert frames[0]["data"]["symbol_list"] == [{"code": "9988.HK"}, {"code": "AAPL.US"}]
    assert frames[1]["data"]["symbol_list"] == [
        {"code": "9988.HK", "depth_level": 1},
        {"code": "AAPL.US", "depth_level": 5},
    ]


def test_emptying_a_list_cancels_it() -> None:
    session = AllTickSession("t")
    frames = [
        json.loads(f)
        for f in session.change_frames({"HK:700": "quote"}, [Transition("HK:700", "quote", None)])
    ]
    assert [(f["cmd_id"], f["data"]["cancel_type"]) for f in frames] == [(22006, 2), (22006, 1)]
    assert session.change_frames({"HK:700": "trade"}, []) == []


def test_pushes_become_normalised_ticks() -> None:
    session = AllTickSession("t")
    assert session.receive(json.dumps(TRADE_PUSH)) == [
        MarketData("trade", "HK:700", 1605509068000 * 10**6, 651.12, 300.0)
    ]
    assert session.receive(json.dumps(DEPTH_PUSH)) == [
        MarketData("quote", "HK:700", 1605509068000 * 10**6, 0.0, 0.0, 9.12, 100.0, 9.13, 200.0)
    ]


def test_acks_and_errors() -> None:
    session = AllTickSession("t")
    ok = {"ret": 200, "msg": "ok", "cmd_id": 22005, "seq_id": 1, "trace": "x", "data": {}}
    assert session.receive(json.dumps(ok)) == [Subscribed({})]
    bad = {**ok, "ret": 605, "msg": "too many requests"}
    assert session.receive(json.dumps(bad)) == [Failure(605, "too many requests")]
    assert session.fatal_codes[401] == "auth"
    assert session.receive(json.dumps({"ret": 200, "cmd_id": 22001})) == []
    (garbage,) = session.receive("{not json")
    assert isinstance(garbage, Failure) and garbage.code == 400
