"""The command line starts light: `--version` imports nothing but the package's face, and the
app, built on first use, still answers everything else."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import REPO
from tradeops import __version__

pytestmark = pytest.mark.e2e

PROBE = """
import sys
sys.argv = ["tradeops", *sys.argv[1:]]
from tradeops.cli import main
try:
    main()
except SystemExit:
    pass
heavy = sorted(m for m in ("typer", "click", "pydantic", "asyncio", "tradeops.supervisor")
               if m in sys.modules)
print("heavy:", ",".join(heavy))
"""


def probe(*args: str) -> list[str]:
    done = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True,
                          timeout=60, cwd=REPO)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def test_version_answers_without_importing_the_app() -> None:
    assert probe("--version") == [f"tradeops {__version__}", "heavy: "]


def test_other_commands_still_build_the_app() -> None:
    lines = probe("--version", "--help")  # two arguments: the app's own --version option
    assert lines[0] == f"tradeops {__version__}"
    assert "typer" in lines[-1] and "tradeops.supervisor" in lines[-1]
    help_text = "\n".join(probe("--help"))
    for command in ("validate", "up", "restart", "status", "sim", "proxy"):
        assert command in help_text


COMMAND_MODULES = """
import sys
sys.argv = ["tradeops", *sys.argv[1:]]
from tradeops.cli import main
try:
    main()
except SystemExit:
    pass
others = sorted(m for m in ("tradeops.sim.cli", "tradeops.cluster.cli", "tradeops.recording.cli",
                            "tradeops.supervisor.proxy_cli", "tradeops.supervisor.cli.up")
                if m in sys.modules)
print("others:", ",".join(others))
"""


def test_a_command_that_drives_a_desk_builds_only_its_own_commands() -> None:
    done = subprocess.run([sys.executable, "-c", COMMAND_MODULES, "restart", "--help"],
                          capture_output=True, text=True, timeout=60, cwd=REPO)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "--file" in done.stdout and "Replace one process" in done.stdout
    assert done.stdout.splitlines()[-1] == "others: "


HOST_IMPORTS = """
import sys
import tradeops.runtime.launch
print(",".join(sorted(m for m in ("pydantic", "yaml", "tradeops.topology.model", "typer")
                      if m in sys.modules)))
"""


def test_a_strategy_host_starts_without_the_topology_model() -> None:
    done = subprocess.run([sys.executable, "-c", HOST_IMPORTS], capture_output=True, text=True,
                          timeout=60, cwd=REPO)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""
