"""A strategy callback that never returns: seen by the host's watchdog, shown in status, and
its host still dies with a killed supervisor; the next `up` clears what a run left behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.e2e.desk import Desk, alive, processes_mentioning
from tests.e2e.test_desk import desk_body, recorder
from tests.waiting import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(150)]


def blocker(name: str) -> str:
    return f"""
  {name}:
    class: tests.e2e.strategies:Blocker
    broker: sim
    symbols: [AAPL]
    params: {{after: 3}}
"""


PROCESSES = """
  stuckgroup: {strategies: [blocked], callback_timeout: 1s}
"""


def test_a_blocked_on_tick_shows_as_stuck_and_its_host_dies_with_the_supervisor(
    make_desk: object, tmp_path: Path
) -> None:
    body = desk_body(tmp_path, blocker("blocked") + recorder("rec", tmp_path), PROCESSES)
    desk: Desk = make_desk("e2estuck", body)  # type: ignore[operator]
    desk.up()
    wait_for(lambda: (desk.proc("stuckgroup")["stats"].get("strategies") or {})
             .get("blocked", {}).get("stuck", ""), timeout=30,
             what="the watchdog to report the blocked strategy")
    stuck = desk.proc("stuckgroup")["stats"]["strategies"]["blocked"]["stuck"]
    assert stuck.startswith("stuck in on_tick of blocked for")
    status = desk.cli("status", "-f", str(desk.file))
    assert status.returncode == 1 and "strategy blocked: stuck in on_tick" in status.stdout
    log = (desk.run_dir / "logs" / "stuckgroup.log").read_text()
    assert "Blocker" in log or "strategies.py" in log  # the stack of where it blocks
    count = len(desk.lines("rec"))  # the other group keeps its ticks
    wait_for(lambda: len(desk.lines("rec")) > count + 5, what="ticks to the other group")
    host = desk.proc("stuckgroup")["pid"]
    os.kill(desk.supervisor_pid(), signal.SIGKILL)
    wait_for(lambda: not alive(host), timeout=30, what="the blocked host to die with it")
    wait_for(lambda: processes_mentioning(str(desk.file)) == [], timeout=30,
             what="every process of the desk gone")


def host_by_hand(desk: Desk) -> subprocess.Popen[bytes]:
    """The desk's `rec` host started as a user would start a role to debug it, outside any
    supervisor, in a session of its own."""
    return subprocess.Popen(
        [sys.executable, "-m", "tradeops.runtime", "--topology", str(desk.file),
         "--name", "rec", "--run-dir", str(desk.run_dir)],
        cwd=REPO, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, start_new_session=True,
    )


def test_up_kills_what_an_earlier_run_left_running(make_desk: object, tmp_path: Path) -> None:
    desk: Desk = make_desk("e2eleft", desk_body(tmp_path, recorder("rec", tmp_path)))  # type: ignore[operator]
    desk.run_dir.mkdir(parents=True)
    # A host of an earlier run, orphaned: it waits (up to 30 s) for a gateway that is gone.
    orphan = host_by_hand(desk)
    try:
        result = desk.up()
        log = (desk.run_dir / "logs" / "supervisor.log").read_text()
        said = f"killed rec (pid {orphan.pid}), left running by an earlier run"
        assert said in log, result.stdout + result.stderr + log
        assert orphan.wait(10) == -signal.SIGKILL
    finally:
        if orphan.poll() is None:
            orphan.kill()
            orphan.wait(5)


def test_a_host_waiting_for_its_gateway_stops_at_once_on_sigterm(
    make_desk: object, tmp_path: Path
) -> None:
    """A host started while its gateway is not serving waits for it (up to 30 s); a stop
    signal in that wait ends it cleanly, not after the wait, and not by the signal's default."""
    desk: Desk = make_desk("e2ewait", desk_body(tmp_path, recorder("rec", tmp_path)))  # type: ignore[operator]
    desk.run_dir.mkdir(parents=True)
    host = host_by_hand(desk)
    log = desk.run_dir / "logs" / "rec.log"
    try:
        wait_for(lambda: log.exists() and "waiting up to 30 s for gateway-sim" in log.read_text(),
                 timeout=30, what="the host to wait for its gateway")
        host.send_signal(signal.SIGTERM)
        assert host.wait(20) == 0  # the wait is 30 s: it did not run out
        assert "stopped while waiting for a gateway" in log.read_text()
    finally:
        if host.poll() is None:
            host.kill()
            host.wait(5)
