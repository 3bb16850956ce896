"""Dialects decode market data straight into the bus's record rows: the same records the
MarketData path gives, stamped with the frame's arrival, other events untouched."""

from __future__ import annotations

import json

import msgpack
import pytest

from tests.protocol.test_alltick_dialect import DEPTH_PUSH, TRADE_PUSH
from tests.protocol.test_alpaca_dialect import BAR, QUOTE, TRADE, TS, TS_NS, as_msgpack
from tradeops.protocol import alpaca_typed
from tradeops.protocol.alltick import AllTickSession
from tradeops.protocol.alpaca import MarketDataSession
from tradeops.protocol.feed import Event, MarketData, market_rows
from tradeops.protocol.tick import RECORD_SIZE, ROW_OFFSET, ROW_PACKERS, RecordRow, Tick


def records(rows: list[RecordRow]) -> list[Tick]:
    """Each row packed as the ring packs it into a slot that held garbage, read back."""
    ticks = []
    for seq, row in enumerate(rows, 1):
        slot = bytearray(b"\xab" * RECORD_SIZE)
        slot[:8] = seq.to_bytes(8, "little")
        pack = ROW_PACKERS[len(row)]
        assert pack is not None, row
        pack(slot, ROW_OFFSET, *row)
        ticks.append(Tick.from_bytes(slot))
    return ticks


def split(events: list[Event]) -> tuple[list[MarketData], list[Event]]:
    return ([e for e in events if isinstance(e, MarketData)],
            [e for e in events if not isinstance(e, MarketData)])  # fmt: skip


@pytest.mark.parametrize("codec", ["json", "msgpack"])
def test_alpaca_rows_are_the_records_of_its_market_data(codec: str) -> None:
    messages = [TRADE, {"T": "subscription", "trades": ["AAPL"]}, QUOTE, BAR,
                {"T": "error", "code": 405, "msg": "symbol limit exceeded"}, TRADE]  # fmt: skip
    frame = as_msgpack(messages) if codec == "msgpack" else json.dumps(messages)
    session = MarketDataSession("key", "secret", codec)  # type: ignore[arg-type]
    rows, events = session.receive_rows(frame, 77)
    market, others = split(session.receive(frame))
    assert events == others and len(others) == 2
    assert [len(row) for row in rows] == [13, 14, 18, 13]  # trades and quotes pack short
    # The numbers are those of the market data; the broker's detail comes on top.
    def numbers(tick: Tick) -> tuple[object, ...]:
        return (*tick[:13], tick.tail[:48])  # everything but the detail

    assert ([numbers(t) for t in records(rows)]
            == [numbers(t) for t in records(market_rows(market, 77)[0])])
    assert {tick.receive_ns for tick in records(rows)} == {77}
    trade, quote = records(rows)[:2]
    assert (trade.kind, trade.symbol, trade.price, trade.size, trade.bid) == (
        "trade", "AAPL", 126.55, 1.0, 0.0,
    )  # fmt: skip
    assert (trade.trade_id, trade.exchange, trade.tape, trade.conditions) == (
        96921, "V", "C", ("@", "I"))
    assert (quote.exchange, quote.ask_exchange, quote.tape, quote.conditions) == (
        "V", "V", "C", ("R",))


# Alpaca's other stock channels, as its documentation shows them.
STATUS = {"T": "s", "S": "AAPL", "sc": "H", "sm": "Trading Halt", "rc": "T12",
          "rm": "Trading Halted; For information requested by NASDAQ", "t": TS, "z": "C"}
LULD = {"T": "l", "S": "AAPL", "u": 138.47, "d": 125.29, "i": "B", "t": TS, "z": "C"}
CORRECTION = {"T": "c", "S": "AAPL", "x": "Q", "oi": 52983525029461, "op": 126.5,
              "os": 100, "oc": ["@", "F"], "ci": 52983525029999, "cp": 126.55, "cs": 100,
              "cc": ["@", "F", "I"], "t": TS, "z": "C"}
CANCEL = {"T": "x", "S": "AAPL", "i": 52983525029461, "x": "V", "p": 126.5, "s": 50,
          "a": "C", "t": TS, "z": "C"}


@pytest.mark.parametrize("codec", ["json", "msgpack"])
def test_alpaca_statuses_lulds_corrections_and_bars_reach_the_record(codec: str) -> None:
    daily = {**BAR, "T": "d", "c": 2.5}
    updated = {**BAR, "T": "u", "v": 5000}
    messages = [STATUS, LULD, CORRECTION, CANCEL, daily, updated, {"T": "l", "S": "X"}]
    frame = as_msgpack(messages) if codec == "msgpack" else json.dumps(messages)
    session = MarketDataSession("key", "secret", codec)  # type: ignore[arg-type]
    rows, events = session.receive_rows(frame, 5)
    status, luld, correction, cancel, day, upd = records(rows)
    assert [t.kind for t in records(rows)] == [
        "status", "luld", "correction", "cancel_error", "daily_bar", "updated_bar"]
    assert (status.exchange, status.status_message, status.ask_exchange, status.tape) == (
        "H", "Trading Halt", "T12", "C")
    assert status.reason_message == STATUS["rm"][:48]
    assert (luld.ask, luld.bid, luld.conditions, luld.tape) == (138.47, 125.29, ("B",), "C")
    assert (correction.price, correction.size, correction.trade_id, correction.bid,
            correction.bid_size, int(correction.ask), correction.exchange) == (
        126.55, 100.0, 52983525029999, 126.5, 100.0, 52983525029461, "Q")
    assert correction.conditions == ("@", "F", "I")
    assert correction.original_conditions == ("@", "F")
    assert (cancel.price, cancel.size, cancel.trade_id, cancel.conditions, cancel.exchange) == (
        126.5, 50.0, 52983525029461, ("C",), "V")
    assert (day.close, day.open, day.trade_count) == (2.5, 1.0, 461)
    assert upd.volume == 5000.0
    # A message missing what its type needs is dropped and counted; the others arrive.
    assert events == [] and session.malformed == 1


def test_alpaca_rows_report_an_undecodable_frame_as_the_events_do() -> None:
    session = MarketDataSession("key", "secret", "msgpack")
    rows, events = session.receive_rows(b"\xc1not msgpack", 1)
    assert rows == [] and events == session.receive(b"\xc1not msgpack")


def test_alltick_rows_are_the_records_of_its_market_data() -> None:
    session = AllTickSession("token")
    for push in (TRADE_PUSH, DEPTH_PUSH, {"ret": 605, "cmd_id": 22002, "msg": "slow"}):
        frame = json.dumps(push)
        rows, events = session.receive_rows(frame, 5)
        market, others = split(session.receive(frame))
        assert events == others
        assert records(rows) == records(market_rows(market, 5)[0])
        assert len(rows) == len(market)


def test_alpaca_detail_survives_odd_fields_and_is_cached_per_combination() -> None:
    odd = [{**TRADE, "c": [["nested"], "@"], "x": 5}, {**TRADE, "c": None, "z": None},
           {**QUOTE, "c": "R"}, {**TRADE, "c": ["@"] * 10}]
    rows, events = MarketDataSession("key", "secret", "json").receive_rows(json.dumps(odd), 1)
    nested, bare, quote, many = records(rows)
    assert events == [] and len(rows) == 4
    assert (nested.conditions, nested.exchange) == (("@",), "")  # what is not a code is left out
    assert (bare.conditions, bare.tape) == ((), "")
    assert quote.conditions == ()  # a string is not a list of codes
    assert len(many.conditions) == 7 and many.flags & 32  # cut whole codes, flagged


def _both(frame: bytes) -> tuple[object, object]:
    """What the typed path and the general path each make of ``frame``."""
    typed = MarketDataSession("key", "secret", "msgpack")
    general = MarketDataSession("key", "secret", "msgpack")
    general.typed_frames = False
    return typed.receive_rows(frame, 9), general.receive_rows(frame, 9)


def _stamped(messages: list[dict[str, object]], ns: int) -> bytes:
    return msgpack.packb([{**m, "t": msgpack.Timestamp.from_unix_nano(ns)} for m in messages],
                         datetime=False)  # fmt: skip


@pytest.mark.parametrize("ns", [
    1_709_303_400_123_456_789,  # nanoseconds: the 8-byte Timestamp every live feed sends
    1_709_303_400_000_000_000,  # whole seconds: the 4-byte form
    -1_500_000_001,  # before 1970: the 12-byte form
    (1 << 34) * 10**9 + 5,  # past 2514: the 12-byte form too
])  # fmt: skip
def test_a_frame_of_trades_and_quotes_takes_the_typed_path_with_the_same_rows(ns: int) -> None:
    crypto_quote = {**QUOTE, "S": "BTC/USD", "bs": 0.125, "as": 1.5, "c": None}
    messages = [TRADE, QUOTE, {**TRADE, "i": "a1b2-c3", "tks": "B"},  # a crypto trade's id
                {**TRADE, "i": 2**64 - 1}, crypto_quote, {**TRADE, "c": ["@"] * 10},
                {k: v for k, v in TRADE.items() if k not in ("c", "x", "z", "i")}]  # fmt: skip
    frame = _stamped(messages, ns)
    assert alpaca_typed.market_rows(frame, 9) is not None  # the typed path took it
    typed, general = _both(frame)
    assert typed == general
    rows = typed[0]
    assert {row[3] for row in rows} == {ns} and len(rows) == len(messages)


@pytest.mark.parametrize("odd", [
    {"T": "b", **{k: v for k, v in BAR.items() if k != "T"}},  # a bar: not a trade or quote
    {"T": "subscription", "trades": ["AAPL"]},
    {**TRADE, "p": "126.55"},  # a price as text
    {**TRADE, "c": [["nested"], "@"]},
    {**QUOTE, "c": "R"},
    {**TRADE, "x": 5},
    {k: v for k, v in QUOTE.items() if k != "ap"},  # a quote without its ask
])  # fmt: skip
def test_anything_else_in_the_frame_sends_it_the_general_way(odd: dict[str, object]) -> None:
    frame = _stamped([TRADE, odd, QUOTE], 1_709_303_400_123_456_789)
    assert alpaca_typed.market_rows(frame, 9) is None
    typed, general = _both(frame)
    assert typed == general
    assert len(typed[0]) >= 2  # type: ignore[index]  # the trade and quote around it arrive


def test_a_trade_or_quote_missing_a_field_is_dropped_and_counted_not_fatal() -> None:
    session = MarketDataSession("key", "secret", "msgpack")
    bad_quote = {k: v for k, v in QUOTE.items() if k != "ap"}
    bad_trade = {k: v for k, v in TRADE.items() if k != "p"}
    rows, events = session.receive_rows(_stamped([bad_trade, TRADE, bad_quote, QUOTE], 5), 9)
    assert [row[6] for row in rows] == [126.55, 126.5] and events == []
    assert session.malformed == 2


def test_a_timestamp_that_is_not_msgpack_s_sends_the_frame_the_general_way() -> None:
    as_text = msgpack.packb([TRADE, QUOTE])  # "t" as RFC 3339 text
    other_ext = msgpack.packb([{**TRADE, "t": msgpack.ExtType(5, b"\0" * 8)}])
    assert alpaca_typed.market_rows(as_text, 9) is None
    assert alpaca_typed.market_rows(other_ext, 9) is None
    assert _both(as_text)[0] == _both(as_text)[1]
    assert _both(as_text)[0][0][0][3] == TS_NS  # type: ignore[index]
