"""`tradeops stop GROUP` waits for the auto-cancel its group's policy asked for.

The gateways keep working on those cancels (behind the rate limit if need be) after the
group's process has stopped; `stop` watches them through each gateway's order list until
none of the group's strategies has an order working, up to the broker's
`orders.cancel_timeout`, and reports what is left.
"""

from __future__ import annotations

import time
from typing import Any

import typer

from tradeops.supervisor.cli.common import Desk
from tradeops.topology.plan import groups

PROGRESS_EVERY = 3.0


def await_group_cancels(desk: Desk, process: str) -> list[dict[str, Any]]:
    """Orders of `process`'s strategies still working once its cancels had their time;
    [] when there are none, the policy is `none`, or the desk was named without its file."""
    topology = desk.topology
    group = next((g for g in groups(topology) if g.name == process), None) if topology else None
    if topology is None or group is None or group.settings.auto_cancel == "none":
        return []
    brokers = {topology.strategies[s].broker for s in group.strategies}
    timeout = max(topology.brokers[b].orders.cancel_timeout for b in brokers)
    deadline, said = time.monotonic() + timeout, 0.0
    while True:
        left = _working(desk, brokers, set(group.strategies))
        if not left or time.monotonic() >= deadline:
            return left
        if time.monotonic() - said >= PROGRESS_EVERY:
            typer.echo(f"waiting for the broker to confirm {len(left)} cancel(s) of "
                       f"{', '.join(group.strategies)} (auto_cancel: {group.settings.auto_cancel})")
            said = time.monotonic()
        time.sleep(0.2)


def _working(desk: Desk, brokers: set[str], strategies: set[str]) -> list[dict[str, Any]]:
    from tradeops.gateway.client import GatewayClient, GatewayError

    left = []
    for broker in sorted(brokers):
        try:
            with GatewayClient(str(desk.paths.gateway_socket(broker)), "tradeops stop") as gw:
                reply = gw.request({"op": "orders"})
        except GatewayError:
            continue  # the gateway restarts: it takes the orders over and applies no policy
        left += [o | {"broker": broker} for o in reply.get("orders", {}).get("working", [])
                 if o.get("strategy") in strategies]
    return left
