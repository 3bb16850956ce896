"""`tradeops sim` as a command: prints its port, serves, stops cleanly on Ctrl-C."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from tradeops.sim.cli import register

from .helpers import Http, WsClient


@pytest.fixture
def spawn() -> Iterator[Callable[..., subprocess.Popen[str]]]:
    """Start `python -m tradeops.sim ARGS`; killed at teardown if a test left it running."""
    procs: list[subprocess.Popen[str]] = []

    def start(*args: str) -> subprocess.Popen[str]:
        proc = subprocess.Popen([sys.executable, "-m", "tradeops.sim", *args],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)


@pytest.mark.e2e
def test_port_zero_prints_the_port_and_ctrl_c_stops_cleanly(
        spawn: Callable[..., subprocess.Popen[str]], connect: Callable[..., WsClient]) -> None:
    proc = spawn("--port", "0", "--key", "k:s", "--rate", "20")
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.startswith("tradeops sim listening on ws://127.0.0.1:")
    port = int(line.rsplit(":", 1)[1])
    client = connect(f"ws://127.0.0.1:{port}/v2/iex")
    client.handshake("k", "s")
    assert Http(f"http://127.0.0.1:{port}", "k", "s").get("/v2/clock")[0] == 200
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=15) == 0
    _, stderr = proc.communicate(timeout=5)
    assert "Traceback" not in stderr


@pytest.mark.e2e
def test_bad_options_fail_with_a_message(spawn: Callable[..., subprocess.Popen[str]],
                                        tmp_path: Path) -> None:
    proc = spawn("--hours", "whenever")
    _, stderr = proc.communicate(timeout=15)
    assert proc.returncode == 2 and "hours 'whenever'" in stderr
    proc = spawn("--order-rate-limit", "many")
    _, stderr = proc.communicate(timeout=15)
    assert proc.returncode == 2 and "COUNT/SECONDS" in stderr
    bad_replay = tmp_path / "bad.csv"
    bad_replay.write_text("timestamp,symbol\nyesterday,AAPL\n")
    proc = spawn("--replay", str(bad_replay))
    _, stderr = proc.communicate(timeout=15)
    assert proc.returncode == 2 and "bad timestamp 'yesterday'" in stderr


def test_register_adds_the_sim_command_with_its_options() -> None:
    app = typer.Typer()

    @app.command()
    def other() -> None:
        """Another command, so `sim` must be addressed by name."""

    register(app)
    result = CliRunner().invoke(app, ["sim", "--help"])
    assert result.exit_code == 0
    for flag in ("--port", "--seed", "--rate", "--max-rate", "--spread-bps", "--hours",
                 "--replay", "--speed", "--symbols-per-connection", "--max-connections",
                 "--key", "--order-rate-limit", "--slow-client-bytes", "--auth-timeout",
                 "--drop-every", "--abrupt", "--silent-every", "--silent-for", "--reject-auth",
                 "--delay"):
        assert flag in result.output, flag
