"""Running a real desk from a test: `tradeops up --detach`, status, commands, cleanup.

The commands a test is about go through the CLI (`cli`, `up`, `down`, `status_cli`). Polls
and teardown ask the supervisor on its control socket from the test's process instead: a
CLI run costs ~0.8 s of interpreter start on a loaded machine, and a wait polls many times.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from tests.conftest import REPO

SCRIPT = Path(sys.executable).parent / "tradeops"




def processes_mentioning(text: str) -> list[int]:
    """Pids whose command line contains `text` (the desk's unique topology path)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline:
            pids.append(int(entry.name))
    return pids


def alive(pid: int) -> bool:
    """Whether `pid` still runs (a zombie waiting for its reaper does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def shm_segments(name: str) -> list[str]:
    from tradeops.bus.names import list_segments

    return list_segments(name)


def assert_nothing_left(desk: Desk) -> None:
    """After cleanup: no process of the desk, no shared memory."""
    assert processes_mentioning(str(desk.file)) == [], "a process outlived the test"
    assert shm_segments(desk.bus) == [], "shared memory outlived the test"


class Desk:
    def __init__(self, tmp_path: Path, name: str, body: str) -> None:
        self.name = name
        self.dir = tmp_path
        self.run_dir = tmp_path / "run"
        self.file = tmp_path / f"{name}.yaml"
        header = (
            f"version: 1\nname: {name}\nsettings:\n  run_dir: {self.run_dir}\n"
            '  proxy: {listen: "127.0.0.1:0"}\n'
        )  # tests run desks side by side
        self.file.write_text(header + textwrap.dedent(body).lstrip("\n"))

    @property
    def control(self) -> Path:
        """The supervisor's control socket."""
        from tradeops.process.paths import RunPaths

        return RunPaths(self.run_dir.resolve(), self.name).control

    @property
    def bus(self) -> str:
        """The desk's shared-memory namespace."""
        from tradeops.process.paths import RunPaths

        return RunPaths(self.run_dir.resolve(), self.name).bus

    def cli(
        self, *args: str, timeout: float = 60.0, cwd: Path = REPO, input_: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout, cwd=cwd,
            input=input_ if input_ is not None else "",
        )

    def edit(self, old: str, new: str) -> None:
        """Change the topology file's text (a setting the header fixes, for example)."""
        text = self.file.read_text()
        assert old in text, old
        self.file.write_text(text.replace(old, new))

    def up(self) -> subprocess.CompletedProcess[str]:
        result = self.cli("up", "--detach", str(self.file), timeout=120)
        assert result.returncode == 0, result.stdout + result.stderr
        return result

    def status(self) -> dict[str, Any]:
        """What `tradeops status --format json` prints, asked without a CLI run."""
        from tradeops.supervisor.control import request

        return request(self.control, {"cmd": "status"})

    def status_cli(self) -> dict[str, Any]:
        result = self.cli("status", "--file", str(self.file), "--format", "json")
        assert result.returncode in (0, 1), result.stdout + result.stderr  # 1: degraded
        data: dict[str, Any] = json.loads(result.stdout)
        return data

    def proc(self, name: str) -> dict[str, Any]:
        (row,) = [p for p in self.status()["processes"] if p["name"] == name]
        return row

    def supervisor_pid(self) -> int:
        return int(self.status()["pid"])

    def lines(self, name: str) -> list[int]:
        path = self.dir / f"{name}.seq"
        return [int(x) for x in path.read_text().split()] if path.exists() else []

    def down(self) -> subprocess.CompletedProcess[str]:
        return self.cli("down", "--file", str(self.file), timeout=120)

    def stop(self) -> None:
        """`tradeops down` without the CLI run: ask for it, wait for the supervisor to exit."""
        from tests.waiting import wait_for
        from tradeops.supervisor.control import NotRunning, request

        try:
            reply = request(self.control, {"cmd": "down"}, timeout=120)
        except NotRunning:
            return
        pid = int(reply.get("pid", 0))
        wait_for(lambda: not alive(pid), 30, "the supervisor to exit")

    def cleanup(self) -> None:
        """Whatever a test left: stop the desk, then make sure nothing of it survives."""
        if self.control.exists():
            self.stop()
        for pid in processes_mentioning(str(self.file)):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
        for seg in shm_segments(self.bus):
            (Path("/dev/shm") / seg).unlink(missing_ok=True)
