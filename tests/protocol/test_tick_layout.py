"""The tick record and segment header: a fixed, versioned layout outside readers rely on."""

from __future__ import annotations

import struct

import pytest

from tradeops.protocol.tick import (
    FLAG_CONDITIONS_CUT,
    HEADER,
    LAYOUT_VERSION,
    RECORD,
    RECORD_SIZE,
    LayoutError,
    SymbolError,
    Tick,
    check_header,
    decode_code,
    decode_conditions,
    decode_symbol,
    encode_code,
    encode_conditions,
    encode_symbol,
    status_floats,
    trade_id,
)

# The record as docs/bus.md documents it: (field, offset, struct code).
DOCUMENTED = [
    ("seq", 0, "q"), ("kind", 8, "B"), ("flags", 9, "B"), ("trade_count", 12, "I"),
    ("exchange_ns", 16, "q"), ("receive_ns", 24, "q"), ("symbol", 32, "32s"),
    ("price", 64, "d"), ("size", 72, "d"), ("bid", 80, "d"), ("bid_size", 88, "d"),
    ("ask", 96, "d"), ("ask_size", 104, "d"), ("open", 112, "d"), ("high", 120, "d"),
    ("low", 128, "d"), ("close", 136, "d"), ("volume", 144, "d"), ("vwap", 152, "d"),
    ("trade_id", 160, "q"), ("exchange_code", 168, "4s"), ("ask_exchange_code", 172, "4s"),
    ("tape_code", 176, "s"), ("taker_code", 177, "s"), ("conditions_code", 178, "14s"),
]  # fmt: skip


def sample() -> Tick:
    return Tick.make(
        "quote", "BTC/USD", seq=7, exchange_ns=1_700_000_000_000_000_001, receive_ns=2,
        price=1.5, size=2.5, bid=64000.25, bid_size=0.5, ask=64001.0, ask_size=3.0, open=1.0,
        high=2.0, low=0.5, close=1.25, volume=1e6, vwap=1.1, trade_count=42, flags=1,
        trade_id=2**40 + 3, exchange="V", ask_exchange="Q", tape="C", taker_side="B",
        conditions=["R", "@"],
    )  # fmt: skip


def test_the_record_is_192_bytes_little_endian_at_the_documented_offsets() -> None:
    assert RECORD_SIZE == 192 and LAYOUT_VERSION == 3
    data = sample().to_bytes()
    tick = sample()
    expected = {"kind": tick.kind_code, "symbol": b"BTC/USD".ljust(32, b"\0"),
                "exchange_code": b"V\0\0\0", "ask_exchange_code": b"Q\0\0\0",
                "tape_code": b"C", "taker_code": b"B",
                "conditions_code": b"R\x1f@".ljust(14, b"\0")}
    for name, offset, code in DOCUMENTED:
        (value,) = struct.unpack_from("<" + code, data, offset)
        assert value == expected.get(name, getattr(tick, name, None)), name
    assert data[10:12] == b"\0\0"  # the pad bytes stay zero
    assert data[168:169] == b"V" and data[178:181] == b"R\x1f@"


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


def test_the_broker_detail_round_trips_through_the_record() -> None:
    tick = Tick.from_bytes(sample().to_bytes())
    assert (tick.trade_id, tick.exchange, tick.ask_exchange, tick.tape, tick.taker_side) == (
        2**40 + 3, "V", "Q", "C", "B")
    assert tick.conditions == ("R", "@") and tick.original_conditions == ()
    plain = Tick.from_bytes(Tick.make("trade", "AAPL", price=1, size=1).to_bytes())
    assert (plain.trade_id, plain.exchange, plain.tape, plain.conditions) == (0, "", "", ())


def test_conditions_that_do_not_fit_are_dropped_whole_and_flagged() -> None:
    codes = ["@", "F", "T", "I", "X", "Y", "Z", "W", "Q"]  # 17 bytes joined
    field, cut = encode_conditions(codes)
    assert cut and len(field) == 14
    assert decode_conditions(field)[0] == ("@", "F", "T", "I", "X", "Y", "Z")
    tick = Tick.make("trade", "AAPL", conditions=codes)
    assert tick.flags & FLAG_CONDITIONS_CUT
    assert tick.conditions == ("@", "F", "T", "I", "X", "Y", "Z")
    assert encode_conditions(["@"]) == (b"@".ljust(14, b"\0"), False)
    # A correction keeps its corrected codes, then the original trade's.
    field, cut = encode_conditions(["@", "I"], ["@", "T"])
    assert not cut and decode_conditions(field) == (("@", "I"), ("@", "T"))


def test_a_status_record_carries_both_messages_in_its_number_fields() -> None:
    tick = Tick.make("status", "AAPL", seq=5, exchange_ns=1, receive_ns=2, exchange="H",
                     ask_exchange="T1", tape="C", status_message="Trading Halt",
                     reason_message="News Pending " + "x" * 60)
    numbers = (*tick[7:13], tick.open, tick.high, tick.low, tick.close, tick.volume, tick.vwap)
    assert numbers == status_floats("Trading Halt", "News Pending " + "x" * 60)
    again = Tick.from_bytes(tick.to_bytes())
    assert again.kind == "status" and again.exchange == "H" and again.ask_exchange == "T1"
    assert again.status_message == "Trading Halt"
    assert again.reason_message == ("News Pending " + "x" * 60)[:48]
    assert str(again) == f"#5 AAPL status H Trading Halt (T1 {again.reason_message})"
    assert Tick.make("trade", "AAPL", price=3).status_message == ""


def test_codes_are_cut_at_a_character_boundary() -> None:
    assert encode_code("ABCDE") == b"ABCD"
    assert encode_code("ABC€") == b"ABC\0"  # the euro sign's 3 bytes do not fit
    assert encode_code(None) == bytes(4) and decode_code(encode_code("V")) == "V"
    assert trade_id(2**63) == 0 and trade_id(-1) == 0 and trade_id(True) == 0
    assert trade_id(12) == 12


def test_a_kind_code_from_a_newer_writer_reads_as_unknown() -> None:
    assert sample()._replace(kind_code=99).kind == "unknown"
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
    assert (parsed.capacity, parsed.data_offset, parsed.layout_version) == (1024, 4096, 3)


def test_an_unknown_layout_version_is_refused_with_a_clear_error() -> None:
    with pytest.raises(
        LayoutError, match="has bus layout version 1; this tradeops reads version 3"
    ):
        check_header(header(version=1), b"TOPSRING", "seg")


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
