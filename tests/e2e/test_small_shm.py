"""Desks on a machine whose /dev/shm is small (a container's 64 MiB default is about one
broker's bus: tick ring 48 MiB, latest-value table 4 MiB, book table 1.5 MiB).

Each desk runs in its own mount namespace (`unshare -m`) with a small tmpfs on /dev/shm, so
the rest of the machine keeps its own; commands that must see that /dev/shm run inside it
with `nsenter`. The promises: `up` refuses a desk whose bus does not fit, before starting
anything; a gateway restarted after a crash comes back even when /dev/shm has no room for a
second bus (its readers free the old one as they move); a gateway that finds /dev/shm full
when it starts stays down with the reason (no restart loop) while the rest of the desk runs,
and `tradeops start` brings it back once there is room.
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.e2e.desk import SCRIPT, Desk, processes_mentioning
from tests.e2e.test_desk import desk_body, recorder
from tests.waiting import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]


def in_small_shm(size: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run `tradeops ARGS` in a new mount namespace whose /dev/shm is a tmpfs of `size`."""
    mount = "mount -t tmpfs -o size=1m tmpfs /dev/shm"
    probe = subprocess.run(["unshare", "-m", "sh", "-c", mount], capture_output=True, text=True,
                           timeout=30, check=False)  # fmt: skip
    if probe.returncode != 0:
        pytest.skip(f"cannot mount a private /dev/shm here: {probe.stderr.strip()}")
    command = f'mount -t tmpfs -o size={size} tmpfs /dev/shm && exec "$0" "$@"'
    return subprocess.run(["unshare", "-m", "sh", "-c", command, str(SCRIPT), *args],
                          capture_output=True, text=True, timeout=120, check=False,
                          cwd=REPO)  # fmt: skip


def inside(pid: int, script: str) -> None:
    """Run a shell script in the mount namespace of `pid` (it sees that /dev/shm)."""
    subprocess.run(["nsenter", "-m", "-t", str(pid), "sh", "-c", script], check=True,
                   capture_output=True, timeout=30)  # fmt: skip


def test_up_refuses_a_desk_whose_bus_does_not_fit_before_starting_anything(
    make_desk: object, tmp_path: Path
) -> None:
    desk: Desk = make_desk("e2esmallshm", desk_body(tmp_path, recorder("rec", tmp_path)))  # type: ignore[operator]
    result = in_small_shm("16m", "up", "--detach", str(desk.file))
    out = result.stdout + result.stderr
    assert result.returncode != 0, out
    assert ("the bus of this desk (broker 'sim' 53.5 MiB) needs 53.5 MiB of shared memory but "
            "/dev/shm has 16.0 MiB free of 16 MiB") in out, out
    assert "--shm-size" in out and "nothing was started" in out
    assert processes_mentioning(str(desk.file)) == []


def test_a_gateway_restarts_on_a_tight_dev_shm_and_one_that_finds_it_full_waits_for_room(
    make_desk: object, tmp_path: Path
) -> None:
    desk: Desk = make_desk("e2etightshm", desk_body(tmp_path, recorder("rec", tmp_path)))  # type: ignore[operator]
    result = in_small_shm("64m", "up", "--detach", str(desk.file))  # room for one bus, not two
    assert result.returncode == 0, result.stdout + result.stderr
    supervisor = desk.supervisor_pid()
    wait_for(lambda: len(desk.lines("rec")) > 10, timeout=30, what="first ticks")

    # A crash: the restarted gateway cannot reserve a second bus, and must come back anyway.
    first = desk.proc("gateway-sim")["pid"]
    os.kill(first, signal.SIGKILL)
    wait_for(lambda: (g := desk.proc("gateway-sim"))["state"] == "running" and g["pid"] != first,
             timeout=30, what="the gateway to restart")  # fmt: skip
    count = len(desk.lines("rec"))
    wait_for(lambda: len(desk.lines("rec")) > count + 10, timeout=30,
             what="ticks from the restarted gateway")  # fmt: skip
    log = (desk.run_dir / "logs" / "gateway-sim.log").read_text()
    assert "no room to reserve" in log

    # Stopped, then /dev/shm fills up: it cannot start, says why, and is not restarted.
    assert desk.cli("stop", "gateway-sim", "--file", str(desk.file)).returncode == 0
    restarts = desk.proc("gateway-sim")["restarts"]
    inside(supervisor, "head -c 40M /dev/zero > /dev/shm/filler")
    desk.cli("start", "gateway-sim", "--file", str(desk.file))
    row = wait_for(lambda: (g := desk.proc("gateway-sim"))["state"] == "fatal" and g,
                   timeout=30, what="the gateway to refuse")  # fmt: skip
    assert row["reason"].startswith("the bus of broker 'sim' (tick ring 48.0 MiB, "), row
    assert "--shm-size" in row["reason"] and row["restarts"] == restarts
    assert desk.proc("sim-sim")["state"] == "running"
    status = desk.cli("status", "--file", str(desk.file))
    assert status.returncode == 1 and "degraded" in status.stdout
    assert "needs 53.5 MiB of shared memory" in status.stdout

    # Room again: it starts, and the strategy gets ticks.
    inside(supervisor, "rm /dev/shm/filler")
    assert desk.cli("start", "gateway-sim", "--file", str(desk.file)).returncode == 0
    wait_for(lambda: desk.proc("gateway-sim")["state"] == "running", timeout=30,
             what="the gateway to start")  # fmt: skip
    count = len(desk.lines("rec"))
    wait_for(lambda: len(desk.lines("rec")) > count + 10, timeout=60,
             what="ticks after the room came back")  # fmt: skip
    assert desk.down().returncode == 0
