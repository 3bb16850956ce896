"""Checks of `settings.cluster`: the NATS address, and where every process is placed.

Without a `cluster` section a `node:` anywhere is an error (it would be silently ignored), and
the desk runs on one machine as before.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator

from tradeops.topology import model as m
from tradeops.topology.findings import Severity, did_you_mean
from tradeops.topology.load import Loaded
from tradeops.topology.plan import groups

E, W = Severity.ERROR, Severity.WARNING
NATS_URL = re.compile(r"^(nats|tls)://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$")


def placements(topo: m.Topology) -> Iterator[tuple[tuple[str | int, ...], str, str]]:
    """(path of its `node` key, what it places, the node named) for every `node:` set."""
    for name, broker in topo.brokers.items():
        if broker.node is not None:
            yield ("brokers", name, "node"), f"broker '{name}'", broker.node
    for name, process in topo.processes.items():
        if process.node is not None:
            yield ("processes", name, "node"), f"group '{name}'", process.node
    if topo.settings.proxy.node is not None:
        yield ("settings", "proxy", "node"), "the proxy", topo.settings.proxy.node
    record = topo.settings.record
    if record is not None and record.node is not None:
        yield ("settings", "record", "node"), "the recorder", record.node


def check_cluster(loaded: Loaded, topo: m.Topology) -> None:
    cluster = topo.settings.cluster
    if cluster is None:
        for path, what, node in placements(topo):
            loaded.findings.append(loaded.finding(
                E, "node-without-cluster", path,
                f"{what} is placed on node '{node}', but the desk declares no "
                "settings.cluster",
                "declare the nodes under settings.cluster (docs/cluster.md), or remove `node`",
                name=node,
            ))
        return
    for i, url in enumerate(cluster.servers):
        where: tuple[str | int, ...] = ("settings", "cluster", "nats")
        if isinstance(cluster.nats, list):
            where = (*where, i)
        match = NATS_URL.match(url)
        if match is None or not 0 < int(match.group(3)) < 65536:
            loaded.findings.append(loaded.finding(
                E, "nats-url", where, f"'{url}' is not a NATS server address",
                "write nats://HOST:PORT (tls://HOST:PORT for TLS), e.g. nats://10.0.0.5:4222",
                name=url,
            ))
    files: list[tuple[tuple[str | int, ...], str | None]] = [
        (("settings", "cluster", "credentials"), cluster.credentials),
        (("settings", "cluster", "nkey"), cluster.nkey),
    ]
    if cluster.tls is not None:
        files += [(("settings", "cluster", "tls", k), getattr(cluster.tls, k))
                  for k in ("ca", "cert", "key")]
    for path, file in files:
        if file is not None and not os.path.isfile(file):
            # A warning: validate may run where the desk's secrets are not (CI).
            loaded.findings.append(loaded.finding(
                W, "cluster-file-missing", path,
                f"{'.'.join(map(str, path))} names {file}, which is not a file on this machine",
                "put the file there on every node before `tradeops up` (or fix the path)",
                name=file,
            ))
    known = list(cluster.nodes)
    for path, what, node in placements(topo):
        if node not in cluster.nodes:
            loaded.findings.append(loaded.finding(
                E, "unknown-node", path,
                f"{what} is placed on node '{node}', which settings.cluster.nodes does not "
                "declare",
                f"use one of: {', '.join(known)}{did_you_mean(node, known)}, or declare it "
                "under settings.cluster.nodes",
                name=node,
            ))
    for group in groups(topo):
        node = group.settings.node or cluster.default_node
        cores = cluster.nodes[node].cores if node in cluster.nodes else None
        for i, core in enumerate(group.settings.cpu or []):
            if cores is not None and core >= cores:
                loaded.findings.append(loaded.finding(
                    E, "cpu-beyond-node", ("processes", group.name, "cpu", i),
                    f"group '{group.name}' is pinned to core {core}, but node '{node}' has "
                    f"cores 0-{cores - 1}",
                    f"pin to a core below {cores}, or raise settings.cluster.nodes.{node}.cores",
                    name=group.name,
                ))
