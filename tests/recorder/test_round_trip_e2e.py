"""Record a session of the sim's walk, replay the recording through the same kind of desk:
a strategy sees the same ticks in the same order."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.desk import Desk
from tests.waiting import wait_for
from tradeops.recording import catalog

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(150)]


def trail(out: Path) -> str:
    return f"""
strategies:
  trail:
    class: tests.e2e.strategies:TickTrail
    broker: sim
    symbols: [AAPL, MSFT]
    mode: quote
    params: {{out: "{out}"}}
"""


def seen(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def test_a_recorded_session_replays_as_the_same_tick_sequence(
    make_desk: object, tmp_path: Path
) -> None:
    live_out, replay_out = tmp_path / "live.txt", tmp_path / "replay.txt"
    live: Desk = make_desk("e2elive", """
brokers:
  sim: {adapter: sim, market: {seed: 5, rate: 40}}
""" + trail(live_out))  # type: ignore[operator]
    live.edit("settings:\n",
              "settings:\n  record: {dir: data, flush: 500ms, kinds: [trade, quote]}\n")
    live.up()
    wait_for(lambda: len(seen(live_out)) > 150, timeout=30, what="ticks at the live strategy")
    assert live.down().returncode == 0

    table = catalog.read(tmp_path / "data")
    recorded = [
        f"{s} {k} {p!r} {z!r} {b!r} {a!r}"
        for s, k, p, z, b, a in zip(*(table[c].to_pylist() for c in (
            "symbol", "kind", "price", "size", "bid", "ask")), strict=True)
        if k in ("trade", "quote")
    ]
    assert len(recorded) > 150
    saw = seen(live_out)
    # The recorder reads the bus from its first tick; the strategy from when it attached (a
    # loaded machine may have written a few ticks before): align on its first 20 ticks.
    start = next((k for k in range(len(recorded)) if recorded[k:k + 20] == saw[:20]), None)
    assert start is not None and start < 50, "the strategy's ticks are not in the recording"
    n = min(len(saw), len(recorded) - start)
    assert saw[:n] == recorded[start:start + n], "the recording is not what the strategy saw"

    replayed: Desk = make_desk("e2ereplay", f"""
brokers:
  sim: {{adapter: sim, market: {{replay: "{tmp_path / 'data'}", speed: 4}}}}
""" + trail(replay_out))  # type: ignore[operator]
    replayed.up()
    wait_for(lambda: len(seen(replay_out)) >= len(recorded), timeout=60,
             what="the whole recording replayed")
    assert seen(replay_out)[: len(recorded)] == recorded
    assert replayed.down().returncode == 0
