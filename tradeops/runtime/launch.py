"""A strategy host's start: `python -m tradeops.runtime --topology FILE --name GROUP ...`.

Started by its supervisor, a host is handed its configuration already resolved (a pipe of
JSON, runtime/config.py) and imports nothing of the topology model: no YAML, no pydantic,
about 120 ms less on the way from `restart` to the first tick (issue 13). Started by hand, or
when the supervisor could not hand it over, it loads the topology file as every other role
does (process/entry.py) and resolves the same configuration from it.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
import threading
from pathlib import Path

from tradeops.process import child, entry
from tradeops.process.paths import RunPaths
from tradeops.runtime.config import Launch, launch_of, read_launch
from tradeops.runtime.host import Host, run_host


def main(argv: list[str] | None = None) -> int:
    """Start this process as the strategy host the command line names; its exit status."""
    args = entry.parse("host", sys.argv[1:] if argv is None else argv)
    child.check_parent()
    topology_file = Path(args.topology).resolve()
    launch = read_launch()
    if launch is not None and launch.spec.name == args.name and args.run_dir:
        paths = RunPaths(Path(args.run_dir).resolve(), launch.desk)
    else:
        loaded = entry.load("host", args)
        if isinstance(loaded, int):
            return loaded
        topology, topology_file, spec, paths = loaded
        launch = launch_of(topology, spec)
    return start(launch, paths, topology_file)


def start(launch: Launch, paths: RunPaths, topology_file: Path) -> int:
    """Logging, pins and stop signals, then the host until it stops; its exit status.
    Strategy modules import from the topology's folder too, as `validate` imports them."""
    spec = launch.spec
    stop = entry.prepare(spec, paths)
    return entry.guarded(spec, lambda: run_host(
        Host(launch.host, spec, paths, topology_file.parent), stop))


def leave(code: int) -> None:
    """Exit with `code` once the host has stopped. Python's own exit tears every module down
    first (about 20 ms on the way from `restart` to the new host's first tick); with nothing
    but daemon threads left, the host runs the exit handlers, flushes its output and leaves
    at once instead. A strategy's own non-daemon thread gets the ordinary exit, which waits
    for it."""
    if any(t is not threading.main_thread() and t.is_alive() and not t.daemon
           for t in threading.enumerate()):
        sys.exit(code)
    atexit._run_exitfuncs()  # loguru's sinks, logging, a strategy's atexit handlers
    from loguru import logger

    logger.remove()  # closes the log file
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)
