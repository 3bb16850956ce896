"""Checks across a well-formed topology: references, capacity, symbols, pins, policies, imports.

Each check appends findings to the loaded file; none raises. `check` runs them all.
"""

from __future__ import annotations

import difflib
import importlib
import ipaddress
import os
import re
import sys
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path as FsPath

from tradeops.topology import model as m
from tradeops.topology.findings import Finding, Severity
from tradeops.topology.load import Loaded
from tradeops.topology.plan import groups

E, W = Severity.ERROR, Severity.WARNING

STOCK_SYMBOL = re.compile(r"^[A-Z][A-Z.]{0,15}$")
CRYPTO_SYMBOL = re.compile(r"^[A-Z0-9]{2,15}/[A-Z0-9]{2,15}$")
ALLTICK_SYMBOL = re.compile(r"^[A-Z0-9]{1,16}:[A-Za-z0-9._-]{1,32}$")
CRYPTO_QUOTES = ("USDT", "USDC", "USD", "BTC", "ETH")


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
    _check_cpu(loaded, topo, options.cpu_count or os.cpu_count() or 1)
    if options.import_classes:
        _check_imports(loaded, topo)
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
                    f"use one of: {', '.join(brokers)}{_did_you_mean(spec.broker, brokers)}, "
                    "or declare it under `brokers`",
                    name=spec.broker,
                )
            )
    owner: dict[str, str] = {}
    for group, process in topo.processes.items():
        seen: set[str] = set()
        for i, strategy in enumerate(process.strategies):
            path = ("processes", group, "strategies", i)
            if strategy not in topo.strategies:
                loaded.findings.append(
                    loaded.finding(
                        E,
                        "unknown-strategy",
                        path,
                        f"group '{group}' names strategy '{strategy}', which is not declared",
                        f"declare it under `strategies`, or use one of: "
                        f"{', '.join(topo.strategies) or '(none declared)'}"
                        f"{_did_you_mean(strategy, list(topo.strategies))}",
                        name=strategy,
                    )
                )
            elif strategy in seen:
                loaded.findings.append(
                    loaded.finding(
                        W,
                        "duplicate-member",
                        path,
                        f"strategy '{strategy}' is listed twice in group '{group}'",
                        "list it once",
                        name=strategy,
                    )
                )
            elif strategy in owner:
                loaded.findings.append(
                    loaded.finding(
                        E,
                        "strategy-in-two-groups",
                        path,
                        f"strategy '{strategy}' is in group '{owner[strategy]}' and in '{group}'",
                        "a strategy runs in exactly one process: remove it from one group",
                        name=strategy,
                    )
                )
            else:
                owner[strategy] = group
            seen.add(strategy)
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


RESERVED_PREFIXES = ("gateway-", "sim-")
RESERVED_NAMES = ("supervisor", "proxy")


def _check_reserved(loaded: Loaded, topo: m.Topology) -> None:
    """Process names `gateway-BROKER`, `sim-BROKER`, `proxy` and `supervisor` belong to the
    desk's own processes."""
    for group in groups(topo):
        if group.name.startswith(RESERVED_PREFIXES) or group.name in RESERVED_NAMES:
            path = ("strategies" if group.implicit else "processes", group.name)
            loaded.findings.append(
                loaded.finding(
                    E,
                    "reserved-name",
                    path,
                    f"process name '{group.name}' is reserved: gateway-*, sim-*, proxy and "
                    "supervisor name the desk's own processes",
                    "rename it",
                    name=group.name,
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
                    'add credentials: {key: "${KEY_VAR}", secret: "${SECRET_VAR}"} and set those '
                    "variables in the environment or .env",
                    name=name,
                    at_key=True,
                )
            )
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
    if proxy.enabled and not _is_loopback(proxy.host) and proxy.token is None:
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
                    f"use one of: {', '.join(brokers)}{_did_you_mean(name, brokers)}",
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


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# -- symbols and capacity ------------------------------------------------------------------


def _check_symbols(loaded: Loaded, topo: m.Topology) -> None:
    for name, strategy in topo.strategies.items():
        broker = topo.brokers.get(strategy.broker)
        path = ("strategies", name, "symbols")
        if not strategy.symbols:
            loaded.findings.append(
                loaded.finding(
                    E,
                    "empty-symbols",
                    path,
                    f"strategy '{name}' subscribes no symbols",
                    "list at least one symbol, e.g. symbols: [AAPL]",
                    name=name,
                )
            )
        seen: set[str] = set()
        for i, symbol in enumerate(strategy.symbols):
            if symbol in seen:
                loaded.findings.append(
                    loaded.finding(
                        W,
                        "duplicate-symbol",
                        (*path, i),
                        f"strategy '{name}' lists {symbol} twice",
                        "list it once",
                        name=symbol,
                    )
                )
            seen.add(symbol)
            if broker is not None:
                problem = _symbol_problem(broker, symbol)
                if problem:
                    loaded.findings.append(
                        loaded.finding(
                            E,
                            "symbol-format",
                            (*path, i),
                            f"'{symbol}' is not a {problem[0]} symbol",
                            problem[1],
                            name=symbol,
                        )
                    )
        for i, symbol in enumerate(strategy.limits.symbols or []):
            if broker is not None and (problem := _symbol_problem(broker, symbol)):
                loaded.findings.append(
                    loaded.finding(
                        E,
                        "symbol-format",
                        ("strategies", name, "limits", "symbols", i),
                        f"'{symbol}' is not a {problem[0]} symbol",
                        problem[1],
                        name=symbol,
                    )
                )
        if (
            broker is not None
            and broker.adapter != "alltick"
            and strategy.mode == "depth"
            and broker.effective_feed != "crypto"
        ):
            loaded.findings.append(
                loaded.finding(
                    E,
                    "mode-not-supported",
                    ("strategies", name, "mode"),
                    f"strategy '{name}': the {broker.effective_feed} feed of broker "
                    f"'{strategy.broker}' has no depth (order book) data",
                    "use mode: quote (best bid and ask), or a crypto feed for order books",
                    name=name,
                )
            )


def _symbol_problem(broker: m.Broker, symbol: str) -> tuple[str, str] | None:
    """None when `symbol` suits the broker; else (kind, how to fix)."""
    if broker.adapter == "alltick":
        if ALLTICK_SYMBOL.match(symbol):
            return None
        return "AllTick", "write AllTick symbols as EXCHANGE:CODE, e.g. HK:700 or US:AAPL"
    if broker.effective_feed == "crypto":
        if CRYPTO_SYMBOL.match(symbol):
            return None
        upper = symbol.upper().replace("-", "/")
        if "/" not in upper:
            upper = next(
                (
                    f"{upper[: -len(q)]}/{q}"
                    for q in CRYPTO_QUOTES
                    if upper.endswith(q) and len(upper) > len(q)
                ),
                upper,
            )
        return (
            "crypto",
            f"write crypto pairs as BASE/QUOTE, e.g. {upper if '/' in upper else 'BTC/USD'}",
        )
    if STOCK_SYMBOL.match(symbol):
        return None
    suggestion = symbol.upper() if STOCK_SYMBOL.match(symbol.upper()) else "AAPL or BRK.B"
    return "stock", f"write stock symbols in upper case letters (dots allowed), e.g. {suggestion}"


def _check_capacity(loaded: Loaded, topo: m.Topology) -> None:
    wanted: dict[str, set[str]] = defaultdict(set)
    for strategy in topo.strategies.values():
        wanted[strategy.broker].update(strategy.symbols)
    for name, broker in topo.brokers.items():
        need, pool = len(wanted.get(name, ())), broker.pool
        if need <= pool.capacity:
            continue
        over = need - pool.capacity
        connections = -(-need // pool.symbols_per_connection)
        loaded.findings.append(
            loaded.finding(
                E,
                "capacity",
                ("brokers", name, "pool"),
                f"broker '{name}' needs {need} distinct symbols but its pool holds {pool.capacity} "
                f"({pool.symbols_per_connection} per connection × {pool.max_connections} "
                f"connection(s)): {over} too many",
                f"raise max_connections to {connections} if your plan allows it, raise "
                "symbols_per_connection to what your plan allows, or remove symbols",
                name=name,
            )
        )


# -- processes -------------------------------------------------------------------------------


def _check_cpu(loaded: Loaded, topo: m.Topology, cpu_count: int) -> None:
    spinners: dict[int, str] = {}
    for name, process in topo.processes.items():
        path = ("processes", name)
        for i, core in enumerate(process.cpu or []):
            if core >= cpu_count:
                loaded.findings.append(
                    loaded.finding(
                        W,
                        "cpu-missing",
                        (*path, "cpu", i),
                        f"group '{name}' is pinned to core {core}, but this machine has cores "
                        f"0-{cpu_count - 1}",
                        "pin to a core this machine has, or ignore this where production is "
                        "larger (--strict makes this an error)",
                        name=name,
                    )
                )
        if not process.busy_poll:
            continue
        if not process.cpu:
            loaded.findings.append(
                loaded.finding(
                    W,
                    "busy-poll-unpinned",
                    (*path, "busy_poll"),
                    f"group '{name}' busy-polls without a CPU pin: it spins on whatever core the "
                    "scheduler gives it and slows its neighbours",
                    "add cpu: [N] with a core of its own",
                    name=name,
                )
            )
        for i, core in enumerate(process.cpu or []):
            if core in spinners and spinners[core] != name:
                loaded.findings.append(
                    loaded.finding(
                        E,
                        "busy-poll-shared-core",
                        (*path, "cpu", i),
                        f"groups '{spinners[core]}' and '{name}' both busy-poll on core {core}; "
                        "each would take the core from the other",
                        "give each busy-polling group a core of its own, or set busy_poll: false "
                        "on one",
                        name=name,
                    )
                )
            spinners.setdefault(core, name)


def _check_auto_cancel(loaded: Loaded, topo: m.Topology) -> None:
    strategies = topo.strategies
    placement = {s: g.name for g in groups(topo) for s in g.strategies}
    for group in groups(topo):
        if group.settings.auto_cancel != "account" or group.implicit:
            continue
        path = ("processes", group.name, "auto_cancel")
        for a, b in combinations(group.strategies, 2):
            sa, sb = strategies[a], strategies[b]
            shared = sorted(set(sa.symbols) & set(sb.symbols)) if sa.broker == sb.broker else []
            if shared:
                loaded.findings.append(
                    loaded.finding(
                        W,
                        "auto-cancel-overlap",
                        path,
                        f"group '{group.name}' bundles '{a}' and '{b}', which both trade "
                        f"{', '.join(shared[:5])} on broker '{sa.broker}'; auto_cancel: account "
                        "cancels both strategies' orders when the process goes away",
                        "use auto_cancel: strategy, or split them into separate groups",
                        name=f"{a},{b}",
                    )
                )
        accounts = {(strategies[s].broker, strategies[s].account) for s in group.strategies}
        others = sorted(
            s
            for s, st in strategies.items()
            if placement.get(s) != group.name and (st.broker, st.account) in accounts
        )
        if others:
            loaded.findings.append(
                loaded.finding(
                    W,
                    "auto-cancel-account",
                    path,
                    f"auto_cancel: account in group '{group.name}' cancels every order on its "
                    f"account, including those of {', '.join(others)} in other processes",
                    "use auto_cancel: strategy, or put those strategies on another account",
                    name=group.name,
                )
            )


# -- strategy classes ---------------------------------------------------------------------------


def _check_imports(loaded: Loaded, topo: m.Topology) -> None:
    from tradeops.runtime.strategy import Strategy

    verdicts: dict[str, tuple[str, str] | None] = {}
    with _importable_from(loaded.base_dir):
        for name, strategy in topo.strategies.items():
            target = strategy.class_
            if target not in verdicts:
                verdicts[target] = _import_problem(target, Strategy)
            problem = verdicts[target]
            if problem:
                loaded.findings.append(
                    loaded.finding(
                        E,
                        "strategy-import",
                        ("strategies", name, "class"),
                        f"strategy '{name}': {problem[0]}",
                        f"{problem[1]} (skip this check with --no-import)",
                        name=target,
                    )
                )


def _import_problem(target: str, base: type) -> tuple[str, str] | None:
    module_name, _, class_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        return (
            f"cannot import '{module_name}': {exc}",
            "check the spelling, install the package, or run from the directory that holds it",
        )
    except Exception as exc:  # the user's module failed while importing
        return (
            f"importing '{module_name}' raised {type(exc).__name__}: {exc}",
            "fix the error in that module",
        )
    cls = getattr(module, class_name, None)
    if cls is None:
        names = [n for n in dir(module) if not n.startswith("_")]
        return (
            f"module '{module_name}' has no '{class_name}'",
            f"check the class name{_did_you_mean(class_name, names)}",
        )
    if not (isinstance(cls, type) and issubclass(cls, base)):
        return (
            f"'{target}' is not a subclass of tradeops.Strategy",
            "derive it from tradeops.Strategy: class X(Strategy)",
        )
    return None


@contextmanager
def _importable_from(directory: FsPath) -> Iterator[None]:
    """Let strategy modules import from the topology's folder and the working directory."""
    added = [p for p in (str(directory), os.getcwd()) if p not in sys.path]
    sys.path[:0] = added
    try:
        yield
    finally:
        for p in added:
            if p in sys.path:
                sys.path.remove(p)


def _did_you_mean(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


_CHECKS: list[Callable[[Loaded, m.Topology], None]] = [
    _check_references,
    _check_reserved,
    _check_brokers,
    _check_proxy,
    _check_symbols,
    _check_capacity,
    _check_auto_cancel,
]
