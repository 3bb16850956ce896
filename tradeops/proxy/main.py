"""The proxy process: serve websockets until told to stop; publish status once a second.

Started by the supervisor (with the hosts, after the gateways) as
``python -m tradeops.proxy --topology FILE --name proxy --run-dir DIR``. It reports ready with
the address it actually bound (``settings.proxy.listen`` with port 0 takes any free port; a
restarted proxy binds the port its previous run had, when it is still free, so clients find it
again).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from typing import Any

from loguru import logger

from tradeops.process import child
from tradeops.process.entry import RoleContext
from tradeops.process.paths import RunPaths
from tradeops.proxy.config import ProxyConfig
from tradeops.proxy.server import ProxyServer
from tradeops.topology.check import is_loopback

NAME = "proxy"
STATE_EVERY = 1.0


def run_proxy(ctx: RoleContext) -> int:
    """Run the proxy until `ctx.stop` is set; 2 when its settings cannot be served."""
    topology, paths, stop = ctx.topology, ctx.paths, ctx.stop
    config = ProxyConfig.from_topology(topology, paths)
    if not is_loopback(config.host):
        if config.token is None:
            logger.error("the proxy would listen on {} without a token; refusing", config.host)
            return 2
        logger.warning(
            "the proxy listens on {}, beyond loopback: only clients with the token get in",
            config.host,
        )
    return asyncio.run(_serve(config, paths, stop))


async def _serve(config: ProxyConfig, paths: RunPaths, stop: threading.Event) -> int:
    server = ProxyServer(config)
    previous = child.read_state(paths.run_dir, NAME).get("port") if config.port == 0 else None
    try:
        await server.start(int(previous) if previous else None)
    except OSError:
        if not previous:
            raise
        await server.start()  # the old port is taken: any free one
    logger.info("proxy serving {} for broker(s) {}", server.url, ", ".join(config.brokers))
    child.report_ready({"url": server.url, "port": server.port})
    loop = asyncio.get_running_loop()
    done = asyncio.Event()

    def wait_for_stop() -> None:
        stop.wait()
        with contextlib.suppress(RuntimeError):  # the loop already ended
            loop.call_soon_threadsafe(done.set)

    threading.Thread(target=wait_for_stop, daemon=True, name="stop").start()
    meter = _Rate()
    try:
        while not done.is_set():
            _publish(server, paths, meter)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), STATE_EVERY)
    finally:
        await server.close()
        _publish(server, paths, meter)
    logger.info("proxy stopped")
    return 0


class _Rate:
    def __init__(self) -> None:
        self.when, self.count, self.rate = time.monotonic(), 0, 0.0

    def update(self, count: int) -> float:
        now = time.monotonic()
        if now - self.when >= 0.5:
            self.rate = (count - self.count) / (now - self.when)
            self.when, self.count = now, count
        return self.rate


def _publish(server: ProxyServer, paths: RunPaths, meter: _Rate) -> None:
    state: dict[str, Any] = server.status()
    state["messages_per_s"] = round(meter.update(int(state["messages_out"])), 1)
    child.write_state(paths.run_dir, NAME, state)
