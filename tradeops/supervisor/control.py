"""The control socket: how `tradeops status|restart|stop|start|down` reach a running desk.

A unix socket `RUN_DIR/NAME.sock`, mode 0600 (only the user who started the desk). One JSON
object per line each way: `{"cmd": "status"}` → `{"ok": true, ...}`. The supervisor handles
every command on its one loop, so a command never races a restart.
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


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
        sock.sendall(json.dumps(command).encode() + b"\n")
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            buf += chunk
    finally:
        sock.close()
    if not buf:
        raise NotRunning(f"the desk at {path} closed the connection without answering")
    reply: dict[str, Any] = json.loads(buf)
    return reply


@dataclass
class ControlConnection:
    sock: socket.socket
    inbuf: bytearray = field(default_factory=bytearray)


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
        conn.inbuf += data
        commands = []
        while (end := conn.inbuf.find(b"\n")) >= 0:
            line = bytes(conn.inbuf[:end])
            del conn.inbuf[: end + 1]
            try:
                message = json.loads(line)
                commands.append(message if isinstance(message, dict) else {"cmd": None})
            except ValueError:
                commands.append({"cmd": None})
        return commands

    @staticmethod
    def reply(conn: ControlConnection, message: dict[str, Any]) -> None:
        try:
            conn.sock.setblocking(True)
            conn.sock.settimeout(5)
            conn.sock.sendall(json.dumps(message).encode() + b"\n")
            conn.sock.setblocking(False)
        except OSError:  # the command-line client went away
            pass

    def close(self) -> None:
        self.sock.close()
        if self.path.exists():
            self.path.unlink()
