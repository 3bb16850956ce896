"""The desk commands as a user meets them, without a running desk: naming a desk, settings
from TRADEOPS_* variables, bad options as usage errors, JSON that stays JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from tradeops.cli import app

TOPOLOGY = """\
version: 1
name: {name}
brokers: {{sim: {{adapter: sim}}}}
strategies:
  momo: {{class: "recipes.momentum:Momentum", broker: sim, symbols: [AAPL]}}
  ticks: {{class: "recipes.ticklog:TickLogger", broker: sim, symbols: [AAPL]}}
"""


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(app, list(args), env=env)


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty current directory, and no TRADEOPS_* setting from the outside."""
    for var in ("TRADEOPS_RUN_DIR", "TRADEOPS_TOPOLOGY", "TRADEOPS_LOG_LEVEL", "TRADEOPS_COLOUR"):
        monkeypatch.delenv(var, raising=False)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    return cwd


def write(path: Path, name: str = "desk") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(TOPOLOGY.format(name=name))
    return path


@pytest.mark.parametrize(
    "args",
    [
        ("status", "--format", "yaml"),
        ("orders", "--format", "yaml"),
        ("proxy", "clients", "--format", "yaml"),
        ("validate", "--format", "yaml", "x.yaml"),
    ],
)
def test_an_unknown_format_is_a_usage_error_naming_the_choices(
    here: Path, args: tuple[str, ...]
) -> None:
    result = run(*args)
    assert result.exit_code == 2
    assert "'text'" in result.stderr and "'json'" in result.stderr


def test_f_names_the_topology_not_the_format(here: Path) -> None:
    result = run("status", "-f", "json")
    assert result.exit_code == 2 and "cannot read json" in result.stderr


def test_format_json_without_a_desk_is_still_json(here: Path) -> None:
    result = run("status", "--format", "json")
    assert result.exit_code == 3  # no desk runs
    reply = json.loads(result.stdout)
    assert reply["ok"] is False and "no desk is running" in reply["error"]


def test_a_topology_in_the_current_directory_names_the_desk(here: Path) -> None:
    write(here / "topology.yaml", "other")
    write(here / "tradeops.yaml", "main")  # tradeops.yaml comes first
    result = run("status")
    assert result.exit_code == 3  # status: no desk runs
    assert f"no desk is running at {here / '.tradeops' / 'main.sock'}" in result.stderr


def test_a_relative_run_dir_resolves_against_the_topology_file(here: Path) -> None:
    file = write(here.parent / "elsewhere" / "desk.yaml")
    result = run("down", "--file", str(file))
    assert result.exit_code == 1
    assert str(here.parent / "elsewhere" / ".tradeops" / "desk.sock") in result.stderr


def test_settings_from_the_environment(here: Path) -> None:
    write(here / "mine.yaml", "mine")
    result = run("status", env={"TRADEOPS_TOPOLOGY": "mine.yaml"})
    assert str(here / ".tradeops" / "mine.sock") in result.stderr
    result = run("stop", "momo", "--name", "x", env={"TRADEOPS_RUN_DIR": str(here / "runs")})
    assert str(here / "runs" / "x.sock") in result.stderr
    result = run("status", env={"TRADEOPS_LOG_LEVEL": "LOUD"})
    assert result.exit_code == 2 and "TRADEOPS_LOG_LEVEL" in result.stderr


def test_orders_knows_the_desk_s_strategies(here: Path) -> None:
    file = write(here / "desk.yaml")
    result = run("orders", "-f", str(file), "--strategy", "nosuch")
    assert result.exit_code == 2
    assert "no strategy 'nosuch'" in result.stderr and "momo, ticks" in result.stderr
    result = run("orders", "-f", str(file), "--strategy", "momo", "--format", "json")
    assert result.exit_code == 0, result.stderr
    reply = json.loads(result.stdout)
    assert reply["ok"] is True and reply["working"] == [] and reply["entries"] == []


def test_up_without_a_file_looks_for_the_default_names(here: Path) -> None:
    result = run("up")
    assert result.exit_code == 2
    assert "no tradeops.yaml or topology.yaml here" in result.stderr


def test_logs_without_a_desk_reads_the_default_run_dir(here: Path) -> None:
    logs = here / ".tradeops" / "logs"
    logs.mkdir(parents=True)
    (logs / "supervisor.log").write_text("one\ntwo\nthree\n")
    result = run("logs", "-n", "2")
    assert result.exit_code == 0 and result.stdout == "two\nthree\n"
    missing = run("logs", "nosuch")
    assert missing.exit_code == 1 and "logs here: supervisor" in missing.stderr


def test_logs_filter_by_time_and_pattern_and_colour_each_process(here: Path) -> None:
    logs = here / ".tradeops" / "logs"
    logs.mkdir(parents=True)
    (logs / "supervisor.log").write_text(
        "2020-01-01 09:00:00 gateway-sim | INFO    | old news\n"
        "2099-01-01 09:00:00 gateway-sim | INFO    | connected\n"
        "2099-01-01 09:00:01 momo | ERROR   | boom\n"
        "2099-01-01 09:00:02 gateway-sim | WARNING | slow\n")
    recent = run("logs", "--since", "1h", "--no-color")
    assert recent.exit_code == 0 and "old news" not in recent.stdout
    assert recent.stdout.count("\n") == 3
    only = run("logs", "--grep", "gateway-sim", "-n", "1", "--no-color")
    assert only.stdout == "2099-01-01 09:00:02 gateway-sim | WARNING | slow\n"
    since = run("logs", "--since", "2099-01-01 09:00:01", "--no-color")
    assert since.stdout.splitlines()[0].endswith("boom")
    painted = run("logs", "--color", "-n", "2").stdout
    assert "\x1b[" in painted and "boom" in painted
    momo, gw = painted.splitlines()
    assert "\x1b[33m" in gw  # a WARNING in yellow
    assert "\x1b[31m" in momo  # an ERROR level in red
    bad = run("logs", "--grep", "(")
    assert bad.exit_code == 2 and "not a regular expression" in bad.stderr
    assert run("logs", "--since", "yesterday").exit_code == 2


def test_shell_completion_is_offered(monkeypatch: pytest.MonkeyPatch) -> None:
    # typer detects the user's shell from the process tree; under `make test-fast` that is
    # sh, which has no completion, so the test says the user runs bash.
    import typer.completion

    monkeypatch.setattr(typer.completion, "_get_shell_name", lambda: "bash")
    result = run("--show-completion")
    assert result.exit_code == 0 and "_TRADEOPS_COMPLETE" in result.stdout, result.output
