"""A /dev/shm too small for the bus: refused when the segment is created, with a message that
says what is needed, what is free and how to give more; nothing half-made is left behind.

tmpfs takes any ftruncate and allocates pages on first write, so before the reservation a
ring larger than the room left was created fine and its writer died of SIGBUS later, the first
time it wrote past the room. These tests mount a real small tmpfs and point the bus at it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.test_unwritable_run_dir import tmpfs
from tradeops.bus import BusSpaceError, LatestTable, RingReader, TickRing, names
from tradeops.bus.space import create_bus

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(60)]  # mounts a tmpfs


@pytest.fixture
def small_shm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An 8 MiB tmpfs where this process's bus segments go."""
    where = tmp_path / "shm"
    where.mkdir()
    with tmpfs(where, "size=8m"):
        monkeypatch.setattr(names, "SHM_DIR", where)
        yield where


def test_a_ring_larger_than_the_room_left_is_refused_at_creation(
    small_shm: Path, topology: str
) -> None:
    with pytest.raises(BusSpaceError) as caught:
        TickRing(topology, "alpaca")  # 48 MiB by default
    message = str(caught.value)
    assert f"tradeops-{topology}.alpaca.ring" in message
    assert "needs 48.0 MiB" in message
    assert f"{small_shm} has " in message and "MiB free of 8 MiB" in message
    assert "--shm-size" in message
    assert os.listdir(small_shm) == [], "the half-made segment must be removed"


def test_a_segment_that_fits_holds_all_its_pages_before_it_is_published(
    small_shm: Path, topology: str
) -> None:
    with TickRing(topology, "alpaca", capacity=1 << 14) as ring:  # 3 MiB
        stat = os.stat(small_shm / ring.name)
        assert stat.st_blocks * 512 >= stat.st_size, "pages are reserved, not left to first write"
        # A second one no longer fits in what is left: refused now, not at its 4,000th write.
        with pytest.raises(BusSpaceError, match=r"needs 6\.0 MiB"):
            TickRing(topology, "other", capacity=1 << 15)
        for seq in range(1, 2 * ring.capacity):  # two laps: every page written, no SIGBUS
            ring.append("trade", "AAPL", seq, 1.0, 1.0)
        ring.publish()
        assert ring.cursor == 2 * ring.capacity - 1


def test_the_gateways_bus_is_made_whole_or_not_at_all(small_shm: Path, topology: str) -> None:
    with pytest.raises(BusSpaceError) as caught:
        create_bus(topology, "alpaca")  # the tables fit; the ring does not
    assert os.listdir(small_shm) == [], "the tables made before the ring must be removed"
    # What the broker's whole bus needs, against what is free once the tables are gone.
    assert str(caught.value).startswith(
        "the bus of broker 'alpaca' (tick ring 48.0 MiB, latest-value table 4.0 MiB, book table "
    )
    assert " MiB) needs 53." in str(caught.value)
    assert "has 8.0 MiB free of 8 MiB" in str(caught.value)
    with LatestTable(topology, "alpaca"):  # and their room is free again
        pass


def test_without_the_reservation_the_writer_would_die_of_sigbus(small_shm: Path) -> None:
    """Why the reservation exists: the same segment, sized by ftruncate alone, is created
    without a word and kills its writer on the first write past the room."""
    script = (
        "import mmap, os, sys\n"
        f"fd = os.open({str(small_shm / 'bare')!r}, os.O_RDWR | os.O_CREAT, 0o600)\n"
        "os.ftruncate(fd, 48 << 20)\n"
        "mm = mmap.mmap(fd, 48 << 20)\n"
        "print('created', flush=True)\n"
        "for offset in range(0, 48 << 20, 4096):\n"
        "    mm[offset] = 1\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=30, check=False)  # fmt: skip
    os.unlink(small_shm / "bare")
    assert result.stdout == "created\n"
    assert result.returncode == -7, result  # SIGBUS


def test_a_segment_replacing_one_its_readers_still_map_is_made_even_without_room(
    small_shm: Path, topology: str
) -> None:
    """A gateway restarted after a crash: the old ring's readers hold its room until they move
    to the new one, so refusing would make every restart on a tight /dev/shm an outage."""
    old = TickRing(topology, "alpaca", capacity=1 << 15)  # 6 MiB of the 8
    reader = RingReader(topology, "alpaca")
    new = TickRing(topology, "alpaca", capacity=1 << 15)  # replaces it: 6 more do not fit
    try:
        assert old.reserved and not new.reserved
        assert reader.stale(), "the readers see the replacement and move"
        reader.close()
        old.close()  # the last mapping of the old one goes: its room is free again
        for seq in range(1, 2 * new.capacity):  # every page written, within the room
            new.append("trade", "AAPL", seq, 1.0, 1.0)
        assert new.publish() == 2 * new.capacity - 1
    finally:
        reader.close()
        old.close()
        new.close()
