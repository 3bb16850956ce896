"""`tradeops top`: the desk live, full screen, trouble first.

Every second it asks the supervisor for `status` (the same answer `tradeops status` prints)
and shows one row per process, sorted so what needs a person comes first: not running, feed
not live, lagging, losing ticks, erroring, then the rest. Up/down (or j/k) selects a row;
the bottom line is the selected process's newest log line; `q` quits. It fits an 80x24
terminal (columns shrink, the detail is cut), works over SSH, and, when stdout is not a
terminal, prints the plain `status` table every second instead (`-n` refreshes, then exits).
"""

from __future__ import annotations

import contextlib
import os
import select
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer

from tradeops.supervisor.cli.common import FileOpt, NameOpt, RunDirOpt, fail, locate
from tradeops.supervisor.control import NotRunning, request
from tradeops.supervisor.status import age, degraded, extra, mib, render_status

LAG_MS = 100.0  # a reader this far behind is lagging


def trouble(p: dict[str, Any], lost_before: int) -> tuple[int, str]:
    """(rank, why): 0 not running, 1 feed not live, 2 lagging, 3 losing, 4 erroring, 9 fine."""
    stats = p.get("stats") or {}
    if p["state"] != "running":
        return 0, p["state"] + (f": {p['reason']}" if p.get("reason") else "")
    if p["role"] == "gateway" and stats and not stats.get("live", True) and stats.get(
            "market", "open") == "open":
        return 1, f"NOT LIVE: {stats.get('reason', '')}"
    if p["role"] == "host" and float(stats.get("lag_ms", 0)) > LAG_MS:
        return 2, f"lagging {stats['lag_ms']:g}ms"
    if int(stats.get("lost", 0)) > lost_before:
        return 3, f"losing ticks ({stats['lost']} lost)"
    if stats.get("errors") or p.get("problems"):
        return 4, f"errors {stats.get('errors', 0)}" if stats.get("errors") else "degraded"
    return 9, ""


def rows(reply: dict[str, Any], lost: dict[str, int]) -> list[tuple[int, dict[str, Any], str]]:
    ranked = [(*trouble(p, lost.get(p["name"], 0)), p) for p in reply["processes"]]
    ranked.sort(key=lambda r: (r[0], r[2]["name"]))
    for _, _, p in ranked:
        lost[p["name"]] = int((p.get("stats") or {}).get("lost", 0))
    return [(rank, p, why) for rank, why, p in ranked]


def last_log_line(logs: Path, name: str) -> str:
    path = logs / f"{name}.log"
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 4096))
            tail = f.read().decode(errors="replace").rstrip("\n").splitlines()
    except OSError:
        return "(no log)"
    return tail[-1] if tail else "(empty log)"


def screen(reply: dict[str, Any], ranked: list[tuple[int, dict[str, Any], str]], selected: int,
           logs: Path, width: int, height: int) -> Any:
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    problems = degraded(reply)
    head = Text(f"desk {reply['desk']}  up {age(reply['uptime'])}  "
                f"{time.strftime('%H:%M:%S')}  ", style="bold")
    head.append(f"{len(problems)} problem(s)" if problems else "all well",
                style="bold red" if problems else "bold green")
    table = Table(box=None, pad_edge=False, expand=True, show_edge=False, header_style="bold")
    for column, kw in (("NAME", {"max_width": 18, "no_wrap": True}),
                       ("STATE", {"max_width": 8, "no_wrap": True}),
                       ("UP", {"justify": "right", "no_wrap": True}),
                       ("RST", {"justify": "right", "no_wrap": True}),
                       ("CPU%", {"justify": "right", "no_wrap": True}),
                       ("RSS", {"justify": "right", "no_wrap": True}),
                       ("DETAIL", {"no_wrap": True, "overflow": "ellipsis", "ratio": 1})):
        table.add_column(column, **kw)
    room = max(1, height - 5)  # header, table header, log line, help line, margin
    first = max(0, min(selected - room + 1, len(ranked) - room))
    for i, (rank, p, why) in enumerate(ranked[first:first + room], start=first):
        style = "red" if rank <= 1 else "yellow" if rank <= 4 else ""
        if i == selected:
            style += " reverse"
        detail = why or extra(p) or ""
        table.add_row(p["name"], p["state"], age(p["uptime"]), str(p["restarts"]),
                      "-" if p["cpu"] is None else f"{p['cpu']:g}", mib(p["rss"]), detail,
                      style=style.strip() or None)
    chosen = ranked[selected][1]["name"] if ranked else ""
    log = Text(f"{chosen}: {last_log_line(logs, chosen)}"[: max(10, width - 1)], style="dim")
    keys = Text("q quit  ↑/↓ select", style="dim")
    return Group(head, table, log, keys)


@contextlib.contextmanager
def keys() -> Iterator[None]:
    """The terminal in cbreak mode (keys arrive one at a time, unechoed), restored after."""
    import termios
    import tty

    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    try:
        tty.setcbreak(fd)
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def read_key(timeout: float) -> str:
    """One key press within `timeout` ('' for none); arrows as 'up'/'down'."""
    ready, _, _ = select.select([sys.stdin], [], [], timeout)
    if not ready:
        return ""
    key = os.read(sys.stdin.fileno(), 16).decode(errors="replace")
    return {"\x1b[A": "up", "\x1b[B": "down", "k": "up", "j": "down"}.get(key, key)


def top(
    topology: Annotated[Path | None, typer.Argument(
        metavar="[FILE]", help="The desk's topology file (as --file).", show_default=False)]
    = None,
    file: FileOpt = None,
    name: NameOpt = None,
    run_dir: RunDirOpt = None,
    refreshes: Annotated[int, typer.Option(
        "-n", min=0, help="Refresh this many times, then exit (0: until q or Ctrl-C).")] = 0,
    every: Annotated[float, typer.Option("--every", min=0.2, help="Seconds between refreshes.")]
    = 1.0,
) -> None:
    """A live view of the running desk, trouble first (`q` quits)."""
    desk = locate(file or topology, name, run_dir, not_running=3)
    tty = sys.stdout.isatty() and sys.stdin.isatty()
    count = 0

    def ask() -> dict[str, Any]:
        try:
            return request(desk.paths.control, {"cmd": "status"}, 10.0)
        except NotRunning:
            raise fail(f"desk '{desk.paths.name}' is not running (any more)", 3) from None

    if not tty:
        while True:
            reply = ask()
            typer.echo(render_status(reply))
            for problem in degraded(reply):
                typer.echo(f"degraded: {problem}")
            typer.echo("", nl=True)
            count += 1
            if refreshes and count >= refreshes:
                return
            time.sleep(every)
    from rich.console import Console
    from rich.live import Live

    console = Console()
    selected, lost = 0, dict[str, int]()
    with keys(), Live(console=console, screen=True, auto_refresh=False) as live:
        while True:
            reply = ask()
            ranked = rows(reply, lost)
            selected = max(0, min(selected, len(ranked) - 1))
            live.update(screen(reply, ranked, selected, desk.paths.logs, console.width,
                               console.height), refresh=True)
            count += 1
            if refreshes and count >= refreshes:
                return
            deadline = time.monotonic() + every
            while (left := deadline - time.monotonic()) > 0:
                key = read_key(left)
                if key in ("q", "Q", "\x03"):
                    return
                if key in ("up", "down"):
                    selected += -1 if key == "up" else 1
                    selected = max(0, min(selected, len(ranked) - 1))
                    live.update(screen(reply, ranked, selected, desk.paths.logs,
                                       console.width, console.height), refresh=True)


def register(app: typer.Typer) -> None:
    app.command()(top)
