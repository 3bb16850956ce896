"""A client of a gateway's unix socket: what strategy hosts, the proxy and tests use.

The connection is the lease: close it (or die) and the gateway releases every subscription
it made. Requests block until their reply (with a timeout); messages the gateway sends on its
own (health changes, lost symbols) are kept for :meth:`GatewayClient.poll`.
"""

from __future__ import annotations

import os
import socket
import time
from collections import deque
from typing import Any

from tradeops.protocol.ndjson import LineDecoder, Malformed, encode


class GatewayError(Exception):
    pass


class GatewayClient:
    def __init__(self, socket_path: str, name: str, timeout: float = 10.0, **hello: Any) -> None:
        """Connect and say hello; `hello` adds fields (a host sends its `group`, which makes
        it the owner of that group's strategies' orders)."""
        self.socket_path = socket_path
        self.name = name
        self.timeout = timeout
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.settimeout(timeout)
        try:
            self._sock.connect(socket_path)
        except OSError as exc:
            self._sock.close()
            raise GatewayError(f"cannot reach the gateway at {socket_path}: {exc}") from None
        self._lines = LineDecoder()
        self._unsolicited: deque[dict[str, Any]] = deque()
        self._next_id = 0
        self.live: tuple[bool, str] = (False, "no health report yet")
        #: Wall-clock seconds of the gateway's newest market data (None: none yet).
        self.last_tick: float | None = None
        self._write({"op": "hello", "client": name, "pid": os.getpid(), **hello})
        hello = self._read_until(lambda m: m.get("op") == "hello")
        self.broker: str = hello["broker"]
        self.bus: dict[str, Any] = hello.get("bus", {})

    def subscribe(self, symbols: list[str], mode: str = "trade") -> dict[str, Any]:
        """Subscribe and wait for the per-symbol results: {"ok": bool, "results": {...}}."""
        return self.request({"op": "subscribe", "symbols": symbols, "mode": mode})

    def unsubscribe(self, symbols: list[str]) -> dict[str, Any]:
        return self.request({"op": "unsubscribe", "symbols": symbols})

    def status(self) -> dict[str, Any]:
        reply = self.request({"op": "status"})
        status: dict[str, Any] = reply["status"]
        return status

    def request(self, message: dict[str, Any], timeout: float | None = None) -> dict[str, Any]:
        self._next_id += 1
        rid = self._next_id
        self._write({**message, "id": rid})
        return self._read_until(lambda m: m.get("op") == "reply" and m.get("id") == rid, timeout)

    def poll(self, timeout: float = 0.0) -> list[dict[str, Any]]:
        """Unsolicited messages received so far (waiting up to `timeout` for the first).
        GatewayError when the gateway has gone away."""
        deadline = time.monotonic() + timeout
        while not self._unsolicited:
            if not self._receive(deadline - time.monotonic()):
                break
            if time.monotonic() >= deadline:
                break
        out = list(self._unsolicited)
        self._unsolicited.clear()
        return out

    def send(self, message: dict[str, Any]) -> None:
        """Send a message that gets no reply (orders: their updates come unsolicited)."""
        self._write(message)

    def fileno(self) -> int:
        """The socket, for waiting on it together with other things."""
        return self._sock.fileno()

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> GatewayClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals --------------------------------------------------------------------------------
    def _write(self, message: dict[str, Any]) -> None:
        self._sock.settimeout(self.timeout)  # poll() may have left it non-blocking
        try:
            self._sock.sendall(encode(message))
        except OSError as exc:
            raise GatewayError(f"gateway connection lost: {exc}") from None

    def _read_until(self, match: Any, timeout: float | None = None) -> dict[str, Any]:
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            for i, message in enumerate(self._unsolicited):
                if match(message):
                    del self._unsolicited[i]
                    return message
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise GatewayError("the gateway did not answer in time")
            self._receive(remaining)

    def _receive(self, timeout: float) -> bool:
        """Read what has arrived, waiting up to `timeout` (0: do not wait); False if nothing."""
        # settimeout(0.0) makes the socket non-blocking: a socket with a timeout would wait
        # out that timeout even for MSG_DONTWAIT, since Python retries EAGAIN internally.
        self._sock.settimeout(max(timeout, 0.0))
        try:
            data = self._sock.recv(65536)
        except (TimeoutError, BlockingIOError):
            return False
        except OSError as exc:
            raise GatewayError(f"gateway connection lost: {exc}") from None
        if not data:
            raise GatewayError("the gateway closed the connection")
        for message in self._lines.feed(data):
            if isinstance(message, Malformed):
                raise GatewayError(f"malformed message from the gateway: {message.reason}")
            if message.get("op") == "health":
                self.live = (bool(message["live"]), str(message.get("reason", "")))
                last = message.get("last_tick")
                self.last_tick = float(last) if isinstance(last, int | float) else None
            self._unsolicited.append(message)
        return True
