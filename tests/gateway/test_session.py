"""Market hours, pure: weekly calendars with holidays, the broker's clock, the sim's calendar."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import pytest

from tradeops.gateway.session import ClockReading, MarketSession, parse_clock
from tradeops.protocol.hours import WeeklyHours, parse_session
from tradeops.sim.exchange import Exchange
from tradeops.sim.options import SimOptions
from tradeops.sim.trading import TradingApi

HK = ZoneInfo("Asia/Hong_Kong")


def at(*args: int, zone: ZoneInfo = HK) -> float:
    return datetime(*args, tzinfo=zone).timestamp()


HK_HOURS = WeeklyHours(
    zone="Asia/Hong_Kong",
    sessions=(parse_session("09:30-12:00"), parse_session("13:00-16:00")),
    holidays=frozenset({date(2026, 12, 25)}),
)


def test_sessions_lunch_weekends_and_holidays() -> None:
    assert HK_HOURS.is_open(at(2026, 12, 2, 10, 0))  # a Wednesday morning
    assert not HK_HOURS.is_open(at(2026, 12, 2, 12, 30))  # lunch
    assert HK_HOURS.is_open(at(2026, 12, 2, 13, 0))
    assert not HK_HOURS.is_open(at(2026, 12, 5, 10, 0))  # Saturday
    assert not HK_HOURS.is_open(at(2026, 12, 25, 10, 0))  # a holiday, a Friday
    assert HK_HOURS.next_open(at(2026, 12, 2, 12, 30)) == datetime(2026, 12, 2, 13, 0, tzinfo=HK)
    # Thursday after the close: Friday is a holiday, so Monday.
    assert HK_HOURS.next_open(at(2026, 12, 24, 17, 0)) == datetime(2026, 12, 28, 9, 30,
                                                                     tzinfo=HK)


def test_a_session_is_written_hh_mm_dash_hh_mm() -> None:
    assert parse_session("09:30-16:00") == (time(9, 30), time(16, 0))
    with pytest.raises(ValueError, match="open before it closes"):
        parse_session("16:00-09:30")
    with pytest.raises(ValueError, match="HH:MM-HH:MM"):
        parse_session("morning")


def test_a_session_from_hours_says_until_when_it_is_closed() -> None:
    session = MarketSession(HK_HOURS)
    assert session.describe(at(2026, 12, 2, 10, 0)) == "open"
    assert session.describe(at(2026, 12, 5, 10, 0)) == (
        "market closed until 2026-12-07 09:30 Asia/Hong_Kong")


def test_a_session_from_the_broker_clock_follows_its_edges() -> None:
    session = MarketSession()
    assert session.is_open(0.0)  # no reading yet: the data decides
    reading = parse_clock({"timestamp": "2026-12-02T08:00:00-05:00", "is_open": False,
                           "next_open": "2026-12-02T09:30:00-05:00",
                           "next_close": "2026-12-02T16:00:00-05:00"})
    session.reading = reading
    ny = ZoneInfo("America/New_York")
    assert not session.is_open(at(2026, 12, 2, 9, 0, zone=ny))
    assert session.closed_reason(0.0) == "market closed until 2026-12-02T09:30-05:00"
    assert session.is_open(at(2026, 12, 2, 9, 30, zone=ny))  # the edge passed
    session.reading = ClockReading(True, reading.next_open, reading.next_close, "")
    assert not session.is_open(at(2026, 12, 2, 16, 0, zone=ny))
    with pytest.raises(ValueError):
        parse_clock({"is_open": True})


def test_the_sim_serves_alpaca_s_calendar_from_its_hours() -> None:
    exchange = Exchange(SimOptions(hours="09:30-16:00 America/New_York"), now=0.0)
    api = TradingApi(exchange)
    now = datetime(2026, 12, 2, 12, 0, tzinfo=UTC).timestamp()
    reply = api.handle("GET", "/v2/calendar", {"APCA-API-KEY-ID": "k",
                                               "APCA-API-SECRET-KEY": "s"},
                       {"start": "2026-12-04", "end": "2026-12-07"}, b"", now)
    assert reply.status == 200
    assert [(d["date"], d["open"], d["close"]) for d in reply.body] == [
        ("2026-12-04", "09:30", "16:00"), ("2026-12-07", "09:30", "16:00")]  # no weekend


def test_crypto_feeds_and_24_7_brokers_are_always_in_session() -> None:
    from tradeops.gateway.main import market_session
    from tradeops.topology.model import Broker

    crypto = Broker.model_validate({"adapter": "alpaca", "feed": "crypto"})
    assert market_session("c", crypto, None, None) == (None, None)  # type: ignore[arg-type]
    always = Broker.model_validate({"adapter": "alltick", "hours": "24/7"})
    assert market_session("a", always, None, None) == (None, None)  # type: ignore[arg-type]
    hk = Broker.model_validate({"adapter": "alltick", "hours": {
        "timezone": "Asia/Hong_Kong", "sessions": ["09:30-12:00", "13:00-16:00"],
        "holidays": ["2026-12-25"]}})
    session, clock = market_session("hk", hk, None, None)  # type: ignore[arg-type]
    assert clock is None and session is not None
    assert session.describe(at(2026, 12, 25, 10, 0)) == (
        "market closed until 2026-12-28 09:30 Asia/Hong_Kong")
