"""The ring across real processes (spawned): many readers, dead readers, crashed writers."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from multiprocessing.context import SpawnProcess

import pytest

from tests.bus import workers
from tests.bus.conftest import SPAWN
from tests.waiting import wait_for
from tradeops.bus import (
    LatestTable,
    RingReader,
    SegmentBusyError,
    TickRing,
    list_segments,
    remove_segments,
)

pytestmark = pytest.mark.e2e

Spawn = Callable[..., SpawnProcess]


def test_many_reader_processes_each_get_every_tick_intact(topology: str, spawn: Spawn) -> None:
    total = 60_000
    results = SPAWN.Queue()
    with TickRing(topology, "sim", capacity=1 << 17) as ring:
        # Three sleeping readers and one busy-polling one, all from seq 1.
        for busy in (False, False, False, True):
            spawn(workers.read_until, topology, "sim", total, busy, results, 1)
        assert all(results.get(timeout=30)[0] == "ready" for _ in range(4))
        workers._write(ring, total, batch=50)
        done = [results.get(timeout=30) for _ in range(4)]
    for _tag, count, first, last, gaps, lost, bad in done:
        assert (count, first, last, gaps, lost, bad) == (total, [1], [total], 0, 0, 0)


def test_a_reader_racing_a_fast_writer_never_sees_a_torn_tick_and_accounts_for_every_seq(
    topology: str, spawn: Spawn
) -> None:
    total = 300_000
    # The writer lives in another process so it truly races this reader, in a ring of 64.
    child = spawn(workers.write_consistent, topology, "race", total, 8, 64)
    reader = wait_for(lambda: _attach(topology, "race"), what="the racing writer's ring")
    try:
        seen = bad = 0
        previous = 0
        while not reader.stale() or reader.available:
            for tick in reader.read(16, timeout=0.05):
                assert tick.seq > previous
                previous = tick.seq
                bad += not workers._consistent(tick)
                seen += 1
    finally:
        reader.close()
        child.join(timeout=30)
    assert child.exitcode == 0
    assert bad == 0
    assert reader.next_seq == total + 1  # read to the end (the last ticks may be lost to a lap)
    assert seen + reader.lost == total  # every seq was either read or counted lost
    assert reader.laps >= 1


def _attach(topology: str, broker: str) -> RingReader | None:
    try:
        return RingReader(topology, broker, start=1)
    except FileNotFoundError:
        return None


def test_the_writer_never_blocks_on_a_dead_or_stopped_reader(topology: str, spawn: Spawn) -> None:
    # One queue per child: a child killed while its queue's feeder holds the queue's shared
    # lock would wedge a queue shared with the other.
    dead_results, stopped_results = SPAWN.Queue(), SPAWN.Queue()
    with TickRing(topology, "sim", capacity=1 << 17) as ring:
        dead = spawn(workers.sleep_then_read, topology, "sim", dead_results)
        stopped = spawn(workers.sleep_then_read, topology, "sim", stopped_results)
        assert dead_results.get(timeout=30)[0] == stopped_results.get(timeout=30)[0] == "ready"
        wait_for(lambda: sum(r.sleeping for r in ring.readers()) == 2, what="both asleep")
        os.kill(dead.pid, signal.SIGKILL)
        dead.join(timeout=10)
        os.kill(stopped.pid, signal.SIGSTOP)
        try:
            # One publish each: more rings than a FIFO holds. A writer that blocked on the
            # stopped reader would never finish (the test's timeout would end it).
            for i in range(100_000):
                ring.write("trade", "AAPL", i, 1.0)
            assert ring.cursor == 100_000
            # The stopped reader's FIFO filled up (64 KiB) and was then skipped, not waited on.
            assert 0 < ring.rings < 100_000
        finally:
            os.kill(stopped.pid, signal.SIGCONT)
        tag, seqs, _age, _late = stopped_results.get(timeout=30)
        assert tag == "woke" and seqs[0] == 1  # the stopped reader resumed where it slept


def test_a_second_live_writer_is_refused(topology: str, spawn: Spawn) -> None:
    ready, stop = SPAWN.Event(), SPAWN.Event()
    spawn(workers.hold_ring, topology, "sim", ready, stop)
    assert ready.wait(30)
    with pytest.raises(SegmentBusyError, match="written by live process"):
        TickRing(topology, "sim", capacity=64)
    stop.set()
    wait_for(lambda: list_segments(topology) == [], what="the child to close its ring")


def test_a_crashed_writers_segments_are_stale_replaceable_and_removable(
    topology: str, spawn: Spawn
) -> None:
    other = f"{topology}-b"  # a topology whose name extends ours must not be touched
    ready = SPAWN.Event()
    proc = spawn(workers.crash_writer, topology, "sim", ready)
    assert ready.wait(30)
    proc.join(timeout=10)
    assert list_segments(topology) == [
        f"tradeops-{topology}.sim.ring",
        f"tradeops-{topology}.sim.table",
    ]
    reader = RingReader(topology, "sim", start="oldest")
    try:
        assert [t.symbol for t in reader.read()] == ["AAPL"]  # history survives the crash
        with TickRing(other, "sim", capacity=16), LatestTable(other, "sim", max_symbols=2):
            # A restarted gateway replaces the stale ring; the old reader sees it moved.
            with TickRing(topology, "sim", capacity=16) as ring:
                assert ring.cursor == 0
                assert reader.stale()
            ring_left = list_segments(topology)
            assert ring_left == [f"tradeops-{topology}.sim.table"]
            assert remove_segments(topology) == [f"tradeops-{topology}.sim.table"]
            assert list_segments(other) == [
                f"tradeops-{other}.sim.ring",
                f"tradeops-{other}.sim.table",
            ]
    finally:
        reader.close()
    assert list_segments(other) == []
