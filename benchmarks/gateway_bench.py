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
alone. No websocket: what the socket read costs comes on top (websocket-client's frame
parsing; see the e2e figures). The machine is shared and noisy: every figure is the best of
5 rounds.

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
from tradeops.protocol import alpaca
from tradeops.protocol.alpaca import MarketDataSession
from tradeops.protocol.feed import MarketData

SYMBOLS = [f"SYM{i:02d}" for i in range(50)]
TARGET_US = 3.0


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


def best(rounds: int, ticks: int, run: Callable[[], None]) -> float:
    """µs per tick, the best of ``rounds``."""
    times = []
    for _ in range(rounds):
        start = time.perf_counter_ns()
        run()
        times.append(time.perf_counter_ns() - start)
    return min(times) / ticks / 1000


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

        typed = alpaca._MARKET_FRAME  # the fast path's decoder

        def msgspec_only() -> None:
            for frame in data:
                typed.decode(frame)

        results = {
            "before: MarketData, extend, stamp per tick": best(5, ticks, before),
            "now: record rows, extend_records, stamp per frame": best(5, ticks, now),
            "of which the frame decode alone (msgspec, typed)": best(5, ticks, msgspec_only),
            "now, general path (msgpack to dicts; every frame until the typed decode)":
                best(5, ticks, now_general),
            "of which msgpack decode alone": best(5, ticks, msgpack_only),
            "of which the ring write with the table alone": best(5, ticks, write_only),
        }
    finally:
        ring.close()
        table.close()
        remove_segments(topology)
    new = results["now: record rows, extend_records, stamp per frame"]
    old = results["before: MarketData, extend, stamp per tick"]
    general_cost = results[
        "now, general path (msgpack to dicts; every frame until the typed decode)"]
    reads = [socket_reads(100 if args.quick else 300) for _ in range(1 if args.quick else 3)]
    plain_us, ours_us, frame_bytes = sorted(reads, key=lambda r: r[1] / r[0])[len(reads) // 2]
    rows_md = ["| path | µs per tick |", "|---|---|"]
    rows_md += [f"| {name.strip()} | {value:.2f} |" for name, value in results.items()]
    verdict = "PASS" if new <= TARGET_US else f"MISS ({new - TARGET_US:+.2f} µs)"
    body = "\n".join([
        f"`benchmarks/gateway_bench.py` on {machine()}. {len(data)} msgpack frames of "
        f"{per_frame} ticks",
        "(half trades, half quotes, 50 symbols) from the broker's bytes to the ring and its",
        "latest-value table, in one process, no websocket; best of 5 rounds.",
        "",
        *rows_md,
        "",
        f"The current path costs {new / old:.2f}× the one before it ({old / new:.1f}× faster) "
        f"and {new / general_cost:.2f}× the general path, which every frame took before the "
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
