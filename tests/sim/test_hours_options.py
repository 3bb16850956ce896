"""Trading hours and option parsing: pure, with explicit times."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from tradeops.sim.hours import TradingHours
from tradeops.sim.options import SimConfigError, SimOptions, parse_keys, parse_rate_limit

NY = ZoneInfo("America/New_York")


def at(day: int, hour: int, minute: int = 0) -> float:
    return datetime(2024, 5, day, hour, minute, tzinfo=NY).timestamp()  # May 2024: 1st = Wed


def test_always_open() -> None:
    hours = TradingHours.parse("24/7")
    assert hours.always and hours.is_open(at(4, 3))  # a Saturday at 3 am


def test_window_on_weekdays_in_its_zone() -> None:
    hours = TradingHours.parse("09:30-16:00 America/New_York")
    assert hours.is_open(at(1, 9, 30)) and hours.is_open(at(1, 15, 59))
    assert not hours.is_open(at(1, 9, 29)) and not hours.is_open(at(1, 16, 0))
    assert not hours.is_open(at(4, 12))  # Saturday
    assert hours.next_open(at(3, 17)) == datetime(2024, 5, 6, 9, 30, tzinfo=NY)  # Fri -> Mon
    assert hours.next_close(at(1, 10)) == datetime(2024, 5, 1, 16, 0, tzinfo=NY)


@pytest.mark.parametrize("text", ["9-5", "16:00-09:30 America/New_York",
                                  "09:30-16:00 Mars/Olympus", "25:00-26:00 UTC"])
def test_bad_hours_say_what_to_write(text: str) -> None:
    with pytest.raises(SimConfigError, match="hours"):
        TradingHours.parse(text)


def test_options_are_frozen_hashable_and_checked() -> None:
    options = SimOptions(keys={"k": "s"}, symbols=["AAPL"])  # type: ignore[arg-type]
    assert options.keys["k"] == "s" and options.symbols == ("AAPL",)
    hash(options)
    with pytest.raises(AttributeError):
        options.port = 1  # type: ignore[misc]
    with pytest.raises(TypeError):
        options.keys["x"] = "y"  # type: ignore[index]
    options.check()
    for bad in (SimOptions(rate=0), SimOptions(max_connections=0), SimOptions(feeds=("nyse",)),
                SimOptions(hours="soon"), SimOptions(order_rate_limit=(0, 60.0)),
                SimOptions(silent_every=1.0), SimOptions(replay="/no/such/file.csv")):
        with pytest.raises(SimConfigError):
            bad.check()


def test_rate_limits_and_keys_parse() -> None:
    assert parse_rate_limit("200/min") == (200, 60.0)
    assert parse_rate_limit("10/1.5") == (10, 1.5)
    assert parse_rate_limit("5/s") == (5, 1.0)
    with pytest.raises(SimConfigError):
        parse_rate_limit("fast")
    assert parse_keys(["a:b", "c:d:e"]) == {"a": "b", "c": "d:e"}
    with pytest.raises(SimConfigError, match="KEY:SECRET"):
        parse_keys(["nosecret"])
