"""A child dies with its supervisor although the supervisor starts it without a preexec_fn:
the child sets PR_SET_PDEATHSIG itself as its first act (tradeops/process/parent.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.waiting import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(60)]

# A stand-in supervisor: starts one child with the supervisor's own `children.start`, says
# the child's pid and that the child is ready, then waits to be killed.
SUPERVISOR = r"""
import os, select, sys, time
from tradeops.process.spec import ProcessSpec
from tradeops.supervisor.children import Child, start
from tradeops.supervisor.lifecycle import Proc

child_code = (
    "from tradeops.process.parent import check_parent\n"
    "check_parent()\n"
    "import os, time\n"
    "os.write(int(os.environ['TRADEOPS_READY_FD']), b'{}\\n')\n"
    "time.sleep(120)\n"
)
c = Child(ProcessSpec("stand-in", "sim"), Proc("stand-in"))
popen = start(c, [sys.executable, "-c", child_code], dict(os.environ))
select.select([c.ready_r], [], [], 30)
print(popen.pid, flush=True)
time.sleep(120)
"""


def alive(pid: int) -> bool:
    """True while `pid` runs (a zombie waiting for its reaper counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_a_child_started_without_preexec_dies_with_its_killed_supervisor() -> None:
    supervisor = subprocess.Popen([sys.executable, "-c", SUPERVISOR], stdout=subprocess.PIPE,
                                  text=True, start_new_session=True)
    try:
        assert supervisor.stdout is not None
        child = int(supervisor.stdout.readline())
        assert alive(child)
        os.kill(supervisor.pid, signal.SIGKILL)
        supervisor.wait(10)
        wait_for(lambda: not alive(child), timeout=15,
                 what="the child to die with its supervisor (PR_SET_PDEATHSIG)")
    finally:
        if supervisor.poll() is None:
            os.killpg(supervisor.pid, signal.SIGKILL)
            supervisor.wait(10)


def test_a_child_whose_supervisor_is_already_gone_exits_before_loading_the_desk(
        tmp_path: Path) -> None:
    # The supervisor named in the environment is not this child's parent: it died between
    # the start and the child's first act, and the child was handed to another parent.
    gone = subprocess.run(
        [sys.executable, "-m", "tradeops.gateway", "--topology", str(tmp_path / "absent.yaml"),
         "--name", "gateway-x", "--run-dir", str(tmp_path)],
        env={**os.environ, "TRADEOPS_SUPERVISOR_PID": str(os.getpid() + 1_000_000)},
        capture_output=True, text=True, timeout=30,
    )
    assert gone.returncode == 1
    # It stopped before reading its (absent) topology, which would name the missing file.
    assert gone.stderr == "the supervisor is gone; exiting\n"


def test_a_role_started_by_hand_does_not_tie_itself_to_its_parent(tmp_path: Path) -> None:
    by_hand = subprocess.run(
        [sys.executable, "-m", "tradeops.gateway", "--topology", str(tmp_path / "absent.yaml"),
         "--name", "gateway-x", "--run-dir", str(tmp_path)],
        env={k: v for k, v in os.environ.items() if k != "TRADEOPS_SUPERVISOR_PID"},
        capture_output=True, text=True, timeout=30,
    )
    # Not checked against a supervisor: it goes on to read its topology, and names the file.
    assert by_hand.returncode != 0 and "absent.yaml" in by_hand.stderr
    assert "supervisor is gone" not in by_hand.stderr
