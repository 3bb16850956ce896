"""Sleeping readers: woken by the writer's doorbell, not by their backstop timeout."""

from __future__ import annotations

import time
from collections.abc import Callable
from multiprocessing.context import SpawnProcess

import pytest

from tests.bus import workers
from tests.bus.conftest import SPAWN
from tests.waiting import wait_for
from tradeops.bus import RingReader, TickRing

Spawn = Callable[..., SpawnProcess]


@pytest.mark.e2e
def test_a_sleeping_reader_in_another_process_wakes_when_data_is_published(
    topology: str, spawn: Spawn
) -> None:
    results = SPAWN.Queue()
    with TickRing(topology, "sim", capacity=64) as ring:
        spawn(workers.sleep_then_read, topology, "sim", results)
        assert results.get(timeout=30) == ("ready", 1)
        wait_for(lambda: [r.sleeping for r in ring.readers()] == [True], what="reader asleep")
        assert ring.rings == 0
        ring.write("trade", "AAPL", 1, 10.0, 1.0)
        tag, seqs, age_ns, late_wakeups = results.get(timeout=30)
    assert (tag, seqs) == ("woke", [1])
    assert ring.rings == 1  # the doorbell rang once...
    assert late_wakeups == 0  # ...and that is what woke the reader, not its backstop timeout
    assert age_ns > 0  # how soon: benchmarks/bus_bench.py measures the wake-up latency


def test_the_writer_rings_no_doorbell_while_nobody_sleeps(topology: str) -> None:
    with TickRing(topology, "sim", capacity=64) as ring, RingReader(topology, "sim") as reader:
        for i in range(10):
            ring.write("trade", "AAPL", i, 1.0)
        assert len(reader.read()) == 10
        assert ring.rings == 0
        assert [r.sleeping for r in ring.readers()] == [False]


def test_waiting_gives_up_after_its_timeout_and_leaves_the_reader_awake(topology: str) -> None:
    with TickRing(topology, "sim", capacity=64) as ring, RingReader(topology, "sim") as reader:
        started = time.monotonic()
        assert reader.read(timeout=0.03) == []  # it returns (the test's timeout bounds it)...
        assert time.monotonic() - started >= 0.03  # ...once its timeout has passed
        assert [r.sleeping for r in ring.readers()] == [False]


@pytest.mark.e2e
def test_a_busy_polling_reader_in_another_process_gets_every_tick(
    topology: str, spawn: Spawn
) -> None:
    results = SPAWN.Queue()
    with TickRing(topology, "sim", capacity=1 << 12) as ring:
        spawn(workers.read_until, topology, "sim", 2000, True, results, 1)
        assert results.get(timeout=30)[0] == "ready"
        for seq in range(1, 2001):
            ring.write("trade", "AAPL", seq, float(seq), float(seq), 0, 0, 0, 0, 0, 0, 0, 0, 0,
                       float(seq))  # fmt: skip
        _tag, count, first, last, gaps, lost, bad = results.get(timeout=30)
        assert (count, first, last, gaps, lost, bad) == (2000, [1], [2000], 0, 0, 0)
        assert ring.rings == 0  # a spinning reader never asks for the doorbell


def test_a_readable_socket_ends_a_wait_early(topology: str) -> None:
    import socket

    from tradeops.bus.reader import RingReader
    from tradeops.bus.ring import TickRing

    with TickRing(topology, "b", capacity=64) as ring:
        reader = RingReader(topology, "b")
        a, b = socket.socketpair()
        try:
            b.send(b"x")
            # A timeout no test outlives: only the readable socket can end this wait.
            assert reader.wait(3600.0, [a.fileno()]) is False
            ring.write("trade", "AAPL", 1, 10.0, 1.0)
            assert reader.wait(3600.0, [a.fileno()]) is True  # data wins
        finally:
            a.close()
            b.close()
            reader.close()
