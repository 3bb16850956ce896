"""Alpaca's streaming vocabulary, server side: error codes, channel names, control messages.

Both of our Alpaca servers speak it: the simulated exchange (``tradeops/sim``) and the
proxy's Alpaca dialect (``alpaca_server.py``). It lives here, under protocol/, so the proxy's
dialect does not reach into the sim for it; the sim adds only what is its own (messages built
from its market events, ``sim/dialect.py``). Messages are plain dicts, encoded by
:mod:`tradeops.protocol.codec`.
"""

from __future__ import annotations

from collections.abc import Mapping

#: Alpaca's error codes and their messages, verbatim.
ERRORS: dict[int, str] = {
    400: "invalid syntax",
    401: "not authenticated",
    402: "auth failed",
    403: "already authenticated",
    404: "auth timeout",
    405: "symbol limit exceeded",
    406: "connection limit exceeded",
    407: "slow client",
    409: "insufficient subscription",
    410: "invalid subscribe action for this feed",
    500: "internal error",
}
STOCK_CHANNELS = ("trades", "quotes", "bars", "updatedBars", "dailyBars", "statuses", "lulds")
CRYPTO_CHANNELS = ("trades", "quotes", "orderbooks", "bars", "updatedBars", "dailyBars")
#: Every channel name a client may send; a server that carries fewer answers the others 410.
KNOWN_CHANNELS = frozenset(STOCK_CHANNELS + CRYPTO_CHANNELS
                           + ("corrections", "cancelErrors", "news"))


def error(code: int) -> dict[str, object]:
    return {"T": "error", "code": code, "msg": ERRORS[code]}


def success(msg: str) -> dict[str, object]:
    """`connected` or `authenticated`."""
    return {"T": "success", "msg": msg}


def subscription(crypto: bool, subs: Mapping[str, set[str]]) -> dict[str, object]:
    """The full current set, every channel of the feed listed (empty ones too)."""
    message: dict[str, object] = {"T": "subscription"}
    for channel in CRYPTO_CHANNELS if crypto else STOCK_CHANNELS:
        message[channel] = sorted(subs.get(channel, ()))
    if not crypto:
        # Alpaca subscribes corrections and cancel-errors along with trades.
        message["corrections"] = sorted(subs.get("trades", ()))
        message["cancelErrors"] = sorted(subs.get("trades", ()))
    return message


def authorization(status: str, action: str) -> dict[str, object]:
    """Trade stream: `authorized` or `unauthorized`, for `authenticate` or `listen`."""
    return {"stream": "authorization", "data": {"status": status, "action": action}}


def listening(streams: list[str]) -> dict[str, object]:
    return {"stream": "listening", "data": {"streams": streams}}


def stream_error(message: str) -> dict[str, object]:
    return {"stream": "listening", "data": {"error": message}}


def trade_update(data: dict[str, object]) -> dict[str, object]:
    return {"stream": "trade_updates", "data": data}
