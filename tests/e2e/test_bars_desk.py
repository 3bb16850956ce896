"""Bars through the bus, in real processes: sim → gateway (bars channel) → ring → on_bar."""

from __future__ import annotations

import json
import urllib.request
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from tests.waiting import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

BAR_NS = 1_000_000_000  # bar_seconds: 1


def sim_channels(desk: Any) -> dict[str, list[str]]:
    """The channels the sim holds for the gateway's data connection (its admin API)."""
    http = desk.proc("sim-sim")["detail"]["http"]
    with urllib.request.urlopen(f"{http}/admin/connections", timeout=10) as reply:
        (conn,) = [c for c in json.loads(reply.read())["open"] if c["kind"] == "data"]
    return {c: s for c, s in conn["subscriptions"].items() if s}


def _rows(path: Path) -> list[list[str]]:
    if not path.exists():
        return []
    return [line.split() for line in path.read_text().splitlines()]


def test_a_bar_strategy_gets_one_bar_per_symbol_per_period_built_from_the_trades(
    tmp_path: Path, make_desk: Any
) -> None:
    bars, trades, kinds = tmp_path / "bars.txt", tmp_path / "trades.txt", tmp_path / "kinds.txt"
    desk = make_desk("bars", f"""
brokers:
  sim:
    adapter: sim
    market: {{seed: 5, rate: 60, bar_seconds: 1s}}
strategies:
  barred:
    class: tests.e2e.strategies:BarRecorder
    broker: sim
    symbols: [AAPL, MSFT]
    bars: true
    params: {{out: "{bars}", trades: "{trades}"}}
  plain:
    class: tests.e2e.strategies:KindRecorder
    broker: sim
    symbols: [AAPL, MSFT, NVDA]
    mode: quote
    params: {{out: "{kinds}"}}
""")
    desk.up()

    def per_symbol() -> dict[str, list[list[str]]]:
        out: dict[str, list[list[str]]] = defaultdict(list)
        for row in _rows(bars):
            out[row[0]].append(row)
        return out

    wait_for(lambda: all(len(per_symbol()[s]) >= 4 for s in ("AAPL", "MSFT")), 60,
             "four bars of each symbol")
    # Upstream, bars only for the symbols a client asked bars of: not NVDA.
    assert sim_channels(desk) == {"trades": ["AAPL", "MSFT", "NVDA"],
                                  "quotes": ["AAPL", "MSFT", "NVDA"], "bars": ["AAPL", "MSFT"]}
    # The bar strategy leaves: the broker's bars go, the quote strategy's channels stay.
    assert desk.cli("stop", "barred", "-f", str(desk.file)).returncode == 0
    wait_for(lambda: "bars" not in sim_channels(desk), 30, "the bars unsubscribed upstream")
    assert sim_channels(desk) == {"trades": ["AAPL", "MSFT", "NVDA"],
                                  "quotes": ["AAPL", "MSFT", "NVDA"]}
    desk.stop()

    trade_rows = _rows(trades)
    assert not [r for r in trade_rows if r[0] == "BAR-IN-ON-TICK"], "a bar reached on_tick"
    by_bucket: dict[tuple[str, int], list[tuple[float, float]]] = defaultdict(list)
    for symbol, ns, price, size in trade_rows:
        by_bucket[(symbol, int(ns) // BAR_NS)].append((float(price), float(size)))
    for symbol, rows in per_symbol().items():
        starts = [int(r[1]) for r in rows]
        # One bar per period, each on the boundary, periods consecutive (trades every period).
        assert all(s % BAR_NS == 0 for s in starts), starts
        assert starts == list(range(starts[0], starts[0] + BAR_NS * len(starts), BAR_NS))
        # Every bar after the first (which may have begun before our subscription) is built
        # from exactly the trades the strategy saw in its period.
        for row in rows[1:]:
            seen = by_bucket[(symbol, int(row[1]) // BAR_NS)]
            assert seen, f"no trades of {symbol} in the period of {row}"
            o, h, lo, c, v = map(float, row[2:7])
            prices = [p for p, _ in seen]
            assert (o, h, lo, c) == (prices[0], max(prices), min(prices), prices[-1])
            assert v == pytest.approx(sum(s for _, s in seen)) and int(row[7]) == len(seen)
    # The quote strategy never asked for bars: it saw trades and quotes, and no bar at all.
    seen_kinds = set(kinds.read_text().split())
    assert seen_kinds == {"trade", "quote"}, seen_kinds
