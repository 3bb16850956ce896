"""Encoding, decoding and the fault schedule: pure."""

from __future__ import annotations

import json
from datetime import datetime

import msgpack
import pytest

from tradeops.sim import dialect
from tradeops.sim.dialect import Codec, DecodeError
from tradeops.sim.faults import FaultState
from tradeops.sim.market import Bar, Quote, Trade
from tradeops.sim.options import SimConfigError, SimOptions

T_NS = 1_714_570_200_123_456_789


def test_codec_follows_the_content_type_header() -> None:
    assert dialect.codec_for("application/msgpack") is Codec.MSGPACK
    assert dialect.codec_for("application/msgpack; charset=binary") is Codec.MSGPACK
    assert dialect.codec_for(None) is Codec.JSON
    assert dialect.codec_for("application/json") is Codec.JSON


def test_msgpack_frames_are_arrays_with_timestamp_ext() -> None:
    items = [dialect.encode_item(Codec.MSGPACK, dialect.event_message(e, Codec.MSGPACK))
             for e in (Quote("AAPL", 1.0, 100, 1.1, 200, T_NS), Trade("AAPL", 1.05, 300, T_NS, 9))]
    for count in (2, 20, 70_000):  # fixarray, array16 and array32 headers
        decoded = msgpack.unpackb(dialect.frame(Codec.MSGPACK, (items * count)[:count]))
        assert len(decoded) == count
    quote, trade = msgpack.unpackb(dialect.frame(Codec.MSGPACK, items))
    assert quote["t"] == msgpack.Timestamp.from_unix_nano(T_NS)
    assert quote == {"T": "q", "S": "AAPL", "bx": "V", "bp": 1.0, "bs": 100, "ax": "V",
                     "ap": 1.1, "as": 200, "c": ["R"], "z": "C", "t": quote["t"]}
    assert set(trade) == {"T", "S", "i", "x", "p", "s", "c", "z", "t"}


def test_json_frames_carry_rfc3339_nanoseconds() -> None:
    bar = Bar("BTC/USD", 1.0, 2.0, 0.5, 1.5, 2.25, 3, 1.25, T_NS)
    (message,) = json.loads(dialect.frame(Codec.JSON, [
        dialect.encode_item(Codec.JSON, dialect.event_message(bar, Codec.JSON))]))
    assert message["t"] == "2024-05-01T13:30:00.123456789Z"
    assert datetime.fromisoformat(message["t"]).microsecond == 123456
    assert {k: message[k] for k in ("T", "S", "o", "h", "l", "c", "v", "n", "vw")} == {
        "T": "b", "S": "BTC/USD", "o": 1.0, "h": 2.0, "l": 0.5, "c": 1.5, "v": 2.25, "n": 3,
        "vw": 1.25}


def test_crypto_messages_have_the_crypto_field_set() -> None:
    trade = dialect.event_message(Trade("BTC/USD", 6e4, 0.25, T_NS, 7), Codec.JSON)
    quote = dialect.event_message(Quote("BTC/USD", 6e4, 0.5, 6.01e4, 0.4, T_NS), Codec.JSON)
    assert set(trade) == {"T", "S", "p", "s", "t", "i", "tks"} and trade["s"] == 0.25
    assert set(quote) == {"T", "S", "bp", "bs", "ap", "as", "t"}


def test_decode_accepts_text_json_binary_msgpack_and_binary_json() -> None:
    message = {"action": "auth", "key": "k", "secret": "s"}
    assert dialect.decode(json.dumps(message), Codec.MSGPACK) == message
    assert dialect.decode(msgpack.packb(message), Codec.MSGPACK) == message
    assert dialect.decode(json.dumps(message).encode(), Codec.JSON) == message
    for garbage in ("{nope", b"\xc1\xff", b"\xff\xfe"):
        with pytest.raises(DecodeError):
            dialect.decode(garbage, Codec.MSGPACK)


def test_subscription_ack_lists_every_channel_of_the_feed() -> None:
    stock = dialect.subscription(False, {"trades": {"MSFT", "AAPL"}})
    assert stock["trades"] == ["AAPL", "MSFT"] and stock["corrections"] == ["AAPL", "MSFT"]
    assert stock["quotes"] == [] and "orderbooks" not in stock
    crypto = dialect.subscription(True, {})
    assert crypto["orderbooks"] == [] and "statuses" not in crypto


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
