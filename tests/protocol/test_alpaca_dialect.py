"""Alpaca's market-data dialect, sans-I/O: recorded frames in, events out; frames built."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import msgpack
import pytest

from tradeops.gateway.pool import Transition
from tradeops.protocol.alpaca import (
    Authenticated,
    Connected,
    Failure,
    MarketData,
    MarketDataSession,
    Subscribed,
    channels,
    to_ns,
)
from tradeops.protocol.feed import BookUpdate

# Recorded shapes, as Alpaca sends them (https://docs.alpaca.markets/docs/streaming-market-data).
TS = "2024-03-01T14:30:00.123456789Z"
TS_NS = int(datetime(2024, 3, 1, 14, 30, tzinfo=UTC).timestamp()) * 10**9 + 123456789
TRADE = {
    "T": "t",
    "S": "AAPL",
    "i": 96921,
    "x": "V",
    "p": 126.55,
    "s": 1,
    "c": ["@", "I"],
    "z": "C",
    "t": TS,
}
QUOTE = {
    "T": "q",
    "S": "AAPL",
    "bx": "V",
    "bp": 126.5,
    "bs": 2,
    "ax": "V",
    "ap": 126.6,
    "as": 3,
    "c": ["R"],
    "z": "C",
    "t": TS,
}
BAR = {
    "T": "b",
    "S": "AAPL",
    "o": 1.0,
    "h": 1.1,
    "l": 0.9,
    "c": 1.05,
    "v": 4937,
    "t": TS,
    "n": 461,
    "vw": 1.02,
}


def as_msgpack(messages: list[dict[str, object]]) -> bytes:
    def ts(m: dict[str, object]) -> dict[str, object]:
        if "t" in m:
            ns = to_ns(m["t"])
            m = {**m, "t": msgpack.Timestamp.from_unix_nano(ns)}
        return m

    return msgpack.packb([ts(m) for m in messages], datetime=False)  # type: ignore[no-any-return]


@pytest.mark.parametrize("codec", ["json", "msgpack"])
def test_handshake_and_data(codec: str) -> None:
    session = MarketDataSession("key", "secret", codec)  # type: ignore[arg-type]

    def frame(messages: list[dict[str, object]]) -> bytes | str:
        return as_msgpack(messages) if codec == "msgpack" else json.dumps(messages)

    assert session.receive(frame([{"T": "success", "msg": "connected"}])) == [Connected()]
    auth = session.auth()
    decoded = msgpack.unpackb(auth) if codec == "msgpack" else json.loads(auth)
    assert decoded == {"action": "auth", "key": "key", "secret": "secret"}
    assert session.receive(frame([{"T": "success", "msg": "authenticated"}])) == [Authenticated()]
    assert session.state == "ready"
    events = session.receive(frame([TRADE, QUOTE, BAR]))
    assert events == [
        MarketData("trade", "AAPL", TS_NS, 126.55, 1.0),
        MarketData("quote", "AAPL", TS_NS, 0.0, 0.0, 126.5, 2.0, 126.6, 3.0),
        MarketData(
            "bar",
            "AAPL",
            TS_NS,
            1.05,
            4937.0,
            open=1.0,
            high=1.1,
            low=0.9,
            close=1.05,
            volume=4937.0,
            vwap=1.02,
            trades=461,
        ),
    ]


def test_msgpack_session_asks_for_msgpack() -> None:
    assert MarketDataSession("k", "s", "msgpack").headers() == {
        "Content-Type": "application/msgpack"
    }
    assert MarketDataSession("k", "s", "json").headers() == {}


@pytest.mark.parametrize(
    ("code", "fatal"),
    [(402, True), (401, True), (409, True), (406, True), (405, False), (400, False), (407, False)],
)
def test_errors_are_classified(code: int, fatal: bool) -> None:
    session = MarketDataSession("k", "s", "json")
    (event,) = session.receive(json.dumps([{"T": "error", "code": code, "msg": "x"}]))
    assert event == Failure(code, "x")
    assert (session.state == "failed") is fatal


def test_subscription_ack_carries_the_full_set() -> None:
    session = MarketDataSession("k", "s", "json")
    ack = [{"T": "subscription", "trades": ["AAPL", "MSFT"], "quotes": ["AAPL"], "bars": []}]
    (event,) = session.receive(json.dumps(ack))
    assert event == Subscribed({"trades": ("AAPL", "MSFT"), "quotes": ("AAPL",), "bars": ()})


def test_change_frames_carry_exactly_the_channel_difference() -> None:
    session = MarketDataSession("k", "s", "json")
    moves = [
        Transition("AAPL", None, "quote"),  # new: trades + quotes
        Transition("MSFT", "quote", "trade"),  # downgrade: drop quotes only
        Transition("NVDA", "trade", "quote"),  # upgrade: add quotes only
        Transition("AMD", "trade", None),  # gone
    ]
    frames = [json.loads(f) for f in session.change_frames({}, moves)]
    assert frames == [
        {"action": "subscribe", "quotes": ["AAPL", "NVDA"], "trades": ["AAPL"]},
        {"action": "unsubscribe", "quotes": ["MSFT"], "trades": ["AMD"]},
    ]
    assert session.change_frames({}, []) == []


def test_bars_are_subscribed_only_for_a_mode_with_bars() -> None:
    session = MarketDataSession("k", "s", "json")
    assert "bars" not in {c for mode in ("trade", "quote", "depth") for c in channels(mode)}
    moves = [
        Transition("AAPL", None, "trade+bars"),  # new, with bars
        Transition("MSFT", "quote", "quote+bars"),  # bars added, nothing else
    ]
    frames = [json.loads(f) for f in session.change_frames({}, moves)]
    assert frames == [{"action": "subscribe", "bars": ["AAPL", "MSFT"], "trades": ["AAPL"]}]
    (frame,) = session.change_frames({}, [Transition("MSFT", "quote+bars", "quote")])
    assert json.loads(frame) == {"action": "unsubscribe", "bars": ["MSFT"]}


def test_garbage_is_a_failure_not_an_exception() -> None:
    session = MarketDataSession("k", "s", "msgpack")
    (event,) = session.receive(b"\xc1\xc1not msgpack")
    assert isinstance(event, Failure) and event.code == 400
    assert session.receive("[1, 2, 3]") == []  # not messages: ignored


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("2024-03-01T14:30:00Z", TS_NS - 123456789),
        ("2024-03-01T14:30:00.5Z", TS_NS - 123456789 + 500_000_000),
        ("2024-03-01T14:30:00.123456789Z", TS_NS),
        ("2024-03-01T09:30:00.123456789-05:00", TS_NS),
    ],
)
def test_rfc3339_timestamps(text: str, ns: int) -> None:
    assert to_ns(text) == ns


def test_orderbook_messages_become_the_top_levels_after_a_snapshot_and_changes() -> None:
    session = MarketDataSession("k", "s", "json", depth=2)
    snapshot = [{"T": "o", "S": "BTC/USD", "t": "2024-03-01T14:30:00Z", "r": True,
                 "b": [{"p": 100.0, "s": 1.0}, {"p": 99.0, "s": 2.0}, {"p": 98.0, "s": 3.0}],
                 "a": [{"p": 101.0, "s": 1.5}]}]
    rows, (book,) = session.receive_rows(json.dumps(snapshot), 7)
    assert rows == [] and isinstance(book, BookUpdate)
    assert book.bids == ((100.0, 1.0), (99.0, 2.0)) and book.asks == ((101.0, 1.5),)
    assert book.exchange_ns == to_ns("2024-03-01T14:30:00Z") and book.receive_ns == 7
    change = [{"T": "o", "S": "BTC/USD", "t": "2024-03-01T14:30:01Z",
               "b": [{"p": 100.0, "s": 0}], "a": [{"p": 100.5, "s": 4.0}]}]
    _, (book,) = session.receive_rows(json.dumps(change), 8)
    assert isinstance(book, BookUpdate)
    assert book.bids == ((99.0, 2.0), (98.0, 3.0)) and book.asks == ((100.5, 4.0), (101.0, 1.5))
