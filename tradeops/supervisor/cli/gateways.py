"""Asking every gateway of a running desk one question (the order-side commands)."""

from __future__ import annotations

from typing import Any

from tradeops.supervisor.cli.common import Desk


def ask_gateways(desk: Desk, message: dict[str, Any], who: str
                 ) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """`message` to each gateway's socket: (broker → reply, broker → why it did not answer)."""
    from tradeops.gateway.client import GatewayClient, GatewayError

    replies: dict[str, dict[str, Any]] = {}
    unreachable: dict[str, str] = {}
    run_dir, name = desk.paths.run_dir, desk.paths.name
    elsewhere = _elsewhere(desk)
    for broker, node in elsewhere.items():
        # Its gateway runs on another node (here a stand-in has its socket): over NATS.
        from tradeops.cluster.status import ask_command

        assert desk.topology is not None and desk.topology.settings.cluster is not None
        reply = ask_command(desk.topology.settings.cluster, name, node,
                            {"cmd": "gateway", "broker": broker, "message": message,
                             "who": who})
        if reply.get("ok"):
            replies[broker] = dict(reply.get("reply") or {})
        else:
            unreachable[broker] = f"node {node}: {reply.get('error')}"
    for sock in sorted(run_dir.glob(f"{name}-gw-*.sock")):
        broker = sock.stem.split("-gw-", 1)[1]
        if broker in elsewhere:
            continue
        try:
            with GatewayClient(str(sock), who) as client:
                replies[broker] = client.request(message)
        except GatewayError as exc:
            unreachable[broker] = str(exc)
    if desk.topology is not None:  # a declared broker without a socket is not running
        for broker in desk.topology.brokers:
            if broker not in replies and broker not in unreachable:
                unreachable[broker] = "its gateway is not running"
    return replies, unreachable


def _elsewhere(desk: Desk) -> dict[str, str]:
    """Broker -> the node its gateway runs on, for the brokers of a cluster desk whose
    gateway is not on this node (this node: the run dir's name, RUN_DIR/NODE)."""
    topology = desk.topology
    if topology is None or topology.settings.cluster is None:
        return {}
    cluster = topology.settings.cluster
    here = desk.paths.run_dir.name
    out = {}
    for name, broker in topology.brokers.items():
        node = broker.node or cluster.default_node
        if node != here:
            out[name] = node
    return out


def known_targets(replies: dict[str, dict[str, Any]]) -> list[str]:
    return sorted({t for r in replies.values() for t in r.get("targets", [])})
