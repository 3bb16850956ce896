"""`python -m tradeops.supervisor FILE [--log PATH] [--node NODE]`: run a desk's supervisor
(with `settings.cluster`, of one node: its run dir is RUN_DIR/NODE).

`tradeops up --detach` starts this in a session of its own with `--log
RUN_DIR/logs/supervisor.log`: the console lines (every process's, prefixed) go to that file,
rotated at 10 MB with five kept, so a long session cannot fill the disk. When
`TRADEOPS_UP_FD` names a pipe, the verdict on whether the desk came up is written to it
(supervisor/outcome.py).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from tradeops.process.paths import RunPaths
from tradeops.supervisor.console import LastWords, rotated_log
from tradeops.supervisor.outcome import UP_FD, judge, reporter
from tradeops.supervisor.supervisor import CannotStart, Supervisor
from tradeops.topology.load import TopologyError, load_topology


def _stdout(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def main(argv: list[str]) -> int:
    node = None
    if len(argv) >= 3 and argv[-2] == "--node":
        node, argv = argv[-1], argv[:-2]
    if len(argv) not in (1, 3) or (len(argv) == 3 and argv[1] != "--log"):
        sys.stderr.write("usage: python -m tradeops.supervisor TOPOLOGY.yaml [--log PATH] "
                         "[--node NODE]\n")
        return 2
    path = Path(argv[0])
    try:
        topology = load_topology(path)
    except TopologyError as exc:
        sys.stderr.write(f"{exc}\n")
        return 1
    console = LastWords(rotated_log(Path(argv[2])) if len(argv) == 3 else _stdout)
    paths = RunPaths.of(topology, path)
    if node is not None:
        paths = paths.on_node(node)
    supervisor = Supervisor(topology, path, paths, console, node)
    try:
        supervisor.acquire()
    except CannotStart as exc:
        sys.stderr.write(f"{exc}\n")
        return 1
    up_fd = os.environ.pop(UP_FD, None)
    if up_fd is None:
        return supervisor.run()
    verdict = lambda: judge(supervisor.status(), console.problem, console.last)  # noqa: E731
    return supervisor.run(reporter(int(up_fd), verdict))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
