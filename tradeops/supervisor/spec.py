"""From a topology to the processes a desk runs: plain specs, in start order.

Tiers start in order, each waiting for the previous one to report ready: simulated exchanges
(for `adapter: sim` brokers), gateways (one per broker), the websocket proxy (when
`settings.proxy.enabled`), then the strategy hosts (one per process group). Within a tier
everything starts at once.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from tradeops.supervisor.lifecycle import RestartPolicy
from tradeops.topology.model import Topology
from tradeops.topology.plan import groups

Role = Literal["sim", "gateway", "proxy", "host"]
TIERS: dict[str, int] = {"sim": 0, "gateway": 1, "proxy": 2, "host": 3}
# Infrastructure restarts quickly and often; strategy hosts follow their group's policy.
INFRA_RESTART = RestartPolicy(
    policy="always", max_restarts=10, window=60.0, backoff=0.5, max_backoff=10.0, grace=5.0
)
MAX_SOCKET_PATH = 107  # sun_path holds 108 bytes with the terminating NUL


@dataclass(frozen=True)
class ProcessSpec:
    name: str
    role: Role
    broker: str = ""
    strategies: tuple[str, ...] = ()
    cpu: tuple[int, ...] = ()
    log_level: str = "INFO"
    restart: RestartPolicy = INFRA_RESTART

    @property
    def tier(self) -> int:
        return TIERS[self.role]


@dataclass(frozen=True)
class RunPaths:
    """Where a desk keeps its sockets, logs and state."""

    run_dir: Path
    name: str

    @classmethod
    def of(cls, topology: Topology, base: Path | None = None) -> RunPaths:
        run_dir = Path(topology.settings.run_dir)
        if not run_dir.is_absolute():
            run_dir = (base or Path.cwd()) / run_dir
        return cls(run_dir.resolve(), topology.name)

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


def process_specs(topology: Topology) -> list[ProcessSpec]:
    """Every process of the desk, in start order."""
    specs: list[ProcessSpec] = []
    for name, broker in topology.brokers.items():
        if broker.adapter == "sim":
            specs.append(ProcessSpec(f"sim-{name}", "sim", broker=name))
    for name in topology.brokers:
        specs.append(ProcessSpec(f"gateway-{name}", "gateway", broker=name))
    if topology.settings.proxy.enabled and topology.brokers:
        specs.append(ProcessSpec("proxy", "proxy"))
    for group in groups(topology):
        s = group.settings
        restart = RestartPolicy(
            policy=s.restart.policy,
            max_restarts=s.restart.max_restarts,
            window=s.restart.window,
            backoff=s.restart.backoff,
            max_backoff=s.restart.max_backoff,
        )
        specs.append(
            ProcessSpec(
                group.name,
                "host",
                strategies=group.strategies,
                cpu=tuple(s.cpu or ()),
                log_level=s.log_level,
                restart=restart,
            )
        )
    return specs
