"""The sim role: a simulated exchange for one `adapter: sim` broker of a desk.

Started by the supervisor as `python -m tradeops.sim --topology FILE --name sim-BROKER
--run-dir DIR [--port PORT]` (without `--topology`, `python -m tradeops.sim` is the
stand-alone `tradeops sim` command). It reports ready with the address it bound.
"""

from __future__ import annotations

import asyncio
import datetime
import threading
from dataclasses import replace
from pathlib import Path

from loguru import logger

from tradeops.process import child
from tradeops.process.credentials import every_login
from tradeops.process.entry import RoleContext
from tradeops.sim.options import SimOptions
from tradeops.topology.model import Broker


def sim_options(broker_name: str, broker: Broker, port: int,
                base: Path | None = None) -> SimOptions:
    """The simulated exchange a topology's sim broker asks for; a relative `replay` path is
    relative to `base` (the topology's folder), so a desk runs from any copy."""
    market = broker.market
    rate = broker.orders.rate_limit
    limits = SimOptions(
        port=port,
        symbols_per_connection=broker.pool.symbols_per_connection,
        max_connections=broker.pool.max_connections,
        keys=every_login(broker_name, broker),
        order_rate_limit=(rate.requests, rate.seconds) if rate else None,
    )
    if market is None:
        return limits
    return replace(
        limits,
        seed=market.seed,
        rate=market.rate,
        max_rate=market.max_rate,
        spread_bps=market.spread_bps,
        hours=market.hours,
        bar_seconds=market.bar_seconds,
        speed=market.speed,
        replay=_replay_path(market.replay, base),
        replay_from=_ns(market.from_),
        replay_to=_ns(market.to),
        replay_symbols=tuple(market.symbols or ()),
        replay_broker=broker_name,
    )


def _replay_path(replay: str | None, base: Path | None) -> Path | None:
    if not replay:
        return None
    path = Path(replay).expanduser()
    return path if path.is_absolute() or base is None else base / path


def _ns(when: datetime.datetime | None) -> int | None:
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.UTC)  # a recording's times are UTC
    return int(when.timestamp()) * 10**9 + when.microsecond * 1000


def run_sim(ctx: RoleContext) -> int:
    from tradeops.sim.server import start

    broker_name = ctx.spec.broker
    options = sim_options(broker_name, ctx.topology.brokers[broker_name], ctx.port,
                          ctx.topology_file.parent)
    stop = ctx.stop

    async def serve() -> None:
        sim = await start(options)
        logger.info("simulated exchange for broker '{}' listening on {}", broker_name, sim.url)
        child.report_ready({"url": sim.url, "http": sim.http_url, "port": sim.port})
        loop = asyncio.get_running_loop()
        done = asyncio.Event()
        threading.Thread(
            target=lambda: (stop.wait(), loop.call_soon_threadsafe(done.set)), daemon=True
        ).start()
        try:
            await done.wait()
        finally:
            await sim.close()

    asyncio.run(serve())
    return 0
