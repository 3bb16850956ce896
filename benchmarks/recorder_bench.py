"""The recorder beside a writing gateway, against the naive path: a csv.writer row per tick.

The writer is this process: a `TickRing` as a gateway holds it, offering quotes and trades
over 100 symbols (a random walk, so the columns compress as real ticks do) at 10k and 100k
ticks/s, then as fast as it can, for PHASE seconds each. The reader is a separate spawned
process, one of:

- `parquet`: the recorder's own per-broker code (`recorder.sink.BrokerRecorder`): reads the
  ring (resync oldest), builds columns every flush (1 s), appends them to the open file's
  journal, and writes the Parquet file (zstd) when it stops;
- `csv`: the same `RingReader` (resync oldest), and `csv.writer.writerow` of every field of
  each tick (the symbol decoded, as the Parquet column holds it), flushed every second.

Both persist the same fields of the same ticks and stop the same way: when the window ends,
the reader gets up to DRAIN seconds to write what the ring still holds, then closes its
file. Figures: ticks written and lost (offered but not written: lapped, or not read by the
end of the drain), bytes per tick on disk (the closed files), and the reader's CPU (user +
system, all threads, from its start to its file closed) per tick written, with what that
makes one core's worth: the ticks per second the reader could sustain on a core of its own.
At "max" the writer and the reader share the two cores, so both are slower than alone.

Run: .venv/bin/python benchmarks/recorder_bench.py   (about a minute; --quick for a smoke run)
"""

from __future__ import annotations

import argparse
import csv
import math
import multiprocessing as mp
import random
import resource
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.results import machine, write_section
from tradeops.bus import RingReader, TickRing, remove_segments
from tradeops.recorder.sink import RecordPlan

BROKER = "bench"
RATES: tuple[float, ...] = (10_000, 100_000, math.inf)
SYMBOLS = [f"SYM{i:03d}" for i in range(100)]
DRAIN = 5.0
FLUSH = 1.0
ctx = mp.get_context("spawn")


def rows(n: int, seed: int = 1) -> list[tuple[Any, ...]]:
    """n ring rows (append's positional order after exchange_ns), a quote then a trade per
    step of each symbol's walk."""
    rng = random.Random(seed)
    mids = {s: 50 + 400 * rng.random() for s in SYMBOLS}
    out: list[tuple[Any, ...]] = []
    while len(out) < n:
        symbol = rng.choice(SYMBOLS)
        mid = mids[symbol] = mids[symbol] * math.exp(rng.gauss(0, 0.0002))
        bid, ask = round(mid - 0.01, 2), round(mid + 0.01, 2)
        out.append(("quote", symbol, 0.0, 0.0, bid, 100.0 * rng.randint(1, 9), ask,
                    100.0 * rng.randint(1, 9)))
        out.append(("trade", symbol, rng.choice((bid, ask)), float(rng.randint(1, 5) * 100)))
    return out[:n]


# --- readers (each in its own spawned process) ----------------------------------------------


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def parquet_reader(bus: str, root: str, ready: Any, done: Any, results: Any) -> None:
    from tradeops.recorder.sink import BrokerRecorder

    stop = threading.Event()
    plan = RecordPlan(Path(root), BROKER, bus, Path(root) / "no-gateway.sock", None,
                      frozenset({"trade", "quote", "bar"}), FLUSH, 3600.0)
    sink = BrokerRecorder(plan, stop, None)
    cpu0, began = cpu_seconds(), time.monotonic()
    sink.thread.start()
    ready.set()
    done.wait()
    target = done_cursor(results)
    deadline = time.monotonic() + DRAIN
    while time.monotonic() < deadline and (sink.figures.seq or 0) < target:
        time.sleep(0.05)  # waiting for the drain, with a deadline
    stop.set()
    sink.thread.join()
    size = sum(p.stat().st_size for p in Path(root).rglob("*.parquet"))
    results.put(("parquet", sink.figures.rows, size, cpu_seconds() - cpu0,
                 time.monotonic() - began, sink.error))


def csv_reader(bus: str, root: str, ready: Any, done: Any, results: Any) -> None:
    path = Path(root) / "ticks.csv"
    written = 0
    cpu0, began = cpu_seconds(), time.monotonic()
    with RingReader(bus, BROKER, start="oldest", resync="oldest") as reader, \
            path.open("w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["seq", "kind", "flags", "trade_count", "exchange_ns", "receive_ns",
                      "symbol", "price", "size", "bid", "bid_size", "ask", "ask_size", "open",
                      "high", "low", "close", "volume", "vwap", "session"])
        session = reader.epoch
        ready.set()
        next_flush = time.monotonic() + FLUSH
        target: int | None = None
        deadline = math.inf
        last = 0
        while time.monotonic() < deadline and (target is None or last < target):
            for tick in reader.read(65536, timeout=0.2):
                out.writerow((tick.seq, tick.kind, tick.flags, tick.trade_count,
                              tick.exchange_ns, tick.receive_ns, tick.symbol, tick.price,
                              tick.size, tick.bid, tick.bid_size, tick.ask, tick.ask_size,
                              tick.open, tick.high, tick.low, tick.close, tick.volume,
                              tick.vwap, session))
                written += 1
                last = tick.seq
            if time.monotonic() >= next_flush:
                handle.flush()
                next_flush = time.monotonic() + FLUSH
            if target is None and done.is_set():
                target = done_cursor(results)
                deadline = time.monotonic() + DRAIN
    results.put(("csv", written, path.stat().st_size, cpu_seconds() - cpu0,
                 time.monotonic() - began, None))


def done_cursor(results: Any) -> int:
    """The ring's last seq, which the writer puts on the queue with `done`."""
    kind, cursor, *_ = results.get()
    assert kind == "cursor"
    return int(cursor)


# --- one run ------------------------------------------------------------------------------------


def run(reader: str, rate: float, window: float, pool: list[tuple[Any, ...]]) -> dict[str, Any]:
    bus = f"rbench-{uuid.uuid4().hex[:8]}"
    root = tempfile.mkdtemp(prefix="recorder-bench-")
    ready, done = ctx.Event(), ctx.Event()
    to_reader, from_reader = ctx.Queue(), ctx.Queue()
    target = parquet_reader if reader == "parquet" else csv_reader
    ring = TickRing(bus, BROKER, capacity=1 << 18)
    proc = ctx.Process(target=_relay, args=(target, bus, root, ready, done, to_reader,
                                            from_reader))
    try:
        proc.start()
        if not ready.wait(60):
            raise RuntimeError(f"the {reader} reader did not start")
        offered = write(ring, rate, window, pool)
        to_reader.put(("cursor", ring.cursor))
        done.set()
        kind, written, size, cpu, elapsed, error = from_reader.get(timeout=120)
        proc.join(30)
    finally:
        if proc.is_alive():
            proc.kill()
        ring.close()
        remove_segments(bus)
        import shutil

        shutil.rmtree(root, ignore_errors=True)
    if error:
        raise RuntimeError(error)
    return {"reader": kind, "rate": rate, "offered": offered, "written": written,
            "bytes_per_tick": size / max(written, 1), "cpu_pct": 100 * cpu / elapsed,
            "cpu_us": 1e6 * cpu / max(written, 1),
            "lost": offered - written}


def _relay(target: Any, bus: str, root: str, ready: Any, done: Any, inbox: Any,
           outbox: Any) -> None:
    """Run a reader with one queue for the writer's cursor (in) and one for results (out)."""

    class Both:
        def get(self, *args: Any, **kwargs: Any) -> Any:
            return inbox.get(*args, **kwargs)

        def put(self, item: Any) -> None:
            outbox.put(item)

    target(bus, root, ready, done, Both())


def write(ring: TickRing, rate: float, window: float, pool: list[tuple[Any, ...]]) -> int:
    """Offer `rate` ticks/s (inf: as fast as possible) for `window` seconds; ticks offered."""
    append, n = ring.append, len(pool)
    start = time.monotonic()
    end = start + window
    written = 0
    base = time.time_ns()
    while (now := time.monotonic()) < end:
        due = 4096 if math.isinf(rate) else min(4096, int((now - start) * rate) - written)
        if due <= 0:
            time.sleep(0.0005)  # pacing the offered rate
            continue
        for i in range(written, written + due):
            kind, symbol, *fields = pool[i % n]
            append(kind, symbol, base + i * 1000, *fields)
        ring.publish()
        written += due
    return written


def render(results: list[dict[str, Any]], window: float) -> str:
    lines = [
        f"{machine()}; {window:g} s per run, {len(SYMBOLS)} symbols, quotes and trades, ring of "
        f"2^18; flush every {FLUSH:g} s; the reader drains for up to {DRAIN:g} s after the window.",
        "",
        "| offered | reader | written | lost | bytes/tick on disk | reader CPU µs/tick | "
        "one core's worth (ticks/s) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        offered = "max" if math.isinf(r["rate"]) else f"{r['rate'] / 1000:g}k/s"
        if math.isinf(r["rate"]):
            offered += f" ({r['offered'] / window / 1000:.0f}k/s)"
        lines.append(
            f"| {offered} | {r['reader']} | {r['written']:,} | {r['lost']:,} | "
            f"{r['bytes_per_tick']:.1f} | {r['cpu_us']:.2f} | {1e6 / r['cpu_us']:,.0f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short windows, no RESULTS.md")
    parser.add_argument("--window", type=float, default=5.0)
    args = parser.parse_args()
    window = 1.0 if args.quick else args.window
    pool = rows(200_000)
    results = []
    for rate in RATES:
        for reader in ("parquet", "csv"):
            result = run(reader, rate, window, pool)
            print(result, flush=True)
            results.append(result)
    table = render(results, window)
    print(table)
    if not args.quick:
        write_section("recorder_bench", table)


if __name__ == "__main__":
    main()
