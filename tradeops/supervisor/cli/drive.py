"""Commands that ask a running desk's supervisor: status, restart, stop, start, down."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer

from tradeops.supervisor.cli.common import (
    FileOpt,
    Format,
    FormatOpt,
    NameOpt,
    RunDirOpt,
    ask,
    fail,
    locate,
    validated,
)
from tradeops.supervisor.status import degraded, render_status

NO_DESK = 3  # `status` exit code when no desk runs (scripts tell it from degraded)

TargetArg = Annotated[str, typer.Argument(help="A strategy, process group or process name.")]


def status(
    file: FileOpt = None,
    name: NameOpt = None,
    run_dir: RunDirOpt = None,
    output: FormatOpt = Format.text,
) -> None:
    """Show every process of a running desk.

    Exit 0 when every process runs and every feed is live, 1 when the desk is degraded (a
    process not running, a feed not live, a strategy stopped or stuck, a disk problem), 3
    when no desk runs."""
    desk = locate(file, name, run_dir, output, not_running=NO_DESK)
    reply = ask(desk, {"cmd": "status"}, output, not_running=NO_DESK)
    reply["degraded"] = degraded(reply)
    if output is Format.json:
        typer.echo(json.dumps(reply, indent=2))
    else:
        typer.echo(render_status(reply))
        for problem in reply["degraded"]:
            typer.echo(f"degraded: {problem}")
    if reply["degraded"]:
        raise typer.Exit(1)


def _command(
    cmd: str, target: str, file: Path | None, name: str | None, run_dir: Path | None
) -> None:
    desk = locate(file, name, run_dir)
    if cmd in ("restart", "start"):  # the new process reads the file as it is now
        topology_file = ask(desk, {"cmd": "status"}).get("topology") or desk.file
        if topology_file:
            validated(Path(topology_file), f"nothing was {cmd}ed; the running desk is as it was")
    reply = ask(desk, {"cmd": cmd, "name": target})
    if not reply.get("ok"):
        raise fail(str(reply.get("error")))
    if reply.get("note"):
        typer.echo(f"note: {reply['note']}")
    typer.echo(f"{cmd}: {reply['process']} ({reply['state']})")


def restart(
    target: TargetArg, file: FileOpt = None, name: NameOpt = None, run_dir: RunDirOpt = None
) -> None:
    """Replace one process mid-session; every other keeps running."""
    _command("restart", target, file, name, run_dir)


def stop(
    target: TargetArg, file: FileOpt = None, name: NameOpt = None, run_dir: RunDirOpt = None
) -> None:
    """Stop one process (it stays stopped until `tradeops start`)."""
    _command("stop", target, file, name, run_dir)


def start(
    target: TargetArg, file: FileOpt = None, name: NameOpt = None, run_dir: RunDirOpt = None
) -> None:
    """Start a stopped, exited or fatal process."""
    _command("start", target, file, name, run_dir)


def down(
    file: FileOpt = None,
    name: NameOpt = None,
    run_dir: RunDirOpt = None,
) -> None:
    """Stop the whole desk gracefully and report what was stopped."""
    reply = ask(locate(file, name, run_dir), {"cmd": "down"}, timeout=120.0)
    pid = int(reply.get("pid", 0))
    deadline = time.monotonic() + 10
    while pid and Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.02)  # the supervisor answers, then exits: wait for that too
    typer.echo(f"stopped: {', '.join(reply.get('stopped', []))}")


def register(app: typer.Typer) -> None:
    for command in (status, restart, stop, start, down):
        app.command()(command)
