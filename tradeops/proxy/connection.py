"""One websocket client of the proxy: its session, its bounded outbox, the task writing it.

Nothing the fan-out does waits on a client. A batch's frames for one client are framed as
websocket messages here (:func:`wire`: the 2-10 byte header of a server frame, no mask) and
written to its socket in one ``transport.write``, while the socket keeps up; no task
switch, no await and no websockets ``send`` per frame (issue 13: that was most of the
proxy's CPU per delivery). Once the transport's buffer passes its high-water mark
(websockets pauses writing), frames wait in the client's outbox instead, and the client's
writer task sends everything waiting in one write each time the socket drains: a client
that is behind gets its frames coalesced, not one write per batch. The outbox is bounded in
messages (``settings.proxy.queue``); past the bound the server applies the slow-client
policy:

- ``drop``: the outbox is discarded, the client is told why (Alpaca's 407, the native
  ``slow-client`` error) and closed; a watchdog aborts the TCP connection if even that
  cannot be written in time;
- ``conflate``: new ticks stop being queued; the latest tick per (broker, symbol, kind) is
  kept instead, and sent as one batch once the outbox has drained. The client sees every
  symbol's current value, not every change; the ticks replaced are counted.

Who closes decides what happens to the outbox. When the server closes (an error, a slow
client), the outbox is written first, so the client learns why. When the client closes, the
outbox is discarded at once: the client asked for nothing more, and one that stopped reading
would otherwise hold its lease (and its place in the fan-out) until its TCP connection ended.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Final

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.frames import Frame as WireFrame
from websockets.frames import Opcode
from websockets.protocol import Event, State

from tradeops.protocol.downstream import ClientFrame, DownstreamSession, Key, Result
from tradeops.protocol.tick import Tick

#: The kernel's send buffer per client: what a stalled client can hold before the proxy's
#: own bound applies (the kernel's autotuning would otherwise let it grow to megabytes).
SEND_BUFFER: Final = 256 * 1024
#: How long a close (after an error or for a slow client) may take before the TCP
#: connection is aborted.
CLOSE_TIMEOUT: Final = 2.0


#: Largest write the writer task makes at once from a backed-up outbox.
WRITE_CHUNK: Final = 1 << 20


class ClientSocket(ServerConnection):
    """The websockets connection, telling its owner the moment the client's close frame
    arrives (websockets itself reports a close only when the TCP connection has ended, which
    a client that stopped reading may delay for as long as its own close timeout)."""

    on_close_frame: Callable[[], None] | None = None

    def process_event(self, event: Event) -> None:
        super().process_event(event)
        if isinstance(event, WireFrame) and event.opcode is Opcode.CLOSE and self.on_close_frame:
            self.on_close_frame()

    def writable(self) -> bool:
        """Open, and the transport below its high-water mark: a write goes out now."""
        return self.protocol.state is State.OPEN and not self.paused

    def write_wire(self, data: bytes) -> None:
        """Write whole frames framed by `wire` (on the loop, between websockets' own writes,
        which are whole frames too: a ping or the close)."""
        self.transport.write(data)


def wire(payload: bytes, text: bool) -> bytes:
    """`payload` as one websocket frame from a server: FIN, text or binary, unmasked, no
    extension (the proxy serves without compression); what websockets' `send` would write."""
    n = len(payload)
    first = 0x81 if text else 0x82
    if n < 126:
        return bytes((first, n)) + payload
    if n < 65536:
        return bytes((first, 126)) + n.to_bytes(2, "big") + payload
    return bytes((first, 127)) + n.to_bytes(8, "big") + payload


class Connection:
    def __init__(self, cid: int, ws: ClientSocket, path: str) -> None:
        self.id = cid
        self.ws = ws
        self.path = path
        peer = ws.remote_address
        self.peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer or "")
        self.since = time.time()
        self.session: DownstreamSession | None = None
        #: Framed bytes waiting for the socket to drain, and the messages (ticks) each holds.
        self.outbox: deque[tuple[bytes, int]] = deque()
        self.queued = 0  # messages in the outbox
        self.sent = 0  # messages written
        self.conflated: dict[tuple[str, bytes, int], Tick] | None = None
        self.replaced = 0  # ticks conflation replaced
        self.dropped = False
        self.client_closed = False  # the client sent its close frame: nothing more goes out
        self.close_request: tuple[int, str] | None = None
        self.waiting: dict[Key, Result | None] | None = None  # answers of a change in flight
        self.answered = asyncio.Event()
        self._wake = asyncio.Event()
        self._abort: asyncio.TimerHandle | None = None
        # `wire` writes what websockets would only with no extension (the proxy serves with
        # compression=None, so none is ever negotiated).
        assert not ws.protocol.extensions, "the proxy's frames are written uncompressed"
        sock = ws.transport.get_extra_info("socket")  # asyncio's TransportSocket wrapper
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)
        self.writer = asyncio.get_running_loop().create_task(self._write())

    # -- queueing ---------------------------------------------------------------------------------
    def push(self, frames: list[ClientFrame], messages: int = 0) -> None:
        """Send frames, or queue them while the socket is behind; `messages` (ticks) are what
        they carry, counted against the bound while queued."""
        if not frames or self.close_request is not None:
            return
        data = (wire(*frames[0]) if len(frames) == 1
                else b"".join([wire(payload, text) for payload, text in frames]))
        ws = self.ws
        if not self.outbox and ws.writable():  # one write per client per batch
            ws.write_wire(data)
            self.sent += messages
            return
        self.outbox.append((data, messages))
        self.queued += messages
        self._wake.set()

    def conflate(self, broker: str, ticks: list[Tick]) -> None:
        """Keep only the latest tick per (broker, symbol, kind) until the outbox drains."""
        kept = self.conflated
        assert kept is not None
        for tick in ticks:
            key = (broker, tick.symbol_bytes, tick.kind_code)
            if key in kept:
                self.replaced += 1
            kept[key] = tick

    def close(self, code: int, reason: str, *, discard: bool = False) -> None:
        """Close once the outbox is written (or at once, discarding it)."""
        if discard:
            self.outbox.clear()
            self.queued = 0
        if self.close_request is None:
            self.close_request = (code, reason)
            loop = asyncio.get_running_loop()
            self._abort = loop.call_later(CLOSE_TIMEOUT + 1.0, self.ws.transport.abort)
        self._wake.set()

    def closed_by_client(self) -> None:
        """The client closed: discard what is queued for it and stop writing (the close
        frame websockets answered with is all it still gets)."""
        self.client_closed = True
        self.conflated = None
        self.close(1000, "bye", discard=True)

    def flush(self) -> None:
        """Send what the session queued; close if it asked to."""
        session = self.session
        if session is None:
            return
        self.push(session.take())
        if session.closing is not None:
            self.close(*session.closing)

    # -- the writer task --------------------------------------------------------------------------
    async def _write(self) -> None:
        """Sends what waits in the outbox, all of it at once (up to WRITE_CHUNK) each time the
        socket drains; idle while `push` writes straight through."""
        ws = self.ws
        try:
            while True:
                if not self.outbox:
                    if self.conflated:
                        self._release_conflated()
                        continue
                    self.conflated = None
                    if self.close_request is not None:
                        break
                    self._wake.clear()
                    await self._wake.wait()
                    continue
                if not ws.writable():
                    if ws.protocol.state is not State.OPEN:  # the client closed, or the
                        return  # connection broke: nothing queued can reach it
                    await ws.drain()  # until the transport is below its low-water mark
                    continue
                chunks, size, count = [], 0, 0
                while self.outbox and size < WRITE_CHUNK:
                    data, n = self.outbox.popleft()
                    chunks.append(data)
                    size += len(data)
                    count += n
                ws.write_wire(b"".join(chunks))
                self.queued -= count
                self.sent += count
            await asyncio.wait_for(ws.close(*self.close_request), CLOSE_TIMEOUT)
        except (ConnectionClosed, TimeoutError, OSError):
            pass
        finally:
            if self._abort is not None:
                self._abort.cancel()

    def _release_conflated(self) -> None:
        kept, self.conflated = self.conflated or {}, {}
        session = self.session
        if session is None:
            return
        by_broker: dict[str, list[Tick]] = {}
        for (broker, _, _), tick in sorted(kept.items(), key=lambda item: item[1].seq):
            by_broker.setdefault(broker, []).append(tick)
        for broker, ticks in by_broker.items():
            n = session.ticks(broker, ticks, {})
            self.push(session.take(), n)

    def describe(self) -> dict[str, Any]:
        info: dict[str, Any] = {
            "id": self.id, "peer": self.peer, "path": self.path,
            "age": round(time.time() - self.since, 1), "sent": self.sent,
            "queued": self.queued, "conflating": self.conflated is not None,
            "replaced": self.replaced,
        }  # fmt: skip
        if self.session is not None:
            info.update(self.session.describe())
        return info
