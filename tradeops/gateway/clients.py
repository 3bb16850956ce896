"""The gateway's clients: one unix-socket connection each, with its buffers.

Each connection carries newline-delimited JSON both ways (docs/gateway.md), framed by
:mod:`tradeops.protocol.ndjson`. A client that stops reading its replies is dropped once
`MAX_BACKLOG` bytes wait for it, so one stuck host cannot grow the gateway's memory; a request
line over `ndjson.MAX_LINE` bytes is malformed and drops the client.
Dropping a client is how its lease ends: `on_gone` tells the gateway to release what it held.
"""

from __future__ import annotations

import selectors
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from loguru import logger

from tradeops.protocol.ndjson import LineDecoder, Malformed, Message, encode

MAX_BACKLOG = 4 << 20  # bytes queued for a client that does not read: it is dropped

#: A message for a client, addressed by its socket (what the core and the router return).
Reply = tuple[Any, dict[str, Any]]


@dataclass
class Client:
    sock: socket.socket
    name: str = ""
    pid: int = 0
    lines: LineDecoder = field(default_factory=LineDecoder)
    outbuf: bytearray = field(default_factory=bytearray)


class ClientConnections:
    """Every connected client of one gateway; runs on the gateway's loop thread only."""

    def __init__(
        self,
        broker: str,
        selector: selectors.BaseSelector,
        on_message: Callable[[Client, Message | Malformed], None],
        on_gone: Callable[[socket.socket], None],
    ) -> None:
        self.broker = broker
        self._selector = selector
        self._on_message = on_message
        self._on_gone = on_gone
        self._clients: dict[socket.socket, Client] = {}

    def __len__(self) -> int:
        return len(self._clients)

    def __iter__(self) -> Iterator[Client]:
        return iter(list(self._clients.values()))

    def __contains__(self, sock: object) -> bool:
        return sock in self._clients

    def accept(self, listener: socket.socket) -> None:
        try:
            sock, _ = listener.accept()
        except BlockingIOError:
            return
        sock.setblocking(False)
        client = self._clients[sock] = Client(sock)
        self._selector.register(sock, selectors.EVENT_READ, client)

    def service(self, client: Client, mask: int) -> None:
        """The selector says `client` is readable or writable: flush, read, handle messages."""
        sock = client.sock
        if sock not in self._clients:
            return
        if mask & selectors.EVENT_WRITE:
            self._flush(client)
        if not mask & selectors.EVENT_READ:
            return
        try:
            data = sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self.drop(sock)
            return
        for message in client.lines.feed(data):
            self._on_message(client, message)
            if sock not in self._clients:
                return
        if client.lines.overflow:
            self.send(client, {"op": "error", "error": "request too large"})
            self.drop(sock)

    def send(self, client: Client, message: dict[str, Any]) -> None:
        client.outbuf += encode(message)
        if len(client.outbuf) > MAX_BACKLOG:
            logger.warning(
                "{}: client {} does not read its replies; dropping it", self.broker, client.name
            )
            self.drop(client.sock)
            return
        self._flush(client)

    def deliver(self, replies: list[Reply]) -> None:
        """Send each message to its client, if it is still connected."""
        for target, message in replies:
            client = self._clients.get(target)
            if client is not None:
                self.send(client, message)

    def broadcast(self, message: dict[str, Any]) -> None:
        for client in self:
            self.send(client, message)

    def drop(self, sock: socket.socket, notify: bool = True) -> None:
        """Close a client's connection; with `notify`, its lease ends (`on_gone`)."""
        client = self._clients.pop(sock, None)
        if client is None:
            return
        self._selector.unregister(sock)
        sock.close()
        logger.info(
            "{}: client {} disconnected; its subscriptions are released",
            self.broker,
            client.name or "(anonymous)",
        )
        if notify:
            self._on_gone(sock)

    def _flush(self, client: Client) -> None:
        try:
            sent = client.sock.send(client.outbuf)
            del client.outbuf[:sent]
        except BlockingIOError:
            pass
        except OSError:
            self.drop(client.sock)
            return
        events = selectors.EVENT_READ | (selectors.EVENT_WRITE if client.outbuf else 0)
        self._selector.modify(client.sock, events, client)
