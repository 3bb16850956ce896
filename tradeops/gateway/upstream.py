"""One websocket connection to a broker's market-data stream, on threads of its own.

A reader thread connects, authenticates, reads frames, notices silence and reconnects with
backoff; a writer thread sends what the gateway asks for, paced to the broker's request
interval, plus keep-alives (websocket pings, or the dialect's heartbeat). The connection owns
no subscription state: after every (re)authentication it reports `ready` and the gateway
sends it the pool's next change. Market data goes straight to the tick sink from the reader
thread (the bus has one writer; the sink serialises).

The dialect is any :class:`~tradeops.protocol.feed.FeedSession` (Alpaca, AllTick).
"""

from __future__ import annotations

import math
import queue
import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Literal, Protocol

import websocket
from loguru import logger

from tradeops.gateway.backoff import Backoff, BackoffPolicy, Cause
from tradeops.gateway.frames import FrameReader
from tradeops.protocol.feed import (
    Authenticated,
    BookUpdate,
    BrokerFrame,
    Connected,
    Failure,
    FeedSession,
    Move,
    Subscribed,
)
from tradeops.protocol.modes import Mode
from tradeops.protocol.tick import RecordRow

State = Literal["connecting", "authenticating", "live", "backoff", "stopped"]


class OnTicks(Protocol):
    """Where an upstream thread hands what a frame carried: its record rows, and the order
    books it changed (none for most frames)."""

    def __call__(self, connection: int, rows: list[RecordRow],
                 books: Sequence[BookUpdate] = (), /) -> None: ...


@dataclass(frozen=True)
class UpstreamEvent:
    """`kind`: ready (authenticated: send the pool's change), ack (a request was accepted),
    refused (a request was rejected, e.g. 405), down (the session ended; `cause` says why)."""

    connection: int
    kind: Literal["ready", "ack", "refused", "down"]
    code: int = 0
    message: str = ""
    cause: Cause | None = None
    retry_in: float = 0.0
    transient: bool = False  # a refusal worth retrying (the dialect's transient codes)


@dataclass(frozen=True)
class UpstreamConfig:
    url: str
    session: Callable[[], FeedSession]  # a fresh dialect session per connection attempt
    connect_timeout: float = 10.0
    ping_interval: float = 10.0
    silence_after: float = 15.0  # no frame for this long while subscribed ⇒ reconnect
    backoff: BackoffPolicy = field(default_factory=BackoffPolicy)


#: Seconds between two log lines about malformed market messages (status has the count).
MALFORMED_LOG_EVERY = 60.0


class _SessionEnded(Exception):
    def __init__(self, cause: Cause, message: str) -> None:
        super().__init__(message)
        self.cause = cause
        self.message = message


_FATAL_CAUSES: dict[str, Cause] = {
    "auth": "auth", "subscription": "subscription", "connection-limit": "connection-limit"
}


def _cause(session: FeedSession, code: int) -> Cause | None:
    """Why the broker's `code` ends a session for good (slow retry), or None."""
    cause = session.fatal_codes.get(code)
    return _FATAL_CAUSES.get(cause) if cause else None


class Upstream:
    """Keeps one broker connection up."""

    def __init__(
        self,
        connection: int,
        config: UpstreamConfig,
        on_event: Callable[[UpstreamEvent], None],
        on_ticks: OnTicks,
    ) -> None:
        self.connection = connection
        self.config = config
        self._on_event = on_event
        self._on_ticks = on_ticks
        self._stop = threading.Event()
        self._ws: websocket.WebSocket | None = None
        self._session: FeedSession | None = None
        self._generation = 0  # bumped per session, so frames queued for a dead one are dropped
        self._outbox: queue.Queue[tuple[int, BrokerFrame] | None] = queue.Queue()
        self._backoff = Backoff(config.backoff)
        self._reader = threading.Thread(
            target=self._run, name=f"upstream-{connection}", daemon=True
        )
        self._writer = threading.Thread(
            target=self._write_loop, name=f"upstream-{connection}-w", daemon=True
        )
        # Read by status from other threads; plain attribute writes are atomic.
        self.state: State = "connecting"
        self.subscribed = False  # set by the gateway: silence only matters when subscribed
        self.market_open = True  # set by the gateway: off-hours silence is not an outage
        self.last_frame = 0.0
        self.last_tick = 0.0
        self.reconnects = 0
        self.attempts = 0
        self.last_error = ""
        # Market messages the dialect dropped for a missing or mistyped field, over every
        # session of this connection (shown in status; logged, at most once a minute).
        self.malformed = 0
        self._malformed_logged = -math.inf

    def start(self) -> None:
        self._reader.start()
        self._writer.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._outbox.put(None)
        self._close()
        self._reader.join(timeout)
        self._writer.join(timeout)
        self.state = "stopped"

    def send_change(self, confirmed: Mapping[str, Mode], moves: Iterable[Move]) -> int:
        """Queue the frames of one pool change; returns how many (each gets one answer).
        0 when the connection is not live: the change is resent on the next `ready`."""
        session = self._session
        if session is None or self.state != "live":
            return 0
        frames = session.change_frames(confirmed, moves)
        if not frames:
            # Nothing to ask the broker (bars from a broker that streams none): the change is
            # done as it stands, acknowledged through the event queue like a broker's ack.
            self._on_event(UpstreamEvent(self.connection, "ack"))
            return 0
        generation = self._generation
        for frame in frames:
            self._outbox.put((generation, frame))
        return len(frames)

    # -- reader ---------------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            self.attempts += 1
            cause: Cause
            try:
                self._session_once()
                cause, message = "dropped", "connection closed"
            except _SessionEnded as end:
                cause, message = end.cause, end.message
            except (OSError, websocket.WebSocketException) as exc:
                cause, message = "network", f"{type(exc).__name__}: {exc}"
            except Exception as exc:  # a bug of ours (a decoder, the sink): never go silent
                # for good. The connection is dropped and made again, with backoff, like any
                # other failure; the traceback goes to the log, the reason to status.
                logger.opt(exception=exc).error(
                    f"upstream {self.connection}: unexpected {type(exc).__name__}; reconnecting")
                cause, message = "protocol", f"unexpected {type(exc).__name__}: {exc}"
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

    def _session_once(self) -> None:
        cfg = self.config
        session = cfg.session()
        self.state = "connecting"
        header = [f"{k}: {v}" for k, v in session.headers().items()]
        ws = websocket.create_connection(
            session.url(cfg.url),
            timeout=cfg.connect_timeout,
            header=header,
            enable_multithread=True,
        )
        self._ws = ws
        frames = FrameReader(ws)
        if self._stop.is_set():
            return
        if session.greeting:
            self._expect(frames, session, Connected)
        auth = session.auth()
        if auth is not None:
            self.state = "authenticating"
            self._send(ws, auth)
            self._expect(frames, session, Authenticated)
        self._generation += 1
        self._session = session
        self.state = "live"
        self.last_frame = time.monotonic()
        self._on_event(UpstreamEvent(self.connection, "ready"))
        self._consume(ws, frames, session)

    def _expect(self, frames: FrameReader, session: FeedSession, kind: type) -> None:
        frame = self._recv(frames)
        while frame is None:
            frame = self._recv(frames)
        events = session.receive(frame)
        for event in events:
            if isinstance(event, kind):
                return
            if isinstance(event, Failure):
                raise _SessionEnded(
                    _cause(session, event.code) or "protocol", f"{event.code} {event.message}"
                )
        raise _SessionEnded("protocol", f"expected {kind.__name__}, got {events!r:.200}")

    def _consume(self, ws: websocket.WebSocket, frames: FrameReader,
                 session: FeedSession) -> None:
        cfg = self.config
        ws.settimeout(min(cfg.silence_after, 1.0))
        healthy = False
        seen_malformed = 0
        while not self._stop.is_set():
            try:
                frame = self._recv(frames)
            except websocket.WebSocketTimeoutException:
                frame = None
            now = time.monotonic()
            if frame is None:  # a timeout, or a ping/pong: control frames are not data
                quiet = now - self.last_frame > cfg.silence_after
                if self.subscribed and self.market_open and quiet:
                    raise _SessionEnded(
                        "silent", f"no data for {now - self.last_frame:.1f}s while subscribed"
                    )
                continue
            self.last_frame = now
            # Stamped once per frame, as it arrives: the latency a reader sees includes our
            # decode, and every tick of the frame shares the instant it reached us.
            rows, events = session.receive_rows(frame, time.time_ns())
            if session.malformed > seen_malformed:
                self._count_malformed(session.malformed - seen_malformed, now)
                seen_malformed = session.malformed
            books: list[BookUpdate] = []
            for event in events:
                if isinstance(event, BookUpdate):
                    books.append(event)
                elif isinstance(event, Subscribed):
                    self._on_event(UpstreamEvent(self.connection, "ack"))
                elif isinstance(event, Failure):
                    cause = _cause(session, event.code)
                    if cause is not None:
                        raise _SessionEnded(cause, f"{event.code} {event.message}")
                    self._on_event(
                        UpstreamEvent(
                            self.connection, "refused", code=event.code, message=event.message,
                            transient=event.code in session.transient_codes,
                        )
                    )
            if rows or books:
                self.last_tick = now
                if not healthy:  # authenticated and carrying data: a good session
                    self._backoff.reset()
                    healthy = True
                if books:
                    self._on_ticks(self.connection, rows, books)
                else:
                    self._on_ticks(self.connection, rows)

    def _count_malformed(self, more: int, now: float) -> None:
        self.malformed += more
        if now - self._malformed_logged >= MALFORMED_LOG_EVERY:
            self._malformed_logged = now
            logger.warning(
                f"upstream {self.connection}: the broker sent market messages with a missing or "
                f"mistyped field; dropped {self.malformed} so far (the rest of each frame "
                f"arrived). If this persists, the broker's format may have changed.")

    def _recv(self, frames: FrameReader) -> BrokerFrame | None:
        """The next data message, or None for a control frame (pings are answered by the
        reader; returning lets silence be noticed while pongs keep arriving)."""
        opcode, data = frames.recv()
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            raise _SessionEnded("dropped", "the broker closed the connection")
        if opcode == websocket.ABNF.OPCODE_TEXT:
            return data.decode("utf-8")
        if opcode == websocket.ABNF.OPCODE_BINARY:
            return data
        return None

    # -- writer ---------------------------------------------------------------------------------
    def _write_loop(self) -> None:
        """Send queued frames no faster than the broker allows; keep the connection alive."""
        last_request = last_keepalive = 0.0
        while not self._stop.is_set():
            interval = self.config.ping_interval
            beat_every = getattr(self._session, "heartbeat_interval", None)
            if beat_every is not None:
                interval = min(interval, beat_every)
            item: tuple[int, BrokerFrame] | None
            try:
                item = self._outbox.get(
                    timeout=max(0.05, interval - (time.monotonic() - last_keepalive))
                )
                if item is None:  # stop() asked the writer to finish
                    return
            except queue.Empty:
                item = None  # time for a keep-alive
            ws, session = self._ws, self._session  # read after waiting: they change
            if ws is None or session is None or self.state != "live":
                continue
            try:
                if item is not None:
                    generation, frame = item
                    if generation != self._generation:
                        continue  # queued for a session that has since ended
                    wait = last_request + session.min_request_interval - time.monotonic()
                    if wait > 0 and self._stop.wait(wait):
                        return
                    self._send(ws, frame)
                    last_request = time.monotonic()
                if time.monotonic() - last_keepalive >= interval:
                    beat = session.heartbeat()
                    if beat is not None:
                        # An application heartbeat is a request like any other: AllTick counts
                        # it against the same one-a-second pace, so it waits its turn too.
                        wait = last_request + session.min_request_interval - time.monotonic()
                        if wait > 0 and self._stop.wait(wait):
                            return
                        self._send(ws, beat)
                        last_request = time.monotonic()
                    else:
                        ws.ping()
                    last_keepalive = time.monotonic()
            except (OSError, websocket.WebSocketException):
                continue  # the reader notices the broken connection and reconnects
            except Exception as exc:  # a dialect's bug: this frame is lost, the writer lives
                # on (without it, no subscription change or keep-alive would ever go out)
                logger.opt(exception=exc).error(
                    f"upstream {self.connection}: unexpected {type(exc).__name__} sending")

    @staticmethod
    def _send(ws: websocket.WebSocket, frame: BrokerFrame) -> None:
        if isinstance(frame, str):
            ws.send(frame)
        else:
            ws.send_bytes(frame)

    def _close(self) -> None:
        self._session = None
        ws, self._ws = self._ws, None
        if ws is not None:
            hang_up(ws)


def hang_up(ws: websocket.WebSocket) -> None:
    """Close a websocket and its TCP socket now, on every path.

    After the broker closes a connection, websocket-client marks it closed, so `close()`
    does nothing, and the socket stays open (CLOSE_WAIT) until the garbage collector finds
    the WebSocket (it holds a reference cycle), or while another thread still holds it.
    Against a broker that allows one connection per login, that half-closed socket held the
    login's slot: every reconnect was refused for about 15 s. Shutting the socket down frees
    it at once."""
    with suppress(Exception):  # the close handshake, when the connection is still open
        ws.close(timeout=1)
    sock = ws.sock
    if sock is not None:
        with suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        with suppress(OSError):  # the file descriptor goes now, whoever else holds `ws`
            sock.close()
