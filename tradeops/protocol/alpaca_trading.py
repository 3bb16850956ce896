"""Alpaca's trading dialect, client side, sans-I/O: order requests, responses, trade updates.

The REST calls (`POST /v2/orders`, `DELETE /v2/orders/{id}`, `DELETE /v2/orders`,
`GET /v2/orders?status=open`) are described as plain values here and carried out by
`gateway/trading.py`; the trade-updates stream (`/stream`: JSON, no greeting, authenticate
then listen) is parsed here from its frames.

Routing ids: every order's `client_order_id` is `t1.<strategy>.<unique>`, so any update, even
after a restart that lost the gateway's memory, names the strategy that owns it. Strategy
names use letters, digits, `_` and `-`; Alpaca allows 128 characters.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import time
from dataclasses import dataclass
from typing import Any, Literal

ROUTING_PREFIX = "t1"
_SERIAL = itertools.count(1)


def routing_id(
    strategy: str, *, now_ns: int | None = None, pid: int | None = None, serial: int | None = None
) -> str:
    """A fresh client_order_id owned by `strategy`: unique across processes and restarts.

    Unique because it joins the time in µs, the process id and a per-process serial. Each
    defaults to the real one (wall clock, ``os.getpid()``, this process's next serial); a test
    passes fixed values and gets a fixed id.
    """
    now_ns = time.time_ns() if now_ns is None else now_ns
    pid = os.getpid() if pid is None else pid
    serial = next(_SERIAL) if serial is None else serial
    return f"{ROUTING_PREFIX}.{strategy}.{base36(now_ns // 1000)}{base36(pid)}{base36(serial)}"


def owner_of(client_order_id: str) -> str | None:
    """The strategy a routing id names (None: not one of ours)."""
    parts = client_order_id.split(".")
    if len(parts) == 3 and parts[0] == ROUTING_PREFIX and parts[1]:
        return parts[1]
    return None


def base36(n: int) -> str:
    """`n` in base 36 (lower case): short, URL- and id-safe."""
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = digits[r] + out
        if n == 0:
            return out


@dataclass(frozen=True)
class HttpRequest:
    """One REST call: what the transport sends."""

    method: Literal["GET", "POST", "DELETE"]
    path: str
    body: dict[str, Any] | None = None


def submit(
    symbol: str, side: str, qty: float, limit: float | None, tif: str, client_order_id: str
) -> HttpRequest:
    body: dict[str, Any] = {
        "symbol": symbol,
        "qty": _num(qty),
        "side": side,
        "type": "limit" if limit is not None else "market",
        "time_in_force": tif,
        "client_order_id": client_order_id,
    }
    if limit is not None:
        body["limit_price"] = _num(limit)
    return HttpRequest("POST", "/v2/orders", body)


def cancel(broker_order_id: str) -> HttpRequest:
    return HttpRequest("DELETE", f"/v2/orders/{broker_order_id}")


def cancel_all() -> HttpRequest:
    return HttpRequest("DELETE", "/v2/orders")


def open_orders() -> HttpRequest:
    return HttpRequest("GET", "/v2/orders?status=open&limit=500")


def _num(x: float) -> str:
    return f"{x:.10g}"


def error_message(status: int, body: bytes) -> str:
    """Alpaca's error body `{"code": ..., "message": ...}` as one line."""
    try:
        data = json.loads(body)
        message = data.get("message") if isinstance(data, dict) else None
    except ValueError:
        message = None
    return f"{status} {message or body[:200].decode(errors='replace')}".strip()


# -- the trade-updates stream -------------------------------------------------------------------


def stream_auth(key: str, secret: str) -> str:
    return json.dumps({"action": "authenticate", "data": {"key_id": key, "secret_key": secret}})


def stream_listen() -> str:
    return json.dumps({"action": "listen", "data": {"streams": ["trade_updates"]}})


@dataclass(frozen=True)
class StreamAuth:
    ok: bool
    message: str = ""


@dataclass(frozen=True)
class TradeUpdate:
    """One trade_updates event: `event` as Alpaca names it, the full order object, and for
    fills the fill's price and quantity."""

    event: str
    order: dict[str, Any]
    price: float | None = None
    qty: float | None = None

    @property
    def client_order_id(self) -> str:
        return str(self.order.get("client_order_id", ""))


StreamEvent = StreamAuth | TradeUpdate


def stream_events(frame: bytes | str) -> list[StreamEvent]:
    """Decode one stream frame (JSON, text or binary); unknown frames give nothing."""
    try:
        msg = json.loads(frame)
    except ValueError:
        return []
    if not isinstance(msg, dict):
        return []
    stream, data = msg.get("stream"), msg.get("data")
    if not isinstance(data, dict):
        data = {}
    if stream == "authorization":
        ok = data.get("status") == "authorized"
        return [StreamAuth(ok, "" if ok else str(data.get("message", "unauthorized")))]
    if stream == "trade_updates" and isinstance(data.get("order"), dict):
        # A price or qty that is not a number is left out (None), not the whole update: the
        # order's own state (status, filled_qty) still counts.
        return [TradeUpdate(str(data.get("event", "")), data["order"],
                            _number(data.get("price")), _number(data.get("qty")))]
    return []


def broker_number(value: object) -> float | None:
    """A number of the broker's (a number, or its text, as Alpaca sends them); None when it
    is absent (None or ""); ValueError for anything else (text, a list, a bool, NaN, inf)."""
    if value is None or value == "":
        return None
    if not isinstance(value, (int, float, str)) or isinstance(value, bool):
        raise ValueError(f"{value!r} is not a number")
    number = float(value)  # ValueError for text that is not one
    if not math.isfinite(number):
        raise ValueError(f"{value!r} is not a finite number")
    return number


def _number(value: object) -> float | None:
    """A price or qty of an update, or None when it is absent or not a number."""
    try:
        return broker_number(value)
    except ValueError:
        return None
