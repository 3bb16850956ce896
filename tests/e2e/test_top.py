"""`tradeops top` in a real terminal (tmux, 80x24): it shows the desk, puts a killed process
first as not running, selects rows with the arrows, and quits on `q`; without a terminal it
prints the plain status table on each refresh."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.desk import SCRIPT, Desk
from tests.e2e.test_desk import desk_body, recorder
from tests.waiting import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]


def test_top_without_a_terminal_prints_the_table_each_refresh(
    make_desk: Any, tmp_path: Path
) -> None:
    desk: Desk = make_desk("topplain", desk_body(tmp_path, recorder("rec", tmp_path)))
    desk.up()
    result = desk.cli("top", str(desk.file), "-n", "2", "--every", "0.2")
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("desk 'topplain'") == 2
    assert "gateway-sim" in result.stdout and "\x1b[" not in result.stdout


@pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux")
def test_top_in_a_terminal_puts_a_killed_process_first_and_quits_on_q(
    make_desk: Any, tmp_path: Path
) -> None:
    body = desk_body(tmp_path, recorder("calm", tmp_path) + recorder("doomed", tmp_path),
                     "  doomed:\n    strategies: [doomed]\n    restart: {policy: never}\n")
    desk: Desk = make_desk("toptty", body)
    desk.up()
    server = f"tradeops-test-{os.getpid()}"
    tmux = ["tmux", "-L", server]
    command = f"{SCRIPT} top -f {desk.file}"
    subprocess.run([*tmux, "new-session", "-d", "-s", "top", "-x", "80", "-y", "24",
                    command], check=True, env={**os.environ, "TERM": "xterm-256color"})
    try:
        def pane() -> str:
            return subprocess.run([*tmux, "capture-pane", "-p", "-t", "top"],
                                  capture_output=True, text=True, check=False).stdout

        def showing() -> str | None:
            text = pane()
            return text if "desk toptty" in text and "gateway-sim" in text else None

        first = wait_for(showing, timeout=30, what="top showing the desk")
        lines = first.splitlines()
        assert len(lines) <= 24 and all(len(line) <= 80 for line in lines)
        assert "all well" in first or "problem" in first
        os.kill(desk.proc("doomed")["pid"], signal.SIGKILL)

        def doomed_first() -> str | None:
            rows = [line for line in pane().splitlines() if line.startswith(
                ("calm", "doomed", "gateway", "sim-", "proxy"))]
            return rows[0] if rows and rows[0].startswith("doomed") else None

        row = wait_for(doomed_first, timeout=30, what="the killed process first")
        assert "exited" in row or "backoff" in row, row
        subprocess.run([*tmux, "send-keys", "-t", "top", "Down"], check=True)
        wait_for(lambda: any(line.startswith("calm:") or line.startswith("gateway-sim:")
                             or line.startswith("proxy:") or line.startswith("sim-sim:")
                             for line in pane().splitlines()), timeout=20,
                 what="the log line of the second row")
        subprocess.run([*tmux, "send-keys", "-t", "top", "q"], check=True)
        wait_for(lambda: subprocess.run([*tmux, "has-session", "-t", "top"],
                                        capture_output=True).returncode != 0,
                 timeout=20, what="top to quit on q")
    finally:
        subprocess.run([*tmux, "kill-server"], capture_output=True, check=False)
