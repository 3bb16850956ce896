"""The commands that run and drive a desk: up, status, restart, stop, start, logs, down."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from tradeops.process.paths import RunPaths
from tradeops.supervisor.control import NotRunning, request
from tradeops.supervisor.status import render_status

FileArg = Annotated[
    Path | None,
    typer.Argument(help="The desk's topology file (or use --name).", show_default=False),
]
NameOpt = Annotated[
    str | None, typer.Option("--name", help="The desk's name, looked up in --run-dir.")
]
RunDirOpt = Annotated[
    Path, typer.Option("--run-dir", help="Where to look for a desk given by --name.")
]


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(message, err=True)
    return typer.Exit(code)


def locate(file: Path | None, name: str | None, run_dir: Path) -> Path:
    """The control socket of the desk a command means."""
    if file is not None:
        from tradeops.topology.load import TopologyError, load_topology

        try:
            topology = load_topology(file)
        except TopologyError as exc:
            raise _fail(str(exc)) from None
        except OSError as exc:
            raise _fail(f"cannot read {file}: {exc.strerror}", 2) from None
        return RunPaths.of(topology).control
    if name is not None:
        return run_dir.resolve() / f"{name}.sock"
    sockets = sorted(run_dir.glob("*.sock")) if run_dir.is_dir() else []
    controls = [s for s in sockets if "-gw-" not in s.name]
    if len(controls) == 1:
        return controls[0]
    if not controls:
        raise _fail(
            f"no desk is running from {run_dir.resolve()}; start one with "
            "`tradeops up TOPOLOGY.yaml`"
        )
    names = ", ".join(s.stem for s in controls)
    raise _fail(f"several desks run from {run_dir.resolve()} ({names}); choose one with --name", 2)


def _ask(control: Path, command: dict[str, Any], timeout: float = 30.0) -> dict[str, Any]:
    try:
        return request(control, command, timeout)
    except NotRunning:
        raise _fail(
            f"no desk is running at {control}; start it with `tradeops up TOPOLOGY.yaml`"
        ) from None


def register(app: typer.Typer) -> None:
    @app.command()
    def up(
        file: Annotated[Path, typer.Argument(help="The desk's topology file.")],
        detach: Annotated[
            bool, typer.Option("--detach", "-d", help="Return once everything is ready.")
        ] = False,
    ) -> None:
        """Validate the topology, then start and supervise the whole desk."""
        from tradeops.supervisor.supervisor import CannotStart, Supervisor
        from tradeops.topology.check import CheckOptions
        from tradeops.topology.report import render_text
        from tradeops.topology.validate import validate_file

        report = validate_file(file, CheckOptions())
        if report.usage_error:
            raise _fail(report.usage_error, 2)
        if report.errors or report.topology is None:
            typer.echo(render_text([report], colour=sys.stderr.isatty()), err=True)
            raise _fail("the topology has errors; nothing was started")
        topology = report.topology
        for finding in report.findings:
            typer.echo(f"warning: {finding.file}:{finding.line}: {finding.message}", err=True)
        paths = RunPaths.of(topology)
        try:
            paths.check(topology)
        except ValueError as exc:
            raise _fail(str(exc)) from None
        try:
            request(paths.control, {"cmd": "status"}, timeout=5)
            raise _fail(
                f"desk '{topology.name}' is already running (control socket "
                f"{paths.control}); use `tradeops status` or `tradeops down`"
            )
        except (NotRunning, OSError, ValueError):
            pass  # nothing answers: free to start
        if detach:
            _up_detached(file, paths)
            return

        def console(line: str) -> None:
            typer.echo(line)

        supervisor = Supervisor(topology, file, paths, console)
        try:
            supervisor.acquire()
        except CannotStart as exc:
            raise _fail(str(exc)) from None
        raise typer.Exit(supervisor.run())

    @app.command()
    def status(
        file: FileArg = None,
        name: NameOpt = None,
        run_dir: RunDirOpt = Path(".tradeops"),
        output: Annotated[str, typer.Option("--format", "-f", help="text or json")] = "text",
    ) -> None:
        """Show every process of a running desk."""
        reply = _ask(locate(file, name, run_dir), {"cmd": "status"})
        if output == "json":
            typer.echo(json.dumps(reply, indent=2))
        else:
            typer.echo(render_status(reply))

    def _command(cmd: str, target: str, file: Path | None, name: str | None, run_dir: Path) -> None:
        reply = _ask(locate(file, name, run_dir), {"cmd": cmd, "name": target})
        if not reply.get("ok"):
            raise _fail(str(reply.get("error")))
        if reply.get("note"):
            typer.echo(f"note: {reply['note']}")
        typer.echo(f"{cmd}: {reply['process']} ({reply['state']})")

    @app.command()
    def restart(
        target: Annotated[str, typer.Argument(help="A strategy or process name.")],
        file: Annotated[Path | None, typer.Option("--file", help="Topology file.")] = None,
        name: NameOpt = None,
        run_dir: RunDirOpt = Path(".tradeops"),
    ) -> None:
        """Replace one process mid-session; every other keeps running."""
        _command("restart", target, file, name, run_dir)

    @app.command()
    def stop(
        target: Annotated[str, typer.Argument(help="A strategy or process name.")],
        file: Annotated[Path | None, typer.Option("--file", help="Topology file.")] = None,
        name: NameOpt = None,
        run_dir: RunDirOpt = Path(".tradeops"),
    ) -> None:
        """Stop one process (it stays stopped until `tradeops start`)."""
        _command("stop", target, file, name, run_dir)

    @app.command()
    def start(
        target: Annotated[str, typer.Argument(help="A strategy or process name.")],
        file: Annotated[Path | None, typer.Option("--file", help="Topology file.")] = None,
        name: NameOpt = None,
        run_dir: RunDirOpt = Path(".tradeops"),
    ) -> None:
        """Start a stopped, exited or fatal process."""
        _command("start", target, file, name, run_dir)

    @app.command()
    def down(
        file: FileArg = None, name: NameOpt = None, run_dir: RunDirOpt = Path(".tradeops")
    ) -> None:
        """Stop the whole desk gracefully and report what was stopped."""
        reply = _ask(locate(file, name, run_dir), {"cmd": "down"}, timeout=120.0)
        pid = int(reply.get("pid", 0))
        deadline = time.monotonic() + 10
        while pid and Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.02)  # the supervisor answers, then exits: wait for that too
        typer.echo(f"stopped: {', '.join(reply.get('stopped', []))}")

    @app.command()
    def orders(
        file: FileArg = None,
        strategy: Annotated[str | None, typer.Option("--strategy", "-s",
                                                     help="Only this strategy.")] = None,
        lines: Annotated[int, typer.Option("-n", help="Journal lines to show.")] = 20,
        name: NameOpt = None,
        run_dir: RunDirOpt = Path(".tradeops"),
    ) -> None:
        """Working orders (asked of each gateway) and the recent order journal."""
        from tradeops.gateway.client import GatewayClient, GatewayError
        from tradeops.gateway.journal import journal_path, tail

        control = locate(file, name, run_dir)
        desk_dir, desk = control.parent, control.stem
        working: list[dict[str, Any]] = []
        for sock in sorted(desk_dir.glob(f"{desk}-gw-*.sock")):
            try:
                with GatewayClient(str(sock), "tradeops orders") as client:
                    reply = client.request({"op": "orders"})
            except GatewayError as exc:
                typer.echo(f"warning: {sock.name}: {exc}", err=True)
                continue
            broker = sock.stem.split("-gw-", 1)[1]
            working += [o | {"broker": broker} for o in reply.get("orders", {}).get("working", [])
                        if strategy is None or o["strategy"] == strategy]
        typer.echo(f"working orders: {len(working)}")
        for o in working:
            price = "market" if o["limit"] is None else f"limit {o['limit']:g}"
            typer.echo(f"  {o['strategy']:<16} {o['broker']:<8} {o['order_id']:<14} "
                       f"{o['side']:<4} {o['qty']:g} {o['symbol']} {price} {o['status']} "
                       f"(filled {o['filled_qty']:g})")
        entries = tail(journal_path(desk_dir), lines, strategy)
        typer.echo(f"\njournal ({journal_path(desk_dir)}), last {len(entries)}:")
        for e in entries:
            rest = {k: v for k, v in e.items() if k not in ("time", "event", "strategy")
                    and v not in (None, "")}
            typer.echo(f"  {e['time']} {e['event']:<16} {e.get('strategy', '-'):<16} "
                       + " ".join(f"{k}={v}" for k, v in rest.items()))

    @app.command()
    def logs(
        process: Annotated[str | None, typer.Argument(help="A process name.")] = None,
        follow: Annotated[bool, typer.Option("--follow", "-f")] = False,
        lines: Annotated[int, typer.Option("-n", help="Lines to show.")] = 50,
        run_dir: RunDirOpt = Path(".tradeops"),
    ) -> None:
        """Show a process's log (or the supervisor's, which has everyone's)."""
        path = run_dir / "logs" / f"{process or 'supervisor'}.log"
        if not path.exists():
            known = (
                sorted(p.stem for p in (run_dir / "logs").glob("*.log"))
                if (run_dir / "logs").is_dir()
                else []
            )
            raise _fail(f"no log at {path}" + (f"; logs here: {', '.join(known)}" if known else ""))
        with path.open(errors="replace") as f:
            for line in f.readlines()[-lines:]:
                typer.echo(line, nl=False)
            while follow:
                line = f.readline()
                if line:
                    typer.echo(line, nl=False)
                else:
                    time.sleep(0.2)


def _up_detached(file: Path, paths: RunPaths) -> None:
    paths.logs.mkdir(parents=True, exist_ok=True)
    log = paths.logs / "supervisor.log"
    # The supervisor writes its (rotated) log itself; this file only catches a crash.
    errors = paths.logs / "supervisor.err"
    with errors.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tradeops.supervisor", str(file), "--log", str(log)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        code = proc.poll()
        if code is not None:
            for path in (log, errors):
                if path.exists():
                    tail = path.read_text(errors="replace").splitlines()[-15:]
                    typer.echo("\n".join(tail), err=True)
            raise _fail(f"the supervisor exited with status {code}; see {log}", code or 1)
        try:
            reply = request(paths.control, {"cmd": "status"}, timeout=5)
        except (NotRunning, OSError, ValueError):
            time.sleep(0.05)
            continue
        states = [p["state"] for p in reply["processes"]]
        if all(s != "starting" for s in states) and "stopped" not in states:
            typer.echo(render_status(reply))
            typer.echo(f"\ndesk '{paths.name}' is up (supervisor pid {proc.pid})")
            typer.echo(f"  logs:    {paths.logs}/  (tradeops logs [NAME] -f)")
            typer.echo(f"  control: {paths.control}")
            return
        time.sleep(0.05)
    raise _fail(f"the desk did not come up within 120 s; see {log}")
