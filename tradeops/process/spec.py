"""From a topology to the processes a desk runs: plain specs, in start order.

Tiers start in order, each waiting for the previous one to report ready: simulated exchanges
(for `adapter: sim` brokers), gateways (one per broker), the recorder (when
`settings.record`), then the strategy hosts (one per process group) with the websocket proxy
(when `settings.proxy.enabled`). Within a tier everything starts at once.

With `settings.cluster` each process is placed on a node (docs/cluster.md), and a node's
supervisor runs only its own (`process_specs(topology, node)`), plus the bridges that carry
its brokers' ticks between nodes: `bridge-BROKER` beside a gateway whose ticks another node
wants, and `remote-BROKER` on such a node, in the gateway's place (its socket, its ring).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:  # a strategy host imports this module; it must not load the model
    from tradeops.topology.model import Topology


@dataclass(frozen=True)
class RestartPolicy:
    """How a process is restarted; `supervisor/lifecycle.py` carries it out."""

    policy: Literal["on-failure", "always", "never"] = "on-failure"
    max_restarts: int = 5
    window: float = 60.0
    backoff: float = 1.0
    max_backoff: float = 30.0
    grace: float = 5.0


Role = Literal["sim", "gateway", "proxy", "recorder", "host", "bridge", "remote"]
# The recorder starts before the hosts, so it is reading when their first subscriptions flow.
# The proxy starts with the hosts: nothing of theirs needs it, and its start (~0.3 s) no
# longer holds every host back (issue 13: `up` of 10 groups).
# A remote node's stand-in for a gateway (`remote`) starts where the gateway would.
TIERS: dict[str, int] = {"sim": 0, "gateway": 1, "proxy": 3, "recorder": 2, "host": 3,
                         "bridge": 2, "remote": 1}
#: The package each role runs as: `python -m tradeops.MODULE --topology ... --name ...`.
ROLE_MODULES: dict[str, str] = {
    "sim": "tradeops.sim",
    "gateway": "tradeops.gateway",
    "proxy": "tradeops.proxy",
    "recorder": "tradeops.recorder",
    "host": "tradeops.runtime",
    "bridge": "tradeops.cluster.bridge",
    "remote": "tradeops.cluster.remote",
}
RECORDER = "recorder"
RECORDER_GRACE = 60.0
# Infrastructure restarts quickly and often; strategy hosts follow their group's policy.
INFRA_RESTART = RestartPolicy(
    policy="always", max_restarts=10, window=60.0, backoff=0.5, max_backoff=10.0, grace=5.0
)


@dataclass(frozen=True)
class ProcessSpec:
    name: str
    role: Role
    broker: str = ""
    strategies: tuple[str, ...] = ()
    cpu: tuple[int, ...] = ()
    log_level: str = "INFO"
    restart: RestartPolicy = INFRA_RESTART
    node: str = ""  # settings.cluster: the node it runs on ("" on a single machine)

    @property
    def tier(self) -> int:
        return TIERS[self.role]


def process_specs(topology: Topology, node: str | None = None) -> list[ProcessSpec]:
    """Every process of the desk, in start order; with `node` (and `settings.cluster`),
    only those placed on that node, with the bridges it needs."""
    specs = _all_specs(topology)
    cluster = topology.settings.cluster
    if cluster is None:
        return specs
    from tradeops.process.placement import place  # only a cluster needs placement

    return place(topology, cluster, specs, node)


def _all_specs(topology: Topology) -> list[ProcessSpec]:
    from tradeops.topology.plan import groups

    specs: list[ProcessSpec] = []
    for name, broker in topology.brokers.items():
        if broker.adapter == "sim":
            specs.append(ProcessSpec(f"sim-{name}", "sim", broker=name))
    for name, broker in topology.brokers.items():
        # A stopping gateway waits up to cancel_timeout for its cancels to be confirmed:
        # the supervisor must not kill it sooner.
        grace = max(INFRA_RESTART.grace, broker.orders.cancel_timeout + 5.0)
        specs.append(ProcessSpec(f"gateway-{name}", "gateway", broker=name,
                                 restart=replace(INFRA_RESTART, grace=grace)))
    record = topology.settings.record
    if record is not None:
        # A stopping recorder turns its open files into Parquet files (about 1 s per million
        # rows): a kill before it finishes only defers that to its next start.
        specs.append(ProcessSpec(RECORDER, "recorder", log_level=record.log_level,
                                 restart=replace(INFRA_RESTART, grace=RECORDER_GRACE)))
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
