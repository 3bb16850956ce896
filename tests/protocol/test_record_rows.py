"""Dialects decode market data straight into the bus's record rows: the same records the
MarketData path gives, stamped with the frame's arrival, other events untouched."""

from __future__ import annotations

import json

import pytest

from tests.protocol.test_alltick_dialect import DEPTH_PUSH, TRADE_PUSH
from tests.protocol.test_alpaca_dialect import BAR, QUOTE, TRADE, as_msgpack
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
    assert [len(row) for row in rows] == [8, 10, 18, 8]  # trades and quotes pack short
    assert records(rows) == records(market_rows(market, 77)[0])
    assert {tick.receive_ns for tick in records(rows)} == {77}
    trade = records(rows)[0]
    assert (trade.kind, trade.symbol, trade.price, trade.size, trade.bid) == (
        "trade", "AAPL", 126.55, 1.0, 0.0,
    )  # fmt: skip


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
