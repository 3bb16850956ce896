"""`tradeops logs [NAME]`: a process's log, or the supervisor's (everyone's lines)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from tradeops.supervisor.cli.common import FileOpt, NameOpt, RunDirOpt, fail, locate, tool_settings


def logs(
    process: Annotated[
        str | None,
        typer.Argument(help="A process (default: the supervisor's log, with everyone's lines)."),
    ] = None,
    follow: Annotated[bool, typer.Option("--follow", help="Keep printing new lines.")] = False,
    lines: Annotated[int, typer.Option("-n", min=0, help="Lines to show.")] = 50,
    file: FileOpt = None,
    name: NameOpt = None,
    run_dir: RunDirOpt = None,
) -> None:
    """Show a process's log (or the supervisor's, which has everyone's lines)."""
    logs_dir = _logs_dir(file, name, run_dir)
    path = logs_dir / f"{process or 'supervisor'}.log"
    if not path.exists():
        known = sorted(p.stem for p in logs_dir.glob("*.log")) if logs_dir.is_dir() else []
        raise fail(f"no log at {path}" + (f"; logs here: {', '.join(known)}" if known else ""))
    with path.open(errors="replace") as f:
        for line in f.readlines()[-lines:] if lines else []:
            typer.echo(line, nl=False)
        while follow:
            line = f.readline()
            if line:
                typer.echo(line, nl=False)
            else:
                time.sleep(0.2)


def _logs_dir(file: Path | None, name: str | None, run_dir: Path | None) -> Path:
    """Logs are kept per run dir and outlive their desk: with no desk named, the logs of the
    default topology's run dir, else of `--run-dir` (or the default run dir)."""
    tool = tool_settings()
    if file is None and name is None and tool.default_topology() is None:
        return (run_dir or tool.run_dir).resolve() / "logs"
    return locate(file, name, run_dir).paths.logs


def register(app: typer.Typer) -> None:
    app.command()(logs)
