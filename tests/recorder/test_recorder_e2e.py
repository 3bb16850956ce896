"""The recorder on real desks: what it writes, a kill -9, a directory it cannot write."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.e2e.desk import Desk
from tests.e2e.test_desk import desk_body, recorder
from tests.waiting import wait_for
from tradeops.recording import catalog

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(150)]


def recording_desk(make_desk: object, tmp_path: Path, name: str, record: str) -> Desk:
    desk: Desk = make_desk(name, desk_body(tmp_path, recorder("rec", tmp_path)))  # type: ignore[operator]
    desk.edit("settings:\n", f"settings:\n  record: {record}\n")
    return desk


def recorder_rows(desk: Desk) -> int:
    stats = desk.proc("recorder")["stats"]
    return int(stats.get("brokers", {}).get("sim", {}).get("rows", 0))


def only_closed_files(root: Path) -> list[Path]:
    """Every file of the recording once the desk is down: closed and readable, nothing else."""
    left = [p for p in root.rglob("*") if p.is_file() and p.suffix != ".parquet"
            and p.name != "_position.json"]
    assert left == [], f"unfinished files left: {left}"
    found = sorted(root.rglob("*.parquet"))
    for path in found:
        pq.read_table(path)  # raises on a torn file
    return found


def test_a_desk_records_every_tick_of_its_bus_and_status_shows_it(
    make_desk: object, tmp_path: Path
) -> None:
    desk = recording_desk(make_desk, tmp_path, "e2erecord", "{dir: data, flush: 500ms}")
    desk.up()
    wait_for(lambda: recorder_rows(desk) > 100, timeout=30, what="rows in the recorder's status")
    text = desk.cli("status", "--file", str(desk.file)).stdout
    assert "recorder" in text and "sim: " in text and " rows, " in text
    assert desk.down().returncode == 0
    files = only_closed_files(tmp_path / "data")
    assert files and all("broker=sim" in str(f) and "/date=" in str(f) for f in files)
    table = catalog.read(tmp_path / "data")
    seqs = table["seq"].to_pylist()
    assert seqs == list(range(1, len(seqs) + 1)), "a tick is missing or twice"
    assert set(table["kind"].cast("string").to_pylist()) <= {"trade", "quote", "bar"}
    assert set(table["symbol"].to_pylist()) == {"AAPL", "MSFT"}
    assert len(set(table["session"].to_pylist())) == 1
    assert sum(table["lost_before"].to_pylist()) == 0
    listed = desk.cli("data", "ls", "-f", str(desk.file))
    assert listed.returncode == 0 and "sim" in listed.stdout, listed.stderr


def test_a_kill_9_leaves_complete_files_and_loses_at_most_one_flush_window(
    make_desk: object, tmp_path: Path
) -> None:
    desk = recording_desk(make_desk, tmp_path, "e2ereckill", "{dir: data, flush: 500ms}")
    desk.up()
    first = desk.proc("recorder")
    wait_for(lambda: recorder_rows(desk) > 50, timeout=30, what="rows written")
    os.kill(first["pid"], signal.SIGKILL)
    wait_for(lambda: (r := desk.proc("recorder"))["state"] == "running"
             and r["pid"] != first["pid"], timeout=30, what="the recorder restarted")
    wait_for(lambda: recorder_rows(desk) > 50, timeout=30, what="rows after the restart")
    log = (desk.run_dir / "logs" / "recorder.log").read_text()
    assert "recovered" in log and "unfinished file" in log
    assert desk.down().returncode == 0
    only_closed_files(tmp_path / "data")
    seqs = catalog.read(tmp_path / "data")["seq"].to_pylist()
    assert len(seqs) == len(set(seqs)), "a tick was recorded twice"
    # The promise is at most one flush window (500 ms at 80 ticks/s: 40 ticks); the ring
    # still held what the killed recorder had not written, so nothing is lost at all.
    missing = set(range(1, max(seqs) + 1)) - set(seqs)
    assert len(missing) <= 40
    assert missing == set()


def test_an_unwritable_directory_makes_the_recorder_fatal_and_the_desk_trades_on(
    make_desk: object, tmp_path: Path
) -> None:
    (tmp_path / "blocker").write_text("a file where the recording's folder should be")
    desk = recording_desk(make_desk, tmp_path, "e2ereccant", "{dir: blocker/data}")
    result = desk.cli("up", "--detach", str(desk.file), timeout=120)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "recorder: fatal" in result.stdout + result.stderr
    row = desk.proc("recorder")
    assert row["state"] == "fatal" and "Not a directory" in row["reason"]
    assert "blocker" in row["reason"]
    count = len(desk.lines("rec"))
    wait_for(lambda: len(desk.lines("rec")) > count + 20, timeout=30,
             what="the strategy to keep getting ticks")
    assert desk.proc("gateway-sim")["restarts"] == 0
    assert desk.proc("recorder")["restarts"] == 0, "a fatal recorder must not be restarted"
    assert desk.down().returncode == 0


def test_a_full_disk_makes_the_recorder_fatal_and_the_desk_trades_on(
    make_desk: object, tmp_path: Path
) -> None:
    from tests.e2e.test_unwritable_run_dir import fill, tmpfs

    desk = recording_desk(make_desk, tmp_path, "e2erecfull", "{dir: data, flush: 200ms}")
    with tmpfs(tmp_path / "data", "size=4m"):
        desk.up()
        wait_for(lambda: recorder_rows(desk) > 20, timeout=30, what="rows written")
        fill(tmp_path / "data")
        row = wait_for(lambda: (r := desk.proc("recorder"))["state"] == "fatal" and r,
                       timeout=30, what="the recorder to go fatal")
        assert "No space left on device" in row["reason"]
        count = len(desk.lines("rec"))
        wait_for(lambda: len(desk.lines("rec")) > count + 20, timeout=30,
                 what="the strategy to keep getting ticks")
        assert desk.proc("gateway-sim")["restarts"] == 0
        assert desk.proc("rec")["restarts"] == 0
        text = desk.cli("status", "--file", str(desk.file)).stdout
        assert "fatal" in text and "No space left" in text
        assert desk.down().returncode == 0


def test_recorded_symbols_are_subscribed_on_the_recorders_own_lease(
    make_desk: object, tmp_path: Path
) -> None:
    desk: Desk = make_desk("e2erecsyms", """
brokers:
  sim: {adapter: sim, market: {seed: 3, rate: 40}}
""")  # type: ignore[operator]
    desk.edit("settings:\n", "settings:\n  record: {dir: data, flush: 200ms, symbols: [NVDA],"
                             " kinds: [quote]}\n")
    desk.up()  # no strategy wants anything: only the recorder's subscription makes ticks flow
    wait_for(lambda: recorder_rows(desk) > 20, timeout=30, what="the recorder's own ticks")
    assert desk.down().returncode == 0
    table = catalog.read(tmp_path / "data")
    assert set(table["symbol"].to_pylist()) == {"NVDA"}
    assert set(table["kind"].cast("string").to_pylist()) == {"quote"}
