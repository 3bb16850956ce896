"""Where a desk keeps its sockets, logs and state: the one place every process agrees on.

A relative `settings.run_dir` resolves against the directory of the topology file, so a
command run from anywhere finds the same desk.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # only its attributes are read: no pydantic for a command that needs paths
    from tradeops.topology.model import Topology

MAX_SOCKET_PATH = 107  # sun_path holds 108 bytes with the terminating NUL


@dataclass(frozen=True)
class RunPaths:
    """Where a desk keeps its sockets, logs and state."""

    run_dir: Path
    name: str

    @classmethod
    def of(cls, topology: Topology, topology_file: Path | None = None) -> RunPaths:
        """The run paths of `topology`; a relative run dir resolves against the directory of
        `topology_file` (the current directory when no file is given)."""
        run_dir = Path(topology.settings.run_dir)
        if not run_dir.is_absolute():
            base = topology_file.resolve().parent if topology_file else Path.cwd()
            run_dir = base / run_dir
        return cls(run_dir.resolve(), topology.name)

    def on_node(self, node: str) -> RunPaths:
        """The run paths of one node of a desk spread over several (`settings.cluster`):
        `RUN_DIR/NODE`, so nodes sharing a machine never share a socket or a segment."""
        return RunPaths(self.run_dir / node, self.name)

    @property
    def bus(self) -> str:
        """The namespace of this desk's shared-memory segments: the desk's name and a digest of
        its run dir, so two desks of the same name in different run dirs never share a
        segment (`/dev/shm/tradeops-NAME-DIGEST.BROKER.ring`)."""
        digest = hashlib.blake2s(os.fsencode(self.run_dir), digest_size=4).hexdigest()
        return f"{self.name}-{digest}"

    @property
    def control(self) -> Path:
        return self.run_dir / f"{self.name}.sock"

    @property
    def lock(self) -> Path:
        return self.run_dir / f"{self.name}.lock"

    @property
    def logs(self) -> Path:
        return self.run_dir / "logs"

    @property
    def state(self) -> Path:
        return self.run_dir / "state"

    def gateway_socket(self, broker: str) -> Path:
        return self.run_dir / f"{self.name}-gw-{broker}.sock"

    def check(self, topology: Topology) -> None:
        """Raise ValueError when a socket path would be too long for a unix socket."""
        longest = max(
            [self.control, *(self.gateway_socket(b) for b in topology.brokers)],
            key=lambda p: len(os.fsencode(p)),
        )
        if len(os.fsencode(longest)) > MAX_SOCKET_PATH:
            raise ValueError(
                f"socket path {longest} is longer than the {MAX_SOCKET_PATH} bytes a unix "
                "socket allows; set settings.run_dir to a shorter path (e.g. /tmp/tradeops)"
            )
