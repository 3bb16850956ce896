"""The control socket: how `tradeops status|restart|stop|start|down` reach a running desk.

A unix socket `RUN_DIR/NAME.sock`, mode 0600 (only the user who started the desk). One JSON
object per line each way, framed by :mod:`tradeops.protocol.ndjson`: `{"cmd": "status"}` →
`{"ok": true, ...}`. The supervisor handles every command on its one loop, so a command never
races a restart.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tradeops.protocol.ndjson import LineDecoder, Malformed, Message, encode


class NotRunning(Exception):
    """No desk answers on this control socket."""


def request(path: Path, command: dict[str, Any], timeout: float = 30.0) -> dict[str, Any]:
    """Send one command to a running supervisor and return its reply."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(os.fspath(path))
    except (FileNotFoundError, ConnectionRefusedError):
        sock.close()
        raise NotRunning(f"no running desk answers at {path}") from None
    try:
        sock.sendall(encode(command))
        lines = LineDecoder()
        replies: list[Message | Malformed] = []
        while not replies and (chunk := sock.recv(65536)):
            replies = lines.feed(chunk)
    finally:
        sock.close()
    if not replies:
        raise NotRunning(f"the desk at {path} closed the connection without answering")
    reply = replies[0]
    if isinstance(reply, Malformed):
        raise ValueError(f"the desk at {path} answered something that is not JSON: {reply.reason}")
    return reply


@dataclass
class ControlConnection:
    sock: socket.socket
    lines: LineDecoder = field(default_factory=LineDecoder)


class ControlServer:
    """The listening side; the supervisor's loop polls it through its selector."""

    def __init__(self, path: Path) -> None:
        self.path = path
        if path.exists():
            path.unlink()
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)
        try:
            self.sock.bind(os.fspath(path))
        finally:
            os.umask(old)
        self.sock.listen(16)
        self.sock.setblocking(False)

    def accept(self) -> ControlConnection | None:
        try:
            conn, _ = self.sock.accept()
        except BlockingIOError:
            return None
        conn.setblocking(False)
        return ControlConnection(conn)

    @staticmethod
    def read(conn: ControlConnection) -> list[dict[str, Any]] | None:
        """Commands received on a connection (None when it closed)."""
        try:
            data = conn.sock.recv(65536)
        except BlockingIOError:
            return []
        except OSError:
            return None
        if not data:
            return None
        # A line that is no JSON object is still a command: an unknown one, answered as such.
        return [
            {"cmd": None} if isinstance(message, Malformed) else message
            for message in conn.lines.feed(data)
        ]

    @staticmethod
    def reply(conn: ControlConnection, message: dict[str, Any]) -> None:
        try:
            conn.sock.setblocking(True)
            conn.sock.settimeout(5)
            conn.sock.sendall(encode(message))
            conn.sock.setblocking(False)
        except OSError:  # the command-line client went away
            pass

    def close(self) -> None:
        self.sock.close()
        if self.path.exists():
            self.path.unlink()
