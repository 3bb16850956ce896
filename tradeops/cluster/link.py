"""The one seam to NATS: connect with the desk's settings, say plainly when it cannot.

nats-py is imported here (and, for JetStream, inside history.py's functions), so a desk
without `settings.cluster` never loads it.
The connection reconnects by itself forever (a NATS outage is waited out); the token is
passed to the client, never logged. A credentials file or an NKey seed file logs in instead of
a token, and `settings.cluster.tls` gives the CA, the client certificate and its key.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import ssl
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

    RuntimeError (with the install command) when nats-py is missing. Until a server first
    answers, the call waits (a node may start before NATS); but a server that refuses the
    desk's TLS or login ends it at once with ConnectionError saying so: retrying would not
    help. Later outages, whatever their cause, are reconnected."""
    try:
        from nats.aio.client import Client as NatsClient
        from nats.errors import AuthorizationError
    except ImportError:
        raise RuntimeError(f"settings.cluster needs the NATS client: {INSTALL}") from None
    refused: asyncio.Future[Exception] = asyncio.get_running_loop().create_future()

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
        if _refusal(exc, AuthorizationError) and not refused.done():
            refused.set_result(exc)

    options: dict[str, Any] = {
        "name": name, "allow_reconnect": True, "max_reconnect_attempts": -1,
        "reconnect_time_wait": 0.5, "connect_timeout": 2, "ping_interval": 5,
        "max_outstanding_pings": 2, "disconnected_cb": disconnected,
        "reconnected_cb": reconnected, "error_cb": error,
    }
    if cluster.token is not None:
        options["token"] = cluster.token.get_secret_value()
    options.update(_login_and_tls(cluster))
    nc = NatsClient()
    connecting: asyncio.Future[Any] = asyncio.ensure_future(
        nc.connect(cluster.servers, **options))
    either: list[asyncio.Future[Any]] = [connecting, refused]
    await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
    if not connecting.done():
        connecting.cancel()
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await connecting
        with contextlib.suppress(Exception):
            await nc.close()
        cause = refused.result()
        raise ConnectionError(
            f"NATS at {', '.join(cluster.servers)} refused this desk: "
            f"{type(cause).__name__}: {cause}; check settings.cluster.tls (the CA, the client "
            "certificate and key) and the login (token, credentials or nkey)") from None
    try:
        connecting.result()
    except Exception as exc:
        raise ConnectionError(f"cannot reach NATS at {', '.join(cluster.servers)}: "
                              f"{type(exc).__name__}: {exc}; start the server, or fix "
                              "settings.cluster.nats") from None
    return nc


def _login_and_tls(cluster: Cluster) -> dict[str, Any]:
    """nats-py's options for the desk's credentials file or NKey seed and its TLS settings.

    ConnectionError naming the setting when a file is missing or unreadable, before any
    connection is tried (a TLS or login failure at the server is reported by connect)."""
    options: dict[str, Any] = {}
    for key, option in (("credentials", "user_credentials"), ("nkey", "nkeys_seed")):
        path = getattr(cluster, key)
        if path is not None:
            _readable(path, f"settings.cluster.{key}")
            options[option] = path
    tls = cluster.tls
    if tls is not None:
        for key in ("ca", "cert", "key"):
            path = getattr(tls, key)
            if path is not None:
                _readable(path, f"settings.cluster.tls.{key}")
        try:
            context = ssl.create_default_context(cafile=tls.ca)
            if tls.cert is not None:
                context.load_cert_chain(tls.cert, tls.key)
        except (ssl.SSLError, ValueError) as exc:
            raise ConnectionError(f"settings.cluster.tls: cannot use the certificates: {exc}; "
                                  "check that ca, cert and key are PEM files and the key "
                                  "matches the cert") from None
        options["tls"] = context
        if tls.hostname is not None:
            options["tls_hostname"] = tls.hostname
    return options


def _readable(path: str, key: str) -> None:
    if not os.access(path, os.R_OK) or not os.path.isfile(path):
        raise ConnectionError(f"{key} names {path}, which is not a readable file on this node; "
                              "copy it there or fix the path")


def _refusal(exc: Exception, authorization: type[Exception]) -> bool:
    """A server's no to the desk's TLS or login (not an outage): a TLS error, or the -ERR a
    server answers a bad token, seed or credentials with (nats-py raises some as plain
    errors carrying the text)."""
    text = str(exc).lower()
    return (isinstance(exc, ssl.SSLError | authorization)
            or "authorization violation" in text or "authentication" in text)
