"""Commands that ask a running desk's supervisor: status, restart, stop, start, down."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from tradeops.supervisor.cli.common import (
    Desk,
    FileOpt,
    Format,
    FormatOpt,
    NameOpt,
    NodeOpt,
    RunDirOpt,
    ask,
    fail,
    locate,
    validated,
)
from tradeops.supervisor.control import NotRunning, request
from tradeops.supervisor.status import degraded, render_status

NO_DESK = 3  # `status` exit code when no desk runs (scripts tell it from degraded)
DOWN_TIMEOUT = 900.0  # bounded: hosts, then every gateway's cancel_timeout, then the rest
PROGRESS_EVERY = 3.0

TargetArg = Annotated[str, typer.Argument(help="A strategy, process group or process name.")]


def status(
    file: FileOpt = None,
    name: NameOpt = None,
    run_dir: RunDirOpt = None,
    output: FormatOpt = Format.text,
    node: NodeOpt = None,
) -> None:
    """Show every process of a running desk (with --node: of that node).

    Exit 0 when every process runs and every feed is live, 1 when the desk is degraded (a
    process not running, a feed not live, a strategy stopped or stuck, a disk problem), 3
    when no desk runs."""
    desk = locate(file, name, run_dir, output, not_running=NO_DESK, node=node)
    reply = ask(desk, {"cmd": "status"}, output, not_running=NO_DESK)
    reply["degraded"] = degraded(reply)
    cluster = desk.topology.settings.cluster if desk.topology is not None else None
    if cluster is not None:  # the other nodes, over NATS: an unreachable one is said so
        from tradeops.cluster.status import ask_nodes

        here = desk.paths.run_dir.name
        reply["node"] = here
        reply["nodes"] = ask_nodes(cluster, desk.paths.name, [n for n in cluster.nodes
                                                              if n != here])
        reply["degraded"] += node_problems(reply["nodes"])
    if output is Format.json:
        typer.echo(json.dumps(reply, indent=2))
    else:
        typer.echo(render_status(reply))
        for other, answer in (reply.get("nodes") or {}).items():
            typer.echo(render_node(other, answer))
        for problem in reply["degraded"]:
            typer.echo(f"degraded: {problem}")
    if reply["degraded"]:
        raise typer.Exit(1)


def node_problems(nodes: dict[str, Any]) -> list[str]:
    """Why other nodes of a cluster desk are not whole: unreachable, or a process down."""
    problems = []
    for node, answer in nodes.items():
        if "error" in answer:
            problems.append(f"node {node} is unreachable: {answer['error']}")
            continue
        for p in answer.get("processes") or []:
            if p.get("state") != "running":
                why = f": {p['reason']}" if p.get("reason") else ""
                problems.append(f"{p.get('name')} on node {node} is {p.get('state')}{why}")
    return problems


def render_node(node: str, answer: dict[str, Any]) -> str:
    """Another node's processes, as its supervisor answered over NATS."""
    if "error" in answer:
        return f"\nnode {node}: UNREACHABLE ({answer['error']})"
    lines = [f"\nnode {node}:"]
    for p in answer.get("processes") or []:
        pid = p.get("pid") or "-"
        lines.append(f"  {p.get('name', '?'):<14} {p.get('role', '?'):<9} "
                     f"{p.get('state', '?'):<9} {pid!s:<8} restarts {p.get('restarts', 0)}"
                     + (f"  {p['reason']}" if p.get("reason") else ""))
    return "\n".join(lines)


def _command(
    cmd: str, target: str, file: Path | None, name: str | None, run_dir: Path | None,
    node: str | None = None,
) -> None:
    desk = locate(file, name, run_dir, node=node)
    elsewhere = _node_of(desk, target)
    if elsewhere is not None:
        _command_elsewhere(desk, elsewhere, cmd, target)
        return
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
    if cmd == "stop":
        from tradeops.supervisor.cli.cancels import await_group_cancels

        _report_left(await_group_cancels(desk, str(reply["process"])))


def _node_of(desk: Desk, target: str) -> str | None:
    """The other node `target` (a process, group or strategy) runs on, in a cluster desk;
    None when it is this node's, or the desk runs on one machine."""
    topology = desk.topology
    if topology is None or topology.settings.cluster is None:
        return None
    from tradeops.process.spec import process_specs

    here = desk.paths.run_dir.name
    for node in topology.settings.cluster.nodes:
        for spec in process_specs(topology, node):
            if target == spec.name or target in spec.strategies:
                return None if node == here else node
    return None  # unknown everywhere: this node's supervisor says so, with suggestions


def _command_elsewhere(desk: Desk, node: str, cmd: str, target: str) -> None:
    """restart, stop or start of a process on another node: its supervisor, over NATS."""
    from tradeops.cluster.status import ask_command

    assert desk.topology is not None and desk.topology.settings.cluster is not None
    if cmd in ("restart", "start") and desk.file is not None:
        validated(desk.file, f"nothing was {cmd}ed; the running desk is as it was")
    reply = ask_command(desk.topology.settings.cluster, desk.paths.name, node,
                        {"cmd": cmd, "name": target})
    if not reply.get("ok"):
        raise fail(str(reply.get("error")))
    if reply.get("note"):
        typer.echo(f"note: {reply['note']}")
    typer.echo(f"{cmd}: {reply['process']} ({reply['state']}) on node {node}")


def restart(
    target: TargetArg, file: FileOpt = None, name: NameOpt = None, run_dir: RunDirOpt = None,
    node: NodeOpt = None,
) -> None:
    """Replace one process mid-session; every other keeps running."""
    _command("restart", target, file, name, run_dir, node)


def stop(
    target: TargetArg, file: FileOpt = None, name: NameOpt = None, run_dir: RunDirOpt = None,
    node: NodeOpt = None,
) -> None:
    """Stop one process (it stays stopped until `tradeops start`)."""
    _command("stop", target, file, name, run_dir, node)


def start(
    target: TargetArg, file: FileOpt = None, name: NameOpt = None, run_dir: RunDirOpt = None,
    node: NodeOpt = None,
) -> None:
    """Start a stopped, exited or fatal process."""
    _command("start", target, file, name, run_dir, node)


def down(
    file: FileOpt = None,
    name: NameOpt = None,
    run_dir: RunDirOpt = None,
    node: NodeOpt = None,
) -> None:
    """Stop the whole desk (with --node: that node) gracefully and report what was stopped.

    Hosts stop first, so each gateway applies their groups' auto-cancel and waits (up to
    `orders.cancel_timeout`) until the broker confirms every cancel, showing progress here.
    An order still working at the broker afterwards is printed and the exit status is 1."""
    desk = locate(file, name, run_dir, node=node)
    reply = _down_with_progress(desk)
    pid = int(reply.get("pid", 0))
    deadline = time.monotonic() + 10
    while pid and Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.02)  # the supervisor answers, then exits: wait for that too
    typer.echo(f"stopped: {', '.join(reply.get('stopped', []))}")
    _report_left(reply.get("left_working") or [])


def _report_left(left: list[dict[str, Any]]) -> None:
    """Each order still working whose cancel was not confirmed; exit 1 when there is one."""
    for order in left:
        typer.echo(
            f"STILL WORKING at broker '{order['broker']}': {order['strategy']} {order['side']} "
            f"{order['qty']:g} {order['symbol']} (order {order.get('order_id', '-')}, "
            f"{order['client_order_id']}): its cancel was not confirmed in time", err=True)
    if left:
        raise fail(f"{len(left)} order(s) are still working at the broker; cancel them there, "
                   "or raise orders.cancel_timeout")


def _down_with_progress(desk: Desk) -> dict[str, Any]:
    """Ask for `down` and, while it runs, say every few seconds what it waits for."""
    result: dict[str, Any] = {}

    def ask_down() -> None:
        try:
            result["reply"] = request(desk.paths.control, {"cmd": "down"}, DOWN_TIMEOUT)
        except (NotRunning, OSError, ValueError) as exc:
            result["error"] = exc

    worker = threading.Thread(target=ask_down, daemon=True)
    worker.start()
    said = ""
    while worker.is_alive():
        worker.join(PROGRESS_EVERY)
        if worker.is_alive() and (line := _waiting_for(desk)) and line != said:
            typer.echo(line)
            said = line
    if "error" in result:
        if isinstance(result["error"], NotRunning):
            raise fail(f"no desk is running at {desk.paths.control}")
        raise fail(f"down did not complete: {result['error']}")
    reply: dict[str, Any] = result["reply"]
    return reply


def _waiting_for(desk: Desk) -> str:
    """`stopping: gateway-sim (2 working, 1 queued)` from the desk's status, or ""."""
    try:
        status = request(desk.paths.control, {"cmd": "status"}, 5.0)
    except (NotRunning, OSError, ValueError):
        return ""
    parts = []
    for p in status.get("processes", []):
        if p.get("state") != "stopping":
            continue
        orders = (p.get("stats") or {}).get("orders") or {}
        busy = ", ".join(f"{n} {k}" for k, n in orders.items() if n and k in ("working",
                                                                          "queued"))
        parts.append(f"{p['name']} ({busy})" if busy else p["name"])
    return f"stopping: {', '.join(parts)}" if parts else ""


def register(app: typer.Typer) -> None:
    for command in (status, restart, stop, start, down):
        app.command()(command)
