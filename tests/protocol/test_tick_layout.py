"""The tick record and segment header: a fixed, versioned layout outside readers rely on."""

from __future__ import annotations

import struct

import pytest

from tradeops.protocol.tick import (
    HEADER,
    LAYOUT_VERSION,
    RECORD,
    RECORD_SIZE,
    LayoutError,
    SymbolError,
    Tick,
    check_header,
    decode_symbol,
    encode_symbol,
)

# The record as docs/bus.md documents it: (field, offset, struct code).
DOCUMENTED = [
    ("seq", 0, "q"), ("kind", 8, "B"), ("flags", 9, "B"), ("trade_count", 12, "I"),
    ("exchange_ns", 16, "q"), ("receive_ns", 24, "q"), ("symbol", 32, "32s"),
    ("price", 64, "d"), ("size", 72, "d"), ("bid", 80, "d"), ("bid_size", 88, "d"),
    ("ask", 96, "d"), ("ask_size", 104, "d"), ("open", 112, "d"), ("high", 120, "d"),
    ("low", 128, "d"), ("close", 136, "d"), ("volume", 144, "d"), ("vwap", 152, "d"),
]  # fmt: skip


def sample() -> Tick:
    return Tick.make(
        "quote", "BTC/USD", seq=7, exchange_ns=1_700_000_000_000_000_001, receive_ns=2,
        price=1.5, size=2.5, bid=64000.25, bid_size=0.5, ask=64001.0, ask_size=3.0, open=1.0,
        high=2.0, low=0.5, close=1.25, volume=1e6, vwap=1.1, trade_count=42, flags=1,
    )  # fmt: skip


def test_the_record_is_160_bytes_little_endian_at_the_documented_offsets() -> None:
    assert RECORD_SIZE == 160 and LAYOUT_VERSION == 1
    data = sample().to_bytes()
    tick = sample()
    expected = {"kind": tick.kind_code, "symbol": b"BTC/USD".ljust(32, b"\0")}
    for name, offset, code in DOCUMENTED:
        (value,) = struct.unpack_from("<" + code, data, offset)
        assert value == expected.get(name, getattr(tick, name, None)), name
    assert data[10:12] == b"\0\0"  # the pad bytes stay zero


def test_pack_and_unpack_round_trip() -> None:
    tick = sample()
    again = Tick.from_bytes(bytearray(8) + tick.to_bytes(), 8)
    assert again == tick
    assert (again.kind, again.symbol, again.trade_count, again.flags) == ("quote", "BTC/USD", 42, 1)
    assert Tick.from_bytes(RECORD.pack(*tick)) == tick


def test_a_tick_reads_well() -> None:
    trade = Tick.make("trade", "HK:700", seq=3, price=350.2, size=100)
    assert str(trade) == "#3 HK:700 trade 100 @ 350.2"
    assert repr(trade).startswith("Tick(seq=3, kind='trade', symbol='HK:700', price=350.2, ")
    assert "bid" not in repr(trade)
    quote = Tick.make("quote", "BRK.B", seq=4, bid=1, bid_size=2, ask=3, ask_size=4)
    assert str(quote) == "#4 BRK.B quote 2 x 1 / 3 x 4"
    bar = Tick.make("bar", "AAPL", seq=5, open=1, high=2, low=0.5, close=1.5, trade_count=9)
    assert "open=1 high=2 low=0.5 close=1.5" in str(bar) and "trade_count=9" in str(bar)


def test_a_kind_code_from_a_newer_writer_reads_as_unknown() -> None:
    assert sample()._replace(kind_code=9).kind == "unknown"
    with pytest.raises(ValueError, match="unknown tick kind 'level2'"):
        Tick.make("level2", "AAPL")


@pytest.mark.parametrize(
    ("symbol", "message"),
    [
        ("", "cannot be empty"),
        ("A\0B", "contains a NUL"),
        ("X" * 32, "is 32 bytes in UTF-8; the bus stores at most 31"),
        ("€" * 11, "is 33 bytes in UTF-8"),  # 11 characters, 33 bytes: bytes count
    ],
)
def test_symbols_the_record_cannot_hold_are_refused(symbol: str, message: str) -> None:
    with pytest.raises(SymbolError, match=message):
        encode_symbol(symbol)


def test_symbols_up_to_31_bytes_round_trip() -> None:
    for symbol in ("HK:700", "BTC/USD", "BRK.B", "X" * 31, "€" * 10):
        raw = encode_symbol(symbol)
        assert len(raw) == 32 and raw.endswith(b"\0")
        assert decode_symbol(raw) == symbol


def header(**changes: object) -> bytes:
    values = {
        "magic": b"TOPSRING", "version": LAYOUT_VERSION, "record_size": RECORD_SIZE,
        "capacity": 1024, "data_offset": 4096, "pid": 1, "created": 2,
    }  # fmt: skip
    values.update(changes)
    return HEADER.pack(*values.values())


def test_a_header_of_this_layout_is_accepted() -> None:
    parsed = check_header(header(), b"TOPSRING", "seg")
    assert (parsed.capacity, parsed.data_offset, parsed.layout_version) == (1024, 4096, 1)


def test_an_unknown_layout_version_is_refused_with_a_clear_error() -> None:
    with pytest.raises(
        LayoutError, match="has bus layout version 2; this tradeops reads version 1"
    ):
        check_header(header(version=2), b"TOPSRING", "seg")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"magic": b"NOTOURS!"}, "is not a tradeops TOPSRING segment"),
        ({"record_size": 128}, "has 128-byte records"),
    ],
)
def test_a_foreign_or_inconsistent_header_is_refused(
    changes: dict[str, object], message: str
) -> None:
    with pytest.raises(LayoutError, match=message):
        check_header(header(**changes), b"TOPSRING", "seg")
    with pytest.raises(LayoutError, match="too short"):
        check_header(b"TOPSRING", b"TOPSRING", "seg")
