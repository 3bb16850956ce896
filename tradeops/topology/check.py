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
from tradeops.topology.check_cluster import check_cluster
from tradeops.topology.check_market import (
    check_backfill,
    check_capacity,
    check_readers,
    check_symbols,
)
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


RESERVED_PREFIXES = ("gateway-", "sim-", "bridge-", "remote-")
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
                    f"process name '{group.name}' is reserved: gateway-*, sim-*, bridge-*, "
                    "remote-*, proxy, "
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
    "openalgo": (frozenset({"api_key"}), '{api_key: "${OPENALGO_API_KEY}"}'),
}


def _check_credential_words(loaded: Loaded, name: str, broker: m.Broker,
                            creds: m.Credentials | None = None,
                            path: tuple[str | int, ...] | None = None) -> None:
    """Credentials in the broker's own words: AllTick one `token`; Alpaca `key` and `secret`."""
    creds = creds or broker.credentials
    if creds is None:
        return
    words, example = CREDENTIAL_WORDS[broker.adapter]
    given = {w for w in ("key", "secret", "token", "api_key") if getattr(creds, w) is not None}
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
            path or ("brokers", name, "credentials"),
            f"broker '{name}' ({broker.adapter}): the login {problem}",
            f"write credentials: {example}",
            name=name,
            at_key=True,
        )
    )


def _check_brokers(loaded: Loaded, topo: m.Topology) -> None:
    for name, broker in topo.brokers.items():
        base = ("brokers", name)
        # Market data can log in with an account's credentials (each account without its
        # own is reported by _check_accounts).
        some_account_logs_in = any(a.credentials is not None for a in broker.accounts.values())
        if (broker.adapter != "sim" and broker.credentials is None
                and not some_account_logs_in):
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
        if broker.qualified_symbols and broker.feed is not None:
            loaded.findings.append(
                loaded.finding(
                    E,
                    "feed-not-supported",
                    (*base, "feed"),
                    f"broker '{name}': `feed` applies to alpaca and sim brokers, not "
                    f"{broker.adapter}",
                    "remove `feed`",
                    name=name,
                )
            )
        for key in ("product", "poll_interval"):
            if broker.adapter != "openalgo" and key in broker.orders.model_fields_set:
                loaded.findings.append(loaded.finding(
                    E, "openalgo-only", (*base, "orders", key),
                    f"broker '{name}': `orders.{key}` applies to OpenAlgo brokers, not "
                    f"{broker.adapter}", f"remove `orders.{key}`", name=name))
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


def _login(creds: m.Credentials) -> tuple[str, ...]:
    return tuple(s.get_secret_value() for s in (creds.key, creds.token, creds.api_key)
                 if s is not None)


def _check_accounts(loaded: Loaded, topo: m.Topology) -> None:
    """Accounts: each strategy's is declared on its broker, each declared one has a login of
    its own (two accounts on one login are one account to the broker), and only brokers
    that take orders have any."""
    for name, broker in topo.brokers.items():
        base = ("brokers", name, "accounts")
        if broker.accounts and not broker.takes_orders:
            loaded.findings.append(loaded.finding(
                E, "accounts-not-trading", base,
                f"broker '{name}' ({broker.adapter}) is a market-data feed here; it has no "
                "trading accounts",
                "remove `accounts`, or trade on an alpaca, openalgo or sim broker", name=name,
                at_key=True))
            continue
        seen: dict[tuple[str, ...], str] = {}
        for account, spec in broker.accounts.items():
            creds = spec.credentials or broker.credentials
            if spec.credentials is not None:
                _check_credential_words(loaded, name, broker, spec.credentials,
                                        (*base, account, "credentials"))
            if creds is None:
                if broker.adapter != "sim":
                    loaded.findings.append(loaded.finding(
                        E, "missing-credentials", (*base, account),
                        f"account '{account}' of broker '{name}' has no credentials, and "
                        "the broker has none to lend it",
                        f"add credentials: {CREDENTIAL_WORDS[broker.adapter][1]} under the "
                        "account",
                        name=account, at_key=True))
                continue  # sim: the desk generates a login per account
            login = _login(creds)
            if login in seen:
                loaded.findings.append(loaded.finding(
                    E, "shared-login", (*base, account),
                    f"accounts '{seen[login]}' and '{account}' of broker '{name}' log in "
                    "with the same credentials: the broker sees one account, so limits, "
                    "positions and auto_cancel: account would mix them",
                    "give each account its own credentials (or declare one account)",
                    name=account, at_key=True))
            seen[login] = account
    for strategy, strat in topo.strategies.items():
        broker_ = topo.brokers.get(strat.broker)
        if broker_ is None or not broker_.takes_orders:
            continue
        declared = list(broker_.trading_accounts)
        if strat.account not in declared:
            how = (f"use one of: {', '.join(declared)}{did_you_mean(strat.account, declared)}"
                   if broker_.accounts else
                   f"declare it: brokers.{strat.broker}.accounts.{strat.account}: "
                   "{credentials: {...}}, or leave `account` out (the broker's own login "
                   "is account `main`)")
            loaded.findings.append(loaded.finding(
                E, "unknown-account", ("strategies", strategy, "account"),
                f"strategy '{strategy}' trades on account '{strat.account}', which broker "
                f"'{strat.broker}' does not declare", how, name=strat.account))


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


def _check_metrics(loaded: Loaded, topo: m.Topology) -> None:
    metrics = topo.settings.metrics
    if metrics is None:
        return
    if not is_loopback(metrics.host) and metrics.token is None:
        loaded.findings.append(loaded.finding(
            E, "metrics-open", ("settings", "metrics", "listen"),
            f"the metrics endpoint would listen on {metrics.listen}, reachable from other "
            "machines, without a token",
            'set settings.metrics.token: "${TRADEOPS_METRICS_TOKEN}", or listen on 127.0.0.1',
            name=metrics.listen))
    if not 0 <= metrics.port < 65536:
        loaded.findings.append(loaded.finding(
            E, "invalid-value", ("settings", "metrics", "listen"),
            f"port {metrics.port} is out of range", "use a port between 1 and 65535",
            name=metrics.listen))
    proxy = topo.settings.proxy
    if proxy.enabled and metrics.port and proxy.port == metrics.port and (
            proxy.host == metrics.host):
        loaded.findings.append(loaded.finding(
            E, "port-taken", ("settings", "metrics", "listen"),
            f"the metrics endpoint and the proxy both listen on {metrics.listen}",
            "give settings.metrics.listen another port (Prometheus exporters often use 9464)",
            name=metrics.listen))


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
    _check_accounts,
    _check_proxy,
    _check_metrics,
    check_symbols,
    check_capacity,
    check_readers,
    check_auto_cancel,
    check_record,
    check_backfill,
    check_cluster,
]
