"""One websocket client of the proxy: its session, its bounded outbox, the task writing it.

Nothing the fan-out does waits on a client: it appends encoded frames to the client's outbox
and one writer task per client sends them. The outbox is bounded in messages
(``settings.proxy.queue``); past the bound the server applies the slow-client policy:

- ``drop``: the outbox is discarded, the client is told why (Alpaca's 407, the native
  ``slow-client`` error) and closed; a watchdog aborts the TCP connection if even that
  cannot be written in time;
- ``conflate``: new ticks stop being queued; the latest tick per (broker, symbol, kind) is
  kept instead, and sent as one batch once the outbox has drained. The client sees every
  symbol's current value, not every change; the ticks replaced are counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections import deque
from typing import Any, Final

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from tradeops.protocol.downstream import ClientFrame, DownstreamSession, Key, Result
from tradeops.protocol.tick import Tick

#: The kernel's send buffer per client: what a stalled client can hold before the proxy's
#: own bound applies (the kernel's autotuning would otherwise let it grow to megabytes).
SEND_BUFFER: Final = 256 * 1024
#: How long a close (after an error or for a slow client) may take before the TCP
#: connection is aborted.
CLOSE_TIMEOUT: Final = 2.0


class Connection:
    def __init__(self, cid: int, ws: ServerConnection, path: str) -> None:
        self.id = cid
        self.ws = ws
        self.path = path
        peer = ws.remote_address
        self.peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer or "")
        self.since = time.time()
        self.session: DownstreamSession | None = None
        self.outbox: deque[tuple[bytes, bool, int]] = deque()
        self.queued = 0  # messages in the outbox
        self.sent = 0  # messages written
        self.conflated: dict[tuple[str, bytes, int], Tick] | None = None
        self.replaced = 0  # ticks conflation replaced
        self.dropped = False
        self.close_request: tuple[int, str] | None = None
        self.waiting: dict[Key, Result | None] | None = None  # answers of a change in flight
        self.answered = asyncio.Event()
        self._wake = asyncio.Event()
        self._abort: asyncio.TimerHandle | None = None
        sock = ws.transport.get_extra_info("socket")  # asyncio's TransportSocket wrapper
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)
        self.writer = asyncio.get_running_loop().create_task(self._write())

    # -- queueing ---------------------------------------------------------------------------------
    def push(self, frames: list[ClientFrame], messages: int = 0) -> None:
        """Queue frames; `messages` (ticks) are counted against the bound with the last one."""
        if not frames or self.close_request is not None:
            return
        last = len(frames) - 1
        for i, (payload, text) in enumerate(frames):
            self.outbox.append((payload, text, messages if i == last else 0))
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
                payload, text, count = self.outbox.popleft()
                await ws.send(payload, text=text)
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
