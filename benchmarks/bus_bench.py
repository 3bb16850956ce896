"""The tick bus against the usual alternatives, with the same work on both sides.

Fairness rules (issue 13): every producer starts from the same normalised row (what a
gateway's decoder hands over: kind, symbol, exchange time, price, size) and builds the same
192-byte record from it (`tradeops.protocol.tick.RECORD`); every consumer ends holding the
same decoded `Tick` per tick (ring readers from `RingReader.read`, which decodes with the same
`RECORD` unpack the others call on each message). The writer is this process; every reader
is a separate spawned process; readers sleep when idle (ring and plain ring on a FIFO
doorbell, zmq in `poll`, queue in `get`), none busy-polls.

Phases:

- **drain**: the writer offers N ticks as fast as it can; each reader's throughput is N
  divided by the time from the writer's first tick to the reader holding the last one. The
  lossless transports must deliver all N: the ring (capacity above N, so no lap can happen),
  the plain shm ring (same), pyzmq PUB/SUB over ipc with high-water marks 0 (unbounded, it
  buffers instead of dropping) and `multiprocessing.Queue` (unbounded; timed to the full
  drain, with a smaller N because it is two orders of magnitude slower). pyzmq with its
  default high-water mark (1,000) is reported separately: it drops; its rate is what a
  reader received over the time it took, and its loss is shown.
- **latency**: the writer offers RATE ticks/s, publishing whatever is due after each sleep;
  each tick carries its publish time (CLOCK_MONOTONIC, shared by all processes) and a reader
  records `now - stamp` once it holds the Tick. p50 is the median reader's, p99 the worst's.
- **per-tick costs** in one process: the ring's write with the latest-value table as the
  gateway runs it, the ring's read to a Tick, and the pure-Python floor: a bare 48-byte
  `pack_into` / `unpack_from` loop.

The plain shm ring is the reference for "what shared memory costs in Python": 48-byte records
(seq, exchange ns, 16-byte symbol, price, size), a cursor, a FIFO doorbell per reader rung
after every batch, readers decoding with `iter_unpack`. No table, no laps, no reader slots.

The machine has 2 cores shared with other engineers' test runs: numbers are noisy; compare the
ratios within one run: every measurement runs in 5 interleaved rounds, ratios are taken within
a round and the median round's is reported. Run: .venv/bin/python benchmarks/bus_bench.py
(about 2 minutes; --quick for a one-round smoke run that does not write RESULTS.md).
"""

from __future__ import annotations

import argparse
import contextlib
import mmap
import multiprocessing as mp
import os
import queue
import resource
import select
import struct
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import zmq

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.results import machine, write_section
from tradeops.bus import LatestTable, RingReader, TickBatch, TickRing, remove_segments
from tradeops.protocol.tick import (
    KIND_CODES,
    RECORD,
    TRADE_ROW,
    TradeRow,
    encode_symbol,
    tick_from_values,
)

RATE = 20_000  # ticks/s offered in the latency phase
BATCH = 64  # records per publish (ring, plain ring) at full speed
SYMBOLS = [f"SYM{i:03d}" for i in range(100)]
ctx = mp.get_context("spawn")

# --- the same record on every side ----------------------------------------------------------

def rows(n: int) -> list[tuple[str, str, int, float, float]]:
    """The normalised rows every producer starts from: what a gateway's decoder yields."""
    return [("trade", SYMBOLS[i % 100], 1_700_000_000_000_000_000 + i, 101.25, 100.0)
            for i in range(n)]  # fmt: skip


def record_row(row: tuple[str, str, int, float, float], now: int) -> TradeRow:
    """Every producer's first step: the normalised row as a record row, stamped ``now``."""
    kind, symbol, exchange_ns, price, size = row
    return (KIND_CODES[kind], 0, 0, exchange_ns, now, encode_symbol(symbol), price, size)


#: A trade record with its seq: the same packer `TickRing.extend_records` uses for a trade
#: row (8 values and zeros), with the seq in front, for the transports that send messages.
TRADE_RECORD = struct.Struct("<q" + TRADE_ROW.format.lstrip("<"))


def build(seq: int, row: tuple[str, str, int, float, float], now: int) -> bytes:
    """The 192-byte record of ``row``: what the ring packs into its slot."""
    return TRADE_RECORD.pack(seq, *record_row(row, now))


def decode(data: bytes) -> Any:
    """A message's Tick: the same unpack and tuple build `RingReader.read` does per record."""
    return tick_from_values(RECORD.unpack(data))


# --- the plain shared-memory ring: the reference -------------------------------------------

PLAIN = struct.Struct("<qq16sdd")  # 48 bytes: seq, exchange ns (the stamp), symbol, price, size
PLAIN_DATA = 64  # cursor at 0, records from 64


def plain_size(capacity: int) -> int:
    return PLAIN_DATA + capacity * PLAIN.size


# --- readers (each in its own process) -----------------------------------------------------


def reader_main(kind: str, where: Any, phase: str, total: int, ends: Any, results: Any) -> None:
    """Receive until the last tick (drain) or the window's end (latency); report back.

    ``where``: "topology/broker" (ring), "path|capacity|fifo" (plain), an ipc address (zmq),
    or the reader's Queue.
    """
    clock = time.perf_counter_ns
    latencies: list[int] = []
    track = phase == "latency"
    received = lost = 0
    done_at = 0
    idle_ns = 300_000_000  # zmq with a high-water mark: the end tick itself may be dropped
    if kind == "ring":
        topology, broker = where.split("/")
        with RingReader(topology, broker, start="newest") as reader:
            end = _ready(ends, results)
            while received < total and clock() < end:
                ticks = reader.read(4096, timeout=0.02)
                if ticks:
                    received += len(ticks)
                    now = clock()
                    if track:
                        latencies += [now - tick.receive_ns for tick in ticks]
                    done_at = now
            lost = reader.lost
    elif kind == "plain":
        path, capacity_s, fifo = where.split("|")
        capacity = int(capacity_s)
        fd = os.open(path, os.O_RDWR)
        mm = mmap.mmap(fd, plain_size(capacity))
        os.close(fd)
        words = memoryview(mm).cast("q")
        bell = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        poller = select.poll()
        poller.register(bell, select.POLLIN)
        view = memoryview(mm)
        nxt = 1
        end = _ready(ends, results)
        mask = capacity - 1
        while received < total and clock() < end:
            cursor = words[0]
            if cursor < nxt:
                poller.poll(20)
                with contextlib.suppress(BlockingIOError):
                    os.read(bell, 4096)
                continue
            start = PLAIN_DATA + (nxt & mask) * PLAIN.size
            count = min(cursor - nxt + 1, capacity - (nxt & mask))
            part = list(PLAIN.iter_unpack(view[start : start + count * PLAIN.size]))
            nxt += count
            received += count
            now = clock()
            if track:
                latencies += [now - values[1] for values in part]
            done_at = now
        os.close(bell)
        words.release()
        view.release()
        mm.close()
    elif kind.startswith("zmq"):
        zctx = zmq.Context()
        sock = zctx.socket(zmq.SUB)
        if kind == "zmq-lossless":
            sock.setsockopt(zmq.RCVHWM, 0)
        sock.connect(where)
        sock.setsockopt(zmq.SUBSCRIBE, b"")
        end = _ready(ends, results)
        first = last = 0
        recv = sock.recv
        while received < total and clock() < end:
            if not sock.poll(20):
                if kind == "zmq" and done_at and clock() - done_at > idle_ns:
                    break
                continue
            while True:
                try:
                    data = recv(zmq.NOBLOCK)
                except zmq.Again:
                    break
                tick = decode(data)
                received += 1
                first = first or tick.seq
                last = tick.seq
                now = clock()
                if track:
                    latencies.append(now - tick.receive_ns)
                done_at = now
        lost = (last - first + 1 - received) if received else 0
        if kind == "zmq" and phase == "drain":
            lost = total - received
        sock.close(linger=0)
        zctx.term()
    else:
        inbox = where
        end = _ready(ends, results)
        while received < total and clock() < end:
            try:
                data = inbox.get(timeout=0.02)
            except queue.Empty:
                continue
            tick = decode(data)
            received += 1
            now = clock()
            if track:
                latencies.append(now - tick.receive_ns)
            done_at = now
    cpu = _cpu() - _started_cpu
    latencies.sort()
    p50 = latencies[len(latencies) // 2] if latencies else 0
    p99 = latencies[min(len(latencies) - 1, len(latencies) * 99 // 100)] if latencies else 0
    results.put(("done", received, lost, p50, p99, done_at, cpu))


def _cpu() -> float:
    """CPU seconds (user and system) of this process so far, every thread of it: zmq's I/O
    thread and the queue's feeder thread count for their transport."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


_started_cpu = 0.0


def _ready(ends: Any, results: Any) -> int:
    """Say ready, block until the writer announces the deadline, confirm, return it."""
    global _started_cpu
    results.put(("ready", os.getpid()))
    end = int(ends.get())
    results.put(("started", os.getpid()))
    _started_cpu = _cpu()
    return end


# --- the writer (this process) -------------------------------------------------------------


@dataclass
class Result:
    transport: str
    readers: int
    phase: str
    offered: int
    received: list[int]
    lost: list[int]
    rates: list[float] = field(default_factory=list)  # drain: per reader, ticks/s
    p50_us: float = 0.0
    p99_us: float = 0.0
    writer_cpu: float = 0.0  # drain: the writer process's CPU seconds, offer to last delivery
    reader_cpu: list[float] = field(default_factory=list)  # drain: each reader's CPU seconds

    def cpu_per_tick(self) -> tuple[float, float]:
        """µs of CPU per tick offered: the writer's, and the median reader's."""
        if not self.offered or not self.reader_cpu:
            return 0.0, 0.0
        return (self.writer_cpu / self.offered * 1e6,
                _median(self.reader_cpu) / self.offered * 1e6)  # fmt: skip

    @property
    def per_reader(self) -> float:
        """The median reader's rate (drain phase)."""
        return sorted(self.rates)[len(self.rates) // 2] if self.rates else 0.0


class Writer:
    """One transport's producing side: set up, offer a row, make what was offered visible."""

    def __init__(self, kind: str, readers: int, capacity: int, tmp: str) -> None:
        self.kind = kind
        self.targets: list[Any] = []
        self.seq = 0
        self.topology = f"bench-{uuid.uuid4().hex[:8]}"
        self._closers: list[Callable[[], None]] = []
        if kind == "ring":
            table = LatestTable(self.topology, "bench", max_symbols=len(SYMBOLS))
            ring = TickRing(self.topology, "bench", capacity=capacity, max_readers=8,
                            table=table)  # fmt: skip
            self._closers += [ring.close, table.close, lambda: remove_segments(self.topology)]
            self.ring = ring
            self.targets = [f"{self.topology}/bench"] * readers
        elif kind == "plain":
            path = os.path.join(tmp, "plain")
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
            os.ftruncate(fd, plain_size(capacity))
            # Allocated and mapped up front, as the ring's writer does (bus/shm.py).
            os.posix_fallocate(fd, 0, plain_size(capacity))
            self.mm = mmap.mmap(fd, plain_size(capacity),
                                flags=mmap.MAP_SHARED | mmap.MAP_POPULATE)  # fmt: skip
            os.close(fd)
            self.words = memoryview(self.mm).cast("q")
            self.mask = capacity - 1
            self.fifos = [os.path.join(tmp, f"bell{i}") for i in range(readers)]
            for fifo in self.fifos:
                os.mkfifo(fifo)
            self.bells: list[int] = []
            self.targets = [f"{path}|{capacity}|{fifo}" for fifo in self.fifos]
            self._closers += [self._close_plain]
        elif kind.startswith("zmq"):
            zctx = zmq.Context()
            pub = zctx.socket(zmq.PUB)
            if kind == "zmq-lossless":
                pub.setsockopt(zmq.SNDHWM, 0)
            address = f"ipc://{tmp}/pub"
            pub.bind(address)
            self.pub = pub
            self.targets = [address] * readers
            self._closers += [lambda: (pub.close(linger=0), zctx.term())]  # type: ignore[func-returns-value]
        else:
            self.inboxes = [ctx.Queue() for _ in range(readers)]
            self.targets = list(self.inboxes)
            self._closers += [lambda: [q.cancel_join_thread() for q in self.inboxes]]  # type: ignore[func-returns-value]

    def started(self) -> None:
        if self.kind == "plain":  # readers hold their FIFOs open now
            self.bells = [os.open(f, os.O_WRONLY | os.O_NONBLOCK) for f in self.fifos]

    def offer(self, batch: list[tuple[str, str, int, float, float]], now: int) -> None:
        """Build the records of ``batch`` (stamped ``now``) and make them visible."""
        if self.kind == "ring":
            self.ring.extend_records([record_row(row, now) for row in batch])
            return
        seq = self.seq
        if self.kind == "plain":
            mm, words, mask, pack = self.mm, self.words, self.mask, PLAIN.pack_into
            for row in batch:
                seq += 1
                _code, _flags, _count, _exchange_ns, stamp, raw, price, size = record_row(row, now)
                pack(mm, PLAIN_DATA + (seq & mask) * PLAIN.size, seq, stamp, raw[:16], price, size)
            words[0] = seq
            for bell in self.bells:
                with contextlib.suppress(OSError):  # full (a wake-up is pending) or gone
                    os.write(bell, b"\x01")
        elif self.kind.startswith("zmq"):
            send = self.pub.send
            for row in batch:
                seq += 1
                send(build(seq, row, now))
        else:
            inboxes = self.inboxes
            for row in batch:
                seq += 1
                data = build(seq, row, now)
                for inbox in inboxes:
                    inbox.put(data)
        self.seq = seq

    def _close_plain(self) -> None:
        for bell in self.bells:
            os.close(bell)
        self.words.release()
        self.mm.close()

    def close(self) -> None:
        for closer in self._closers:
            with contextlib.suppress(Exception):
                closer()


def run(kind: str, readers: int, phase: str, total: int, seconds: float) -> Result:
    results = ctx.Queue()
    ends = ctx.Queue()
    procs = []
    tmp = tempfile.mkdtemp(prefix="bus-bench-")
    capacity = 1 << max(10, (total + 1).bit_length()) if phase == "drain" else 1 << 18
    writer = Writer(kind, readers, capacity, tmp)
    data = rows(total)
    try:
        for target in writer.targets:
            proc = ctx.Process(target=reader_main,
                               args=(kind, target, phase, total, ends, results))  # fmt: skip
            proc.start()
            procs.append(proc)
        for _ in range(readers):
            results.get(timeout=60)
        if kind.startswith("zmq"):
            time.sleep(0.3)  # slow joiners: let the subscriptions reach the publisher
        end = time.perf_counter_ns() + int(seconds * 1e9)
        for _ in range(readers):
            ends.put(end)
        for _ in range(readers):
            results.get(timeout=60)  # every reader is in its loop before the first tick
        writer.started()
        cpu0 = _cpu()
        t0 = time.perf_counter_ns()
        if phase == "drain":
            offered = _flood(writer, data)
        else:
            offered = _paced(writer, data, end - 300_000_000)
        done = [results.get(timeout=seconds + 60) for _ in range(readers)]
        writer_cpu = _cpu() - cpu0  # its threads (zmq's I/O, the queue's feeders) drained too
        for proc in procs:
            proc.join(timeout=10)
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.kill()
                proc.join()
        writer.close()
        for name in os.listdir(tmp):
            os.unlink(os.path.join(tmp, name))
        os.rmdir(tmp)
    received = [d[1] for d in done]
    rates = [d[1] / max(1e-9, (d[5] - t0) / 1e9) for d in done]
    p50 = sorted(d[3] for d in done)[len(done) // 2] / 1000
    p99 = max(d[4] for d in done) / 1000
    return Result(kind, readers, phase, offered, received, [d[2] for d in done], rates, p50, p99,
                  writer_cpu, [d[6] for d in done])


def _flood(writer: Writer, data: list[tuple[str, str, int, float, float]]) -> int:
    clock = time.perf_counter_ns
    for i in range(0, len(data), BATCH):
        writer.offer(data[i : i + BATCH], clock())
    return len(data)


def _paced(writer: Writer, data: list[tuple[str, str, int, float, float]], end: int) -> int:
    clock = time.perf_counter_ns
    start = clock()
    interval = 1e9 / RATE
    sent = 0
    while True:
        now = clock()
        if now >= end or sent >= len(data):
            return sent
        due = min(int((now - start) / interval), len(data))
        if due > sent:
            writer.offer(data[sent:due], now)
            sent = due
        time.sleep(max(0.0, (start + (sent + 1) * interval - clock()) / 1e9))


# --- per-tick costs in one process ----------------------------------------------------------


def costs(n: int = 200_000) -> dict[str, float]:
    """µs per tick in one process: ring writes with the table (frames of 64, 256 and 512
    ticks over 100 symbols), reads (to a Tick, filtered, by column), the 48-byte floor."""
    topology = f"bench-{uuid.uuid4().hex[:8]}"
    out: dict[str, float] = {}
    clock = time.perf_counter_ns
    table = LatestTable(topology, "costs", max_symbols=len(SYMBOLS))
    ring = TickRing(topology, "costs", capacity=1 << 16, table=table)
    reader = RingReader(topology, "costs", start="newest")
    data = rows(4096)
    try:
        start = clock()
        built = [record_row(row, start) for row in data]
        out["row build (every producer's, not the ring's)"] = (clock() - start) / len(data) / 1000
        for frame in (64, 256, 512):
            frames = [built[i : i + frame] for i in range(0, len(built), frame)]
            took = written = 0
            while written < n:
                start = clock()
                for part in frames:
                    ring.extend_records(part)
                took += clock() - start
                written += len(built)
            out[f"ring write + table, frames of {frame} ticks"] = took / written / 1000
        reader.seek(ring.cursor + 1)
        wanted = {encode_symbol(s) for s in SYMBOLS[:10]}
        for name, read in (
            ("ring read to a Tick", lambda: len(reader.read(512))),
            ("ring read, 10 of 100 symbols wanted (per tick passed)",
             lambda: len(reader.read(512, symbols=wanted)) * 0 + 512),
            ("ring read_batch + price, size, symbol columns",
             lambda: _columns(reader.read_batch(512))),
        ):  # fmt: skip
            took = got = 0
            while got < n:
                ring.extend_records(built[:512])
                start = clock()
                got += read()
                took += clock() - start
            out[name] = took / got / 1000
    finally:
        reader.close()
        ring.close()
        table.close()
        remove_segments(topology)
    buf = bytearray(PLAIN.size * 4096)
    raw = encode_symbol("SYM001")[:16]
    pack, unpack = PLAIN.pack_into, PLAIN.unpack_from
    start = clock()
    for i in range(n):
        pack(buf, (i & 4095) * 48, i, i, raw, 1.5, 2.0)
    out["floor: 48-byte pack_into"] = (clock() - start) / n / 1000
    start = clock()
    for i in range(n):
        unpack(buf, (i & 4095) * 48)
    out["floor: 48-byte unpack_from"] = (clock() - start) / n / 1000
    return out


def _columns(batch: TickBatch) -> int:
    batch.column("price").tolist()
    batch.column("size").tolist()
    batch.symbols()
    return len(batch)


# --- report ---------------------------------------------------------------------------------

NAMES = {
    "ring": "tradeops ring",
    "plain": "plain shm ring + doorbell (48 B)",
    "zmq-lossless": "pyzmq PUB/SUB ipc, HWM 0 (lossless)",
    "zmq": "pyzmq PUB/SUB ipc, default HWM",
    "queue": "multiprocessing.Queue",
}
DRAIN = ("ring", "plain", "zmq-lossless", "zmq", "queue")
LATENCY = ("ring", "plain", "zmq-lossless", "queue")


def _rate(value: float) -> str:
    return f"{value / 1000:,.1f}k/s" if value < 1e6 else f"{value / 1e6:,.2f}M/s"


def _us(value: float) -> str:
    return f"{value:,.0f} µs" if value < 10_000 else f"{value / 1000:,.0f} ms"


def _verdict(ok: bool, gap: str) -> str:
    return "**PASS**" if ok else f"**MISS** ({gap})"


def _median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


#: The floor's per-tick costs on the day issue 13's per-tick targets were measured against
#: (this benchmark, this machine class): the yardstick for how fast a later run's machine was.
REFERENCE_FLOOR = {"day": "2026-12-02", "pack": 0.103, "unpack": 0.127}


def render(results: dict[tuple[str, int, str], list[Result]], cost: dict[str, float],
           totals: dict[str, int], readers: tuple[int, ...], took: float) -> str:  # fmt: skip
    rounds = len(results["ring", readers[0], "drain"])
    rows_ = [
        "| transport | readers | ticks offered | per-reader throughput, median round "
        "| range over rounds | delivered | lost | CPU µs per tick: writer "
        "| CPU µs per tick: each reader | CPU-bound ceiling per reader |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    cores = os.cpu_count() or 1
    for n in readers:
        for kind in DRAIN:
            runs = results[kind, n, "drain"]
            rates = [r.per_reader for r in runs]
            r = runs[0]
            delivered = sum(sum(r.received) for r in runs) / n / sum(r.offered for r in runs)
            lost = sum(sum(r.lost) for r in runs) / n / sum(r.offered for r in runs)
            writer_us = _median([r.cpu_per_tick()[0] for r in runs])
            reader_us = _median([r.cpu_per_tick()[1] for r in runs])
            # Every process's CPU per tick, spread over every core: no faster than this.
            ceiling = min(cores, n + 1) / max(writer_us + n * reader_us, 1e-9) * 1e6
            rows_.append(f"| {NAMES[kind]} | {n} | {r.offered:,} | {_rate(_median(rates))} "
                         f"| {_rate(min(rates))} - {_rate(max(rates))} "
                         f"| {delivered:.1%} | {lost:.1%} | {writer_us:.2f} | {reader_us:.2f} "
                         f"| {_rate(ceiling)} |")  # fmt: skip
    lat_rows = [f"| transport (4 readers, {RATE // 1000}k ticks/s) | p50, median round "
                "| p99, median round | p99, worst round | lost |",
                "|---|---|---|---|---|"]  # fmt: skip
    for kind in LATENCY:
        runs = results[kind, 4, "latency"]
        p99s = [r.p99_us for r in runs]
        lat_rows.append(f"| {NAMES[kind]} | {_us(_median([r.p50_us for r in runs]))} "
                        f"| {_us(_median(p99s))} | {_us(max(p99s))} "
                        f"| {sum(sum(r.lost) for r in runs)} |")  # fmt: skip
    n = max(readers)

    def ratio(a: str, b: str) -> float:
        """The median over rounds of a's per-reader rate over b's in the same round."""
        pairs = zip(results[a, n, "drain"], results[b, n, "drain"], strict=True)
        return _median([x.per_reader / max(y.per_reader, 1.0) for x, y in pairs])

    vs_zmq, vs_queue = ratio("ring", "zmq-lossless"), ratio("ring", "queue")
    plain_over = ratio("plain", "ring")
    lat_runs = results["ring", 4, "latency"]
    lat_p50 = _median([r.p50_us for r in lat_runs])
    lat_p99 = _median([r.p99_us for r in lat_runs])
    lat = Result("ring", 4, "latency", 0, [], [sum(sum(r.lost) for r in lat_runs)], [],
                 lat_p50, lat_p99)  # fmt: skip
    w, rd = cost["ring write + table, frames of 256 ticks"], cost["ring read to a Tick"]
    w64 = cost["ring write + table, frames of 64 ticks"]
    checks = [
        (f"ring ≥ 2× lossless pyzmq per reader ({n} readers): {vs_zmq:.2f}×",
         vs_zmq >= 2, f"needs {2 / vs_zmq:.2f}× faster"),
        (f"ring ≥ 20× multiprocessing.Queue per reader ({n} readers): {vs_queue:,.1f}×",
         vs_queue >= 20, f"needs {20 / vs_queue:.2f}× faster"),
        (f"ring within 2× of the plain shm ring ({n} readers): plain/ring = {plain_over:.2f}×",
         plain_over <= 2, f"{plain_over / 2:.2f}× too slow"),
        (f"ring write ≤ 0.5 µs per tick with the table, frames of 256 ticks: {w:.2f} µs",
         w <= 0.5, f"{w - 0.5:+.2f} µs"),
        (f"ring write ≤ 0.5 µs per tick with the table, frames of 64 ticks over 100 symbols "
         f"(nearly every tick a new symbol in its frame): {w64:.2f} µs", w64 <= 0.5,
         f"{w64 - 0.5:+.2f} µs"),
        (f"ring read ≤ 0.4 µs per tick to a Tick: {rd:.2f} µs", rd <= 0.4, f"{rd - 0.4:+.2f} µs"),
        (f"ring p50 < 100 µs at {RATE // 1000}k/s (4 readers): {_us(lat.p50_us)}",
         lat.p50_us < 100, "over"),
        (f"ring p99 < 2 ms at {RATE // 1000}k/s (4 readers): {_us(lat.p99_us)}",
         lat.p99_us < 2000, "over"),
        (f"ring loses nothing at {RATE // 1000}k/s (4 readers): {sum(lat.lost)} lost",
         sum(lat.lost) == 0, "lost ticks"),
    ]  # fmt: skip
    # How fast this machine ran, by the pure-Python floor, against the day the per-tick
    # targets were set: the absolute targets hold at that speed. Verdicts stay absolute.
    slower = (cost["floor: 48-byte pack_into"] / REFERENCE_FLOOR["pack"]
              + cost["floor: 48-byte unpack_from"] / REFERENCE_FLOOR["unpack"]) / 2
    speed = [
        "",
        f"This run's floor (the bare 48-byte pack and unpack loops) took {slower:.1f}× what it "
        f"took on {REFERENCE_FLOOR['day']} ({REFERENCE_FLOOR['pack']:.3f} and "
        f"{REFERENCE_FLOOR['unpack']:.3f} µs), when the targets above were set: the shared "
        "machine ran that much slower or faster. At that day's speed the per-tick costs "
        f"would be: write, frames of 256, {w / slower:.2f} µs; frames of 64, {w64 / slower:.2f} "
        f"µs; read to a Tick, {rd / slower:.2f} µs. The verdicts above use this run's "
        "absolute numbers; the ratios between transports do not depend on the speed.",
    ]
    def total_cpu(kind: str) -> float:
        """µs of CPU per tick, writer plus every reader, median over rounds (n readers)."""
        runs = results[kind, n, "drain"]
        return _median([w + n * r for w, r in (run.cpu_per_tick() for run in runs)])

    ring_cpu, zmq_cpu, queue_cpu = total_cpu("ring"), total_cpu("zmq-lossless"), total_cpu("queue")
    read_share = rd / max(_median([r.cpu_per_tick()[1] for r in results["ring", n, "drain"]]),
                          1e-9)  # fmt: skip
    budget = [
        "",
        f"Why the ratios are what they are: with {n} readers on {os.cpu_count()} cores every "
        "transport runs close to its CPU-bound ceiling (table above), so the ratio between two "
        "is about the ratio of the CPU they spend per tick, writer plus every reader: "
        f"the ring {ring_cpu:.2f} µs, lossless pyzmq {zmq_cpu:.2f} µs "
        f"({zmq_cpu / max(ring_cpu, 1e-9):.2f}×), multiprocessing.Queue {queue_cpu:.1f} µs "
        f"({queue_cpu / max(ring_cpu, 1e-9):.1f}×). 2× pyzmq needs the ring at "
        f"{zmq_cpu / 2:.2f} µs and 20× the queue at {queue_cpu / 20:.2f} µs. Most of the ring's "
        f"is its {n} readers: the in-process read to a Tick (the step table) is "
        f"{read_share:.0%} of a reader's CPU per tick here, the rest is reading records another "
        "core wrote, and waking.",
    ]
    cost_rows = ["| step (one process) | µs per tick |", "|---|---|"]
    cost_rows += [f"| {name} | {value:.3f} |" for name, value in cost.items()]
    zmq_hwm = results["zmq", n, "drain"][0]
    lines = [
        f"`benchmarks/bus_bench.py` on {machine()}; whole run {took:.0f} s, {rounds} rounds.",
        "The machine has 2 cores and is shared with other engineers' test suites: absolute",
        "numbers are noisy (see the range column), so every measurement runs in each of",
        f"{rounds} interleaved rounds, a ratio is taken within a round, and the median round's",
        "ratio is reported. Per-tick costs are the best of the rounds (the least disturbed).",
        "",
        "Same work on every side: each producer builds the same 192-byte record from the same",
        "normalised row (the ring in its slot, the others into a message); each consumer ends",
        "holding a decoded `Tick` per tick (the same `RECORD` unpack and tuple build). The plain",
        "shm ring (48-byte records, no table, decoded to a plain tuple) is the reference for what",
        "shared memory costs in Python. Drain: the writer offers N ticks as fast as it can; a",
        "reader's throughput is N over the time from the first tick offered to the reader holding",
        "the last one. Lossless transports deliver all N (ring and plain ring: capacity above N;",
        f"pyzmq: high-water marks 0; mp.Queue: unbounded, N = {totals['queue']:,} as it is slow);",
        "pyzmq with its default high-water mark drops, and its rate counts only what arrived.",
        f"Ring and plain ring publish in batches of {BATCH}; zmq and the queue send a message",
        "per tick, as they are used. Readers sleep when idle; none busy-polls.",
        "",
        "CPU per tick: each process's user and system CPU (all its threads: zmq's I/O thread, the",
        "queue's feeder) from the first tick offered to the last one delivered, over the ticks",
        "offered; median over rounds. The writer's includes the row build every producer does.",
        "The ceiling is what that CPU allows when the cores are shared perfectly: the cores",
        "(at most one per process) over the writer's CPU per tick plus every reader's. Where",
        "the ring stands against a competitor is mostly where their ceilings stand.",
        "",
        *rows_,
        "",
        *lat_rows,
        "",
        *cost_rows,
        "",
        f"Targets ({n} readers on 2 cores):",
        "",
        *[f"- {text}: {_verdict(ok, gap)}" for text, ok, gap in checks],
        *budget,
        *speed,
        "",
        f"For reference: pyzmq at its default high-water mark lost "
        f"{sum(zmq_hwm.lost) / n / max(zmq_hwm.offered, 1):.0%} per reader at full speed "
        f"in the first round ({_rate(zmq_hwm.per_reader)} of what arrived); the ring delivers "
        f"{ratio('ring', 'zmq'):.2f}× that rate (median round) while losing nothing.",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small N; no RESULTS.md")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds")
    args = parser.parse_args()
    started = time.monotonic()
    scale = 5 if args.quick else 1
    totals = {kind: 200_000 // scale for kind in DRAIN}
    totals["queue"] = 20_000 // scale
    readers = (1, 4)
    results: dict[tuple[str, int, str], list[Result]] = {}
    plan = [(kind, n, "drain") for n in readers for kind in DRAIN]
    plan += [(kind, 4, "latency") for kind in LATENCY]
    window = 1.0 if args.quick else 2.0
    cost: dict[str, float] = {}
    for round_ in range(1 if args.quick else args.rounds):
        for kind, n, phase in plan:
            total = totals[kind] if phase == "drain" else int(RATE * (window + 1))
            seconds = 30.0 if phase == "drain" else window
            result = run(kind, n, phase, total, seconds)
            results.setdefault((kind, n, phase), []).append(result)
            print(f"{round_} {kind:13} x{n} {phase:8} per reader {_rate(result.per_reader)} "
                  f"received {result.received} lost {result.lost} offered {result.offered:,} "
                  f"p50 {result.p50_us:,.0f} µs p99 {result.p99_us:,.0f} µs",
                  flush=True)  # fmt: skip
        for step, value in costs().items():
            cost[step] = min(value, cost.get(step, value))
        print(cost, flush=True)
    body = render(results, cost, totals, readers, time.monotonic() - started)
    print(body)
    if not args.quick:
        write_section("bus_bench", body)


if __name__ == "__main__":
    main()
