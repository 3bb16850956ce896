"""Backfill of one outage: 50 symbols, one minute, from the sim's historical trades API.

The outage is made directly in the sim's history (50 symbols × 60 s × TRADES_PER_S trades,
the trades a silence fault would have kept off the wire), so the run does not wait a minute.
Timed: what the gateway does once the first ticks after a reconnect are seen: page through
`/v2/stocks/trades` over HTTP (`gateway.backfill.Backfiller.fetch`), then write every trade to
a ring with `FLAG_BACKFILL` (`TickRing.append_late`, as the gateway's sink does), until the last
backfilled tick is published. Twice: unpaced, and paced at Alpaca's 200 requests a minute.

Run: .venv/bin/python benchmarks/backfill_bench.py   (a few seconds; --quick for a smoke run)
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.results import machine, write_section
from tradeops.bus import TickRing, remove_segments
from tradeops.gateway.backfill import PAGE, Backfiller, Outage
from tradeops.protocol.tick import FLAG_BACKFILL
from tradeops.sim import SimOptions, SimThread
from tradeops.sim.market import Trade

SYMBOLS = tuple(f"S{chr(65 + i // 26)}{chr(65 + i % 26)}" for i in range(50))
SECONDS = 60
TRADES_PER_S = 10  # per symbol
T0 = 1_777_000_000 * 10**9


def run(sim: SimThread, interval: float) -> dict[str, float]:
    bus = f"bfbench-{uuid.uuid4().hex[:8]}"
    ring = TickRing(bus, "b")

    def write(trades: list) -> None:  # type: ignore[type-arg]
        for trade in trades:
            ring.append_late(*trade, 0, FLAG_BACKFILL)
        ring.publish()

    keys = {"APCA-API-KEY-ID": "bench", "APCA-API-SECRET-KEY": "bench"}
    backfiller = Backfiller(sim.http_url, keys, write, max_trades=10**6, min_interval=interval)
    outage = Outage(0, SYMBOLS, T0 - 1, T0 + SECONDS * 10**9)
    try:
        began = time.perf_counter()
        trades = backfiller.fetch(outage)
        fetched = time.perf_counter()
        write(trades)
        done = time.perf_counter()
        assert ring.cursor == len(trades)
    finally:
        ring.close()
        remove_segments(bus)
    return {"trades": len(trades), "fetch_s": fetched - began, "write_s": done - fetched,
            "total_s": done - began}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="no RESULTS.md")
    args = parser.parse_args()
    with SimThread(SimOptions()) as sim:
        history = sim.sim.exchange.history
        step = 10**9 // TRADES_PER_S
        for i in range(SECONDS * TRADES_PER_S):
            for n, symbol in enumerate(SYMBOLS):
                history.record(Trade(symbol, 100.0 + n, 100.0, T0 + i * step + n, i + 1))
        results = [("unpaced", run(sim, 0.0)), ("200 requests/min", run(sim, 60 / 200))]
    lines = [
        f"{machine()}; {len(SYMBOLS)} symbols × {SECONDS} s × {TRADES_PER_S} trades/s, "
        f"pages of {PAGE:,} trades, the sim's API over loopback HTTP.",
        "",
        "| pacing | trades | fetch | write to the bus | reconnect seen → last backfilled tick |",
        "|---|---|---|---|---|",
    ]
    for pacing, r in results:
        lines.append(f"| {pacing} | {r['trades']:,.0f} | {r['fetch_s']:.2f} s | "
                     f"{r['write_s']:.3f} s | {r['total_s']:.2f} s |")
    table = "\n".join(lines)
    print(table)
    if not args.quick:
        write_section("backfill_bench", table)


if __name__ == "__main__":
    main()
