"""Checks of what a topology asks of its brokers' feeds: symbol formats, modes, capacity."""

from __future__ import annotations

import re
from collections import defaultdict

from tradeops.bus.layout import DEFAULT_MAX_READERS
from tradeops.topology import model as m
from tradeops.topology.findings import Severity
from tradeops.topology.load import Loaded
from tradeops.topology.plan import groups

E, W = Severity.ERROR, Severity.WARNING

STOCK_SYMBOL = re.compile(r"^[A-Z][A-Z.]{0,15}$")
CRYPTO_SYMBOL = re.compile(r"^[A-Z0-9]{2,15}/[A-Z0-9]{2,15}$")
ALLTICK_SYMBOL = re.compile(r"^[A-Z0-9]{1,16}:[A-Za-z0-9._-]{1,32}$")
# OpenAlgo's symbol format: exchange codes (NSE, BSE, NFO, BFO, MCX, CDS, BCD, NSE_INDEX, ...)
# and upper-case symbols with digits, `&` (M&M), `-` (BAJAJ-AUTO) and `_`.
OPENALGO_SYMBOL = re.compile(r"^[A-Z][A-Z_]{1,15}:[A-Z0-9][A-Z0-9&_-]{0,47}$")
CRYPTO_QUOTES = ("USDT", "USDC", "USD", "BTC", "ETH")


def check_symbols(loaded: Loaded, topo: m.Topology) -> None:
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
            _check_format(loaded, broker, symbol, (*path, i))
        for i, symbol in enumerate(strategy.limits.symbols or []):
            _check_format(loaded, broker, symbol, ("strategies", name, "limits", "symbols", i))
        if broker is not None:
            _check_mode(loaded, broker, name, strategy)


def _check_format(
    loaded: Loaded, broker: m.Broker | None, symbol: str, path: tuple[str | int, ...]
) -> None:
    if broker is not None and (problem := symbol_problem(broker, symbol)):
        loaded.findings.append(
            loaded.finding(
                E,
                "symbol-format",
                path,
                f"'{symbol}' is not a {problem[0]} symbol",
                problem[1],
                name=symbol,
            )
        )


def _check_mode(loaded: Loaded, broker: m.Broker, name: str, strategy: m.Strategy) -> None:
    if (
        not broker.qualified_symbols
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
    if strategy.bars and broker.adapter in BARLESS_ADAPTERS:
        loaded.findings.append(
            loaded.finding(
                E,
                "bars-not-supported",
                ("strategies", name, "bars"),
                f"strategy '{name}': broker '{strategy.broker}' (adapter: {broker.adapter}) "
                "streams no bars",
                "remove `bars: true`, or build bars from trades in on_tick",
                name=name,
            )
        )
    if strategy.extras and (broker.adapter in BARLESS_ADAPTERS
                            or broker.effective_feed == "crypto"):
        stock_only = [e for e in strategy.extras if e in ("statuses", "lulds")]
        if broker.adapter in BARLESS_ADAPTERS or stock_only:
            loaded.findings.append(
                loaded.finding(
                    E,
                    "extras-not-supported",
                    ("strategies", name, "extras"),
                    f"strategy '{name}': broker '{strategy.broker}' (adapter: "
                    f"{broker.adapter}, feed: {broker.effective_feed}) streams no "
                    f"{', '.join(stock_only or strategy.extras)}",
                    "remove them from `extras` (statuses and LULD bands come from Alpaca's "
                    "and the sim's stock feeds; daily and updated bars from theirs)",
                    name=name,
                )
            )


#: Adapters whose broker streams no bars (their pages under docs/brokers/ say so).
BARLESS_ADAPTERS = frozenset({"alltick", "openalgo"})


def symbol_problem(broker: m.Broker, symbol: str) -> tuple[str, str] | None:
    """None when `symbol` suits the broker; else (kind, how to fix)."""
    if broker.adapter == "alltick":
        if ALLTICK_SYMBOL.match(symbol):
            return None
        return "AllTick", "write AllTick symbols as EXCHANGE:CODE, e.g. HK:700 or US:AAPL"
    if broker.adapter == "openalgo":
        if OPENALGO_SYMBOL.match(symbol):
            return None
        return ("OpenAlgo", "write OpenAlgo symbols as EXCHANGE:SYMBOL in upper case, e.g. "
                "NSE:RELIANCE, NFO:NIFTY28NOV2424000CE or MCX:CRUDEOIL19DEC24FUT")
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


def check_capacity(loaded: Loaded, topo: m.Topology) -> None:
    wanted: dict[str, set[str]] = defaultdict(set)
    for strategy in topo.strategies.values():
        wanted[strategy.broker].update(strategy.symbols)
    record = topo.settings.record
    if record is not None and record.symbols:  # the recorder subscribes them too
        for name in topo.brokers:
            if record.brokers is None or name in record.brokers:
                wanted[name].update(record.symbols)
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


#: Reader slots kept free of the topology's own processes: a tool or program reading the bus,
#: a host restarting while its old process still holds its slot.
SPARE_READERS = 8


def check_readers(loaded: Loaded, topo: m.Topology) -> None:
    """Each process reading a broker's ring on a node takes one of its reader slots: the
    strategy hosts trading that broker there, the proxy and the recorder."""
    cluster = topo.settings.cluster
    home = cluster.default_node if cluster is not None else ""
    readers: dict[tuple[str, str], list[str]] = defaultdict(list)
    for group in groups(topo):
        node = group.settings.node or home
        for broker in sorted({topo.strategies[s].broker for s in group.strategies}):
            readers[node, broker].append(group.name)
    proxy, record = topo.settings.proxy, topo.settings.record
    for broker in topo.brokers:
        if proxy.enabled:
            readers[proxy.node or home, broker].append("the proxy")
        if record is not None and (record.brokers is None or broker in record.brokers):
            readers[record.node or home, broker].append("the recorder")
    room = DEFAULT_MAX_READERS - SPARE_READERS
    for (node, broker), names in readers.items():
        if len(names) <= room:
            continue
        where = f" on node '{node}'" if cluster is not None else ""
        loaded.findings.append(loaded.finding(
            E, "readers", ("brokers", broker),
            f"broker '{broker}' would have {len(names)} processes reading its bus{where} "
            f"({', '.join(names[:3])}, ...) but its ring has {DEFAULT_MAX_READERS} reader slots, "
            f"{SPARE_READERS} of them kept for tools and restarts",
            f"bundle strategies into fewer processes (a `processes:` group runs several "
            f"strategies): at most {room} per broker{where}", name=broker,
        ))  # fmt: skip


def check_backfill(loaded: Loaded, topo: m.Topology) -> None:
    """Backfill reads Alpaca's historical stock trades (the sim serves the same API)."""
    for name, broker in topo.brokers.items():
        if broker.backfill and (broker.qualified_symbols or broker.effective_feed == "crypto"):
            what = {"alltick": "AllTick", "openalgo": "OpenAlgo"}.get(broker.adapter,
                                                                      "a crypto feed")
            loaded.findings.append(loaded.finding(
                E, "backfill-not-supported", ("brokers", name, "backfill"),
                f"broker '{name}' asks for backfill, which {what} does not have yet",
                "remove `backfill` (only alpaca and sim stock feeds backfill)", name=name,
            ))
