"""The one seam to NATS: connect with the desk's settings, say plainly when it cannot.

nats-py is imported here (and, for JetStream, inside history.py's functions), so a desk
without `settings.cluster` never loads it.
The connection reconnects by itself forever (a NATS outage is waited out); the token is
passed to the client, never logged.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from loguru import logger

from tradeops.topology.model import Cluster

if TYPE_CHECKING:
    from nats.aio.client import Client

INSTALL = "pip install 'nats-py>=2.7'"


async def connect(cluster: Cluster, name: str,
                  on_state: Callable[[bool, str], Awaitable[None]] | None = None) -> Client:
    """A NATS connection for process `name`; `on_state(connected, why)` on every change.

    RuntimeError (with the install command) when nats-py is missing; ConnectionError when no
    server of `cluster.nats` answers the first time (later outages are reconnected)."""
    try:
        import nats
    except ImportError:
        raise RuntimeError(f"settings.cluster needs the NATS client: {INSTALL}") from None

    async def disconnected() -> None:
        logger.warning("lost NATS ({}); reconnecting", ", ".join(cluster.servers))
        if on_state is not None:
            await on_state(False, "NATS is unreachable")

    async def reconnected() -> None:
        logger.info("NATS is back")
        if on_state is not None:
            await on_state(True, "")

    async def error(exc: Exception) -> None:
        logger.debug("NATS: {}", exc)

    options: dict[str, Any] = {
        "name": name, "allow_reconnect": True, "max_reconnect_attempts": -1,
        "reconnect_time_wait": 0.5, "connect_timeout": 2, "ping_interval": 5,
        "max_outstanding_pings": 2, "disconnected_cb": disconnected,
        "reconnected_cb": reconnected, "error_cb": error,
    }
    if cluster.token is not None:
        options["token"] = cluster.token.get_secret_value()
    try:
        return await nats.connect(cluster.servers, **options)
    except Exception as exc:
        raise ConnectionError(f"cannot reach NATS at {', '.join(cluster.servers)}: "
                              f"{type(exc).__name__}: {exc}; start the server, or fix "
                              "settings.cluster.nats") from None
