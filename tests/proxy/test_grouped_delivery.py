"""The proxy's fan-out encodes each symbol's ticks of a batch once for every client that wants
them, and still hands each client its ticks in the gateway's order, as `ticks` would."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.proxy.test_dialects import alpaca, config, decoded, hello, quote, s_msg, trade
from tradeops.protocol import native
from tradeops.protocol.codec import Codec
from tradeops.protocol.downstream import Result
from tradeops.protocol.native import MAX_TICKS_PER_FRAME, NativeSession
from tradeops.protocol.tick import Tick

SYMBOLS = ["AAPL", "MSFT", "SPY"]


def batch(n: int) -> list[Tick]:
    """Trades and quotes of three symbols, interleaved, seq 1..n."""
    return [(trade if i % 2 else quote)(i, SYMBOLS[i % 3]) for i in range(1, n + 1)]


def grouped(ticks: list[Tick]) -> tuple[list[bytes], dict[bytes, list[Tick]]]:
    groups: dict[bytes, list[Tick]] = {}
    for tick in ticks:
        groups.setdefault(tick.symbol_bytes, []).append(tick)
    return list(groups), groups


def native_session(codec: Codec, mode: str, symbols: list[str]) -> NativeSession:
    s = NativeSession(config(token=None), 0.0, codec)
    hello(s)
    change = s.receive(s_msg(codec, {"op": "subscribe", "symbols": symbols, "mode": mode}), 0)
    assert change is not None
    s.resolved(dict.fromkeys(change.wants, Result(True)))
    s.take()
    return s


@pytest.mark.parametrize("codec", [Codec.JSON, Codec.MSGPACK])
@pytest.mark.parametrize("n", [7, MAX_TICKS_PER_FRAME + 5])
def test_native_grouped_frames_are_the_per_tick_frames(codec: Codec, n: int) -> None:
    ticks = batch(n)
    symbols, groups = grouped(ticks)
    for mode, wanted in (("quote", ["AAPL", "SPY"]), ("trade", SYMBOLS), ("quote", ["MSFT"])):
        flat, fast = native_session(codec, mode, wanted), native_session(codec, mode, wanted)
        count = flat.ticks("sim", ticks, {})
        assert fast.symbol_ticks("sim", symbols, groups, {}) == count > 0
        expected, got = decoded(flat.take()), decoded(fast.take())
        assert got == expected
        seqs = [t["seq"] for frame in got for t in frame["ticks"]]
        assert seqs == sorted(seqs)  # the gateway's order across symbols


def test_each_symbols_ticks_are_encoded_once_for_every_client(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    encoded: list[int] = []
    real = native.tick_message

    def counting(tick: Tick, book: Any = None) -> dict[str, Any]:
        encoded.append(tick.seq)
        return real(tick, book)

    monkeypatch.setattr(native, "tick_message", counting)
    ticks = batch(30)
    symbols, groups = grouped(ticks)
    cache: dict[str, Any] = {}
    sessions = [native_session(Codec.JSON, "quote", SYMBOLS[: 1 + i % 3]) for i in range(9)]
    sessions += [native_session(Codec.JSON, "trade", SYMBOLS) for _ in range(3)]
    delivered = sum(s.symbol_ticks("sim", symbols, groups, cache) for s in sessions)
    assert delivered == 3 * 10 + 3 * 20 + 3 * 30 + 3 * 15
    assert sorted(encoded) == list(range(1, 31))  # each tick once, whoever wants it


@pytest.mark.parametrize("codec", [Codec.JSON, Codec.MSGPACK])
def test_clients_holding_the_same_symbols_and_kinds_share_one_message(codec: Codec) -> None:
    ticks = batch(30)
    symbols, groups = grouped(ticks)
    cache: dict[str, Any] = {}
    same = [native_session(codec, "quote", ["AAPL", "SPY"]) for _ in range(3)]
    trades = native_session(codec, "trade", ["AAPL", "SPY"])
    counts = [s.symbol_ticks("sim", symbols, groups, cache) for s in [*same, trades]]
    assert counts == [20, 20, 20, 10]
    frames = [s.take() for s in [*same, trades]]
    assert frames[0][0][0] is frames[1][0][0] is frames[2][0][0]  # encoded once, shared
    assert frames[3][0][0] != frames[0][0][0]  # other kinds: a message of its own
    flat = native_session(codec, "quote", ["AAPL", "SPY"])
    flat.ticks("sim", ticks, {})
    assert decoded(frames[2]) == decoded(flat.take())


def test_alpaca_grouped_frames_are_the_per_tick_frames() -> None:
    ticks = batch(12)
    symbols, groups = grouped(ticks)
    for codec in (Codec.MSGPACK, Codec.JSON):
        sessions = []
        for _ in range(2):
            s = alpaca(token=None, codec=codec)
            s.receive(json.dumps({"action": "auth", "key": "k", "secret": "x"}), 0.0)
            change = s.receive(json.dumps({"action": "subscribe", "trades": ["AAPL", "MSFT"],
                                           "quotes": ["SPY"]}), 0.0)  # fmt: skip
            assert change is not None
            s.resolved(dict.fromkeys(change.wants, Result(True)))
            s.take()
            sessions.append(s)
        flat, fast = sessions
        count = flat.ticks("sim", ticks, {})
        assert fast.symbol_ticks("sim", symbols, groups, {}) == count == 6  # 4 trades, 2 quotes
        assert fast.take() == flat.take()
