"""Signals only enqueue: the supervisor's handler records a signal and its loop acts on it.

The unit test shows the handler changes nothing by itself; the end-to-end test sends signals
to a real supervisor while its processes restart and checks the desk still comes down whole.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from tests.e2e.desk import Desk, processes_mentioning, shm_segments
from tests.e2e.test_desk import desk_body, recorder
from tests.waiting import wait_for
from tradeops.process.paths import RunPaths
from tradeops.supervisor.lifecycle import Spawned, Start
from tradeops.supervisor.states import ProcessState as S
from tradeops.supervisor.supervisor import Supervisor
from tradeops.topology.load import load_topology


def supervisor(tmp_path: Path) -> Supervisor:
    path = tmp_path / "desk.yaml"
    path.write_text(
        "version: 1\nname: sigdesk\nbrokers:\n  sim: {adapter: sim}\n"
        "strategies:\n  s: {class: recipes.momentum:Momentum, broker: sim, symbols: [AAPL]}\n"
    )
    topology = load_topology(path)
    return Supervisor(topology, path, RunPaths.of(topology, path), lambda line: None)


def test_the_handler_only_records_and_the_loop_acts(tmp_path: Path) -> None:
    sup = supervisor(tmp_path)
    gateway = sup.children["gateway-sim"]
    sup._act = lambda c, action: None  # type: ignore[method-assign]  # spawn nothing
    sup.apply(gateway, Start())
    sup.apply(gateway, Spawned(999_999))
    assert gateway.proc.state is S.STARTING

    sup._on_signal(signal.SIGTERM, None)
    sup._on_signal(signal.SIGCHLD, None)
    assert gateway.proc.state is S.STARTING, "the handler must not act"
    assert not sup._stopping

    sup._handle_signals()
    assert sup._stopping
    assert gateway.proc.state is S.STOPPING  # the loop stopped it, tier by tier
    sup._handle_signals()  # nothing left to handle: no second shutdown
    assert gateway.proc.state is S.STOPPING


def test_a_chld_alone_does_not_stop_the_desk(tmp_path: Path) -> None:
    sup = supervisor(tmp_path)
    sup._on_signal(signal.SIGCHLD, None)
    sup._handle_signals()
    assert not sup._stopping


@pytest.mark.e2e
@pytest.mark.timeout(150)
def test_signals_during_restarts_bring_the_whole_desk_down(
    make_desk: object, tmp_path: Path
) -> None:
    strategies = recorder("a", tmp_path) + recorder("b", tmp_path)
    desk: Desk = make_desk("e2esignals", desk_body(tmp_path, strategies))  # type: ignore[operator]
    desk.up()
    pid = desk.supervisor_pid()
    wait_for(lambda: len(desk.lines("a")) > 5, what="first ticks")
    # Restarts under a storm of SIGCHLDs: the desk keeps running and the restarts complete.
    for name in ("a", "b"):
        assert desk.cli("restart", name, "--file", str(desk.file)).returncode == 0
        for _ in range(20):
            os.kill(pid, signal.SIGCHLD)
    wait_for(
        lambda: all(desk.proc(n)["restarts"] == 1 and desk.proc(n)["state"] == "running"
                    for n in ("a", "b")),
        what="both restarts to complete",
    )
    # A SIGTERM (twice) while a restart is under way: everything stops, nothing is left.
    assert desk.cli("restart", "a", "--file", str(desk.file)).returncode == 0
    os.kill(pid, signal.SIGTERM)
    os.kill(pid, signal.SIGTERM)
    wait_for(lambda: not os.path.exists(f"/proc/{pid}"), timeout=60, what="the supervisor")
    wait_for(lambda: processes_mentioning(str(desk.file)) == [], what="every child gone")
    assert shm_segments(desk.bus) == []
    assert list(desk.run_dir.glob("*.sock")) == []
    assert not (desk.run_dir / f"{desk.name}.lock").exists()
