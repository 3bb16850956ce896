"""One websocket connection to a broker's market-data stream, on a thread of its own.

It connects, authenticates, keeps the connection alive with pings, notices silence, and
reconnects with backoff. It owns no subscription state: after every (re)authentication it
reports `Ready` and the gateway sends it the pool's next change; market data goes straight to
the gateway's tick sink from this thread (the bus has one writer; the sink serialises).

Everything the gateway must know arrives as an :class:`UpstreamEvent` through `on_event`,
called from this thread; the gateway queues it for its own loop.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Literal

import websocket

from tradeops.gateway.backoff import Backoff, BackoffPolicy, Cause
from tradeops.protocol.alpaca import (
    AUTH_FAILED,
    CONNECTION_LIMIT,
    INSUFFICIENT,
    NOT_AUTHENTICATED,
    Authenticated,
    Codec,
    Connected,
    Failure,
    Frame,
    MarketData,
    MarketDataSession,
    Subscribed,
)

State = Literal["connecting", "authenticating", "live", "backoff", "stopped"]


@dataclass(frozen=True)
class UpstreamEvent:
    """`kind`: ready (authenticated: send the pool's change), ack (a change was accepted),
    refused (a change was rejected, e.g. 405), down (the session ended; `cause` says why)."""

    connection: int
    kind: Literal["ready", "ack", "refused", "down"]
    code: int = 0
    message: str = ""
    cause: Cause | None = None
    retry_in: float = 0.0


@dataclass(frozen=True)
class UpstreamConfig:
    url: str
    key: str
    secret: str
    codec: Codec = "msgpack"
    connect_timeout: float = 10.0
    ping_interval: float = 10.0
    silence_after: float = 15.0  # no frame for this long while subscribed ⇒ reconnect
    backoff: BackoffPolicy = field(default_factory=BackoffPolicy)


class _SessionEnded(Exception):
    def __init__(self, cause: Cause, message: str) -> None:
        super().__init__(message)
        self.cause = cause
        self.message = message


_CAUSE_OF_CODE: dict[int, Cause] = {
    AUTH_FAILED: "auth",
    NOT_AUTHENTICATED: "auth",
    INSUFFICIENT: "subscription",
    CONNECTION_LIMIT: "connection-limit",
}


class Upstream:
    """The thread that keeps one broker connection up."""

    def __init__(
        self,
        connection: int,
        config: UpstreamConfig,
        on_event: Callable[[UpstreamEvent], None],
        on_ticks: Callable[[int, list[MarketData]], None],
    ) -> None:
        self.connection = connection
        self.config = config
        self._on_event = on_event
        self._on_ticks = on_ticks
        self._stop = threading.Event()
        self._ws: websocket.WebSocket | None = None
        self._send_lock = threading.Lock()
        self._backoff = Backoff(config.backoff)
        self._thread = threading.Thread(
            target=self._run, name=f"upstream-{connection}", daemon=True
        )
        # Read by status from other threads; plain attribute writes are atomic.
        self.state: State = "connecting"
        self.subscribed = False  # set by the gateway: silence only matters when subscribed
        self.last_frame = 0.0
        self.last_tick = 0.0
        self.reconnects = 0
        self.attempts = 0
        self.last_error = ""

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._close()
        self._thread.join(timeout)
        self.state = "stopped"

    def send(self, frames: list[Frame]) -> bool:
        """Send frames now; False when the connection is not up (the change is resent on
        the next Ready)."""
        ws = self._ws
        if ws is None or self.state != "live":
            return False
        try:
            with self._send_lock:
                for frame in frames:
                    if isinstance(frame, str):
                        ws.send(frame)
                    else:
                        ws.send_bytes(frame)
        except (OSError, websocket.WebSocketException):
            return False
        return True

    # -- the thread -----------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            self.attempts += 1
            cause: Cause
            try:
                self._session()
                cause, message = "dropped", "connection closed"
            except _SessionEnded as end:
                cause, message = end.cause, end.message
            except (OSError, websocket.WebSocketException) as exc:
                cause, message = "network", f"{type(exc).__name__}: {exc}"
            finally:
                self._close()
            if self._stop.is_set():
                break
            delay = self._backoff.next_delay(cause)
            self.state, self.last_error = "backoff", f"{cause}: {message}"
            self.reconnects += 1
            self._on_event(
                UpstreamEvent(self.connection, "down", cause=cause, message=message, retry_in=delay)
            )
            self._stop.wait(delay)

    def _session(self) -> None:
        cfg = self.config
        session = MarketDataSession(cfg.key, cfg.secret, cfg.codec)
        self.state = "connecting"
        header = [f"{k}: {v}" for k, v in session.headers.items()]
        ws = websocket.create_connection(
            cfg.url, timeout=cfg.connect_timeout, header=header, enable_multithread=True
        )
        self._ws = ws
        if self._stop.is_set():
            return
        self._expect(ws, session, Connected)
        self.state = "authenticating"
        self._send_raw(ws, session.auth())
        self._expect(ws, session, Authenticated)
        self.state = "live"
        self.last_frame = time.monotonic()
        self._on_event(UpstreamEvent(self.connection, "ready"))
        self._consume(ws, session)

    def _expect(self, ws: websocket.WebSocket, session: MarketDataSession, kind: type) -> None:
        events = session.receive(self._recv(ws))
        for event in events:
            if isinstance(event, kind):
                return
            if isinstance(event, Failure):
                raise _SessionEnded(
                    _CAUSE_OF_CODE.get(event.code, "protocol"), f"{event.code} {event.message}"
                )
        raise _SessionEnded("protocol", f"expected {kind.__name__}, got {events!r:.200}")

    def _consume(self, ws: websocket.WebSocket, session: MarketDataSession) -> None:
        cfg = self.config
        ws.settimeout(min(cfg.ping_interval, cfg.silence_after))
        last_ping = time.monotonic()
        healthy = False
        while not self._stop.is_set():
            try:
                frame = self._recv(ws)
            except websocket.WebSocketTimeoutException:
                now = time.monotonic()
                if self.subscribed and now - self.last_frame > cfg.silence_after:
                    raise _SessionEnded(
                        "silent", f"no data for {now - self.last_frame:.1f}s while subscribed"
                    ) from None
                if now - last_ping >= cfg.ping_interval:
                    with self._send_lock:
                        ws.ping()
                    last_ping = now
                continue
            now = time.monotonic()
            self.last_frame = now
            ticks: list[MarketData] = []
            for event in session.receive(frame):
                if isinstance(event, MarketData):
                    ticks.append(event)
                elif isinstance(event, Subscribed):
                    self._on_event(UpstreamEvent(self.connection, "ack"))
                elif isinstance(event, Failure):
                    cause = _CAUSE_OF_CODE.get(event.code)
                    if cause is not None:
                        raise _SessionEnded(cause, f"{event.code} {event.message}")
                    self._on_event(
                        UpstreamEvent(
                            self.connection, "refused", code=event.code, message=event.message
                        )
                    )
            if ticks:
                self.last_tick = now
                if not healthy:  # authenticated and carrying data: a good session
                    self._backoff.reset()
                    healthy = True
                self._on_ticks(self.connection, ticks)

    def _recv(self, ws: websocket.WebSocket) -> Frame:
        opcode, data = ws.recv_data(control_frame=False)
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            raise _SessionEnded("dropped", "the broker closed the connection")
        if opcode == websocket.ABNF.OPCODE_TEXT:
            return bytes(data).decode("utf-8")
        return bytes(data)

    def _send_raw(self, ws: websocket.WebSocket, frame: Frame) -> None:
        with self._send_lock:
            if isinstance(frame, str):
                ws.send(frame)
            else:
                ws.send_bytes(frame)

    def _close(self) -> None:
        ws, self._ws = self._ws, None
        if ws is not None:
            with suppress(Exception):  # closing a dead socket: nothing left to do
                ws.close(timeout=1)
