"""The proxy's link to one broker: its gateway connection (the lease) and its tick ring.

:class:`GatewayLink` speaks the gateway's newline-delimited JSON protocol (docs/gateway.md,
framed by :mod:`tradeops.protocol.ndjson`) on asyncio, as one client named ``proxy``: requests
go out as the registry decides; replies, health changes and lost symbols come back to the
:class:`LinkEvents` handler on the loop thread. When the gateway goes away (a restart) the link
reports it, reconnects with backoff, says hello again and reports the link up, and the registry
asks again for everything wanted.

:class:`TickPump` is a thread reading the broker's shared-memory ring (from the newest tick)
and handing each batch to the loop. It hands over one batch at a time and waits until the
loop has fanned it out, so a loop that falls behind makes the pump fall behind in the ring
(where laps are counted as lost), never an unbounded queue in between. It reads only the
symbols some client holds (:attr:`GatewayLink.symbols`, compared on the raw symbol bytes,
so the others are never decoded), and while no client holds any it does not read at all:
it sleeps until one subscribes, then reads from the newest tick. A proxy nobody uses costs
no CPU per tick.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import AsyncIterator
from typing import Any, Final, Protocol

from loguru import logger

from tradeops.bus.reader import RingReader
from tradeops.protocol.ndjson import LineDecoder, Malformed, Message, encode
from tradeops.protocol.tick import Tick

HELLO_TIMEOUT: Final = 10.0
BACKOFF_MIN, BACKOFF_MAX = 0.1, 2.0
BATCH: Final = 2048
READ_TIMEOUT: Final = 0.1


class LinkEvents(Protocol):
    """What a link reports; every call runs on the event loop's thread."""

    def link_up(self, broker: str) -> None: ...
    def link_down(self, broker: str, reason: str) -> None: ...
    def gateway_message(self, broker: str, message: dict[str, Any]) -> None: ...
    def deliver(self, broker: str, ticks: list[Tick]) -> None: ...


class TickPump(threading.Thread):
    """Reads one broker's ring on its own thread; hands batches to the loop, one at a time."""

    def __init__(
        self, topology: str, broker: str, loop: asyncio.AbstractEventLoop, events: LinkEvents,
        link: GatewayLink,
    ) -> None:
        super().__init__(name=f"ticks-{broker}", daemon=True)
        self.topology, self.broker = topology, broker
        self.loop, self.events = loop, events
        self.link = link  # its `symbols`: what to read
        self._halt = threading.Event()
        #: Ticks lost to laps (the proxy fell a whole ring behind), batches handed over.
        self.lost = 0
        self.batches = 0

    def stop(self) -> None:
        self._halt.set()
        self.link.symbols_changed.set()

    def run(self) -> None:
        reader = self._attach()
        if reader is None:
            return
        link = self.link
        try:
            while not self._halt.is_set():
                symbols = link.symbols
                if not symbols:  # nobody holds anything: read nothing until someone does
                    link.symbols_changed.wait(READ_TIMEOUT)
                    link.symbols_changed.clear()
                    reader.seek(reader.cursor + 1)  # then from the newest tick on
                    if reader.stale():
                        return
                    continue
                ticks = reader.read(BATCH, READ_TIMEOUT, symbols)
                self.lost = reader.lost
                if not ticks:
                    if reader.stale():
                        return  # a new gateway replaced the ring; the link re-attaches
                    continue
                done = threading.Event()
                try:
                    self.loop.call_soon_threadsafe(self._hand, ticks, done)
                except RuntimeError:  # the loop is closed: the proxy is stopping
                    return
                while not done.wait(READ_TIMEOUT):
                    if self._halt.is_set():
                        return
                self.batches += 1
        finally:
            reader.close()

    def _attach(self) -> RingReader | None:
        while not self._halt.is_set():
            try:
                return RingReader(self.topology, self.broker, start="newest")
            except FileNotFoundError:
                self._halt.wait(READ_TIMEOUT)
        return None

    def _hand(self, ticks: list[Tick], done: threading.Event) -> None:
        try:
            self.events.deliver(self.broker, ticks)
        finally:
            done.set()


async def _messages(reader: asyncio.StreamReader) -> AsyncIterator[Message]:
    """The gateway's messages until it closes the connection. ValueError for a line that is
    not a JSON object or is longer than ndjson.MAX_LINE: a gateway saying that is broken, and
    the link reconnects."""
    lines = LineDecoder()
    while data := await reader.read(65536):
        for message in lines.feed(data):
            if isinstance(message, Malformed):
                raise ValueError(f"malformed message from the gateway: {message.reason}")
            yield message
        if lines.overflow:
            raise ValueError("a line from the gateway is longer than ndjson.MAX_LINE")


class GatewayLink:
    def __init__(self, broker: str, socket_path: str, topology: str, events: LinkEvents) -> None:
        self.broker = broker
        self.socket_path = socket_path
        self.topology = topology
        self.events = events
        self.connected = False
        self.live: tuple[bool, str] = (False, "not connected to the gateway yet")
        self.reconnects = 0
        self.last_error = ""
        self.pump: TickPump | None = None
        #: The raw symbol fields some client holds: the pump reads only these (set on the
        #: loop's thread, read on the pump's: a new frozenset each time).
        self.symbols: frozenset[bytes] = frozenset()
        self.symbols_changed = threading.Event()
        self._stopping = False
        self._writer: asyncio.StreamWriter | None = None

    def want(self, symbols: frozenset[bytes]) -> None:
        """The symbols clients hold now (their raw fields); wakes an idle pump."""
        if symbols != self.symbols:
            self.symbols = symbols
            self.symbols_changed.set()

    def send(self, message: dict[str, Any]) -> bool:
        """Queue one request; False when not connected (the link reports down meanwhile)."""
        writer = self._writer
        if writer is None or writer.is_closing():
            return False
        writer.write(encode(message))
        return True

    @property
    def lost(self) -> int:
        return self.pump.lost if self.pump is not None else 0

    async def run(self) -> None:
        """Connect, serve, reconnect, until cancelled."""
        backoff = BACKOFF_MIN
        while True:
            try:
                reader, writer = await asyncio.open_unix_connection(self.socket_path)
            except OSError as exc:
                self.last_error = f"cannot reach the gateway: {exc.strerror or exc}"
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX)
                continue
            reason = "the gateway closed the connection"
            try:
                await self._serve(reader, writer)
                backoff = BACKOFF_MIN
            except (OSError, ValueError, TimeoutError) as exc:
                reason = f"gateway connection lost: {exc}"
            except asyncio.CancelledError:
                self._stopping = True  # the proxy is stopping: not worth a warning
                raise
            finally:
                self._down(writer, reason)
            await asyncio.sleep(backoff)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        hello = {"op": "hello", "client": "proxy", "pid": os.getpid()}
        writer.write(encode(hello))
        messages = _messages(reader)
        reply = await asyncio.wait_for(anext(messages, None), HELLO_TIMEOUT)
        if reply is None or reply.get("op") != "hello":
            raise ValueError(f"unexpected hello from the gateway: {str(reply)[:200]!r}")
        self._writer = writer
        self.pump = TickPump(self.topology, self.broker, asyncio.get_running_loop(), self.events,
                             self)
        self.pump.start()
        self.connected = True
        self.last_error = ""
        logger.info("proxy: linked to the gateway of broker '{}'", self.broker)
        self.events.link_up(self.broker)
        async for message in messages:
            if message.get("op") == "health":
                self.live = (bool(message.get("live")), str(message.get("reason", "")))
            self.events.gateway_message(self.broker, message)

    def _down(self, writer: asyncio.StreamWriter, reason: str) -> None:
        was = self.connected
        self.connected, self._writer = False, None
        writer.close()
        if self.pump is not None:
            self.pump.stop()
        if was:
            self.reconnects += 1
            self.last_error = reason
            self.live = (False, f"the gateway of broker '{self.broker}' is unavailable")
            if not self._stopping:
                logger.warning("proxy: {} (broker '{}'); reconnecting", reason, self.broker)
            self.events.link_down(self.broker, self.live[1])

    def stop(self) -> None:
        """Stop the pump (the task is cancelled by its owner)."""
        if self.pump is not None:
            self.pump.stop()

    def join(self, timeout: float) -> None:
        if self.pump is not None and self.pump.is_alive():
            self.pump.join(timeout)
