"""Plain clients for the simulated exchange's tests: websocket-client, urllib.

Waiting on a condition: tests/waiting.py; nothing here sleeps to synchronise.
"""

from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

import msgpack
import websocket

KEY, SECRET = "key", "secret"


class Closed(Exception):
    """The server closed the websocket; `code` 1006 means without a close frame."""

    def __init__(self, code: int, reason: str = "") -> None:
        super().__init__(f"closed {code} {reason}")
        self.code = code
        self.reason = reason


class WsClient:
    """A plain websocket-client connection speaking JSON or msgpack."""

    def __init__(self, url: str, codec: str = "json", timeout: float = 5.0,
                 **kwargs: Any) -> None:
        self.codec = codec
        header = ["Content-Type: application/msgpack"] if codec == "msgpack" else []
        self.ws = websocket.create_connection(url, timeout=timeout, header=header, **kwargs)
        self.last_opcode = 0

    def send(self, message: object) -> None:
        if self.codec == "msgpack":
            self.ws.send_binary(msgpack.packb(message))
        else:
            self.ws.send(json.dumps(message))

    def send_raw(self, data: str | bytes) -> None:
        if isinstance(data, bytes):
            self.ws.send_binary(data)
        else:
            self.ws.send(data)

    def recv(self, timeout: float | None = None) -> Any:
        """The next decoded frame; raises Closed when the server closes."""
        if timeout is not None:
            self.ws.settimeout(timeout)
        try:
            opcode, data = self.ws.recv_data()
        except websocket.WebSocketConnectionClosedException:
            raise Closed(1006) from None
        except ConnectionResetError:
            raise Closed(1006) from None
        finally:
            if timeout is not None:
                self.ws.settimeout(5.0)
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            code = int.from_bytes(data[:2], "big") if len(data) >= 2 else 1005
            raise Closed(code, data[2:].decode(errors="replace"))
        self.last_opcode = opcode
        if self.codec == "msgpack" and opcode == websocket.ABNF.OPCODE_BINARY:
            try:
                return msgpack.unpackb(data)
            except ValueError:
                pass
        return json.loads(data)

    def recv_until(self, predicate: Callable[[Any], bool], timeout: float = 5.0) -> Any:
        """Read messages (elements of array frames) until one satisfies `predicate`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            frame = self.recv(timeout=max(0.01, deadline - time.monotonic()))
            for message in frame if isinstance(frame, list) else [frame]:
                if predicate(message):
                    return message
        raise AssertionError("no matching message before the deadline")

    def handshake(self, key: str = KEY, secret: str = SECRET) -> None:
        assert self.recv() == [{"T": "success", "msg": "connected"}]
        self.send({"action": "auth", "key": key, "secret": secret})
        assert self.recv() == [{"T": "success", "msg": "authenticated"}]

    def close(self) -> None:
        self.ws.close(timeout=1)


class Http:
    """A plain urllib client for the sim's REST and admin endpoints."""

    def __init__(self, base: str, key: str = KEY, secret: str = SECRET) -> None:
        self.base = base
        self.key = key
        self.secret = secret

    def request(self, method: str, path: str, body: object = None, *, auth: bool = True,
                headers: dict[str, str] | None = None) -> tuple[int, Any, dict[str, str]]:
        data = json.dumps(body).encode() if body is not None else None
        all_headers = dict(headers or {})
        if auth:
            all_headers.update({"APCA-API-KEY-ID": self.key, "APCA-API-SECRET-KEY": self.secret})
        if data is not None:
            all_headers["Content-Type"] = "application/json"
        request = urllib.request.Request(self.base + path, data=data, method=method,
                                         headers=all_headers)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                raw, status, reply_headers = response.read(), response.status, response.headers
        except urllib.error.HTTPError as exc:
            raw, status, reply_headers = exc.read(), exc.code, exc.headers
        return status, json.loads(raw) if raw else None, dict(reply_headers)

    def get(self, path: str, **kw: Any) -> tuple[int, Any, dict[str, str]]:
        return self.request("GET", path, **kw)

    def post(self, path: str, body: object = None, **kw: Any) -> tuple[int, Any, dict[str, str]]:
        return self.request("POST", path, body, **kw)

    def delete(self, path: str, **kw: Any) -> tuple[int, Any, dict[str, str]]:
        return self.request("DELETE", path, **kw)

    def admin(self, path: str) -> Any:
        status, body, _ = self.get("/admin/" + path, auth=False)
        assert status == 200, body
        return body


def small_receive_buffer() -> list[tuple[int, int, int]]:
    """Socket options for a client that should fill up quickly when it stops reading."""
    return [(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)]
