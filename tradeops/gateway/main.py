"""A gateway process: the broker's bus (ring + latest-value table), its socket, its loop.

Started by the supervisor through `python -m tradeops.supervisor.role gateway ...` (also
`python -m tradeops.gateway ...`, the same arguments).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from loguru import logger

from tradeops.bus.ring import TickRing
from tradeops.bus.table import LatestTable
from tradeops.gateway.pool import Pool
from tradeops.gateway.server import GatewayServer
from tradeops.gateway.upstream import UpstreamConfig
from tradeops.protocol.alltick import DEFAULT_URL as ALLTICK_URL
from tradeops.protocol.alltick import AllTickSession
from tradeops.protocol.alpaca import MarketDataSession
from tradeops.protocol.feed import FeedSession, MarketData
from tradeops.supervisor import child
from tradeops.supervisor.spec import RunPaths
from tradeops.topology.model import Broker, Topology

ALPACA_DATA = "wss://stream.data.alpaca.markets"
STATE_EVERY = 1.0


def feed_path(broker: Broker) -> str:
    """The Alpaca-dialect path of a broker's feed: /v2/iex, /v2/sip, /v2/test, crypto."""
    feed = broker.effective_feed
    return "/v1beta3/crypto/us" if feed == "crypto" else f"/v2/{feed}"


def endpoint(broker: Broker, sim_url: str | None) -> str:
    if broker.url:
        return broker.url
    if broker.adapter == "alltick":
        return ALLTICK_URL
    base = sim_url if broker.adapter == "sim" else ALPACA_DATA
    if base is None:
        raise ValueError("a sim broker's gateway needs --url (the supervisor passes it)")
    return base.rstrip("/") + feed_path(broker)


def session_factory(name: str, broker: Broker) -> Callable[[], FeedSession]:
    """A fresh dialect session per connection attempt, with the broker's credentials."""
    from tradeops.supervisor.role import sim_credentials

    creds = sim_credentials(name, broker)
    key, secret = creds if creds else ("tradeops", "tradeops")
    if broker.adapter == "alltick":
        return lambda: AllTickSession(key)
    return lambda: MarketDataSession(key, secret, "msgpack")


class BusSink:
    """Upstream threads' ticks into the ring (one writer: the server serialises calls)."""

    def __init__(self, ring: TickRing) -> None:
        self.ring = ring

    def write(self, connection: int, ticks: list[MarketData]) -> None:
        self.ring.extend(ticks)


def run_gateway(
    topology: Topology,
    broker_name: str,
    paths: RunPaths,
    sim_url: str | None,
    stop: threading.Event,
) -> int:
    broker = topology.brokers[broker_name]
    url = endpoint(broker, sim_url)
    table = LatestTable(topology.name, broker_name)
    ring = TickRing(topology.name, broker_name, table=table)
    factory = session_factory(broker_name, broker)
    config = UpstreamConfig(
        url=url, session=factory, silence_after=broker.silence_after
    )
    pool = Pool(broker_name, broker.pool.symbols_per_connection, broker.pool.max_connections)
    server = GatewayServer(
        broker_name,
        pool,
        lambda conn: config,
        BusSink(ring),
        str(paths.gateway_socket(broker_name)),
        stale_after=topology.settings.stale_after,
        bus_info={"ring": ring.name, "table": table.name},
    )
    last_state = 0.0

    def publish_state() -> None:
        nonlocal last_state
        now = time.monotonic()
        if now - last_state >= STATE_EVERY:
            last_state = now
            child.write_state(
                paths.run_dir,
                f"gateway-{broker_name}",
                {**server.health(), "readers": len(ring.readers()), "cursor": ring.cursor},
            )

    try:
        server.bind()
        logger.info(
            "gateway for broker '{}' ({}) serving {}; upstream {}",
            broker_name,
            broker.adapter,
            server.socket_path,
            url.split("?")[0],
        )
        child.report_ready({"socket": server.socket_path, "ring": ring.name})
        server.serve(stop, on_tick=publish_state)
    finally:
        ring.close()
        table.close()
    return 0
