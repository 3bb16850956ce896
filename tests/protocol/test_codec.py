"""The websocket codec and Alpaca's control messages, shared by the sim and the proxy: pure."""

from __future__ import annotations

import json

import msgpack
import pytest

from tradeops.protocol import alpaca_stream, codec
from tradeops.protocol.codec import Codec, DecodeError


def test_codec_follows_the_content_type_header() -> None:
    assert codec.codec_for("application/msgpack") is Codec.MSGPACK
    assert codec.codec_for("application/msgpack; charset=binary") is Codec.MSGPACK
    assert codec.codec_for(None) is Codec.JSON
    assert codec.codec_for("application/json") is Codec.JSON


def test_decode_accepts_text_json_binary_msgpack_and_binary_json() -> None:
    message = {"action": "auth", "key": "k", "secret": "s"}
    assert codec.decode(json.dumps(message), Codec.MSGPACK) == message
    assert codec.decode(msgpack.packb(message), Codec.MSGPACK) == message
    assert codec.decode(json.dumps(message).encode(), Codec.JSON) == message
    for garbage in ("{nope", b"\xc1\xff", b"\xff\xfe"):
        with pytest.raises(DecodeError):
            codec.decode(garbage, Codec.MSGPACK)


def test_subscription_ack_lists_every_channel_of_the_feed() -> None:
    stock = alpaca_stream.subscription(False, {"trades": {"MSFT", "AAPL"}})
    assert stock["trades"] == ["AAPL", "MSFT"] and stock["corrections"] == ["AAPL", "MSFT"]
    assert stock["quotes"] == [] and "orderbooks" not in stock
    crypto = alpaca_stream.subscription(True, {})
    assert crypto["orderbooks"] == [] and "statuses" not in crypto


def test_rfc3339_formats_the_instant_given_with_nanoseconds() -> None:
    assert codec.rfc3339_ns(1_714_570_200_123_456_789) == "2024-05-01T13:30:00.123456789Z"
    assert codec.rfc3339_ns(0) == "1970-01-01T00:00:00.000000000Z"


def test_array_header_sizes() -> None:
    for n in (0, 15, 16, 0xFFFF, 0x10000):
        assert msgpack.unpackb(codec.array_header(n) + msgpack.packb(None) * n) == [None] * n
