"""A strategy host is handed its configuration by its supervisor (runtime/config.py): it
runs without loading the topology model, `restart` still picks up the file as it is now,
and a group whose params JSON cannot carry unchanged reads the file itself."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.e2e.desk import Desk
from tests.e2e.test_desk import desk_body, recorder
from tests.waiting import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]


def maps_pydantic(pid: int) -> bool:
    """Whether the process has pydantic's compiled core mapped (it imported pydantic)."""
    return "pydantic_core" in Path(f"/proc/{pid}/maps").read_text()


def test_hosts_run_handed_their_configuration_and_restart_reads_the_file_as_it_is_now(
    make_desk: Any, tmp_path: Path,
) -> None:
    dated = recorder("dated", tmp_path).replace(
        '.seq"}', '.seq", day: 2026-01-02}')  # a YAML date: JSON has no such type
    desk: Desk = make_desk("launched", desk_body(tmp_path, recorder("handed", tmp_path) + dated))
    desk.up()
    wait_for(lambda: len(desk.lines("handed")) > 5 and len(desk.lines("dated")) > 5,
             what="ticks at both hosts")
    assert not maps_pydantic(desk.proc("handed")["pid"])  # handed over: no model loaded
    assert maps_pydantic(desk.proc("dated")["pid"])  # read the file itself, and runs

    # The file is edited: the restarted host writes where the file now says.
    desk.edit(f'"{tmp_path / "handed.seq"}"', f'"{tmp_path / "moved.seq"}"')
    before = desk.proc("handed")["pid"]
    restarted = desk.cli("restart", "handed", "--file", str(desk.file))
    assert restarted.returncode == 0, restarted.stdout + restarted.stderr
    wait_for(lambda: len(desk.lines("moved")) > 5, what="ticks where the edited file says")
    pid = desk.proc("handed")["pid"]
    assert pid != before and not maps_pydantic(pid)
