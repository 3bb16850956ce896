"""Nodes in separate network namespaces reach each other only through NATS.

Each node's supervisor (and so everything it starts) runs in its own network namespace with
only `lo` up. Inside each, 127.0.0.1:PORT is a forwarder to the real nats-server on the root
namespace's loopback (tests/e2e/netns.py), so the topology's one NATS address works on every
node. A strategy on node b then gets every tick of node a's gateway and an order of node b
fills, while nothing that listens on node a (its simulated exchange, its proxy) can be
reached from node b. Unix sockets and /dev/shm are not separated by network namespaces: each
node has its own run dir and shared-memory names already (docs/cluster.md).

Skips, saying why, where the machine does not allow network namespaces (not root, no
`ip netns`). Namespaces and forwarders are removed even when the test fails.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.desk import SCRIPT
from tests.e2e.netns import Forwarder, Namespace, NamespaceUnavailable
from tests.e2e.test_cluster import Cluster, NatsServer, gateway_ticks, seqs
from tests.waiting import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]


@pytest.fixture
def namespaces() -> Iterator[dict[str, Namespace]]:
    """Node a's and node b's namespaces, unique to this run; removed afterwards."""
    tag = uuid.uuid4().hex[:8]
    made = {node: Namespace(f"tradeops-{tag}-{node}") for node in ("a", "b")}
    try:
        try:
            for namespace in made.values():
                namespace.make()
        except NamespaceUnavailable as exc:
            pytest.skip(f"no network namespaces here: {exc}")
        except FileNotFoundError:
            pytest.skip("no network namespaces here: the `ip` command is missing")
        yield made
    finally:
        for namespace in made.values():
            namespace.delete()
        assert not any(n.exists() for n in made.values()), "a namespace outlived the test"


def test_nodes_in_separate_network_namespaces_reach_each_other_only_through_nats(
    tmp_path: Path, namespaces: dict[str, Namespace]
) -> None:
    for namespace in namespaces.values():
        assert namespace.links() == ["lo"]  # nothing but its own loopback
    nats = NatsServer(tmp_path / "nats.log")  # on the root namespace's loopback
    nats.start()
    forwarders = [Forwarder(ns.name, nats.port, nats.port, tmp_path / f"fwd-{node}.ready")
                  for node, ns in namespaces.items()]
    out, orders = tmp_path / "rec.seq", tmp_path / "trader.jsonl"
    strategies = (
        f"  rec:\n    class: tests.e2e.strategies:SeqRecorder\n    broker: sim\n"
        f"    symbols: [AAPL, MSFT]\n    params: {{out: \"{out}\"}}\n"
        f"  trader:\n    class: tests.orders.strategies:OrderBot\n    broker: sim\n"
        f"    symbols: [AAPL]\n"
        f"    params: {{out: \"{orders}\", symbol: AAPL, orders: [[buy, 1, null]]}}\n")
    duo = Cluster(tmp_path, nats.port, out, strategies=strategies,
                  processes="  far: {strategies: [rec, trader], node: b}")
    try:
        for forwarder in forwarders:
            wait_for(lambda f=forwarder: f.ready.exists() or f.proc.poll() is not None, 30,
                     "a forwarder listening inside its namespace")
            if forwarder.proc.poll() is not None:
                stderr = forwarder.proc.stderr.read() if forwarder.proc.stderr else b""
                pytest.fail(f"a forwarder died: {stderr.decode(errors='replace')}")
        for node, namespace in namespaces.items():
            result = namespace.run(str(SCRIPT), "up", "--detach", str(duo.desk.file),
                                   "--node", node, timeout=120)
            assert result.returncode == 0, result.stdout + result.stderr

        # Each node's supervisor and children live in their node's namespace, not the root's.
        netns = {node: {os.readlink(f"/proc/{p['pid']}/ns/net")
                        for p in [duo.status(node), *duo.status(node)["processes"]]}
                 for node in namespaces}
        assert len(netns["a"]) == len(netns["b"]) == 1 and netns["a"] != netns["b"]
        assert os.readlink("/proc/self/ns/net") not in netns["a"] | netns["b"]

        # Every tick of node a's gateway reaches node b's strategy, in order, through NATS.
        wait_for(lambda: len(seqs(out)) >= 100, 90, "100 ticks on node b")
        seen = seqs(out)
        upstream = gateway_ticks(duo.paths("a"))
        expected = [s for s in sorted(upstream)
                    if seen[0] <= s <= seen[-1] and upstream[s][0] in ("AAPL", "MSFT")
                    and upstream[s][1] == "trade"]
        assert seen[: len(expected)] == expected and len(expected) >= 100

        # An order of node b's strategy fills at node a's simulated exchange.
        def events(kind: str) -> list[dict[str, Any]]:
            lines = orders.read_text().splitlines() if orders.exists() else []
            return [e for e in map(json.loads, lines) if e["event"] == kind]

        filled = wait_for(lambda: events("filled"), 60, "the fill on node b")
        assert filled[0]["fill_qty"] == 1 and filled[0]["position"] == 1

        # Yet nothing that listens on node a is reachable from node b, which does reach NATS.
        on_a = namespaces["a"].listening() - {nats.port}
        sim_port = int(duo.row("a", "sim-sim")["detail"]["port"])
        assert sim_port in on_a, (sim_port, on_a)
        assert all(namespaces["a"].connects(port) for port in on_a)  # they are real
        reached = [port for port in on_a if namespaces["b"].connects(port)]
        assert reached == [], f"node b reached node a's ports {reached} outside NATS"
        assert namespaces["b"].connects(nats.port)
    finally:
        try:
            duo.cleanup()
        finally:
            for forwarder in forwarders:
                forwarder.stop()
            nats.stop()


def test_without_root_a_namespace_is_refused_with_the_reason(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    namespace = Namespace(f"tradeops-{uuid.uuid4().hex[:8]}-x")
    with pytest.raises(NamespaceUnavailable, match="need root"):
        namespace.make()
    assert not namespace.made and not namespace.exists()
