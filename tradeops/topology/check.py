"""Checks across a well-formed topology: references, capacity, symbols, pins, policies, imports.

Each check appends findings to the loaded file; none raises. `check` runs them all.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path as FsPath

from tradeops.topology import model as m
from tradeops.topology.check_market import check_backfill, check_capacity, check_symbols
from tradeops.topology.check_processes import check_auto_cancel, check_cpu, check_imports
from tradeops.topology.check_record import check_record
from tradeops.topology.findings import Finding, Severity, did_you_mean
from tradeops.topology.load import Loaded
from tradeops.topology.plan import groups

E, W = Severity.ERROR, Severity.WARNING


@dataclass(frozen=True)
class CheckOptions:
    import_classes: bool = True
    cpu_count: int | None = None  # None: this machine's


def check(loaded: Loaded, options: CheckOptions | None = None) -> list[Finding]:
    """Run every cross-field check on a loaded file; returns the new findings."""
    if loaded.topology is None:
        return []
    options = options or CheckOptions()
    before = len(loaded.findings)
    topo = loaded.topology
    for run in _CHECKS:
        run(loaded, topo)
    check_cpu(loaded, topo, options.cpu_count or os.cpu_count() or 1)
    if options.import_classes:
        check_imports(loaded, topo)
    return loaded.findings[before:]


# -- references and names --------------------------------------------------------------------


def _check_references(loaded: Loaded, topo: m.Topology) -> None:
    brokers = list(topo.brokers)
    for name, spec in topo.strategies.items():
        if spec.broker not in topo.brokers:
            loaded.findings.append(
                loaded.finding(
                    E,
                    "unknown-broker",
                    ("strategies", name, "broker"),
                    f"strategy '{name}' names broker '{spec.broker}', which is not declared",
                    f"use one of: {', '.join(brokers)}{did_you_mean(spec.broker, brokers)}, "
                    "or declare it under `brokers`",
                    name=spec.broker,
                )
            )
    owner: dict[str, str] = {}
    for group, process in topo.processes.items():
        _check_members(loaded, topo, group, process, owner)
    for strategy in topo.strategies:
        if strategy not in owner and strategy in topo.processes:
            loaded.findings.append(
                loaded.finding(
                    E,
                    "group-name-taken",
                    ("strategies", strategy),
                    f"strategy '{strategy}' is in no group, so it would run in a process named "
                    f"'{strategy}', but a process group already has that name",
                    f"add '{strategy}' to a group's `strategies`, or rename the group",
                    name=strategy,
                    at_key=True,
                )
            )


def _check_members(
    loaded: Loaded, topo: m.Topology, group: str, process: m.Process, owner: dict[str, str]
) -> None:
    """A group's strategies: declared, listed once, in no other group (`owner` records the
    group each strategy was first placed in)."""
    seen: set[str] = set()
    for i, strategy in enumerate(process.strategies):
        path = ("processes", group, "strategies", i)
        if strategy not in topo.strategies:
            code, severity = "unknown-strategy", E
            message = f"group '{group}' names strategy '{strategy}', which is not declared"
            fix = (
                f"declare it under `strategies`, or use one of: "
                f"{', '.join(topo.strategies) or '(none declared)'}"
                f"{did_you_mean(strategy, list(topo.strategies))}"
            )
        elif strategy in seen:
            code, severity = "duplicate-member", W
            message = f"strategy '{strategy}' is listed twice in group '{group}'"
            fix = "list it once"
        elif strategy in owner:
            code, severity = "strategy-in-two-groups", E
            message = f"strategy '{strategy}' is in group '{owner[strategy]}' and in '{group}'"
            fix = "a strategy runs in exactly one process: remove it from one group"
        else:
            owner[strategy] = group
            seen.add(strategy)
            continue
        seen.add(strategy)
        loaded.findings.append(
            loaded.finding(severity, code, path, message, fix, name=strategy)
        )


RESERVED_PREFIXES = ("gateway-", "sim-")
RESERVED_NAMES = ("supervisor", "proxy", "recorder")


def _check_reserved(loaded: Loaded, topo: m.Topology) -> None:
    """Process names `gateway-BROKER`, `sim-BROKER`, `proxy`, `recorder` and `supervisor`
    belong to the desk's own processes."""
    for group in groups(topo):
        if group.name.startswith(RESERVED_PREFIXES) or group.name in RESERVED_NAMES:
            path = ("strategies" if group.implicit else "processes", group.name)
            loaded.findings.append(
                loaded.finding(
                    E,
                    "reserved-name",
                    path,
                    f"process name '{group.name}' is reserved: gateway-*, sim-*, proxy, "
                    "recorder and supervisor name the desk's own processes",
                    "rename it",
                    name=group.name,
                    at_key=True,
                )
            )


#: The words each adapter's login is written in, and an example to show in a fix.
CREDENTIAL_WORDS: dict[str, tuple[frozenset[str], str]] = {
    "alpaca": (frozenset({"key", "secret"}),
               '{key: "${ALPACA_KEY}", secret: "${ALPACA_SECRET}"}'),
    "sim": (frozenset({"key", "secret"}), '{key: "${SIM_KEY}", secret: "${SIM_SECRET}"}'),
    "alltick": (frozenset({"token"}), '{token: "${ALLTICK_TOKEN}"}'),
}


def _check_credential_words(loaded: Loaded, name: str, broker: m.Broker) -> None:
    """Credentials in the broker's own words: AllTick one `token`; Alpaca `key` and `secret`."""
    creds = broker.credentials
    if creds is None:
        return
    words, example = CREDENTIAL_WORDS[broker.adapter]
    given = {w for w in ("key", "secret", "token") if getattr(creds, w) is not None}
    if given == words:
        return
    missing, extra = sorted(words - given), sorted(given - words)
    problem = "; ".join(
        part for part in (
            f"needs {', '.join(missing)}" if missing else "",
            f"does not use {', '.join(extra)}" if extra else "",
        ) if part
    )
    loaded.findings.append(
        loaded.finding(
            E,
            "credential-words",
            ("brokers", name, "credentials"),
            f"broker '{name}' ({broker.adapter}): the login {problem}",
            f"write credentials: {example}",
            name=name,
            at_key=True,
        )
    )


def _check_brokers(loaded: Loaded, topo: m.Topology) -> None:
    for name, broker in topo.brokers.items():
        base = ("brokers", name)
        if broker.adapter in ("alpaca", "alltick") and broker.credentials is None:
            loaded.findings.append(
                loaded.finding(
                    E,
                    "missing-credentials",
                    base,
                    f"broker '{name}' ({broker.adapter}) has no credentials",
                    f"add credentials: {CREDENTIAL_WORDS[broker.adapter][1]} and set the "
                    "variable(s) in the environment or .env",
                    name=name,
                    at_key=True,
                )
            )
        _check_credential_words(loaded, name, broker)
        if broker.adapter == "alltick" and broker.feed is not None:
            loaded.findings.append(
                loaded.finding(
                    E,
                    "feed-not-supported",
                    (*base, "feed"),
                    f"broker '{name}': `feed` applies to alpaca and sim brokers, not alltick",
                    "remove `feed`",
                    name=name,
                )
            )
        if broker.adapter != "sim" and broker.market is not None:
            loaded.findings.append(
                loaded.finding(
                    E,
                    "market-not-sim",
                    (*base, "market"),
                    f"broker '{name}': `market` describes a simulated market; this broker is "
                    f"{broker.adapter}",
                    "remove `market`, or set `adapter: sim`",
                    name=name,
                )
            )


def _check_proxy(loaded: Loaded, topo: m.Topology) -> None:
    proxy = topo.settings.proxy
    if proxy.enabled and not is_loopback(proxy.host) and proxy.token is None:
        loaded.findings.append(
            loaded.finding(
                E,
                "proxy-open",
                ("settings", "proxy", "listen"),
                f"the proxy would listen on {proxy.listen}, reachable from other machines, "
                "without a token",
                'set settings.proxy.token: "${TRADEOPS_PROXY_TOKEN}", or listen on 127.0.0.1',
                name=proxy.listen,
            )
        )
    if not 0 <= proxy.port < 65536:
        loaded.findings.append(
            loaded.finding(
                E,
                "invalid-value",
                ("settings", "proxy", "listen"),
                f"port {proxy.port} is out of range",
                "use a port between 1 and 65535",
                name=proxy.listen,
            )
        )
    _check_proxy_brokers(loaded, topo)
    _check_proxy_tls(loaded, topo)


def _check_proxy_brokers(loaded: Loaded, topo: m.Topology) -> None:
    """`exchanges` and `feeds` must name declared brokers that can serve that dialect."""
    proxy = topo.settings.proxy
    brokers = list(topo.brokers)
    entries = [("exchanges", key, name) for key, name in proxy.exchanges.items()]
    entries += [("feeds", key, name) for key, name in proxy.feeds.items()]
    for table, key, name in entries:
        path = ("settings", "proxy", table, key)
        broker = topo.brokers.get(name)
        if broker is None:
            loaded.findings.append(
                loaded.finding(
                    E,
                    "proxy-unknown-broker",
                    path,
                    f"settings.proxy.{table} maps '{key}' to broker '{name}', which is not "
                    "declared",
                    f"use one of: {', '.join(brokers)}{did_you_mean(name, brokers)}",
                    name=name,
                )
            )
        elif table == "feeds" and broker.effective_feed != key:
            carries = broker.effective_feed or f"an {broker.adapter} feed"
            loaded.findings.append(
                loaded.finding(
                    E,
                    "proxy-feed-mismatch",
                    path,
                    f"settings.proxy.feeds serves Alpaca's '{key}' feed from broker '{name}', "
                    f"which carries {carries}",
                    f"map '{key}' to a broker with feed: {key}, or remove the entry",
                    name=name,
                )
            )


def _check_proxy_tls(loaded: Loaded, topo: m.Topology) -> None:
    """TLS needs both a certificate and its key; a missing file is likely a typo."""
    proxy = topo.settings.proxy
    given = {"tls_cert": proxy.tls_cert, "tls_key": proxy.tls_key}
    present = [k for k, v in given.items() if v]
    if len(present) == 1:
        missing = "tls_key" if present[0] == "tls_cert" else "tls_cert"
        loaded.findings.append(
            loaded.finding(
                E,
                "proxy-tls",
                ("settings", "proxy", present[0]),
                f"settings.proxy.{present[0]} is set without {missing}: TLS needs both",
                f"set settings.proxy.{missing} too, or remove {present[0]}",
                name=present[0],
            )
        )
        return
    for key, value in given.items():
        if value and not FsPath(value).is_file():
            loaded.findings.append(
                loaded.finding(
                    W,
                    "proxy-tls-missing",
                    ("settings", "proxy", key),
                    f"settings.proxy.{key}: no file {value} (relative paths start from the "
                    "directory `tradeops up` runs in)",
                    "check the path, or ignore this where the file exists only in production "
                    "(--strict makes this an error)",
                    name=value,
                )
            )


def is_loopback(host: str) -> bool:
    """A host name or address that only this machine can reach."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


_CHECKS: list[Callable[[Loaded, m.Topology], None]] = [
    _check_references,
    _check_reserved,
    _check_brokers,
    _check_proxy,
    check_symbols,
    check_capacity,
    check_auto_cancel,
    check_record,
    check_backfill,
]
