"""`tradeops validate` as a user runs it: a real subprocess, its output and exit code."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.e2e

QUICKSTART = REPO / "examples" / "configs" / "quickstart.yaml"
BAD = """
version: 1
name: desk
brokers:
  sim: {adapter: sim}
strategies:
  alpha:
    class: recipes.momentum:Momentum
    broker: simm
    symbols: [AAPL]
"""
WARNS = """
version: 1
name: desk
brokers:
  sim: {adapter: sim}
strategies:
  alpha:
    class: recipes.momentum:Momentum
    broker: sim
    symbols: [AAPL]
processes:
  g: {strategies: [alpha], cpu: [99]}
"""


# The console script pip installed beside this interpreter: what a user types.
SCRIPT = Path(sys.executable).parent / "tradeops"


def tradeops(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=REPO,
        env={**os.environ, **(env or {})},
    )


def test_clean_file_exits_0() -> None:
    result = tradeops("validate", str(QUICKSTART))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok" in result.stdout and "0 error(s)" in result.stdout
    assert "\x1b[" not in result.stdout  # no colour when not a terminal


def test_errors_exit_1_with_location_and_fix(write_yaml: Callable[..., Path]) -> None:
    path = write_yaml(BAD)
    result = tradeops("validate", str(path))
    assert result.returncode == 1
    assert f"{path}:8:13: error: strategy 'alpha' names broker 'simm'" in result.stdout
    assert "fix: use one of: sim (did you mean 'sim'?)" in result.stdout


def test_warnings_alone_exit_0_and_strict_makes_them_errors(
    write_yaml: Callable[..., Path],
) -> None:
    path = write_yaml(WARNS)
    lenient = tradeops("validate", str(path))
    assert lenient.returncode == 0 and "warning" in lenient.stdout
    strict = tradeops("validate", "--strict", str(path))
    assert strict.returncode == 1 and "error: group 'g' is pinned to core 99" in strict.stdout


def test_missing_file_is_a_usage_error_exit_2(tmp_path: Path) -> None:
    result = tradeops("validate", str(QUICKSTART), str(tmp_path / "nope.yaml"))
    assert result.returncode == 2
    assert "No such file" in result.stdout
    assert f"{QUICKSTART}: ok" in result.stdout  # the readable file is still reported


def test_no_arguments_is_a_usage_error() -> None:
    assert tradeops("validate").returncode == 2


def test_json_output_for_several_files(write_yaml: Callable[..., Path]) -> None:
    bad = write_yaml(BAD, "bad.yaml")
    result = tradeops("validate", "--format", "json", str(QUICKSTART), str(bad))
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report["ok"] is False and report["errors"] == 1
    files = {Path(f["file"]).name: f for f in report["files"]}
    assert files["quickstart.yaml"]["ok"] is True
    (finding,) = files["bad.yaml"]["findings"]
    assert finding["code"] == "unknown-broker"
    assert (finding["line"], finding["column"]) == (8, 13)
    assert finding["path"] == "strategies.alpha.broker"
    assert finding["severity"] == "error" and finding["fix"]


def test_no_import_skips_strategy_imports(write_yaml: Callable[..., Path]) -> None:
    path = write_yaml(
        BAD.replace("recipes.momentum:Momentum", "absent_pkg:S").replace("simm", "sim")
    )
    assert tradeops("validate", str(path)).returncode == 1
    assert tradeops("validate", "--no-import", str(path)).returncode == 0


def test_secret_never_printed(write_yaml: Callable[..., Path]) -> None:
    text = BAD.replace(
        "  sim: {adapter: sim}",
        "  sim: {adapter: sim}\n  paper:\n    adapter: alpaca\n    credentials: "
        '{key: "${TRADEOPS_T_KEY}", secret: "${TRADEOPS_T_SECRET}"}\n'
        "    pool: {max_connections: 0}",
    )
    path = write_yaml(text)
    secret_env = {"TRADEOPS_T_KEY": "AKXXXXSECRETKEY", "TRADEOPS_T_SECRET": "sup3rs3cr3tvalue"}
    for fmt in ("text", "json"):
        result = tradeops("validate", "--format", fmt, str(path), env=secret_env)
        assert result.returncode == 1
        assert "max_connections" in result.stdout
        for secret in secret_env.values():
            assert secret not in result.stdout + result.stderr


def test_schema_command_prints_the_shipped_schema() -> None:
    result = tradeops("schema")
    assert result.returncode == 0
    shipped = (REPO / "docs" / "topology.schema.json").read_text()
    assert result.stdout == shipped
    assert json.loads(result.stdout)["$defs"]["Strategy"]["additionalProperties"] is False
