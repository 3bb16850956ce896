"""Reading recordings: partitions for `data ls`, rows in recorded order, and the replay."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.recording.helpers import T0, ticks, write_file
from tradeops.cli import app
from tradeops.recording import catalog, files
from tradeops.sim.options import SimConfigError, SimOptions
from tradeops.sim.replay import load_rows

DAY = 86_400 * 10**9


def _recording(root: Path) -> None:
    write_file(root, "sim", ticks(10, start_ns=T0), session=1)
    write_file(root, "sim", ticks(6, first_seq=11, start_ns=T0 + DAY), session=1)
    write_file(root, "sim", ticks(4, first_seq=1, start_ns=T0 + DAY + 10**9), session=2)


def test_partitions_count_files_rows_and_the_time_range(tmp_path: Path) -> None:
    _recording(tmp_path)
    (tmp_path / "broker=sim/date=2026-04-25/.part-3-000000000001.arrows").write_bytes(b"")
    parts = catalog.partitions(tmp_path)
    assert [(p.broker, p.date, p.files, p.rows, p.open_files) for p in parts] == [
        ("sim", "2026-04-24", 1, 10, 0), ("sim", "2026-04-25", 2, 10, 1)]
    assert parts[0].first_ns == T0 and parts[0].last_ns == T0 + 9 * 10**6
    assert parts[1].bytes > 0


def test_rows_come_in_recorded_order_across_sessions_and_days(tmp_path: Path) -> None:
    _recording(tmp_path)
    table = catalog.read(tmp_path)
    assert list(zip(table["session"].to_pylist(), table["seq"].to_pylist(), strict=True)) == [
        *((1, s) for s in range(1, 17)), *((2, s) for s in range(1, 5))]
    window = catalog.read(tmp_path, start_ns=T0 + DAY, end_ns=T0 + DAY + 10**9)
    assert window["seq"].to_pylist() == list(range(11, 17))


def test_several_brokers_must_be_told_apart(tmp_path: Path) -> None:
    write_file(tmp_path, "a", ticks(2))
    write_file(tmp_path, "b", ticks(3))
    with pytest.raises(catalog.NotARecording, match="holds brokers a, b"):
        catalog.read(tmp_path)
    assert catalog.read(tmp_path, "b").num_rows == 3
    assert catalog.read(tmp_path / "broker=a").num_rows == 2


def test_the_sim_replays_a_recording_in_recorded_order_within_its_window(
    tmp_path: Path,
) -> None:
    _recording(tmp_path)
    rows = load_rows(tmp_path, SimOptions(replay_from=T0 + DAY))
    assert [r.kind for r in rows[:2]] == ["q", "t"]
    assert len(rows) == 10 and rows[0].offset_ns == 0
    assert [r.offset_ns for r in rows] == sorted(r.offset_ns for r in rows)
    only = load_rows(tmp_path, SimOptions(replay_to=T0 + 3 * 10**6))
    assert [(r.kind, r.price, r.bid) for r in only] == [
        ("q", 0.0, 99.0), ("t", 100.01, 0.0), ("q", 0.0, 99.02)]


def test_a_replay_of_nothing_says_so(tmp_path: Path) -> None:
    _recording(tmp_path)
    with pytest.raises(SimConfigError, match="no trades or quotes"):
        load_rows(tmp_path, SimOptions(replay_symbols=("MSFT",)))
    with pytest.raises(SimConfigError, match="no recording"):
        load_rows(tmp_path / "broker=sim" / "date=2026-04-24", SimOptions())


def test_data_commands_list_summarise_and_print(tmp_path: Path) -> None:
    _recording(tmp_path)
    runner = CliRunner()
    listed = runner.invoke(app, ["data", "ls", str(tmp_path)])
    assert listed.exit_code == 0, listed.output
    assert "2026-04-24" in listed.output and "2026-04-25" in listed.output
    shown = runner.invoke(app, ["data", "show", str(tmp_path)])
    assert shown.exit_code == 0 and "rows:     20" in shown.output
    assert "sessions: 2" in shown.output
    head = runner.invoke(app, ["data", "head", str(tmp_path), "-n", "3", "--format", "json"])
    assert head.exit_code == 0, head.output
    assert '"seq": 3' in head.output and '"seq": 4' not in head.output
    missing = runner.invoke(app, ["data", "ls", str(tmp_path / "nope")])
    assert missing.exit_code == 2 and "not a directory" in missing.output


def test_data_finds_the_topologys_recording_directory(tmp_path: Path) -> None:
    (tmp_path / "desk.yaml").write_text(
        "version: 1\nname: d\nsettings: {record: {dir: rec}}\n"
        "brokers: {sim: {adapter: sim}}\n")
    _recording(tmp_path / "rec")
    listed = CliRunner().invoke(app, ["data", "ls", "-f", str(tmp_path / "desk.yaml")])
    assert listed.exit_code == 0 and "2026-04-25" in listed.output
    (tmp_path / "plain.yaml").write_text(
        "version: 1\nname: d\nbrokers: {sim: {adapter: sim}}\n")
    none = CliRunner().invoke(app, ["data", "ls", "-f", str(tmp_path / "plain.yaml")])
    assert none.exit_code == 2 and "records nothing" in none.output


def test_an_empty_directory_is_an_empty_recording(tmp_path: Path) -> None:
    listed = CliRunner().invoke(app, ["data", "ls", str(tmp_path)])
    assert listed.exit_code == 0 and "no recording" in listed.output
    assert files.read_position(tmp_path, "sim") is None
