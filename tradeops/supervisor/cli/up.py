"""`tradeops up [FILE] [--detach]`: validate, refuse what cannot work, start the desk.

Before anything starts, `up` refuses a desk that already runs (its lock is held) and a fixed
proxy port another program holds, since either would only show up later as a process
crash-looping. Detached, it reports "up" only when the supervisor says every process is
ready (supervisor/outcome.py); in the foreground the supervisor runs in this process, so
Ctrl-C returns to the shell only once everything has stopped.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from tradeops.process.paths import RunPaths
from tradeops.supervisor.cli.common import NodeOpt, fail, on_node, tool_settings, validated
from tradeops.supervisor.console import LastWords, rotated_log, split, tee
from tradeops.supervisor.control import NotRunning, request
from tradeops.supervisor.outcome import UP_FD, judge, wait_verdict
from tradeops.supervisor.status import render_status

if TYPE_CHECKING:  # a command that reads a topology imports it; parsing arguments does not
    from tradeops.topology.model import Topology

UP_TIMEOUT = 120.0  # the supervisor's tiers each wait at most 30 s; this is the backstop


def up(
    file: Annotated[
        Path | None,
        typer.Argument(
            help="The desk's topology file (default: ./tradeops.yaml, then ./topology.yaml).",
            show_default=False,
        ),
    ] = None,
    detach: Annotated[
        bool,
        typer.Option("--detach", "-d", help="Return once every process is ready (exit 1 if not)."),
    ] = False,
    node: NodeOpt = None,
) -> None:
    """Validate the topology, then start and supervise the whole desk (with settings.cluster:
    what is placed on --node)."""
    file = _topology_file(file)
    _refuse_if_running(file, node)  # first: a running desk is the answer, whatever else is wrong
    topology = validated(file, "nothing was started")
    paths = on_node(topology, RunPaths.of(topology, file), node)
    node = paths.run_dir.name if topology.settings.cluster is not None else None
    try:
        paths.check(topology)
    except ValueError as exc:
        raise fail(str(exc)) from None
    cluster = topology.settings.cluster
    if cluster is None or (topology.settings.proxy.node or cluster.default_node) == node:
        _refuse_if_port_taken(topology)  # only where the proxy runs
    from tradeops.supervisor.desklock import CannotStart, check_run_dir

    try:
        check_run_dir(paths)  # a read-only or full run dir: one line, before anything starts
    except CannotStart as exc:
        raise fail(str(exc)) from None
    if detach:
        _up_detached(file, paths, node)
    else:
        _up_foreground(topology, file, paths, node)


def _topology_file(file: Path | None) -> Path:
    if file is not None:
        return file
    tool = tool_settings()
    found = tool.default_topology()
    if found is None:
        looked = " or ".join(tool.topology_names())
        raise fail(f"no topology given and no {looked} here; run `tradeops up FILE`", 2)
    return found


def _refuse_if_running(file: Path, node: str | None) -> None:
    """A supervisor holding the desk's lock, or answering on its socket, is this desk."""
    from tradeops.topology.load import load

    try:
        topology = load(file).topology
    except OSError:
        return  # validation says why the file cannot be read
    if topology is None:
        return
    paths = RunPaths.of(topology, file)
    if topology.settings.cluster is not None and node is not None:
        paths = paths.on_node(node)
    pid = _lock_holder(paths.lock)
    if pid is None:
        try:
            pid = int(request(paths.control, {"cmd": "status"}, timeout=5).get("pid", 0))
        except (NotRunning, OSError, ValueError):
            return  # nothing answers: free to start
    who = f" (supervisor pid {pid})" if pid else ""
    raise fail(
        f"desk '{topology.name}' is already running from {paths.run_dir}{who}; see it with "
        f"`tradeops status -f {file}`, stop it with `tradeops down -f {file}`"
    )


def _lock_holder(lock: Path) -> int | None:
    """The pid in a lock file another process holds; None when nobody holds it."""
    try:
        f = lock.open("r")
    except OSError:
        return None
    with f:
        try:
            fcntl.flock(f, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            text = f.read().strip()
            return int(text) if text.isdigit() else 0
    return None


def _refuse_if_port_taken(topology: Topology) -> None:
    proxy = topology.settings.proxy
    if not proxy.enabled or proxy.port == 0:
        return
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            proxy.host, proxy.port, type=socket.SOCK_STREAM
        )[0]
    except socket.gaierror:
        return  # the proxy itself will say what is wrong with the host
    with socket.socket(family, kind, proto) as probe:
        # As the proxy binds (asyncio sets SO_REUSEADDR): old TIME_WAIT connections are no bar.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                return
            raise fail(
                f"proxy: address {proxy.listen} already in use (another desk, or another "
                "program); nothing was started. Stop it, or set settings.proxy.listen to a free "
                'port ("127.0.0.1:0" picks one)'
            ) from None


def _up_foreground(topology: Topology, file: Path, paths: RunPaths, node: str | None) -> None:
    from tradeops.supervisor.supervisor import CannotStart, Supervisor

    tool = tool_settings()

    def terminal(line: str) -> None:
        if tool.shows(split(line)[1] or ""):
            typer.echo(line)

    console = LastWords(tee(terminal, rotated_log(paths.logs / "supervisor.log")))
    supervisor = Supervisor(topology, file, paths, console, node)

    def on_ready() -> None:
        verdict = judge(supervisor.status(), console.problem, console.last)
        for problem in verdict.problems:
            console(f"supervisor | WARNING | not ready: {problem}")

    try:
        supervisor.acquire()
    except CannotStart as exc:
        raise fail(str(exc)) from None
    # run() returns only after every process has stopped, however it was asked to stop.
    raise typer.Exit(supervisor.run(on_ready))


def _up_detached(file: Path, paths: RunPaths, node: str | None) -> None:
    paths.logs.mkdir(parents=True, exist_ok=True)
    log = paths.logs / "supervisor.log"
    # The supervisor writes its (rotated) log itself; this file only catches a crash.
    errors = paths.logs / "supervisor.err"
    verdict_r, verdict_w = os.pipe()
    with errors.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tradeops.supervisor", str(file), "--log", str(log),
             *(["--node", node] if node else [])],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            pass_fds=(verdict_w,),
            env={**os.environ, "PYTHONUNBUFFERED": "1", UP_FD: str(verdict_w)},
        )
    os.close(verdict_w)
    try:
        verdict = wait_verdict(verdict_r, UP_TIMEOUT)
    except TimeoutError:
        raise fail(f"the desk did not come up within {UP_TIMEOUT:g} s; see {log}") from None
    finally:
        os.close(verdict_r)
    if verdict is None:
        code = proc.wait()
        for path in (log, errors):
            if path.exists():
                tail = path.read_text(errors="replace").splitlines()[-15:]
                typer.echo("\n".join(tail), err=True)
        raise fail(f"the supervisor exited with status {code}; see {log}", code or 1)
    with contextlib.suppress(NotRunning, OSError, ValueError):
        typer.echo(render_status(request(paths.control, {"cmd": "status"}, timeout=30)))
    if not verdict.ok:
        for problem in verdict.problems:
            typer.echo(problem, err=True)
        raise fail(
            f"desk '{paths.name}' started, but not every process is ready (above); the rest "
            f"keeps running: see `tradeops status -f {file}`, stop it with `tradeops down -f "
            f"{file}`"
        )
    typer.echo(f"\ndesk '{paths.name}' is up (supervisor pid {proc.pid})")
    typer.echo(f"  logs:    {paths.logs}/  (tradeops logs [NAME] --follow)")
    typer.echo(f"  control: {paths.control}")
