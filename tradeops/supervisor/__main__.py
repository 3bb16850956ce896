"""`python -m tradeops.supervisor FILE`: run a desk's supervisor in the foreground.

`tradeops up --detach` starts this in a session of its own with its output going to
`RUN_DIR/logs/supervisor.log`.
"""

from __future__ import annotations

import sys
from pathlib import Path

from tradeops.supervisor.spec import RunPaths
from tradeops.supervisor.supervisor import AlreadyRunning, Supervisor
from tradeops.topology.load import TopologyError, load_topology


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        sys.stderr.write("usage: python -m tradeops.supervisor TOPOLOGY.yaml\n")
        return 2
    path = Path(argv[0])
    try:
        topology = load_topology(path)
    except TopologyError as exc:
        sys.stderr.write(f"{exc}\n")
        return 1
    paths = RunPaths.of(topology)

    def console(line: str) -> None:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()

    supervisor = Supervisor(topology, path, paths, console)
    try:
        supervisor.acquire()
    except AlreadyRunning as exc:
        sys.stderr.write(f"{exc}\n")
        return 1
    return supervisor.run()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
