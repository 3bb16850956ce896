"""`tradeops apply FILE`: change the running desk to match the edited file, touching only
the processes whose configuration changed (supervisor/apply.py plans and carries it out)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer

from tradeops.process.paths import RunPaths
from tradeops.supervisor.cli.common import Desk, ask, fail, validated

WAIT = 300.0  # most an apply may take before the command stops watching


def apply(
    file: Annotated[Path, typer.Argument(help="The edited topology of the running desk.")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
    = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the plan only.")] = False,
) -> None:
    """Validate FILE, show what changes (+ start, ~ restart, - stop, = keep), ask, then
    restart only what changed, in start order."""
    topology = validated(file, "nothing was changed")
    desk = Desk(RunPaths.of(topology, file), file, topology)
    path = str(file.resolve())
    planned = _ask(desk, {"cmd": "apply", "topology": path, "dry_run": True})
    for line in planned["plan"]:
        typer.echo(line)
    if not planned["changes"]:
        typer.echo("nothing to change: the desk already runs this file")
        return
    if dry_run:
        return
    if not yes and not typer.confirm(f"apply {planned['changes']} change(s)?", default=False):
        raise typer.Exit(1)
    _ask(desk, {"cmd": "apply", "topology": path, "expect": planned["digest"]})
    _follow(desk)


def _ask(desk: Desk, command: dict[str, Any]) -> dict[str, Any]:
    reply = ask(desk, command)
    if not reply.get("ok"):
        raise fail(str(reply.get("error", "refused")), 1)
    return reply


def _follow(desk: Desk) -> None:
    """Print each step as it completes; exit 1 if a process it touched is not running."""
    shown = 0
    deadline = time.monotonic() + WAIT
    while True:
        status = ask(desk, {"cmd": "status"})
        progress = status.get("apply") or {}
        for step in progress.get("done", [])[shown:]:
            typer.echo(f"  done: {step}")
        shown = len(progress.get("done", []))
        if not progress.get("running"):
            break
        if time.monotonic() > deadline:
            raise fail("the apply is still running; `tradeops status` shows it", 1)
        time.sleep(0.2)
    down = [f"{p['name']} is {p['state']}" + (f": {p['reason']}" if p.get("reason") else "")
            for p in status["processes"] if p["state"] in ("backoff", "fatal", "exited")]
    if down:
        raise fail("applied, but " + "; ".join(down), 1)
    typer.echo("applied")


def register(app: typer.Typer) -> None:
    app.command()(apply)
