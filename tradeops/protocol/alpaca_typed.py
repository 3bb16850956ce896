"""Alpaca's common market-data frame, decoded typed: the gateway's hot path (alpaca.py has the
general one, and calls this first for every msgpack frame).

Nearly every frame of a busy feed holds only trades and quotes. msgspec decodes such a
frame straight into small typed objects, without a dict and its key strings per message:
about 2.5x faster than msgpack.unpackb to dicts (benchmarks/gateway_bench.py). Anything else
in the frame (a bar, a status, a control message, a field of an unexpected type, a timestamp
that is not msgpack's) fails the typed decode: :func:`market_rows` returns None and the frame
takes alpaca.py's general path, message by message: this path only ever returns the rows the
general one would have. Imported on first use (msgspec takes tens of ms to import).
"""

from __future__ import annotations

from typing import Any

import msgspec

from tradeops.protocol.alpaca import _DETAILS, _detail
from tradeops.protocol.tick import (
    ENCODED_SYMBOLS,
    MAX_TRADE_ID,
    QUOTE,
    TRADE,
    RecordRow,
    encode_symbol,
    trade_id,
)

__all__ = ["MARKET_FRAME", "market_rows"]


class Trade(msgspec.Struct, tag_field="T", tag="t", gc=False):
    S: str
    t: msgspec.msgpack.Ext
    p: float
    s: float
    i: int | str = 0
    x: str | None = None
    z: str | None = None
    tks: str | None = None
    c: tuple[str, ...] | None = None


class Quote(msgspec.Struct, tag_field="T", tag="q", gc=False):
    S: str
    t: msgspec.msgpack.Ext
    bp: float
    bs: float
    ap: float
    as_: float = msgspec.field(name="as")
    bx: str | None = None
    ax: str | None = None
    z: str | None = None
    c: tuple[str, ...] | None = None


MARKET_FRAME = msgspec.msgpack.Decoder(list[Trade | Quote])
_SECONDS_MASK = (1 << 34) - 1


def _ext_ns(ext: msgspec.msgpack.Ext) -> int:
    """A msgpack Timestamp extension (type -1) in ns; ValueError for anything else."""
    data: bytes = ext.data  # type: ignore[assignment]  # msgspec's Ext holds bytes
    if ext.code == -1:
        if len(data) == 8:
            value = int.from_bytes(data, "big")
            return (value & _SECONDS_MASK) * 1_000_000_000 + (value >> 34)
        if len(data) == 4:
            return int.from_bytes(data, "big") * 1_000_000_000
        if len(data) == 12:
            return (int.from_bytes(data[4:], "big", signed=True) * 1_000_000_000
                    + int.from_bytes(data[:4], "big"))  # fmt: skip
    raise ValueError(f"not a msgpack timestamp: extension {ext.code}, {len(data)} bytes")


def market_rows(frame: bytes, receive_ns: int) -> list[RecordRow] | None:
    """The record rows of a frame of only trades and quotes, or None: take the general path."""
    try:
        messages = MARKET_FRAME.decode(frame)
    except msgspec.MsgspecError:
        return None
    rows: list[RecordRow] = []
    add = rows.append
    details, symbols, from_bytes = _DETAILS, ENCODED_SYMBOLS, int.from_bytes
    try:
        for msg in messages:
            t = msg.t
            data: bytes = t.data  # type: ignore[assignment]
            if t.code == -1 and len(data) == 8:
                value = from_bytes(data, "big")
                exchange_ns = (value & _SECONDS_MASK) * 1_000_000_000 + (value >> 34)
            else:
                exchange_ns = _ext_ns(t)
            # encode_symbol's own cache first: a call saved per tick. SymbolError (a
            # ValueError) for a symbol the bus cannot store.
            raw = symbols.get(msg.S) or encode_symbol(msg.S)
            if isinstance(msg, Trade):
                tid = msg.i
                if tid.__class__ is not int or not 0 <= tid <= MAX_TRADE_ID:
                    tid = trade_id(tid)
                key: tuple[Any, ...] = ("t", msg.x, msg.z, msg.tks, msg.c)
                try:
                    flags, ex, tape, taker, cond = details[key]
                except KeyError:
                    flags, ex, tape, taker, cond = _detail(details, key)
                add((TRADE, flags, 0, exchange_ns, receive_ns, raw, msg.p, msg.s, tid,
                     ex, tape, taker, cond))  # fmt: skip
            else:
                key = ("q", msg.bx, msg.ax, msg.z, msg.c)
                try:
                    flags, ex, ask_ex, tape, cond = details[key]
                except KeyError:
                    flags, ex, ask_ex, tape, cond = _detail(details, key)
                add((QUOTE, flags, 0, exchange_ns, receive_ns, raw, msg.bp, msg.bs,
                     msg.ap, msg.as_, ex, ask_ex, tape, cond))  # fmt: skip
    except (ValueError, TypeError, OverflowError):
        return None  # the general path decides what to make of it
    return rows
