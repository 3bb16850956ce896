"""The gateway's cost per tick, from a broker frame to the bus, in one process.

Frames as Alpaca (and the sim) send them: msgpack arrays of trade and quote messages with
Timestamp extensions, 50 symbols, half trades, half quotes. Two paths over the same frames,
each writing a ring with its latest-value table as the gateway runs it:

- **before** (the gateway until issue 13): `session.receive(frame)` builds a MarketData per
  tick, then `TickRing.extend` checks and packs each one (and stamped receive time per tick);
- **now**: `session.receive_rows(frame, receive_ns)` decodes straight into record rows, stamped
  once per frame, and `TickRing.extend_records` packs each with one call.

The current path decodes a frame of only trades and quotes with msgspec into typed messages
(the fast path); the general path (msgpack to dicts, what every frame took until then) is
timed too, over the same frames. Also the parts: each decoder alone, and the ring write
alone. No websocket there: the socket read comes on top, timed per frame after, with the
gateway's own frame reader against websocket-client's. The machine is shared and noisy:
every path runs once per round, in turn, for 9 rounds; a figure is a path's best round, a
ratio the median of the rounds' ratios.

Run: .venv/bin/python benchmarks/gateway_bench.py [--quick]
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import msgpack
import msgspec
import websocket

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.results import machine, write_section
from tradeops.bus import LatestTable, TickRing, remove_segments
from tradeops.protocol import alpaca_typed
from tradeops.protocol.alpaca import MarketDataSession
from tradeops.protocol.feed import MarketData

SYMBOLS = [f"SYM{i:02d}" for i in range(50)]
TARGET_US = 3.0
ROUNDS = 9


def frames(count: int, per_frame: int) -> list[bytes]:
    out = []
    ns = 1_700_000_000_000_000_000
    for f in range(count):
        messages: list[dict[str, object]] = []
        for i in range(per_frame):
            ns += 1000
            symbol = SYMBOLS[(f * per_frame + i) % len(SYMBOLS)]
            stamp = msgpack.Timestamp.from_unix_nano(ns)
            if i % 2:
                messages.append({"T": "q", "S": symbol, "bx": "V", "bp": 100.0 + i, "bs": 2,
                                 "ax": "V", "ap": 100.5 + i, "as": 3, "c": ["R"], "z": "C",
                                 "t": stamp})  # fmt: skip
            else:
                messages.append({"T": "t", "S": symbol, "i": f * per_frame + i, "x": "V",
                                 "p": 100.25 + i, "s": 100, "c": ["@"], "z": "C",
                                 "t": stamp})  # fmt: skip
        out.append(msgpack.packb(messages, datetime=False))
    return out


def socket_reads(frames_each: int = 300) -> tuple[float, float, float]:
    """CPU µs per frame to read the sim's frames off a websocket: websocket-client's
    `recv_data` on one connection and the gateway's `FrameReader` on another, the same frames
    at the same moments, one frame from each in turn; and the frames' mean size."""
    from tradeops.gateway.frames import FrameReader
    from tradeops.sim.options import SimOptions
    from tradeops.sim.server import SimThread

    def connect(url: str) -> websocket.WebSocket:
        ws = websocket.create_connection(url + "/v2/iex", timeout=10, enable_multithread=True,
                                         header=["Content-Type: application/msgpack"])
        for request in ({"action": "auth", "key": "k", "secret": "s"},
                        {"action": "subscribe", "trades": SYMBOLS, "quotes": SYMBOLS}):
            ws.recv()
            ws.send_binary(msgpack.packb(request))
        ws.recv()
        return ws

    clock = time.thread_time_ns
    with SimThread(SimOptions(rate=5000 / len(SYMBOLS), seed=3)) as sim:
        plain, ours = connect(sim.url), connect(sim.url)
        reader = FrameReader(ours)
        plain_ns = ours_ns = size = 0
        try:
            for _ in range(frames_each):
                start = clock()
                size += len(plain.recv_data(control_frame=True)[1])
                plain_ns += clock() - start
                start = clock()
                reader.recv()
                ours_ns += clock() - start
        finally:
            plain.close()
            ours.close()
    return plain_ns / frames_each / 1000, ours_ns / frames_each / 1000, size / frames_each


def interleaved(rounds: int, ticks: int, runs: dict[str, Callable[[], None]]
                ) -> tuple[dict[str, float], list[dict[str, float]]]:
    """µs per tick of each run, the best of ``rounds`` rounds that each time every run once
    in turn (so a slow spell of the shared machine hits them all); and each round's figures,
    for ratios taken within a round. CPU time of this thread, not wall time."""
    each: list[dict[str, float]] = []
    for _ in range(rounds):
        figures = {}
        for name, run in runs.items():
            start = time.thread_time_ns()
            run()
            figures[name] = (time.thread_time_ns() - start) / ticks / 1000
        each.append(figures)
    return {name: min(r[name] for r in each) for name in runs}, each


def median_ratio(each: list[dict[str, float]], top: str, bottom: str) -> float:
    ratios = sorted(r[top] / r[bottom] for r in each)
    return ratios[len(ratios) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer frames; no RESULTS.md")
    args = parser.parse_args()
    per_frame = 100
    data = frames(100 if args.quick else 400, per_frame)
    ticks = len(data) * per_frame
    topology = f"bench-{uuid.uuid4().hex[:8]}"
    table = LatestTable(topology, "gw", max_symbols=len(SYMBOLS))
    ring = TickRing(topology, "gw", capacity=1 << 16, table=table)
    session = MarketDataSession("key", "secret", "msgpack")
    general = MarketDataSession("key", "secret", "msgpack")
    general.typed_frames = False
    try:

        def before() -> None:
            for frame in data:
                ring.extend([e for e in session.receive(frame) if isinstance(e, MarketData)])

        def now() -> None:
            for frame in data:
                rows, _events = session.receive_rows(frame, time.time_ns())
                ring.extend_records(rows)

        def now_general() -> None:
            for frame in data:
                rows, _events = general.receive_rows(frame, time.time_ns())
                ring.extend_records(rows)

        decoded = [session.receive_rows(frame, 1)[0] for frame in data]
        if decoded != [general.receive_rows(frame, 1)[0] for frame in data]:
            raise SystemExit("the fast path and the general path gave different rows")

        def write_only() -> None:
            for rows in decoded:
                ring.extend_records(rows)

        def msgpack_only() -> None:
            for frame in data:
                msgpack.unpackb(frame, timestamp=2)

        typed = alpaca_typed.MARKET_FRAME  # the fast path's decoder

        def msgspec_only() -> None:
            for frame in data:
                typed.decode(frame)

        results, rounds = interleaved(ROUNDS, ticks, {
            "before: MarketData, extend, stamp per tick": before,
            "now: record rows, extend_records, stamp per frame": now,
            "of which the frame decode alone (msgspec, typed)": msgspec_only,
            "now, general path (msgpack to dicts; every frame until the typed decode)":
                now_general,
            "of which msgpack decode alone": msgpack_only,
            "of which the ring write with the table alone": write_only,
        })
    finally:
        ring.close()
        table.close()
        remove_segments(topology)
    now_name = "now: record rows, extend_records, stamp per frame"
    new = results[now_name]
    to_before = median_ratio(rounds, now_name, "before: MarketData, extend, stamp per tick")
    to_general = median_ratio(rounds, now_name, "now, general path (msgpack to dicts; every "
                              "frame until the typed decode)")
    reads = [socket_reads(100 if args.quick else 300) for _ in range(1 if args.quick else 3)]
    plain_us, ours_us, frame_bytes = sorted(reads, key=lambda r: r[1] / r[0])[len(reads) // 2]
    rows_md = ["| path | µs per tick |", "|---|---|"]
    rows_md += [f"| {name.strip()} | {value:.2f} |" for name, value in results.items()]
    verdict = "PASS" if new <= TARGET_US else f"MISS ({new - TARGET_US:+.2f} µs)"
    body = "\n".join([
        f"`benchmarks/gateway_bench.py` on {machine()}. {len(data)} msgpack frames of "
        f"{per_frame} ticks",
        "(half trades, half quotes, 50 symbols) from the broker's bytes to the ring and its",
        f"latest-value table, in one process, no websocket; CPU time, the best of {ROUNDS} "
        "rounds that each run every path in turn; ratios are the median round's.",
        "",
        *rows_md,
        "",
        f"The current path costs {to_before:.2f}× the one before it ({1 / to_before:.1f}× "
        f"faster) and {to_general:.2f}× the general path, which every frame took before the "
        f"typed decode ({msgspec.__name__} {msgspec.__version__}).",
        f"Target: the gateway ≤ {TARGET_US:g} µs per tick: decode and bus write {new:.2f} µs:",
        f"**{verdict}** (the websocket read comes on top, per frame: below).",
        "",
        "Reading the sim's frames off the websocket (5,000 ticks/s, frames of "
        f"{frame_bytes:,.0f} bytes on average), CPU per frame, the two readers taking the same "
        "frames in turn on two connections (median of "
        f"{len(reads)} rounds): websocket-client's `recv_data` {plain_us:.1f} µs, the "
        f"gateway's `FrameReader` {ours_us:.1f} µs ({ours_us / plain_us:.2f}×). Most of what "
        "is left is the kernel waking the reader for each frame.",
    ])  # fmt: skip
    print(body)
    if not args.quick:
        write_section("gateway_bench", body)


if __name__ == "__main__":
    main()
