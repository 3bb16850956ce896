"""Reference-counted interest, shared by the gateway and the proxy: pure bookkeeping."""

from __future__ import annotations

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
    assert modes.kinds_of("trade") == {"trade", "bar"}
    assert modes.kinds_of("quote") == {"trade", "bar", "quote"}
    assert modes.kinds_of("depth") == {"trade", "bar", "quote", "depth"}
    assert not modes.receives("depth", "no-such-kind")
