"""Which node runs what, when a desk spans several (`settings.cluster`, docs/cluster.md).

A broker's simulated exchange and gateway run on the broker's `node`; a group on its own; the
proxy and the recorder on theirs; anything without a `node` on the first node declared. A
node whose hosts, proxy or recorder read a broker whose gateway runs elsewhere gets a
`remote-BROKER` in the gateway's place, fed by the `bridge-BROKER` beside the gateway.
"""

from __future__ import annotations

from dataclasses import replace

from tradeops.process.spec import ProcessSpec
from tradeops.topology.model import Cluster, Topology
from tradeops.topology.plan import groups


def node_of(topology: Topology, cluster: Cluster, spec: ProcessSpec) -> str:
    """The node `spec` (one of the single-machine specs) is placed on."""
    settings = topology.settings
    if spec.role in ("sim", "gateway"):
        node = topology.brokers[spec.broker].node
    elif spec.role == "proxy":
        node = settings.proxy.node
    elif spec.role == "recorder":
        node = settings.record.node if settings.record is not None else None
    else:
        node = next((g.settings.node for g in groups(topology) if g.name == spec.name), None)
    return node or cluster.default_node


def brokers_read_on(topology: Topology, cluster: Cluster, specs: list[ProcessSpec],
                    node: str) -> set[str]:
    """The brokers whose ticks something on `node` reads."""
    wanted: set[str] = set()
    for spec in specs:
        if node_of(topology, cluster, spec) != node:
            continue
        if spec.role == "host":
            wanted |= {topology.strategies[s].broker for s in spec.strategies}
        elif spec.role == "proxy":
            wanted |= set(topology.brokers)
        elif spec.role == "recorder" and topology.settings.record is not None:
            wanted |= set(topology.settings.record.brokers or topology.brokers)
    return wanted


def place(topology: Topology, cluster: Cluster, specs: list[ProcessSpec],
          node: str | None) -> list[ProcessSpec]:
    """The specs of `node`, in start order; None: every node's (a name once)."""
    if node is None:
        seen: dict[str, ProcessSpec] = {}
        for each in cluster.nodes:
            for spec in place(topology, cluster, specs, each):
                seen.setdefault(spec.name, spec)
        return list(seen.values())
    local = [replace(s, node=node) for s in specs if node_of(topology, cluster, s) == node]
    gateway_node = {b: topology.brokers[b].node or cluster.default_node
                    for b in topology.brokers}
    bridges = []
    for broker in topology.brokers:
        if gateway_node[broker] == node:
            elsewhere = any(broker in brokers_read_on(topology, cluster, specs, other)
                            for other in cluster.nodes if other != node)
            if elsewhere:
                bridges.append(ProcessSpec(f"bridge-{broker}", "bridge", broker=broker,
                                           node=node))
        elif broker in brokers_read_on(topology, cluster, specs, node):
            bridges.append(ProcessSpec(f"remote-{broker}", "remote", broker=broker, node=node))
    return sorted(local + bridges, key=lambda s: s.tier)
