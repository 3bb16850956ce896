"""The websocket codec and Alpaca's control messages, shared by the sim and the proxy: pure."""

from __future__ import annotations

import json

import msgpack
import pytest

from tradeops.protocol import alpaca_stream, codec
from tradeops.protocol.codec import Codec, DecodeError, encode_item


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


# What the proxy and the sim send, every shape of it: a tick, an Alpaca message with its
# Timestamp (both sizes), a status with text, nested lists and maps, big and negative ints.
MESSAGES: list[dict[str, object]] = [
    {"op": "ticks", "kind": "quote", "symbol": "SYM01", "seq": 123456,
     "exchange_ns": 1796283550414094336, "bid": 101.25, "bid_size": 200.0, "ask": 101.5,
     "conditions": ["R"], "live": True, "book": None},
    {"T": "t", "S": "AAPL", "i": 2**63 - 1, "p": 0.1 + 0.2, "s": 100, "c": ["@", "I"],
     "t": msgpack.Timestamp.from_unix_nano(1_709_303_400_123_456_789)},
    {"T": "b", "S": "AAPL", "t": msgpack.Timestamp.from_unix_nano(-1_500_000_001), "v": -5,
     "levels": [[1.5, 2], [1.25, 3]], "nested": {"a": {"b": [1, 2.5, "x"]}}},
    {"T": "error", "code": 406, "msg": "connection limit exceeded", "empty": "", "zero": 0.0},
]  # fmt: skip


@pytest.mark.parametrize("message", MESSAGES)
def test_encode_item_writes_what_msgpack_and_json_write(message: dict[str, object]) -> None:
    assert encode_item(Codec.MSGPACK, message) == msgpack.packb(message)
    if not any(isinstance(v, msgpack.Timestamp) for v in message.values()):
        assert encode_item(Codec.JSON, message) == json.dumps(
            message, separators=(",", ":")).encode()


def test_json_items_are_valid_json_where_json_dumps_was_not() -> None:
    message = {"msg": "Zürich €", "nan": float("nan"), "inf": float("inf")}
    assert json.loads(encode_item(Codec.JSON, message)) == {
        "msg": "Zürich €", "nan": None, "inf": None}
    with pytest.raises(TypeError):
        encode_item(Codec.MSGPACK, {"not": object()})


@pytest.mark.parametrize("ns", [0, 1_709_303_400_000_000_000, 1_709_303_400_123_456_789,
                                -1, -1_500_000_001, (1 << 34) * 10**9 + 5])  # fmt: skip
def test_a_msgpack_timestamp_is_the_extension_msgpack_writes(ns: int) -> None:
    ours = encode_item(Codec.MSGPACK, {"t": codec.timestamp(Codec.MSGPACK, ns)})
    assert ours == msgpack.packb({"t": msgpack.Timestamp.from_unix_nano(ns)})
    assert msgpack.unpackb(ours, timestamp=2)["t"] == ns
