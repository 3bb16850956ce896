"""JSON or msgpack on a websocket, sans-I/O: choose, decode, encode once, frame per connection.

Every websocket server we run (the sim's Alpaca endpoints, the proxy's three dialects) lets a
client pick its codec at the upgrade: ``Content-Type: application/msgpack`` gets msgpack in
BINARY frames, anything else JSON in TEXT frames. The choice, the decoding of client
messages and the array framing live here, below every role, so the proxy's dialects and the
sim share one copy and protocol/ needs nothing from the sim.

Messages are encoded once per codec (:func:`encode_item`) and framed per connection
(:func:`frame`), so a message fanned out to many connections is encoded once.
"""

from __future__ import annotations

import enum
import json
import struct
import time

import msgpack
import msgspec


class Codec(enum.Enum):
    JSON = "json"
    MSGPACK = "msgpack"


class DecodeError(ValueError):
    """A client frame that is not valid JSON or msgpack."""


def codec_for(content_type: str | None) -> Codec:
    """msgpack when the upgrade request says `Content-Type: application/msgpack`."""
    if content_type and content_type.split(";")[0].strip().lower() == "application/msgpack":
        return Codec.MSGPACK
    return Codec.JSON


def decode(payload: str | bytes, codec: Codec) -> object:
    """A client message: TEXT frames are JSON; BINARY frames are msgpack or JSON bytes.

    A msgpack connection may still send JSON bytes (some SDKs do for control messages), so a
    BINARY frame that is not msgpack is tried as JSON before it is refused with DecodeError.
    """
    try:
        if isinstance(payload, str):
            return json.loads(payload)
        if codec is Codec.MSGPACK:
            try:
                return msgpack.unpackb(payload, raw=False)
            except (ValueError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError):
                pass
        return json.loads(payload)
    except (ValueError, UnicodeDecodeError) as exc:
        raise DecodeError(str(exc)) from None


# strftime per message is measurable at fan-out rates; ticks of one second share the prefix.
_second_cache: tuple[int, str] = (-1, "")


def rfc3339_ns(t_ns: int) -> str:
    """`2024-05-01T13:30:00.000000123Z`: RFC 3339 with nanoseconds, as Alpaca's JSON feed.

    Formats the given instant; it never reads the clock.
    """
    global _second_cache
    sec, ns = divmod(t_ns, 1_000_000_000)
    if _second_cache[0] != sec:
        _second_cache = (sec, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec)))
    return f"{_second_cache[1]}.{ns:09d}Z"


def timestamp(codec: Codec, t_ns: int) -> object:
    """A time as each codec carries it: a msgpack Timestamp (ext -1) or an RFC 3339 string.

    For msgpack, the extension itself, ready for :func:`encode_item`, with the bytes
    ``msgpack.Timestamp`` would give (the 4-, 8- or 12-byte form, the smallest that holds
    it): building that pure-Python object and converting it cost the sim a tenth of its CPU.
    """
    if codec is Codec.MSGPACK:
        seconds, nanos = divmod(t_ns, 1_000_000_000)
        if seconds >> 34 == 0:
            packed = nanos << 34 | seconds
            data = packed.to_bytes(8 if packed >> 32 else 4, "big")
        else:
            data = _TIMESTAMP96.pack(nanos, seconds)
        return msgspec.msgpack.Ext(-1, data)
    return rfc3339_ns(t_ns)


_TIMESTAMP96 = struct.Struct("!Iq")


def _ext(value: object) -> object:
    """What msgspec cannot encode by itself: a msgpack Timestamp, as its extension (-1)."""
    if isinstance(value, msgpack.Timestamp):
        return msgspec.msgpack.Ext(-1, value.to_bytes())
    raise TypeError(f"cannot encode a {type(value).__name__}")


# msgspec's encoders give the same bytes as msgpack.packb and json.dumps with compact
# separators for what we send (str keys; str, int, float, bool, None, lists, nested dicts;
# msgpack Timestamps), at about a third (msgpack) and a tenth (JSON) of the CPU: the proxy
# and the sim encode every tick item with them. JSON differences, both valid JSON: text is
# written as UTF-8 rather than \u escapes, and a NaN or infinity as null (json.dumps wrote
# NaN, which JSON parsers refuse).
_MSGPACK = msgspec.msgpack.Encoder(enc_hook=_ext)
_JSON = msgspec.json.Encoder()


def encode_item(codec: Codec, message: object) -> bytes:
    """One message, encoded to become an element of a frame's array (or a whole frame)."""
    if codec is Codec.MSGPACK:
        return _MSGPACK.encode(message)
    return _JSON.encode(message)


def array_header(n: int) -> bytes:
    """The msgpack header of an array of `n` elements (fixarray, array16 or array32)."""
    if n < 16:
        return bytes((0x90 | n,))
    if n < 0x10000:
        return b"\xdc" + n.to_bytes(2, "big")
    return b"\xdd" + n.to_bytes(4, "big")


def frame(codec: Codec, items: list[bytes]) -> bytes:
    """An array frame from items encoded by `encode_item` in the same codec."""
    return frame_of(codec, len(items), item_separator(codec).join(items))


def item_separator(codec: Codec) -> bytes:
    """What goes between two encoded items of an array: a comma in JSON, nothing in msgpack."""
    return b"" if codec is Codec.MSGPACK else b","


def frame_of(codec: Codec, count: int, body: bytes) -> bytes:
    """An array frame of `count` items already joined by `item_separator`."""
    if codec is Codec.MSGPACK:
        return array_header(count) + body
    return b"[" + body + b"]"
