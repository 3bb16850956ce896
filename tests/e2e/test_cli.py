"""The CLI a user meets, with real processes: finding a desk from anywhere, refusing what
cannot work before it starts, and a foreground desk that is down when the prompt returns."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
from pathlib import Path

import pytest

from tests.e2e.desk import SCRIPT, Desk, processes_mentioning
from tests.e2e.test_desk import desk_body, recorder
from tests.waiting import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]


def test_a_relative_run_dir_is_the_same_desk_from_any_directory(
    make_desk: object, tmp_path: Path
) -> None:
    desk: Desk = make_desk("e2ereldir", desk_body(tmp_path, recorder("rec", tmp_path)))  # type: ignore[operator]
    desk.edit(f"run_dir: {desk.run_dir}", "run_dir: run")  # relative to the topology file
    desk.up()  # run from the repository, not from the topology's directory
    assert (desk.run_dir / "e2ereldir.sock").exists()
    assert desk.status()["run_dir"] == str(desk.run_dir.resolve())
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    status = desk.cli("status", "-f", str(desk.file), cwd=elsewhere)
    assert status.returncode in (0, 1) and "rec" in status.stdout, status.stderr
    again = desk.cli("up", "--detach", desk.file.name, cwd=tmp_path)
    assert again.returncode == 1
    assert f"desk 'e2ereldir' is already running from {desk.run_dir.resolve()}" in again.stderr
    assert f"supervisor pid {desk.supervisor_pid()}" in again.stderr
    listed = desk.cli("status", "--run-dir", ".", "--name", "e2ereldir", cwd=desk.run_dir)
    assert listed.returncode in (0, 1), listed.stderr


def test_up_refuses_a_proxy_port_that_is_taken(make_desk: object, tmp_path: Path) -> None:
    desk: Desk = make_desk("e2eport", desk_body(tmp_path, recorder("rec", tmp_path)))  # type: ignore[operator]
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        desk.edit('listen: "127.0.0.1:0"', f'listen: "127.0.0.1:{port}"')
        result = desk.cli("up", "--detach", str(desk.file))
    assert result.returncode == 1
    assert f"proxy: address 127.0.0.1:{port} already in use" in result.stderr
    assert "is up" not in result.stdout
    assert processes_mentioning(str(desk.file)) == [] and not desk.run_dir.exists()


def test_foreground_up_returns_only_when_the_desk_is_down(
    make_desk: object, tmp_path: Path
) -> None:
    desk: Desk = make_desk("e2efg", desk_body(tmp_path, recorder("rec", tmp_path)))  # type: ignore[operator]
    out = tmp_path / "terminal.txt"
    log = desk.run_dir / "logs" / "supervisor.log"
    with out.open("w") as terminal:
        up = subprocess.Popen(
            [str(SCRIPT), "up", str(desk.file)],
            stdout=terminal,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, as a shell's foreground job
            env={**os.environ, "TRADEOPS_LOG_LEVEL": "WARNING"},
        )
        try:
            wait_for(lambda: log.exists() and "is up" in log.read_text(), 60, "the desk up")
            wait_for(lambda: len(desk.lines("rec")) > 5, what="ticks")
            os.killpg(up.pid, signal.SIGINT)  # what Ctrl-C does to the foreground job
            assert up.wait(timeout=60) == 0
        finally:
            if up.poll() is None:
                os.killpg(up.pid, signal.SIGKILL)
                up.wait()
    left = processes_mentioning(str(desk.file))
    assert left == [], "the prompt returned before the desk was down"
    shown = out.read_text()
    assert "is down" in shown and "| INFO    |" not in shown  # TRADEOPS_LOG_LEVEL=WARNING
    everyone = desk.cli("logs", "-f", str(desk.file), "-n", "1000")
    assert everyone.returncode == 0
    assert "rec | INFO    |" in everyone.stdout and "is down" in everyone.stdout


def test_status_exit_codes_tell_scripts_whole_degraded_or_absent(
    make_desk: object, tmp_path: Path
) -> None:
    desk: Desk = make_desk("e2eexit", desk_body(tmp_path, recorder("rec", tmp_path)))  # type: ignore[operator]
    desk.up()
    wait_for(lambda: desk.cli("status", "-f", str(desk.file)).returncode == 0,
             what="a whole desk (every process running, the feed live)")
    assert desk.cli("stop", "rec", "-f", str(desk.file)).returncode == 0
    stopped = desk.cli("status", "-f", str(desk.file))
    assert stopped.returncode == 1 and "degraded: rec is stopped" in stopped.stdout
    as_json = desk.cli("status", "-f", str(desk.file), "--format", "json")
    assert as_json.returncode == 1
    assert json.loads(as_json.stdout)["degraded"] == ["rec is stopped"]
    assert desk.down().returncode == 0
    gone = desk.cli("status", "-f", str(desk.file))
    assert gone.returncode == 3 and "no desk is running" in gone.stderr


def test_restart_refuses_a_file_that_does_not_validate_and_changes_nothing(
    make_desk: object, tmp_path: Path
) -> None:
    desk: Desk = make_desk("e2ebadedit", desk_body(tmp_path, recorder("rec", tmp_path)))  # type: ignore[operator]
    desk.up()
    before = desk.proc("rec")
    desk.file.write_text(desk.file.read_text().replace("[AAPL, MSFT]", "[aapl]"))
    for command in ("restart", "start"):
        result = desk.cli(command, "rec", "-f", str(desk.file))
        assert result.returncode == 1, result.stdout + result.stderr
        assert "'aapl' is not a" in result.stderr
        assert "the running desk is as it was" in result.stderr
    after = desk.proc("rec")
    assert (after["pid"], after["restarts"], after["state"]) == (
        before["pid"], before["restarts"], "running")
