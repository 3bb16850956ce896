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
from dataclasses import replace
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


#: Open files the proxy needs besides its clients: its gateways' sockets and rings (a mapping
#: and two doorbell FIFOs each), its log, the supervisor's pipes, Python's own.
SPARE_FILES = 64


def fit_open_files(config: ProxyConfig) -> tuple[ProxyConfig, str | None]:
    """The config with `max_clients` lowered to what the open-files limit allows, and what to
    say about it (None when the limit is high enough). Past the limit `accept` fails; below
    it, a client over the lowered `max_clients` is refused at once (503) and the spare files
    keep that refusal possible."""
    limit = child.open_files()
    need = config.max_clients + SPARE_FILES
    if limit < 0 or limit >= need:
        return config, None
    served = max(1, limit - SPARE_FILES)
    return replace(config, max_clients=served), (
        f"settings.proxy.max_clients {config.max_clients} needs about {need} open files but "
        f"this process may open {limit} (its hard limit), so it serves at most {served} "
        "clients and refuses more (503). Raise the hard limit where the desk starts (ulimit "
        "-Hn; LimitNOFILE= in a systemd unit; docker run --ulimit nofile=N:N) or lower "
        "max_clients")


async def _serve(config: ProxyConfig, paths: RunPaths, stop: threading.Event) -> int:
    config, short = fit_open_files(config)
    if short is not None:
        logger.warning(short)
        child.report_problem("files", short)
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
