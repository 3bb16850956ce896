"""Ticks across NATS: a gateway's ring to a remote node's ring, beside the local ring.

The path is the one a cluster desk runs (docs/cluster.md), piece for piece: a writer process
fills ring A at a steady rate (50 symbols, trades, `receive_ns` stamped at write); a bridge
process reads ring A and publishes each read with `bridge.publish_read` (one message per
read to the remote node, with the records of the symbols it wants: all 50 here; the bus's
records undecoded; with JetStream also a message per symbol, for the stream); a remote
process, subscribed to its node's subject, writes ring B with `TickRing.write_records`,
keeping the seqs. Two reader processes hold the decoded `Tick`s:
one of ring A (the local ring: what a strategy beside the gateway sees) and one of ring B
(what a strategy on the other node sees); each records `time.time_ns() - receive_ns` per tick
and counts what it never got. A real nats-server runs on loopback.

The JetStream path (`settings.cluster.jetstream`) runs too: the server runs with `-js` (its
store in a temporary dir), and 10k and 50k ticks/s run again with the broker's stream
capturing the tick subjects, as the bridge makes it; then the last run's ticks are read back
from the stream by bus seq (`history.fetch`, in the stand-in's 2048-tick chunks), as a
restarted remote host catches up: how many came back, and how fast.

Targets (issue 17): p99 under 5 ms at 10k ticks/s across NATS on loopback, and no loss at
50k ticks/s. The machine has 2 cores shared with others, and this run has five busy processes
plus the server on them: compare local and remote within one run.
Run: .venv/bin/python benchmarks/cluster_bench.py (about a minute; --quick: a short smoke run
that does not write RESULTS.md).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.results import machine, write_section
from tradeops.bus import remove_segments
from tradeops.bus.reader import RingReader
from tradeops.bus.ring import TickRing
from tradeops.cluster import history, subjects, wire
from tradeops.cluster.bridge import publish_read
from tradeops.protocol.tick import RECORD_SIZE, encode_symbol
from tradeops.topology.model import JetStream

SYMBOLS = [f"S{i:02d}" for i in range(50)]
RATES = (1_000, 10_000, 50_000)
SPAWN = mp.get_context("spawn")
DESK = "bench"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def bridge(url: str, ns: str, per_symbol: bool, ready: Any, stop: Any) -> None:
    async def run() -> None:
        import nats

        nc = await nats.connect(url)
        reader = RingReader(ns, "up", start="newest", resync="oldest")
        wanted = {"b": frozenset(encode_symbol(s) for s in SYMBOLS)}
        ready.set()
        while not stop.is_set():
            batch = await asyncio.to_thread(reader.read_batch, 4096, 0.05)
            if batch:
                await publish_read(nc, DESK, "up", reader.epoch, batch, wanted, per_symbol)
        await nc.drain()
        reader.close()

    asyncio.run(run())


def remote(url: str, ns: str, ready: Any, stop: Any) -> None:
    async def run() -> None:
        import nats

        ring = TickRing(ns, "down")
        nc = await nats.connect(url)

        async def on_ticks(msg: Any) -> None:
            records = wire.decode(msg.data).records
            if records:
                ring.write_records(records)

        await nc.subscribe(subjects.node_ticks(DESK, "up", "b"), cb=on_ticks)
        await nc.flush()
        ready.set()
        while not stop.is_set():
            await asyncio.sleep(0.05)
        await nc.drain()
        ring.close()

    asyncio.run(run())


def reader(ns: str, broker: str, total: int, seconds: float, ready: Any, out: Any) -> None:
    ring = RingReader(ns, broker, start="newest")
    ready.set()
    latencies: list[int] = []
    got = 0
    deadline = time.monotonic() + seconds + 10
    while got < total and time.monotonic() < deadline:
        for tick in ring.read(4096, 0.1):
            if tick.symbol:  # a hole record (a gap) is not a tick
                got += 1
                latencies.append(time.time_ns() - tick.receive_ns)
    out.put((broker, got, ring.lost, latencies))
    ring.close()


def write(ring: TickRing, rate: int, seconds: float) -> int:
    """`rate` ticks a second for `seconds` into `ring`, published after each short sleep."""
    total = int(rate * seconds)
    start = time.monotonic()
    sent = 0
    while sent < total:
        due = min(total, int((time.monotonic() - start) * rate) + 1)
        while sent < due:
            now = time.time_ns()
            ring.append("trade", SYMBOLS[sent % len(SYMBOLS)], now, 100.0, 1.0, receive_ns=now)
            sent += 1
        ring.publish()
        time.sleep(0.0005)
    return sent


def one_rate(url: str, rate: int, seconds: float, jetstream: bool = False) -> dict[str, Any]:
    ns = f"bench-{uuid.uuid4().hex[:8]}"
    total = int(rate * seconds)
    stop = SPAWN.Event()
    results: Any = SPAWN.Queue()
    procs: list[Any] = []

    def start(target: Any, *args: Any) -> None:
        ready = SPAWN.Event()
        proc = SPAWN.Process(target=target, args=(*args, ready, *(
            (stop,) if target in (bridge, remote) else (results,))))
        proc.start()
        procs.append(proc)
        if not ready.wait(60):
            raise RuntimeError(f"{target.__name__} did not start")

    ring = TickRing(ns, "up")  # the gateway's ring: this process writes it
    probe = RingReader(ns, "up")
    epoch = probe.epoch
    probe.close()
    try:
        start(remote, url, ns)
        start(reader, ns, "down", total, seconds)
        start(bridge, url, ns, jetstream)
        start(reader, ns, "up", total, seconds)
        sent = write(ring, rate, seconds)
        measured = [results.get(timeout=seconds + 30) for _ in range(2)]
    finally:
        stop.set()
        for proc in procs:
            proc.join(10)
            if proc.is_alive():
                proc.kill()
        ring.close()
        remove_segments(ns)
    rows = {}
    for broker, got, lost, latencies in measured:
        rows["local" if broker == "up" else "remote"] = {
            "got": got, "lost": lost, "missing": sent - got,
            "p50": _ms(latencies, 0.50), "p99": _ms(latencies, 0.99)}
    return {"sent": sent, "epoch": epoch, **rows}


async def stream(url: str, on: bool) -> None:
    """The broker's stream made (as the bridge makes it), or deleted."""
    import nats

    nc = await nats.connect(url)
    js = nc.jetstream()
    if on:
        await history.ensure_stream(js, DESK, "up", JetStream(max_age=None, max_bytes=1 << 30))
    else:
        await js.delete_stream(history.stream_name(DESK, "up"))
    await nc.close()


async def read_back(url: str, epoch: int, sent: int) -> tuple[int, float]:
    """A run's ticks fetched back from the stream by bus seq: (how many, seconds)."""
    import nats

    nc = await nats.connect(url)
    js = nc.jetstream()
    start, got, seq = time.perf_counter(), 0, 1
    while seq <= sent:
        records, seq = await history.fetch(js, DESK, "up", epoch, seq, sent, 2048)
        got += len(records) // RECORD_SIZE
    took = time.perf_counter() - start
    await nc.close()
    return got, took


def _ms(latencies: list[int], q: float) -> float:
    if not latencies:
        return float("nan")
    ordered = sorted(latencies)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 s per rate; no RESULTS.md")
    args = parser.parse_args()
    seconds = 1.0 if args.quick else 5.0
    port = free_port()
    store = tempfile.TemporaryDirectory(prefix="cluster-bench-js-")
    server = subprocess.Popen([str(Path(sys.executable).parent / "nats-server"), "-a",
                               "127.0.0.1", "-p", str(port), "-js", "-sd", store.name],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"nats://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while socket.socket().connect_ex(("127.0.0.1", port)) != 0:
            if time.monotonic() > deadline:
                raise RuntimeError("nats-server did not start")
            time.sleep(0.05)
        runs = {rate: one_rate(url, rate, seconds) for rate in RATES}
        asyncio.run(stream(url, True))
        kept = {rate: one_rate(url, rate, seconds, jetstream=True) for rate in RATES[1:]}
        last = kept[RATES[-1]]
        back, took = asyncio.run(read_back(url, last["epoch"], last["sent"]))
        asyncio.run(stream(url, False))
    finally:
        server.terminate()
        server.wait(10)
        store.cleanup()
    lines = [
        f"`benchmarks/cluster_bench.py` on {machine()}. {seconds:g} s per rate, 50 symbols,",
        "trades; writer → ring A → bridge → nats-server (loopback) → remote → ring B; latency",
        "is receive stamp to a decoded Tick in the reader's hands.",
        "",
        "| ticks/s | sent | local ring: got, p50, p99 | across NATS: got, lost, p50, p99 |",
        "|---|---|---|---|",
    ]
    for rate, run in runs.items():
        local, far = run["local"], run["remote"]
        lines.append(f"| {rate:,} | {run['sent']:,} | {local['got']:,}, {local['p50']:.2f} ms, "
                     f"{local['p99']:.2f} ms | {far['got']:,}, {far['missing']:,}, "
                     f"{far['p50']:.2f} ms, {far['p99']:.2f} ms |")
    for rate, run in kept.items():
        local, far = run["local"], run["remote"]
        lines.append(f"| {rate:,}, JetStream | {run['sent']:,} | {local['got']:,}, "
                     f"{local['p50']:.2f} ms, {local['p99']:.2f} ms | {far['got']:,}, "
                     f"{far['missing']:,}, {far['p50']:.2f} ms, {far['p99']:.2f} ms |")
    p99 = runs[10_000]["remote"]["p99"]
    loss = runs[50_000]["remote"]["missing"]
    lines += [
        "",
        f"p99 across NATS at 10k ticks/s under 5 ms: **{'PASS' if p99 < 5 else 'MISS'}** "
        f"({p99:.2f} ms). No loss at 50k ticks/s: **{'PASS' if loss == 0 else 'MISS'}** "
        f"({loss:,} missing).",
        "",
        f"JetStream rows: the same runs with the broker's stream capturing the tick subjects. "
        f"Read back from the stream by bus seq (2048-tick chunks, as a host catching up): "
        f"{back:,} of the {RATES[-1]:,} ticks/s run's {last['sent']:,} ticks in {took:.2f} s "
        f"({back / took if took else 0:,.0f} ticks/s).",
    ]
    body = "\n".join(lines)
    print(body)
    if not args.quick:
        write_section("cluster_bench", body)


if __name__ == "__main__":
    main()
