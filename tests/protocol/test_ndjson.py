"""The control sockets' framing, sans-I/O: bytes split anywhere in, whole messages out."""

from __future__ import annotations

import json

from tradeops.protocol.ndjson import LineDecoder, Malformed, decode_line, encode


def test_a_message_is_one_compact_line() -> None:
    line = encode({"op": "hello", "symbols": ["AAPL"]})
    assert line == b'{"op":"hello","symbols":["AAPL"]}\n'
    assert json.loads(line) == {"op": "hello", "symbols": ["AAPL"]}


def test_bytes_split_anywhere_give_the_same_messages_in_order() -> None:
    stream = b"".join(encode({"id": i, "text": "é\n"}) for i in range(5))
    for size in (1, 2, 7, len(stream)):
        decoder = LineDecoder()
        out = []
        for start in range(0, len(stream), size):
            out += decoder.feed(stream[start:start + size])
        assert out == [{"id": i, "text": "é\n"} for i in range(5)]
        assert decoder.pending == 0


def test_lines_that_are_not_objects_come_out_malformed_in_place() -> None:
    out = LineDecoder().feed(b'{"a":1}\n{nope\n[1,2]\n\xff\n{"b":2}\n')
    assert out[0] == {"a": 1} and out[4] == {"b": 2}
    assert [type(m) for m in out[1:4]] == [Malformed] * 3
    assert isinstance(out[2], Malformed) and out[2].reason == "not an object"
    assert isinstance(decode_line(b""), Malformed)


def test_an_overlong_line_is_reported_not_buffered_silently() -> None:
    decoder = LineDecoder(max_line=8)
    assert decoder.feed(b'{"a":1}\n{"long') == [{"a": 1}] and not decoder.overflow
    assert decoder.feed(b'er":"xx') == [] and decoder.overflow
