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
from tradeops.supervisor.supervisor import CannotStart, Supervisor
from tradeops.topology.load import TopologyError, load_topology


def _stdout(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _rotated(path: str) -> Callable[[str], None]:
    """The detached supervisor's console: a rotated file that a full disk cannot crash (lines
    it cannot write are dropped and the problem noted in the file once space returns)."""
    import time

    from tradeops.process.logfile import LogFile

    lost: list[str] = []
    log = LogFile(Path(path), on_problem=lambda reason: lost.append(reason or "recovered"))

    def write(line: str) -> None:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        if lost and lost[-1] == "recovered":
            log.write(f"{stamp} supervisor | the log was not writable for a while: {lost[0]}\n")
            lost.clear()
        log.write(f"{stamp} {line}\n")

    return write


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
    except CannotStart as exc:
        sys.stderr.write(f"{exc}\n")
        return 1
    return supervisor.run()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
