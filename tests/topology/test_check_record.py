"""Validate's checks of `settings.record`, and the recorder's place among the processes."""

from __future__ import annotations

from pathlib import Path

from tests.topology.helpers import base, codes, only, run
from tradeops.process.spec import process_specs
from tradeops.recording.layout import recording_dir
from tradeops.topology.load import load_topology


def test_a_recorder_naming_an_unknown_broker(tmp_path: Path) -> None:
    data = base()
    data["settings"] = {"record": {"dir": "rec", "brokers": ["smi"]}}
    f = only(run(tmp_path, data), "unknown-broker")
    assert "settings.record names broker 'smi'" in f.message and "did you mean" in f.fix.lower()


def test_recorded_symbols_are_checked_against_each_recorded_broker(tmp_path: Path) -> None:
    data = base()
    data["settings"] = {"record": {"dir": "rec", "symbols": ["aapl"]}}
    f = only(run(tmp_path, data), "symbol-format")
    assert "broker 'sim' is recorded" in f.message and "AAPL" in f.fix


def test_recorded_symbols_count_against_the_pool(tmp_path: Path) -> None:
    data = base()
    data["settings"] = {"record": {"dir": "rec",
                                   "symbols": [f"S{chr(65 + i)}" for i in range(19)]}}
    f = only(run(tmp_path, data), "capacity")
    assert "needs 21 distinct symbols" in f.message


def test_empty_lists_and_a_file_for_a_directory(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("")
    data = base()
    data["settings"] = {"record": {"dir": "afile", "brokers": [], "symbols": []}}
    found = codes(run(tmp_path, data))
    assert found.count("empty-record") == 2 and "record-dir" in found


def test_unknown_keys_and_kinds_are_errors(tmp_path: Path) -> None:
    data = base()
    data["settings"] = {"record": {"dir": "rec", "kinds": ["trades"], "flsh": "1s"}}
    found = run(tmp_path, data)
    assert codes(found).count("invalid-value") == 1
    assert "flush" in only(found, "unknown-key").fix


def test_a_recording_desk_runs_a_recorder_before_its_hosts_in_its_own_folder(
    tmp_path: Path,
) -> None:
    data = base()
    data["settings"] = {"record": {"dir": "rec"}}
    assert run(tmp_path, data) == []
    topology = load_topology(tmp_path / "topology.yaml")
    specs = {s.name: s for s in process_specs(topology)}
    assert specs["recorder"].role == "recorder"
    assert specs["recorder"].tier < specs["group"].tier
    assert recording_dir(topology, tmp_path / "topology.yaml") == (tmp_path / "rec").resolve()


def test_the_recorder_name_is_reserved(tmp_path: Path) -> None:
    data = base()
    data["processes"] = {"recorder": {"strategies": ["alpha", "beta"]}}
    assert only(run(tmp_path, data), "reserved-name").name == "recorder"
