"""What the supervisor hands a starting host (supervisor.py `_host_launch`): the group's part
of the topology file as it is now, or nothing (the host then reads the file itself)."""

from __future__ import annotations

from pathlib import Path

from tradeops.process.paths import RunPaths
from tradeops.runtime.config import Launch
from tradeops.supervisor.supervisor import Supervisor
from tradeops.topology.load import load_topology

TOPOLOGY = """version: 1
name: handing
settings: {{run_dir: {run}}}
brokers:
  sim: {{adapter: sim}}
strategies:
  one:
    class: tests.runtime.strategies:Recorder
    broker: sim
    symbols: [AAPL]
    params: {{threshold: {threshold}}}
"""


def supervisor(tmp_path: Path) -> tuple[Supervisor, Path]:
    file = tmp_path / "t.yaml"
    file.write_text(TOPOLOGY.format(run=tmp_path / "run", threshold="1"))
    topology = load_topology(file)
    return Supervisor(topology, file, RunPaths(tmp_path / "run", "handing"), lambda _: None), file


def handed(sup: Supervisor) -> Launch | None:
    data = sup._host_launch(sup.children["one"].spec)
    return None if data is None else Launch.from_json(data.decode())


def test_the_host_is_handed_the_file_as_it_is_now(tmp_path: Path) -> None:
    sup, file = supervisor(tmp_path)
    first = handed(sup)
    assert first is not None and first.host.strategies["one"].params == {"threshold": 1}
    file.write_text(TOPOLOGY.format(run=tmp_path / "run", threshold="22"))  # edited, not applied
    again = handed(sup)
    assert again is not None and again.host.strategies["one"].params == {"threshold": 22}


def test_a_file_that_does_not_load_or_params_json_cannot_carry_hand_over_nothing(
    tmp_path: Path,
) -> None:
    sup, file = supervisor(tmp_path)
    file.write_text("version: 1\nname: handing\nbrokers: {}\n")  # no longer valid
    assert handed(sup) is None
    file.write_text(TOPOLOGY.format(run=tmp_path / "run", threshold="2026-01-02"))  # a date
    assert handed(sup) is None
    file.unlink()
    assert handed(sup) is None
