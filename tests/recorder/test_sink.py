"""One broker's recording against a real ring in shared memory, on a thread: laps, a new
epoch, and what status shows of them."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.waiting import wait_for
from tradeops.bus import TickRing, remove_segments
from tradeops.recorder.sink import BrokerRecorder, RecordPlan
from tradeops.recording import catalog
from tradeops.supervisor.status import render_status

pytestmark = pytest.mark.timeout(60)
T0 = 1_777_000_000 * 10**9


@pytest.fixture
def bus() -> Iterator[str]:
    name = f"test-{uuid.uuid4().hex[:12]}"
    yield name
    assert remove_segments(name) == [], "bus files left behind"


def publish(ring: TickRing, count: int) -> None:
    """`count` trades in one batch: one publish, as a gateway's burst."""
    for _ in range(count):
        ring.append("trade", "AAPL", T0 + ring.cursor, 100.0, 1.0)
    ring.publish()


def recording(bus: str, root: Path, stop: threading.Event) -> BrokerRecorder:
    plan = RecordPlan(root, "sim", bus, root / "unused.sock", None,
                      frozenset({"trade", "quote", "bar"}), flush=0.05, roll=3600.0)
    sink = BrokerRecorder(plan, stop, None)
    sink.thread.start()
    return sink


def test_a_lap_is_counted_shown_and_written_before_the_next_row(bus: str, tmp_path: Path) -> None:
    ring = TickRing(bus, "sim", capacity=64)
    stop = threading.Event()
    try:
        publish(ring, 10)
        sink = recording(bus, tmp_path, stop)
        wait_for(lambda: sink.figures.seq == 10, what="the first ticks written")
        publish(ring, 1000)  # one burst of 1000 into 64 slots: the reader is lapped
        wait_for(lambda: sink.figures.seq == 1010, what="the ticks after the lap written")
    finally:
        stop.set()
        ring.close()
    sink.thread.join(10)
    assert sink.error is None
    table = catalog.read(tmp_path)
    seqs, lost = table["seq"].to_pylist(), table["lost_before"].to_pylist()
    first_after = seqs[10]
    assert seqs[:10] == list(range(1, 11)) and first_after > 11
    assert lost[10] == first_after - 11 and sum(lost) == first_after - 11
    assert seqs[10:] == list(range(first_after, 1011))
    assert sink.figures.gaps == 1 and sink.figures.last_gap is not None
    assert sink.figures.last_gap["lost"] == first_after - 11

    row = {"name": "recorder", "role": "recorder", "state": "running", "pid": 1, "uptime": 1.0,
           "restarts": 0, "cpu": 1.0, "rss": 1, "pin": None,
           "stats": {"brokers": {"sim": {"rows": len(seqs), "files": 1, "lost": lost[10],
                                         "gaps": 1, "last_gap": sink.figures.last_gap}}}}
    text = render_status({"desk": "d", "pid": 1, "uptime": 1.0, "processes": [row]})
    assert f"sim: {len(seqs)} rows, 1 files, lost {lost[10]} in 1 gaps" in text


def test_a_new_epoch_is_recorded_from_its_first_tick_with_its_own_session(
    bus: str, tmp_path: Path
) -> None:
    ring = TickRing(bus, "sim", capacity=1024)
    stop = threading.Event()
    try:
        publish(ring, 5)
        sink = recording(bus, tmp_path, stop)
        wait_for(lambda: sink.figures.seq == 5, what="the first epoch written")
        first = sink.figures.session
        ring.close()  # the gateway stops; a new one writes a new ring
        ring = TickRing(bus, "sim", capacity=1024)
        publish(ring, 7)
        wait_for(lambda: sink.figures.session != first and sink.figures.seq == 7,
                 what="the new epoch written")
    finally:
        stop.set()
        ring.close()
    sink.thread.join(10)
    table = catalog.read(tmp_path)
    sessions = table["session"].to_pylist()
    assert table["seq"].to_pylist() == [1, 2, 3, 4, 5, 1, 2, 3, 4, 5, 6, 7]
    assert len(set(sessions)) == 2 and sessions[0] < sessions[-1]
    assert sum(table["lost_before"].to_pylist()) == 0


def test_an_unexpected_error_ends_the_reader_as_a_crash_not_silently(
    bus: str, tmp_path: Path
) -> None:
    ring = TickRing(bus, "sim", capacity=64)
    stop = threading.Event()
    try:
        publish(ring, 5)
        sink = recording(bus, tmp_path, stop)
        wait_for(lambda: sink.figures.seq == 5, what="the first ticks written")

        def broken() -> None:  # the fault: a bug in the writing path
            raise RuntimeError("a bug")

        sink._write = broken  # type: ignore[method-assign]
        publish(ring, 5)
        sink.thread.join(10)
        assert not sink.thread.is_alive()  # the recorder's main loop sees it end
        assert sink.crashed == "RuntimeError: a bug" and sink.error is None
    finally:
        stop.set()
        ring.close()
