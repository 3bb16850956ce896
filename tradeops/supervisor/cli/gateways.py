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
    for sock in sorted(run_dir.glob(f"{name}-gw-*.sock")):
        broker = sock.stem.split("-gw-", 1)[1]
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


def known_targets(replies: dict[str, dict[str, Any]]) -> list[str]:
    return sorted({t for r in replies.values() for t in r.get("targets", [])})
