"""`tradeops logs [NAME]`: a process's log, or the supervisor's (everyone's lines,
interleaved, each prefixed with its process's name, coloured on a terminal)."""

from __future__ import annotations

import re
import sys
import time
import zlib
from collections import deque
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated

import typer

from tradeops.supervisor.cli.common import (
    FileOpt,
    NameOpt,
    NodeOpt,
    RunDirOpt,
    fail,
    locate,
    tool_settings,
)

COLOURS = ("cyan", "green", "yellow", "magenta", "blue", "bright_cyan", "bright_green",
           "bright_magenta")
LEVEL_COLOURS = {"WARNING": "yellow", "ERROR": "red", "CRITICAL": "red", "ALERT": "red"}
STAMP = re.compile(r"^(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}) ")


def logs(
    process: Annotated[
        str | None,
        typer.Argument(help="A process (default: every process, interleaved, from the "
                            "supervisor's log)."),
    ] = None,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new lines.")]
    = False,
    lines: Annotated[int, typer.Option("-n", min=0, help="Lines to show.")] = 50,
    since: Annotated[str | None, typer.Option(
        "--since", help="Only lines from this long ago (10m, 2h) or since a time "
                        "(2026-12-02 14:00:00, local).")] = None,
    grep: Annotated[str | None, typer.Option(
        "--grep", help="Only lines matching this regular expression.")] = None,
    colour: Annotated[bool | None, typer.Option(
        "--color/--no-color", help="Colour process names (default: on a terminal).")] = None,
    file: FileOpt = None,
    name: NameOpt = None,
    run_dir: RunDirOpt = None,
    node: NodeOpt = None,
) -> None:
    """Show a process's log, or every process's lines interleaved (the supervisor's log)."""
    logs_dir = _logs_dir(file, name, run_dir, node)
    path = logs_dir / f"{process or 'supervisor'}.log"
    if not path.exists():
        known = sorted(p.stem for p in logs_dir.glob("*.log")) if logs_dir.is_dir() else []
        raise fail(f"no log at {path}" + (f"; logs here: {', '.join(known)}" if known else ""))
    try:
        pattern = re.compile(grep) if grep else None
    except re.error as exc:
        raise fail(f"--grep {grep!r} is not a regular expression: {exc}", 2) from None
    start = _since(since) if since else None
    paint = sys.stdout.isatty() if colour is None else colour
    with path.open(errors="replace") as f:
        for line in deque(_kept(f, pattern, start), maxlen=lines) if lines else []:
            typer.echo(_painted(line) if paint else line, nl=False, color=paint)
        while follow:
            line = f.readline()
            if not line:
                time.sleep(0.2)
            elif _keep(line, pattern, start):
                typer.echo(_painted(line) if paint else line, nl=False, color=paint)


def _kept(lines: Iterable[str], pattern: re.Pattern[str] | None, start: str | None
          ) -> Iterable[str]:
    return (line for line in lines if _keep(line, pattern, start))


def _keep(line: str, pattern: re.Pattern[str] | None, start: str | None) -> bool:
    if pattern is not None and not pattern.search(line):
        return False
    if start is not None:
        stamp = STAMP.match(line)
        if stamp is not None and stamp.group(1) < start:
            return False
    return True


def _since(value: str) -> str:
    """`--since` as the log's own timestamp format (local time), to compare as text."""
    from tradeops.topology.units import parse_duration

    try:
        cutoff = time.time() - parse_duration(value)
    except ValueError:
        try:
            cutoff = time.mktime(time.strptime(value.strip(), "%Y-%m-%d %H:%M:%S"))
        except ValueError:
            raise fail(f"--since {value!r}: give a duration (10m, 2h) or a time "
                       "(2026-12-02 14:00:00)", 2) from None
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(cutoff))


def _painted(line: str) -> str:
    """The process name in its own colour (the same name, the same colour), and the level
    in red or yellow when it is a problem."""
    stamp = STAMP.match(line)
    head = stamp.group(0) if stamp else ""
    rest = line[len(head):]
    name, sep, tail = rest.partition(" | ")
    if not sep:
        return line
    colour = COLOURS[zlib.crc32(name.strip().encode()) % len(COLOURS)]
    level, sep2, message = tail.partition(" | ")
    level_colour = LEVEL_COLOURS.get(level.strip())
    if sep2 and level_colour:
        tail = typer.style(level, fg=level_colour, bold=True) + sep2 + message
    return head + typer.style(name, fg=colour) + sep + tail


def _logs_dir(file: Path | None, name: str | None, run_dir: Path | None,
              node: str | None = None) -> Path:
    """Logs are kept per run dir and outlive their desk: with no desk named, the logs of the
    default topology's run dir, else of `--run-dir` (or the default run dir)."""
    tool = tool_settings()
    if file is None and name is None and tool.default_topology() is None:
        return (run_dir or tool.run_dir).resolve() / "logs"
    return locate(file, name, run_dir, node=node).paths.logs


def register(app: typer.Typer) -> None:
    app.command()(logs)
