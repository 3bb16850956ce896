"""`python -m tradeops.supervisor FILE [--log PATH]`: run a desk's supervisor.

`tradeops up --detach` starts this in a session of its own with `--log
RUN_DIR/logs/supervisor.log`: the console lines (every process's, prefixed) go to that file,
rotated at 10 MB with five kept, so a long session cannot fill the disk.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from tradeops.process.paths import RunPaths
from tradeops.supervisor.supervisor import AlreadyRunning, Supervisor
from tradeops.topology.load import TopologyError, load_topology


def _stdout(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _rotated(path: str) -> Callable[[str], None]:
    from loguru import logger

    logger.remove()
    logger.add(
        path, format="{time:YYYY-MM-DD HH:mm:ss.SSS} {message}", rotation="10 MB", retention=5
    )
    return lambda line: logger.info(line)  # no arguments: braces in `line` stay as they are


def main(argv: list[str]) -> int:
    if len(argv) not in (1, 3) or (len(argv) == 3 and argv[1] != "--log"):
        sys.stderr.write("usage: python -m tradeops.supervisor TOPOLOGY.yaml [--log PATH]\n")
        return 2
    path = Path(argv[0])
    try:
        topology = load_topology(path)
    except TopologyError as exc:
        sys.stderr.write(f"{exc}\n")
        return 1
    console = _rotated(argv[2]) if len(argv) == 3 else _stdout
    supervisor = Supervisor(topology, path, RunPaths.of(topology), console)
    try:
        supervisor.acquire()
    except AlreadyRunning as exc:
        sys.stderr.write(f"{exc}\n")
        return 1
    return supervisor.run()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
