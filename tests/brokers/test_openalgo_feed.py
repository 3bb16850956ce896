"""The OpenAlgo upstream dialect with bytes: what the gateway sends an OpenAlgo server and
how it reads the answers (no socket)."""

from __future__ import annotations

import json
from dataclasses import dataclass

from tradeops.protocol.feed import Authenticated, BookUpdate, Failure, MarketData, Subscribed
from tradeops.protocol.modes import Mode
from tradeops.protocol.openalgo_feed import OpenAlgoFeed


@dataclass(frozen=True)
class M:
    symbol: str
    before: Mode | None
    after: Mode | None


def test_auth_and_one_frame_per_openalgo_mode() -> None:
    feed = OpenAlgoFeed("k3y")
    assert json.loads(feed.auth() or "") == {"action": "authenticate", "api_key": "k3y"}
    frames = [json.loads(f) for f in feed.change_frames({}, [
        M("NSE:RELIANCE", None, "trade"), M("NSE:INFY", None, "quote"),
        M("BSE:TCS", "quote", "trade")])]
    assert frames == [
        {"action": "unsubscribe", "mode": 3, "symbols": [{"exchange": "BSE", "symbol": "TCS"}]},
        {"action": "subscribe", "mode": 1, "symbols": [
            {"exchange": "NSE", "symbol": "RELIANCE"}, {"exchange": "NSE", "symbol": "INFY"}]},
        {"action": "subscribe", "mode": 3, "depth": 5,
         "symbols": [{"exchange": "NSE", "symbol": "INFY"}]},
    ]


def test_answers_become_events() -> None:
    feed = OpenAlgoFeed("k")
    assert feed.receive('{"type": "auth", "status": "success"}') == [Authenticated()]
    (bad,) = feed.receive('{"status": "error", "code": "AUTHENTICATION_ERROR", '
                          '"message": "Invalid API key"}')
    assert isinstance(bad, Failure) and bad.code == 401 and bad.code in feed.fatal_codes
    assert feed.receive('{"type": "subscribe", "status": "success", "subscriptions": '
                        '[{"symbol": "X", "exchange": "NSE", "status": "success"}]}') == [
        Subscribed({})]
    (refused,) = feed.receive(json.dumps({"type": "subscribe", "status": "error", "subscriptions": [
        {"symbol": "NOPE", "exchange": "NSE", "status": "error", "message": "no such"}]}))
    assert isinstance(refused, Failure) and "NSE:NOPE (no such)" in refused.message


def test_market_data_as_trades_and_quotes() -> None:
    feed = OpenAlgoFeed("k")
    (trade,) = feed.receive(json.dumps({"type": "market_data", "symbol": "RELIANCE",
                                        "exchange": "NSE", "mode": 1, "data": {
                                            "ltp": 1424.0, "timestamp": 1748353658856,
                                            "ltt": 1748353658000, "last_trade_quantity": 7}}))
    assert trade == MarketData("trade", "NSE:RELIANCE", 1748353658000 * 1_000_000,
                               price=1424.0, size=7.0)
    (quote,) = feed.receive(json.dumps({"type": "market_data", "symbol": "INFY",
                                        "exchange": "NSE", "mode": 3, "data": {
                                            "ltp": 10, "timestamp": 1000, "depth": {
                                                "buy": [{"price": 9.95, "quantity": 3}],
                                                "sell": [{"price": 10.05, "quantity": 4}]}}}))
    assert (quote.kind, quote.bid, quote.bid_size, quote.ask, quote.ask_size) == (
        "quote", 9.95, 3.0, 10.05, 4.0)
    assert feed.receive('{"type": "market_data", "symbol": "X", "exchange": "NSE", '
                        '"mode": 1, "data": {}}') == []  # no ltp: nothing to say


def test_depth_pushes_become_books_for_depth_symbols_and_quote_to_depth_sends_nothing() -> None:
    feed = OpenAlgoFeed("k3y")
    feed.change_frames({}, [M("NSE:INFY", None, "quote")])
    # quote -> depth needs nothing more of OpenAlgo (both are its mode 3 at 5 levels).
    assert feed.change_frames({"NSE:INFY": "quote"}, [M("NSE:INFY", "quote", "depth")]) == []
    push = json.dumps({"type": "market_data", "symbol": "INFY", "exchange": "NSE", "mode": 3,
                       "data": {"ltp": 10, "timestamp": 1000, "depth": {
                           "buy": [{"price": 9.95, "quantity": 3}, {"price": 9.9, "quantity": 1},
                                   {"price": 0, "quantity": 0}],
                           "sell": [{"price": 10.05, "quantity": 4}]}}})
    rows, events = feed.receive_rows(push, 77)
    assert len(rows) == 1  # the quote
    (book,) = events
    assert isinstance(book, BookUpdate) and book.symbol == "NSE:INFY" and book.receive_ns == 77
    assert book.bids == ((9.95, 3.0), (9.9, 1.0)) and book.asks == ((10.05, 4.0),)
    feed.change_frames({"NSE:INFY": "depth"}, [M("NSE:INFY", "depth", "quote")])
    assert feed.receive_rows(push, 78)[1] == []  # back at quote: no book


def test_a_push_with_a_field_of_another_type_is_dropped_and_counted() -> None:
    feed = OpenAlgoFeed("k3y")
    feed.change_frames({}, [M("NSE:INFY", None, "depth")])
    good = {"type": "market_data", "symbol": "INFY", "exchange": "NSE", "mode": 3,
            "data": {"ltp": 10, "timestamp": 1000, "depth": {
                "buy": [{"price": 9.95, "quantity": 3}],
                "sell": [{"price": 10.05, "quantity": 4}]}}}  # fmt: skip
    bad = json.loads(json.dumps(good))
    bad["data"]["depth"]["buy"][0]["quantity"] = "three"
    assert feed.receive_rows(json.dumps(bad), 1) == ([], [])
    assert feed.malformed == 1
    rows, _ = feed.receive_rows(json.dumps(good), 2)  # the next one arrives
    assert len(rows) == 1 and feed.malformed == 1
