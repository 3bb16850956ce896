"""The proxy's fan-out step alone, in one process: from a batch of ticks to every client's
encoded frames, per delivery (one tick handed to one client), before and after issue 13.

100 native-protocol sessions (msgpack), client i subscribing symbols i..i+9 of 20 in quote
mode (as proxy_bench.py), batches of 200 ticks (trades and quotes, interleaved):

- **before**: each tick bucketed per client, then each client's `ticks()` looks up, fetches
  the cached item and appends it, tick by tick (Python per tick per client);
- **now**: the batch grouped by symbol once, each (symbol, kinds) encoded once for every
  client, each client's items merged back into the gateway's order by C-level work
  (`symbol_ticks`), and that message built once for every client holding the same symbols
  and kinds (here 20 distinct sets, 5 clients each; with every client's set its own, each
  client's message is built for it alone).

CPU time of this process (`time.process_time`); no sockets: what websockets costs to send
each frame comes on top (proxy_bench.py measures the whole proxy). Best of 5 rounds.

Run: .venv/bin/python benchmarks/fanout_bench.py [--quick]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import msgpack

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.results import machine, write_section
from tradeops.protocol.codec import Codec
from tradeops.protocol.downstream import Result, SessionConfig
from tradeops.protocol.native import NativeSession
from tradeops.protocol.tick import Tick, decode_symbol
from tradeops.proxy.server import fan_out

SYMBOLS = [f"PB{chr(65 + i // 26)}{chr(65 + i % 26)}" for i in range(20)]
CLIENTS, PER_CLIENT, BATCH = 100, 10, 200
TARGET = 1_000_000  # deliveries per proxy CPU-second (issue 13)


def sessions() -> tuple[list[NativeSession], dict[str, list[int]]]:
    config = SessionConfig(brokers=("sim",), token=None, check_symbol=lambda b, s: None,
                           alpaca_broker="sim", exchanges={}, max_errors=5)  # fmt: skip
    out, holders = [], {s: [] for s in SYMBOLS}
    for i in range(CLIENTS):
        s = NativeSession(config, 0.0, Codec.MSGPACK)
        s.receive(msgpack.packb({"op": "hello", "v": 1}), 0.0)
        mine = [SYMBOLS[(i + k) % len(SYMBOLS)] for k in range(PER_CLIENT)]
        change = s.receive(msgpack.packb({"op": "subscribe", "symbols": mine, "mode": "quote"}),
                           0.0)  # fmt: skip
        assert change is not None
        s.resolved(dict.fromkeys(change.wants, Result(True)))
        s.take()
        out.append(s)
        for symbol in mine:
            holders[symbol].append(i)
    return out, holders


def batches(count: int) -> list[list[Tick]]:
    seq = 0
    out = []
    for _ in range(count):
        ticks = []
        for i in range(BATCH):
            seq += 1
            symbol = SYMBOLS[seq % len(SYMBOLS)]
            ticks.append(Tick.make("trade", symbol, seq=seq, price=100.5, size=3)
                         if i % 2 else Tick.make("quote", symbol, seq=seq, bid=100.0,
                                                 bid_size=2, ask=100.5, ask_size=4))  # fmt: skip
        out.append(ticks)
    return out


def before(all_sessions: list[NativeSession], holders: dict[str, list[int]],
           ticks: list[Tick]) -> int:  # fmt: skip
    """The fan-out as it was: bucket per client, then `ticks()` per client."""
    per_client: dict[int, list[Tick]] = {}
    for tick in ticks:
        for client in holders[tick.symbol]:
            per_client.setdefault(client, []).append(tick)
    cache: dict[str, Any] = {}
    n = 0
    for client, mine in per_client.items():
        s = all_sessions[client]
        n += s.ticks("sim", mine, cache)
        s.take()
    return n


def now(all_sessions: list[NativeSession], holders: dict[str, list[int]],
        ticks: list[Tick]) -> int:  # fmt: skip
    """The fan-out now (proxy/server.py `deliver`, its grouping run as is)."""
    groups, per_client = fan_out(ticks, lambda raw: holders[decode_symbol(raw)])
    cache: dict[str, Any] = {}
    n = 0
    for client, symbols in per_client.items():
        s = all_sessions[client]
        n += s.symbol_ticks("sim", symbols, groups, cache)
        s.take()
    return n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer batches; no RESULTS.md")
    args = parser.parse_args()
    all_sessions, holders = sessions()
    data = batches(10 if args.quick else 50)
    rates = {}
    for name, step in (("before: per tick per client", before),
                       ("now: per symbol, merged in C, one message per set", now)):  # fmt: skip
        best = 0.0
        for _ in range(5):
            start = time.process_time()
            delivered = sum(step(all_sessions, holders, ticks) for ticks in data)
            best = max(best, delivered / max(time.process_time() - start, 1e-9))
        rates[name] = best
    old, new = rates.values()
    verdict = "PASS" if new >= TARGET else f"MISS (needs {TARGET / new:.2f}× more)"
    body = "\n".join([
        f"`benchmarks/fanout_bench.py` on {machine()}. {CLIENTS} native msgpack clients, each "
        f"{PER_CLIENT} of {len(SYMBOLS)}",
        f"symbols in quote mode; batches of {BATCH} ticks; the fan-out step alone (batch to every",
        "client's encoded frames), one process, no sockets; CPU time, best of 5 rounds. 20",
        "distinct subscription sets, 5 clients each (a client's message is shared by its set).",
        "",
        "| fan-out | deliveries per CPU-second |",
        "|---|---|",
        *[f"| {name} | {rate / 1e6:.2f}M |" for name, rate in rates.items()],
        "",
        f"Now {new / old:.1f}× the deliveries per CPU-second of before. Target: ≥ 1M deliveries",
        f"per proxy CPU-second: the fan-out step alone **{verdict}**; the websocket writes come",
        "on top (see proxy_bench).",
    ])  # fmt: skip
    print(body)
    if not args.quick:
        write_section("fanout_bench", body)


if __name__ == "__main__":
    main()
