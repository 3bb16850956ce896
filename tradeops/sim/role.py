"""The sim role: a simulated exchange for one `adapter: sim` broker of a desk.

Started by the supervisor as `python -m tradeops.sim --topology FILE --name sim-BROKER
--run-dir DIR [--port PORT]` (without `--topology`, `python -m tradeops.sim` is the
stand-alone `tradeops sim` command). It reports ready with the address it bound.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import replace
from pathlib import Path

from loguru import logger

from tradeops.process import child
from tradeops.process.credentials import every_login
from tradeops.process.entry import RoleContext
from tradeops.sim.options import SimOptions
from tradeops.topology.model import Broker


def sim_options(broker_name: str, broker: Broker, port: int) -> SimOptions:
    """The simulated exchange a topology's sim broker asks for."""
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
        speed=market.speed,
        replay=Path(market.replay) if market.replay else None,
    )


def run_sim(ctx: RoleContext) -> int:
    from tradeops.sim.server import start

    broker_name = ctx.spec.broker
    options = sim_options(broker_name, ctx.topology.brokers[broker_name], ctx.port)
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
