"""The proxy's settings, drawn once from the topology: plain data, no I/O.

Which broker serves each Alpaca path, which symbols each broker's feed can carry, where each
gateway listens, and the limits every connection lives under.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, Literal

from tradeops import __version__
from tradeops.process.paths import RunPaths
from tradeops.protocol.downstream import SessionConfig
from tradeops.protocol.tick import SYMBOL_MAX_BYTES
from tradeops.topology.model import Broker, Topology

#: Alpaca's market-data paths and the feed each one is.
ALPACA_PATHS: Final = {
    "/v2/iex": "iex",
    "/v2/sip": "sip",
    "/v2/test": "test",
    "/v1beta3/crypto/us": "crypto",
}
#: The native protocol and OpenAlgo's share the root (OpenAlgo clients connect to `/`).
ROOT_PATHS: Final = ("/", "")
#: Seconds a client has to authenticate (Alpaca's own limit).
AUTH_TIMEOUT: Final = 10.0


def symbol_problem(broker: Broker, symbol: str) -> str | None:
    """Why `symbol` cannot be subscribed on `broker`'s feed; None when it can.

    The same rules as `tradeops validate` (one wrong symbol must not make the broker refuse
    a whole batch), plus the bus's symbol length."""
    from tradeops.topology.check_market import symbol_problem  # the validate rule, shared

    if not symbol:
        return "the symbol is empty"
    if len(symbol.encode()) > SYMBOL_MAX_BYTES:
        return f"'{symbol[:40]}' is longer than {SYMBOL_MAX_BYTES} bytes"
    problem = symbol_problem(broker, symbol)
    return f"'{symbol}' is not a {problem[0]} symbol: {problem[1]}" if problem else None




@dataclass(frozen=True)
class ProxyConfig:
    topology: str
    bus: str  # the desk's shared-memory namespace (RunPaths.bus)
    host: str
    port: int
    brokers: dict[str, Broker]
    sockets: dict[str, str]
    token: str | None = None
    feeds: dict[str, str] = field(default_factory=dict)  # Alpaca path → broker
    exchanges: dict[str, str] = field(default_factory=dict)
    slow_client: Literal["drop", "conflate"] = "drop"
    queue: int = 10000
    max_message: int = 65536
    max_clients: int = 1000
    max_symbols: int = 1000
    tls: tuple[str, str] | None = None
    auth_timeout: float = AUTH_TIMEOUT

    @classmethod
    def from_topology(cls, topology: Topology, paths: RunPaths) -> ProxyConfig:
        settings = topology.settings.proxy
        feeds: dict[str, str] = {}
        chosen_by_feed: dict[str, str] = {str(k): v for k, v in settings.feeds.items()}
        for path, feed in ALPACA_PATHS.items():
            chosen = chosen_by_feed.get(feed)
            if chosen is None:
                chosen = next(
                    (n for n, b in topology.brokers.items()
                     if not b.qualified_symbols and b.effective_feed == feed),
                    None,
                )  # fmt: skip
            if chosen is not None:
                feeds[path] = chosen
        tls = (settings.tls_cert, settings.tls_key)
        return cls(
            topology=topology.name,
            bus=paths.bus,
            host=settings.host,
            port=settings.port,
            brokers=dict(topology.brokers),
            sockets={b: str(paths.gateway_socket(b)) for b in topology.brokers},
            token=settings.token.get_secret_value() if settings.token else None,
            feeds=feeds,
            exchanges=dict(settings.exchanges),
            slow_client=settings.slow_client,
            queue=settings.queue,
            max_message=settings.max_message,
            max_clients=settings.max_clients,
            max_symbols=settings.max_symbols,
            tls=(tls[0], tls[1]) if tls[0] and tls[1] else None,
        )

    @property
    def scheme(self) -> str:
        return "wss" if self.tls else "ws"

    def serves(self, path: str) -> bool:
        return path in ALPACA_PATHS or path in ROOT_PATHS

    def check_symbol(self, broker: str, symbol: str) -> str | None:
        spec = self.brokers.get(broker)
        return f"unknown broker '{broker}'" if spec is None else symbol_problem(spec, symbol)

    def session_config(self, path: str) -> SessionConfig:
        """What a session on `path` needs: for Alpaca paths, the broker that serves it."""
        return SessionConfig(
            brokers=tuple(self.brokers),
            token=self.token,
            max_symbols=self.max_symbols,
            auth_timeout=self.auth_timeout,
            server=f"tradeops {__version__}",
            check_symbol=self.check_symbol,
            alpaca_broker=self.feeds.get(path),
            exchanges=self.exchanges,
            qualified=frozenset(n for n, b in self.brokers.items() if b.qualified_symbols),
            # Brokers whose feed has books (AllTick and OpenAlgo depth, crypto order books),
            # the same rule validate applies to `mode: depth` (mode-not-supported).
            book_brokers=frozenset(
                n for n, b in self.brokers.items()
                if b.qualified_symbols or b.effective_feed == "crypto"
            ),
        )
