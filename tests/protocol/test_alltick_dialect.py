"""AllTick's dialect, sans-I/O: recorded pushes and acks in, full-list requests out."""

from __future__ import annotations

import json

import pytest

from tradeops.gateway.pool import Transition
from tradeops.protocol.alltick import (
    REQUEST_INTERVAL,
    TRADE_SUB,
    AllTickSession,
    depth_push,
    from_wire,
    response,
    to_wire,
    trade_push,
)
from tradeops.protocol.feed import BookUpdate, Failure, MarketData, Subscribed

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


def test_requests_are_paced_with_a_margin_above_alltick_s_one_second() -> None:
    """AllTick refuses a request under 1.000 s after the last; jitter makes exactly 1.000 s
    land under now and then, so the default keeps a margin, and the margin is a choice."""
    assert AllTickSession("t").min_request_interval == REQUEST_INTERVAL > 1.0
    assert AllTickSession("t", request_interval=1.2).min_request_interval == 1.2
    with pytest.raises(ValueError, match="request_interval"):
        AllTickSession("t", request_interval=0)


def test_the_token_is_never_in_a_session_s_repr() -> None:
    assert "s3cret" not in repr(AllTickSession("s3cret")) + str(AllTickSession("s3cret"))


def test_only_a_bad_token_ends_the_session_other_refusals_refuse_one_change() -> None:
    session = AllTickSession("t")
    assert dict(session.fatal_codes) == {401: "auth"}
    assert 429 in session.transient_codes
    for code in (600, 604, 605):
        assert code not in session.fatal_codes and code not in session.transient_codes


def test_the_server_side_builders_speak_the_same_bytes() -> None:
    assert response(TRADE_SUB, 429, 3, "tr") == (
        '{"ret":429,"msg":"rate limit","cmd_id":22005,"seq_id":3,"trace":"tr","data":{}}'
    )
    session = AllTickSession("t")
    assert session.receive(response(TRADE_SUB, 429, 3, "tr")) == [Failure(429, "rate limit")]
    assert session.receive(trade_push("700.HK", 1, 1605509068000, 651.12, 300)) == [
        MarketData("trade", "HK:700", 1605509068000 * 10**6, 651.12, 300.0)
    ]
    book = depth_push("700.HK", 2, 1605509068000, [(9.12, 100), (9.11, 50)], [(9.13, 200)])
    assert session.receive(book) == [
        MarketData("quote", "HK:700", 1605509068000 * 10**6, 0.0, 0.0, 9.12, 100.0, 9.13, 200.0)
    ]
    assert json.loads(book)["data"]["bids"][1] == {"price": "9.11", "volume": "50"}


def test_depth_pushes_become_books_for_depth_symbols_only() -> None:
    session = AllTickSession("t", trace=lambda: "x")
    session.change_frames({}, [Transition("HK:700", None, "depth"),
                               Transition("US:AAPL", None, "quote")])
    push = depth_push("700.HK", 2, 1605509068000, [(9.12, 100), (9.11, 50), (9.10, 0)],
                      [(9.13, 200), (9.14, 10)])
    rows, events = session.receive_rows(push, 42)
    assert len(rows) == 1 and rows[0][8:12] == (9.12, 100.0, 9.13, 200.0)  # the best level
    (book,) = events
    assert isinstance(book, BookUpdate) and book.symbol == "HK:700" and book.receive_ns == 42
    assert book.bids == ((9.12, 100.0), (9.11, 50.0)) and book.asks == ((9.13, 200.0),
                                                                          (9.14, 10.0))
    assert book.exchange_ns == 1605509068000 * 1_000_000
    quote_only = depth_push("AAPL.US", 3, 1605509068000, [(1.0, 1)], [(1.1, 1)])
    rows, events = session.receive_rows(quote_only, 43)
    assert len(rows) == 1 and events == []  # a quote subscription gets no book


@pytest.mark.parametrize("data", [None, "x", [1, 2], {"code": "700.HK", "tick_time": "x"},
                                  {**TRADE_PUSH["data"], "price": None},  # type: ignore[dict-item]
                                  {**TRADE_PUSH["data"], "price": "1,5"}])  # type: ignore[dict-item]
def test_a_push_with_a_field_missing_or_mistyped_is_dropped_and_counted(data: object) -> None:
    session = AllTickSession("token")
    assert session.receive_rows(json.dumps({"cmd_id": 22998, "data": data}), 1) == ([], [])
    assert session.malformed == 1
    rows, _ = session.receive_rows(json.dumps(TRADE_PUSH), 2)  # the next one arrives
    assert len(rows) == 1 and session.malformed == 1
