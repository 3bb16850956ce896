"""The start-up every role shares: `python -m tradeops.ROLE --topology FILE --name NAME ...`.

    --topology FILE      the desk's topology
    --name NAME          this process's name (sim-BROKER, gateway-BROKER, proxy, or a group name)
    --run-dir DIR        where sockets, logs and state live (default: the topology's run dir)
    --url URL            gateway of a sim broker: the sim's address
    --port PORT          sim: the port to bind (a restarted sim keeps its address)
    --node NODE          settings.cluster: the node this process runs on

`run_role` checks that the supervisor is alive, loads the topology, finds this process's spec,
sets up logging and CPU pins and the stop signals (`prepare`), then calls the role's body
until it returns. A role can also be started by hand with the same arguments, for debugging.
The strategy host starts lighter (tradeops/runtime/launch.py): its supervisor hands it its
resolved configuration, so it loads the topology only when started by hand.
"""

from __future__ import annotations

import argparse
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from loguru import logger

from tradeops.process import child
from tradeops.process.paths import RunPaths
from tradeops.process.spec import ProcessSpec, Role, process_specs

if TYPE_CHECKING:  # the host imports this module without the model (runtime/launch.py)
    from tradeops.topology.model import Topology


@dataclass(frozen=True)
class RoleContext:
    """Everything a role's body is given: what to run, where, and when to stop."""

    topology: Topology
    topology_file: Path
    spec: ProcessSpec
    paths: RunPaths
    stop: threading.Event
    url: str | None = None
    port: int = 0
    node: str = ""


Body = Callable[[RoleContext], int]


def parse(role: Role, argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=f"python -m tradeops.{_module(role)}")
    parser.add_argument("--topology", required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--run-dir")
    parser.add_argument("--url")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--node")
    return parser.parse_args(argv)


def run_role(role: Role, body: Body, argv: list[str] | None = None) -> int:
    """Start this process as `role` and run `body`; returns the process's exit status."""
    args = parse(role, sys.argv[1:] if argv is None else argv)
    child.check_parent()
    loaded = load(role, args)
    if isinstance(loaded, int):
        return loaded
    topology, topology_file, spec, paths = loaded
    stop = prepare(spec, paths)
    context = RoleContext(topology, topology_file, spec, paths, stop, args.url, args.port,
                          spec.node)
    return guarded(spec, lambda: body(context))


def load(role: Role, args: argparse.Namespace
         ) -> tuple[Topology, Path, ProcessSpec, RunPaths] | int:
    """The topology file, this process's spec in it and its run paths; an exit status (2,
    said on stderr) when the file does not load or names no such process."""
    from tradeops.topology.load import TopologyError, load_topology

    topology_file = Path(args.topology).resolve()
    try:
        topology = load_topology(topology_file)
    except TopologyError as exc:
        sys.stderr.write(f"{exc}\n")
        return 2
    spec = {s.name: s for s in process_specs(topology, args.node)}.get(args.name)
    if spec is None or spec.role != role:
        sys.stderr.write(f"no {role} named {args.name!r} in {args.topology}\n")
        return 2
    if args.run_dir:
        paths = RunPaths(Path(args.run_dir).resolve(), topology.name)
    else:
        paths = RunPaths.of(topology, topology_file)
    return topology, topology_file, spec, paths


def prepare(spec: ProcessSpec, paths: RunPaths) -> threading.Event:
    """Logging, CPU pins, the open-files limit and the stop signals of a starting process; the
    event its body stops on."""
    child.setup_logging(spec.name, paths.run_dir, spec.log_level)
    child.pin(list(spec.cpu))
    child.open_files()
    stop = threading.Event()
    child.stop_on_signals(stop)
    return stop


def guarded(spec: ProcessSpec, body: Callable[[], int]) -> int:
    """Run a role's body; an exception is logged and makes the exit status 1."""
    try:
        return int(body())
    except Exception:
        logger.exception("{} failed", spec.name)
        return 1


def _module(role: Role) -> str:
    return "runtime" if role == "host" else role
