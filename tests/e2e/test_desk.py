"""A whole desk in real processes: sim → gateway → bus → hosts, driven through the CLI."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.desk import Desk, assert_nothing_left, processes_mentioning, shm_segments
from tests.waiting import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]


def recorder(name: str, tmp: Path, symbols: str = "[AAPL, MSFT]") -> str:
    return f"""
  {name}:
    class: tests.e2e.strategies:SeqRecorder
    broker: sim
    symbols: {symbols}
    params: {{out: "{tmp / (name + ".seq")}"}}
"""


def desk_body(tmp: Path, strategies: str, processes: str = "") -> str:
    body = (
        """
brokers:
  sim:
    adapter: sim
    market: {seed: 3, rate: 40}
strategies:
"""
        + strategies
    )
    if processes:
        body += "processes:\n" + processes
    return body


def contiguous(seqs: list[int]) -> bool:
    return seqs == list(range(seqs[0], seqs[0] + len(seqs)))


RAISER = """
  flaky:
    class: tests.e2e.strategies:Raiser
    broker: sim
    symbols: [AAPL, MSFT]
    params: {after: 5}
"""


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Desk]:
    """One desk for the tests that each act on their own group and watch a neighbour: a
    restart of `rec`, a stop/start of `replay-group`, a raise inside `bundle`. Every
    strategy holds the same symbols, so each sees every tick of the bus in seq order."""
    tmp = tmp_path_factory.mktemp("e2e")
    strategies = (
        recorder("rec", tmp) + recorder("other", tmp) + recorder("third", tmp)
        + recorder("replayed", tmp) + recorder("steady", tmp) + RAISER
    )
    processes = (
        "  replay-group:\n    strategies: [replayed]\n    resume: replay\n"
        "  bundle:\n    strategies: [flaky, steady]\n"
    )
    desk = Desk(tmp, "e2eshared", desk_body(tmp, strategies, processes))
    try:
        desk.up()
        yield desk
    finally:
        desk.cleanup()
    assert_nothing_left(desk)


def test_restart_replaces_one_group_while_a_neighbour_sees_no_gap(shared: Desk) -> None:
    desk = shared
    rows = {p["name"]: p for p in desk.status_cli()["processes"]}  # `tradeops status` itself
    assert {n: r["state"] for n, r in rows.items()} == {
        "sim-sim": "running",
        "gateway-sim": "running",
        "proxy": "running",
        "rec": "running",
        "other": "running",
        "third": "running",
        "replay-group": "running",
        "bundle": "running",
    }
    wait_for(lambda: len(desk.lines("other")) > 20, what="ticks at the neighbour")
    old_pid = rows["rec"]["pid"]

    result = desk.cli("restart", "rec", "--file", str(desk.file))  # how fast: restart_bench
    assert result.returncode == 0, result.stderr
    row = wait_for(
        lambda: (r := desk.proc("rec"))["state"] == "running" and r["pid"] != old_pid and r,
        timeout=30,
        what="rec running again",
    )
    assert row["restarts"] == 1
    before = len(desk.lines("rec"))
    wait_for(lambda: len(desk.lines("rec")) > before + 10, what="ticks at the restarted group")
    neighbour = desk.lines("other")
    assert contiguous(neighbour), "the neighbour missed ticks during the restart"
    assert desk.proc("other")["pid"] == rows["other"]["pid"]


def test_resume_replay_delivers_what_was_missed(shared: Desk) -> None:
    desk = shared
    wait_for(lambda: len(desk.lines("replayed")) > 10, what="first ticks")
    assert desk.cli("stop", "replayed", "--file", str(desk.file)).returncode == 0
    wait_for(lambda: desk.proc("replay-group")["state"] == "stopped", what="replayed stopped")
    stopped_at = len(desk.lines("other"))
    wait_for(lambda: len(desk.lines("other")) > stopped_at + 40, what="ticks while it is down")
    assert desk.cli("start", "replayed", "--file", str(desk.file)).returncode == 0
    wait_for(
        lambda: (
            desk.lines("replayed")
            and desk.lines("replayed")[-1] > desk.lines("other")[stopped_at + 40]
        ),
        what="replayed to catch up",
    )
    seqs = desk.lines("replayed")
    assert contiguous(seqs), "replay left a gap or a duplicate"


def test_a_raising_strategy_is_stopped_alone(shared: Desk) -> None:
    desk = shared
    pid = desk.proc("bundle")["pid"]
    stats = wait_for(
        lambda: desk.proc("bundle")["stats"].get("errors") == 1 and desk.proc("bundle")["stats"],
        what="the error in status",
    )
    assert "boom from Raiser" in stats["last_error"]
    assert stats["strategies"]["flaky"]["running"] is False
    assert stats["strategies"]["steady"]["running"] is True
    count = len(desk.lines("steady"))
    wait_for(lambda: len(desk.lines("steady")) > count + 20, what="the neighbour still fed")
    row = desk.proc("bundle")
    assert (row["pid"], row["state"], row["restarts"]) == (pid, "running", 0)
    log = (desk.run_dir / "logs" / "bundle.log").read_text()
    assert "RuntimeError: boom from Raiser" in log and "Traceback" in log
    # Each line of the bundle says which strategy it is about: its own `self.log` lines and
    # what is logged while its callback runs.
    assert "| ERROR   | flaky | on_tick raised" in log
    assert "| INFO    | steady | recording to" in log
    stopped = desk.cli("stop", "steady", "-f", str(desk.file))
    assert stopped.returncode == 0, stopped.stderr
    assert "which also runs flaky: they stop with it" in stopped.stdout


def test_a_group_that_crashes_on_start_goes_fatal_alone(make_desk: object, tmp_path: Path) -> None:
    strategies = (
        recorder("steady", tmp_path)
        + """
  broken:
    class: tests.e2e.strategies:Crasher
    broker: sim
    symbols: [AAPL]
"""
    )
    processes = (
        "  broken-group:\n    strategies: [broken]\n"
        "    restart: {max_restarts: 2, window: 60s, backoff: 100ms}\n"
    )
    desk: Desk = make_desk("e2ecrash", desk_body(tmp_path, strategies, processes))  # type: ignore[operator]
    result = desk.cli("up", "--detach", str(desk.file), timeout=120)
    # Not every process came up: `up` says which, and why, and the rest keeps running.
    assert result.returncode == 1, result.stdout + result.stderr
    # Backoff between its crashes, or already fatal on a loaded machine: either way named.
    assert result.stderr.startswith(("broken-group: backoff: exited with status 3",
                                     "broken-group: fatal:")), result.stderr
    assert "steady" not in result.stderr
    assert "is up" not in result.stdout
    steady_pid = desk.proc("steady")["pid"]
    row = wait_for(
        lambda: (r := desk.proc("broken-group"))["state"] == "fatal" and r, timeout=20, what="fatal"
    )
    assert row["restarts"] == 2 and "max_restarts=2" in row["reason"]
    assert desk.proc("steady")["state"] == "running" and desk.proc("steady")["pid"] == steady_pid


def test_kill_9_of_the_supervisor_leaves_nothing(make_desk: object, tmp_path: Path) -> None:
    desk: Desk = make_desk("e2ekill", desk_body(tmp_path, recorder("rec", tmp_path)))  # type: ignore[operator]
    desk.up()
    assert len(processes_mentioning(str(desk.file))) >= 4
    os.kill(desk.supervisor_pid(), signal.SIGKILL)
    wait_for(
        lambda: processes_mentioning(str(desk.file)) == [],
        timeout=15,
        what="every child to die with the supervisor",
    )
    # The gateway cleaned up on SIGTERM; a later up/down of the same desk clears any rest.
    desk.up()
    assert desk.down().returncode == 0
    assert shm_segments(desk.bus) == []


def test_down_leaves_nothing_and_a_second_up_is_refused(make_desk: object, tmp_path: Path) -> None:
    desk: Desk = make_desk("e2edown", desk_body(tmp_path, recorder("rec", tmp_path)))  # type: ignore[operator]
    desk.up()
    assert shm_segments(desk.bus) != []
    again = desk.cli("up", "--detach", str(desk.file))
    assert again.returncode == 1 and "already running" in again.stderr
    result = desk.down()
    assert result.returncode == 0 and "rec" in result.stdout
    wait_for(lambda: processes_mentioning(str(desk.file)) == [], what="all processes gone")
    assert shm_segments(desk.bus) == []
    assert list(desk.run_dir.glob("*.sock")) == []
    none = desk.cli("status", "--file", str(desk.file))
    assert none.returncode == 3 and "no desk is running" in none.stderr


def test_a_restarted_gateway_is_rejoined_by_its_hosts(make_desk: object, tmp_path: Path) -> None:
    desk: Desk = make_desk("e2egw", desk_body(tmp_path, recorder("rec", tmp_path)))  # type: ignore[operator]
    desk.up()
    host_pid = desk.proc("rec")["pid"]
    wait_for(lambda: len(desk.lines("rec")) > 10, what="first ticks")
    assert desk.cli("restart", "gateway-sim", "--file", str(desk.file)).returncode == 0
    wait_for(
        lambda: (
            desk.proc("gateway-sim")["restarts"] == 1
            and desk.proc("gateway-sim")["state"] == "running"
        ),
        what="the new gateway",
    )
    count = len(desk.lines("rec"))
    wait_for(lambda: len(desk.lines("rec")) > count + 10, what="ticks through the new gateway")
    assert desk.proc("rec")["pid"] == host_pid, "the host should reconnect, not crash"
