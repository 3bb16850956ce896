"""Code that tests run in spawned child processes (importable by name, as spawn requires)."""

from __future__ import annotations

import itertools
import os
import time
from typing import Any

from tests.waiting import wait_for
from tradeops.bus import LatestTable, RingReader, TickRing
from tradeops.protocol.tick import TRADE, Tick, encode_symbol


def read_until(
    topology: str, broker: str, last_seq: int, busy_poll: bool, results: Any, start: int
) -> None:
    """Read from ``start`` up to ``last_seq``; report seqs received, lost, and bad ticks."""
    seqs: list[int] = []
    bad = 0
    with RingReader(topology, broker, start=start, busy_poll=busy_poll) as reader:
        results.put(("ready", os.getpid(), reader.next_seq))
        deadline = time.monotonic() + 30
        while reader.next_seq <= last_seq and time.monotonic() < deadline:
            for tick in reader.read(1000, timeout=1.0):
                seqs.append(tick.seq)
                bad += not _consistent(tick)
        results.put(("done", len(seqs), seqs[:1], seqs[-1:], _gaps(seqs), reader.lost, bad))


def _consistent(tick: Tick) -> bool:
    # The writers in these tests put the seq in every numeric field: a torn record mixes two.
    seq = tick.seq
    return tick.price == seq and tick.size == seq and tick.vwap == seq and tick.exchange_ns == seq


def _gaps(seqs: list[int]) -> int:
    return sum(b - a - 1 for a, b in itertools.pairwise(seqs) if b != a + 1)


def write_consistent(topology: str, broker: str, count: int, batch: int, capacity: int) -> None:
    """A writer whose every numeric field equals the seq (torn records are detectable).

    Starts writing once a reader has attached, and closes the ring when done.
    """
    with TickRing(topology, broker, capacity=capacity) as ring:
        wait_for(ring.readers, 30, "a reader to attach")
        _write(ring, count, batch)


def _write(ring: TickRing, count: int, batch: int) -> None:
    seq = ring.cursor
    while seq < count:
        for _ in range(batch):
            seq += 1
            f = float(seq)
            ring.append("trade", "HK:700", seq, f, f, f, f, f, f, f, f, f, f, f, f, seq)
        ring.publish()


def sleep_then_read(topology: str, broker: str, results: Any) -> None:
    """Attach, say so, then block in read until one tick arrives; report how it went."""
    with RingReader(topology, broker) as reader:
        results.put(("ready", reader.next_seq))
        ticks = reader.read(10, timeout=20.0)
        woke = time.time_ns()
        results.put(("woke", [t.seq for t in ticks], woke - ticks[0].receive_ns if ticks else -1,
                     reader.late_wakeups))  # fmt: skip


def hold_ring(topology: str, broker: str, ready: Any, stop: Any) -> None:
    """Be the live writer of a ring until told to stop."""
    with TickRing(topology, broker, capacity=64):
        ready.set()
        stop.wait(30)


def crash_writer(topology: str, broker: str, ready: Any) -> None:
    """Create a ring and a table, write a little, then die without closing anything."""
    table = LatestTable(topology, broker, max_symbols=8)
    ring = TickRing(topology, broker, capacity=64, table=table)
    ring.write("trade", "AAPL", 1, 10.0, 1.0)
    ready.set()
    os._exit(0)


def update_table(topology: str, broker: str, ready: Any, stop: Any) -> None:
    """Hammer one symbol's last trade and last quote with self-consistent values."""
    with LatestTable(topology, broker, max_symbols=4) as table:
        n = 0
        quote = Tick.make("quote", "BTC/USD")
        table.put(Tick.make("trade", "BTC/USD"))
        table.put(quote)
        ready.set()
        while not stop.is_set():
            n += 1
            f = float(n)
            table.put(Tick.make("trade", "BTC/USD", seq=n, price=f, size=f, vwap=f,
                                exchange_ns=n))
            table.put(quote._replace(seq=n, bid=f, ask=f, ask_size=f, exchange_ns=n))


def update_ring_table(topology: str, broker: str, ready: Any, stop: Any) -> None:
    """A small ring writing a table: BTC/USD trades every record, ETH/USD every 150th (so
    the 64-slot ring laps its reference, which is copied in first); a record's numbers are
    all n."""
    with (
        LatestTable(topology, broker, max_symbols=4) as table,
        TickRing(topology, broker, capacity=64, table=table) as ring,
    ):
        btc, eth = encode_symbol("BTC/USD"), encode_symbol("ETH/USD")
        n = 0
        ring.extend_records([(TRADE, 0, 0, 0, 0, eth, 0.0, 0.0),
                             (TRADE, 0, 0, 0, 0, btc, 0.0, 0.0)])  # fmt: skip
        ready.set()
        while not stop.is_set():
            frame = []
            for _ in range(7):
                n += 1
                f = float(n)
                frame.append((TRADE, 0, 0, n, n, btc, f, f))
                if n % 150 == 0:
                    frame.append((TRADE, 0, 0, n, n, eth, f, f))
            ring.extend_records(frame)


def book_levels(n: int, depth: int) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    """Update n's book: every level a function of n, so a mix of two updates shows."""
    bids = [(float(n - i), float(n + i)) for i in range(depth)]
    asks = [(float(n + 1 + i), float(2 * n + i)) for i in range(depth)]
    return bids, asks


def book_checksum(bids: Any, asks: Any) -> int:
    """What the writer stores as receive_ns: the sum of every price and size of the book."""
    return int(sum(p + s for p, s in bids) + sum(p + s for p, s in asks))


def update_books(topology: str, broker: str, ready: Any, stop: Any) -> None:
    """Rewrite one symbol's 20-level book at full speed, each book carrying its update number
    (exchange_ns) and a checksum of its levels (receive_ns)."""
    from tradeops.bus import BookTable
    from tradeops.protocol.tick import encode_symbol

    raw = encode_symbol("BTC/USD")
    with BookTable(topology, broker, max_symbols=4) as table:
        n = 1
        bids, asks = book_levels(n, 20)
        table.write(raw, n, book_checksum(bids, asks), bids, asks)
        ready.set()
        while not stop.is_set():
            n += 1
            depth = 1 + n % 20  # the level counts change too
            bids, asks = book_levels(n, depth)
            table.write(raw, n, book_checksum(bids, asks), bids, asks)
