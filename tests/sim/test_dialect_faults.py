"""Encoding, decoding and the fault schedule: pure."""

from __future__ import annotations

import json
from datetime import datetime

import msgpack
import pytest

from tradeops.protocol import codec
from tradeops.protocol.codec import Codec
from tradeops.sim.dialect import event_message
from tradeops.sim.faults import FaultState
from tradeops.sim.market import Bar, Quote, Trade
from tradeops.sim.options import SimConfigError, SimOptions

T_NS = 1_714_570_200_123_456_789


def test_msgpack_frames_are_arrays_with_timestamp_ext() -> None:
    items = [codec.encode_item(Codec.MSGPACK, event_message(e, Codec.MSGPACK))
             for e in (Quote("AAPL", 1.0, 100, 1.1, 200, T_NS), Trade("AAPL", 1.05, 300, T_NS, 9))]
    for count in (2, 20, 70_000):  # fixarray, array16 and array32 headers
        decoded = msgpack.unpackb(codec.frame(Codec.MSGPACK, (items * count)[:count]))
        assert len(decoded) == count
    quote, trade = msgpack.unpackb(codec.frame(Codec.MSGPACK, items))
    assert quote["t"] == msgpack.Timestamp.from_unix_nano(T_NS)
    assert quote == {"T": "q", "S": "AAPL", "bx": "V", "bp": 1.0, "bs": 100, "ax": "V",
                     "ap": 1.1, "as": 200, "c": ["R"], "z": "C", "t": quote["t"]}
    assert set(trade) == {"T", "S", "i", "x", "p", "s", "c", "z", "t"}


def test_json_frames_carry_rfc3339_nanoseconds() -> None:
    bar = Bar("BTC/USD", 1.0, 2.0, 0.5, 1.5, 2.25, 3, 1.25, T_NS)
    (message,) = json.loads(codec.frame(Codec.JSON, [
        codec.encode_item(Codec.JSON, event_message(bar, Codec.JSON))]))
    assert message["t"] == "2024-05-01T13:30:00.123456789Z"
    assert datetime.fromisoformat(message["t"]).microsecond == 123456
    assert {k: message[k] for k in ("T", "S", "o", "h", "l", "c", "v", "n", "vw")} == {
        "T": "b", "S": "BTC/USD", "o": 1.0, "h": 2.0, "l": 0.5, "c": 1.5, "v": 2.25, "n": 3,
        "vw": 1.25}


def test_crypto_messages_have_the_crypto_field_set() -> None:
    trade = event_message(Trade("BTC/USD", 6e4, 0.25, T_NS, 7), Codec.JSON)
    quote = event_message(Quote("BTC/USD", 6e4, 0.5, 6.01e4, 0.4, T_NS), Codec.JSON)
    assert set(trade) == {"T", "S", "p", "s", "t", "i", "tks"} and trade["s"] == 0.25
    assert set(quote) == {"T", "S", "bp", "bs", "ap", "as", "t"}


def faults(**options: object) -> FaultState:
    return FaultState.from_options(SimOptions(**options), now=100.0)  # type: ignore[arg-type]


def test_drops_are_due_on_request_and_on_schedule() -> None:
    state = faults(drop_every=2.0)
    assert not state.drop_due(101.0)
    assert state.drop_due(102.0) and not state.drop_due(102.5)
    assert state.drop_due(104.1)
    state.request_drop()
    assert state.drop_due(104.2) and not state.drop_due(104.3)
    assert state.drops == 3


def test_silence_windows_from_options_and_on_demand() -> None:
    state = faults(silent_every=10.0, silent_for=2.0)
    assert not state.silent(109.0)
    assert state.silent(110.0) and state.silent(111.9) and not state.silent(112.0)
    assert state.silent(120.5)
    manual = faults()
    manual.silence(1.5, 200.0)
    assert manual.silent(201.0) and not manual.silent(201.6)
    assert manual.to_json(201.0)["silent"] is True


def test_admin_patches_are_checked_before_anything_changes() -> None:
    state = faults()
    state.update({"reject_auth": True, "delay": 0.25, "drop_every": 1.0}, now=100.0)
    assert state.reject_auth and state.delay == 0.25 and state.next_drop == 101.0
    state.update({"drop_every": 0}, now=100.0)
    assert state.drop_every is None and state.next_drop is None
    for patch in ({"nonsense": 1}, {"delay": "slow"}, {"delay": -1}, {"abrupt": 1},
                  {"drop_every": True}, {"drop_code": 99, "reject_auth": False}):
        with pytest.raises(SimConfigError):
            state.update(patch, now=100.0)
    assert state.reject_auth  # the rejected patch above changed nothing
