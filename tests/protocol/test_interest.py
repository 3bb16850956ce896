"""Reference-counted interest, shared by the gateway and the proxy: pure bookkeeping."""

from __future__ import annotations

import pytest

from tradeops.protocol import modes
from tradeops.protocol.interest import Interest


def test_interest_counts_clients_not_requests() -> None:
    interest = Interest()
    interest.add("a", "X", "trade")
    assert interest.add("a", "X", "trade") == {}
    assert interest.add("b", "X", "trade") == {}
    assert interest.remove("a", "X") == {}
    assert interest.remove("a", "X") == {}  # twice is harmless
    assert interest.remove("b", "X") == {"X": None}
    assert interest.wanted() == {}


def test_a_client_asking_again_replaces_its_mode() -> None:
    interest = Interest()
    interest.add("a", "X", "depth")
    interest.add("b", "X", "trade")
    assert interest.add("a", "X", "trade") == {"X": "trade"}
    assert interest.symbols_of("a") == {"X": "trade"}


def test_the_broker_hears_the_strongest_mode_held() -> None:
    interest = Interest()
    assert interest.add("a", "X", "trade") == {"X": "trade"}
    assert interest.add("b", "X", "depth") == {"X": "depth"}
    assert interest.strongest("X") == "depth" and interest.holds("a", "X") == "trade"
    assert interest.drop("b") == {"X": "trade"}
    assert interest.clients() == ["a"]


def test_modes_nest_and_say_which_kinds_they_receive() -> None:
    assert modes.covers("depth", "trade") and modes.covers("quote", "quote")
    assert not modes.covers("trade", "quote") and not modes.covers(None, "trade")
    assert modes.strongest(["trade", "depth", "quote"]) == "depth"
    assert modes.strongest([]) is None
    # Corrections and cancel/errors of trades come with trades, as Alpaca sends them.
    trades = {"trade", "correction", "cancel_error"}
    assert modes.kinds_of("trade") == trades
    assert modes.kinds_of("quote") == trades | {"quote"}
    assert modes.kinds_of("depth") == trades | {"quote", "depth"}
    assert modes.kinds_of("trade+bars") == trades | {"bar"}
    assert modes.kinds_of("depth+bars") == trades | {"bar", "quote", "depth"}
    assert modes.kinds_of("trade+daily_bars+statuses") == trades | {"daily_bar", "status"}
    assert not modes.receives("depth", "no-such-kind")


def test_bars_are_an_extra_on_any_base_and_modes_join() -> None:
    # Bars only for a mode that asked for them: depth alone does not cover trade+bars.
    assert not modes.covers("depth", "trade+bars") and modes.covers("depth+bars", "quote")
    assert modes.covers("trade+bars", "trade") and not modes.covers("trade+bars", "quote")
    # Incomparable modes join to a mode that is neither of them.
    assert modes.join("quote", "trade+bars") == "quote+bars"
    assert modes.strongest(["trade+bars", "depth", "quote"]) == "depth+bars"
    assert modes.base("quote+bars") == "quote" and modes.make("depth", True) == "depth+bars"
    assert set(modes.MODES) == {modes.make(b, x) for b in modes.BASE_MODES for x in (0, 1)}


def test_extras_are_spelled_in_order_and_join_as_sets() -> None:
    assert modes.is_mode("quote+bars+statuses") and modes.is_mode("trade+lulds")
    for bad in ("quote+statuses+bars", "trade+bars+bars", "level2", "trade+news", "", None, 3):
        assert not modes.is_mode(bad), bad
    assert modes.join("trade+statuses", "quote+bars") == "quote+bars+statuses"
    assert modes.join("trade+lulds", "trade+daily_bars") == "trade+daily_bars+lulds"
    assert modes.covers("depth+bars+statuses", "quote+statuses")
    assert not modes.covers("depth+bars", "trade+statuses")
    assert modes.extras("quote+updated_bars") == {"updated_bars"}
    assert modes.make("trade", more=["lulds", "bars"]) == "trade+bars+lulds"
    with pytest.raises(ValueError, match="not a subscription mode"):
        modes.covers("trade+news", "trade")
    with pytest.raises(ValueError, match="unknown mode extras"):
        modes.make("trade", more=["news"])


def test_interest_joins_bars_with_a_stronger_base_and_downgrades_when_each_leaves() -> None:
    interest = Interest()
    assert interest.add("bars", "X", "trade+bars") == {"X": "trade+bars"}
    assert interest.add("book", "X", "depth") == {"X": "depth+bars"}
    assert interest.remove("bars", "X") == {"X": "depth"}  # nobody wants bars: drop them
    assert interest.add("bars", "X", "trade+bars") == {"X": "depth+bars"}
    assert interest.drop("book") == {"X": "trade+bars"}
