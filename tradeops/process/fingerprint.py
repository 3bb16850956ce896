"""Each process's effective configuration, as a digest: what `tradeops apply` compares.

A process is restarted by `apply` only when something it reads changed:

- a strategy host (process group): its group's settings and each of its strategies' whole
  config (class, symbols, mode, params, limits, ...), and the gate settings it applies;
- a gateway: its broker's config and the journal and staleness settings. What it enforces
  or routes by for the strategies on that broker (account, limits, symbols, group and its
  auto_cancel) is a separate digest (`reload_prints`): a change there is loaded by the
  running gateway (`reload`), without a restart;
- a simulated exchange: its broker's market, pool, logins and rate limit;
- the proxy: `settings.proxy` and which brokers carry which feeds;
- the recorder: `settings.record` and the brokers there are;
- any other role: the whole file (conservative).

Secrets enter the digest only as their own digests. Pure.
"""

from __future__ import annotations

import datetime
import hashlib
import json
from typing import Any

from pydantic import BaseModel, SecretStr

from tradeops.process.spec import ProcessSpec, process_specs
from tradeops.topology.model import Topology
from tradeops.topology.plan import groups


def fingerprints(topology: Topology) -> dict[str, str]:
    """Process name → digest of the configuration it runs with (a change: restart it)."""
    return {spec.name: _digest(_inputs(topology, spec)) for spec in process_specs(topology)}


def reload_prints(topology: Topology) -> dict[str, str]:
    """Gateway name → digest of what a running gateway can load anew: its strategies'
    routing and limits."""
    placed = {s: g for g in groups(topology) for s in g.strategies}
    return {
        f"gateway-{broker}": _digest({
            n: [s.account, s.limits, s.symbols, placed[n].name, placed[n].settings.auto_cancel]
            for n, s in sorted(topology.strategies.items()) if s.broker == broker})
        for broker in topology.brokers
    }


def _inputs(topology: Topology, spec: ProcessSpec) -> Any:
    settings = topology.settings
    if spec.role == "host":
        (group,) = [g for g in groups(topology) if g.name == spec.name]
        return {"group": group.settings, "implicit": group.implicit,
                "strategies": {s: topology.strategies[s] for s in group.strategies},
                "gate": [settings.stale_after, settings.stale_after_symbol]}
    if spec.role == "gateway":
        broker = topology.brokers[spec.broker]
        return {"broker": broker, "settings": [settings.stale_after, settings.journal_fsync]}
    if spec.role == "sim":
        broker = topology.brokers[spec.broker]
        return {"market": broker.market, "pool": broker.pool, "login": broker.credentials,
                "accounts": broker.accounts, "rate": broker.orders.rate_limit}
    if spec.role == "recorder":
        return {"record": settings.record, "brokers": sorted(topology.brokers)}
    if spec.role == "proxy":
        return {"proxy": settings.proxy,
                "brokers": {n: [b.adapter, b.effective_feed] for n, b in topology.brokers.items()}}
    return topology


def _digest(value: Any) -> str:
    text = json.dumps(_plain(value), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _plain(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return {k: _plain(getattr(value, k)) for k in type(value).model_fields}
    if isinstance(value, SecretStr):
        return "secret:" + hashlib.sha256(value.get_secret_value().encode()).hexdigest()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, datetime.date):
        return value.isoformat()
    return value
