"""What every desk command shares: its options, finding the desk it means, failing plainly.

One convention for all commands: `--file/-f` names the topology, `--name` (with `--run-dir`)
names a desk without its file, and with neither the desk is found from a topology in the
current directory (`tradeops.yaml`, then `topology.yaml`, or `$TRADEOPS_TOPOLOGY`), else as
the only desk running under the default run dir (`$TRADEOPS_RUN_DIR`, else `.tradeops`).
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from tradeops.process.paths import RunPaths
from tradeops.supervisor.control import NotRunning, request

if TYPE_CHECKING:  # loaded when a command reads a topology file, not to parse arguments
    from tradeops.settings import ToolSettings
    from tradeops.topology.model import Topology


class Format(StrEnum):
    text = "text"
    json = "json"


FileOpt = Annotated[
    Path | None,
    typer.Option(
        "--file",
        "-f",
        help="The desk's topology file (default: ./tradeops.yaml, then ./topology.yaml).",
        show_default=False,
    ),
]
NameOpt = Annotated[
    str | None,
    typer.Option("--name", help="The desk's name, looked up in --run-dir (instead of --file)."),
]
RunDirOpt = Annotated[
    Path | None,
    typer.Option(
        "--run-dir",
        help="Where to look for a desk given by --name "
        "(default: $TRADEOPS_RUN_DIR, else .tradeops).",
        show_default=False,
    ),
]
NodeOpt = Annotated[
    str | None,
    typer.Option("--node", help="settings.cluster: the node meant (its run dir is RUN_DIR/NODE)."),
]
FormatOpt = Annotated[
    Format, typer.Option("--format", help="text for people, json for machines.")
]


def fail(message: str, code: int = 1, output: Format = Format.text) -> typer.Exit:
    """Print why a command cannot go on (as a JSON error object under --format json) and
    return the Exit to raise."""
    if output is Format.json:
        typer.echo(json.dumps({"ok": False, "error": message}, indent=2))
    else:
        typer.echo(message, err=True)
    return typer.Exit(code)


def tool_settings(output: Format = Format.text) -> ToolSettings:
    from tradeops.settings import SettingsError, current  # pydantic-settings: only when used

    try:
        return current()
    except SettingsError as exc:
        raise fail(f"bad environment: {exc}", 2, output) from None


@dataclass(frozen=True)
class Desk:
    """A desk a command means: where it runs, and its topology when a file named it."""

    paths: RunPaths
    file: Path | None = None
    topology: Topology | None = None

    @property
    def hint(self) -> str:
        """How to name this desk again in a command line."""
        return f"--file {self.file}" if self.file else f"--name {self.paths.name}"


def load(file: Path, output: Format = Format.text) -> Topology:
    from tradeops.topology.load import TopologyError, load_topology

    try:
        return load_topology(file)
    except TopologyError as exc:
        raise fail(f"{file}: {exc}", 1, output) from None
    except OSError as exc:
        raise fail(f"cannot read {file}: {exc.strerror}", 2, output) from None


def validated(file: Path, consequence: str) -> Topology:
    """The topology of `file` after every check `tradeops validate` runs; on an error the
    findings are printed and the command fails (exit 1) with `consequence` said."""
    from tradeops.topology.check import CheckOptions
    from tradeops.topology.report import render_text
    from tradeops.topology.validate import validate_file

    report = validate_file(file, CheckOptions(), env_required=True)
    if report.usage_error:
        raise fail(report.usage_error, 2)
    if report.errors or report.topology is None:
        colour = tool_settings().colour_for(sys.stderr.isatty())
        typer.echo(render_text([report], colour=colour), err=True)
        raise fail(f"the topology has errors; {consequence}")
    for finding in report.findings:
        typer.echo(f"warning: {finding.file}:{finding.line}: {finding.message}", err=True)
    return report.topology


def on_node(topology: Topology, paths: RunPaths, node: str | None,
            output: Format = Format.text) -> RunPaths:
    """The run paths of `node` of a desk spread over several; the desk's own otherwise.
    Fails plainly when a cluster desk is named without a node, or with one it lacks."""
    node = node or os.environ.get("TRADEOPS_NODE") or None
    cluster = topology.settings.cluster
    if cluster is None:
        if node is not None:
            raise fail(f"desk '{topology.name}' declares no settings.cluster, so it has no "
                       f"node '{node}'; leave --node out", 2, output)
        return paths
    nodes = ", ".join(cluster.nodes)
    if node is None:
        raise fail(f"desk '{topology.name}' spans nodes ({nodes}); say which with --node "
                   "NAME (or TRADEOPS_NODE=NAME)", 2, output)
    if node not in cluster.nodes:
        raise fail(f"desk '{topology.name}' has no node '{node}'; its nodes are {nodes}", 2,
                   output)
    return paths.on_node(node)


def locate(
    file: Path | None, name: str | None, run_dir: Path | None, output: Format = Format.text,
    not_running: int = 1, node: str | None = None,
) -> Desk:
    """The desk a command means (see the module's docstring for the order); with `node`,
    that node of a desk spread over several."""
    if file is None and name is None:
        file = tool_settings(output).default_topology()
    if file is not None:  # the tool's settings (pydantic-settings, ~35 ms) are not needed
        topology = load(file, output)
        paths = on_node(topology, RunPaths.of(topology, file), node, output)
        return Desk(paths, file, topology)
    tool = tool_settings(output)
    base = (run_dir or tool.run_dir).resolve()
    if node is not None:
        base = base / node
    if name is not None:
        return Desk(RunPaths(base, name))
    sockets = sorted(base.glob("*.sock")) if base.is_dir() else []
    controls = [s for s in sockets if "-gw-" not in s.name]
    if len(controls) == 1:
        return Desk(RunPaths(base, controls[0].stem))
    if not controls:
        looked = " or ".join(tool.topology_names())
        raise fail(
            f"no desk is running from {base}, and there is no {looked} here; name the desk "
            "with --file TOPOLOGY.yaml (or --name NAME --run-dir DIR)",
            not_running,
            output,
        )
    names = ", ".join(s.stem for s in controls)
    raise fail(f"several desks run from {base} ({names}); choose one with --name", 2, output)


def ask(
    desk: Desk, command: dict[str, Any], output: Format = Format.text, timeout: float = 30.0,
    not_running: int = 1,
) -> dict[str, Any]:
    """Send one command to the desk's supervisor; fail plainly (exit `not_running`) when none
    answers."""
    try:
        return request(desk.paths.control, command, timeout)
    except NotRunning:
        start = f"tradeops up {desk.file}" if desk.file else "tradeops up TOPOLOGY.yaml"
        raise fail(
            f"no desk is running at {desk.paths.control}; start it with `{start}`",
            not_running, output,
        ) from None
