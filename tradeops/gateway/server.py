"""The gateway's loop: its unix socket for clients, its upstream connections, its health.

One thread runs the loop and owns every decision (through :class:`GatewayCore` for
subscriptions and :class:`OrderRouter` for orders); upstream threads, the order sender and
the trade stream only post events to it (`post`), and write ticks through the sink, which
serialises the bus's single writer. The client protocol is in `requests.py`, the client
connections in `clients.py`, the health figures in `health.py`.

A client's connection is its lease: when it closes, everything it subscribed is released and
its group's auto-cancel policy applies.
"""

from __future__ import annotations

import os
import queue
import selectors
import socket
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import asdict
from typing import Any, Protocol

from loguru import logger

from tradeops.gateway import requests
from tradeops.gateway.answers import ChangeAnswers
from tradeops.gateway.backfill import Backfiller, Outages
from tradeops.gateway.clients import Client, ClientConnections, Reply
from tradeops.gateway.core import Actions, GatewayCore
from tradeops.gateway.health import (
    TickRate,
    UpstreamView,
    connection_rows,
    last_tick_wall,
    liveness,
    order_summary,
)
from tradeops.gateway.pool import Pool
from tradeops.gateway.router import OrderRouter
from tradeops.gateway.session import MarketSession
from tradeops.gateway.upstream import OnTicks, Upstream, UpstreamConfig, UpstreamEvent
from tradeops.process import child
from tradeops.protocol.feed import BookUpdate, MarketData
from tradeops.protocol.tick import RecordRow


class TickSink(Protocol):
    """Where upstream threads put normalised ticks (the bus writer, behind a lock)."""

    def write(self, connection: int, ticks: list[RecordRow]) -> None: ...
    def write_books(self, books: Sequence[BookUpdate]) -> None: ...
    def write_backfill(self, ticks: list[MarketData]) -> None: ...


class UpstreamLink(UpstreamView, Protocol):
    """One upstream connection as the loop drives it (`gateway.upstream.Upstream`)."""

    subscribed: bool
    market_open: bool

    def start(self) -> None: ...
    def stop(self, timeout: float = ...) -> None: ...
    def send_change(self, confirmed: Any, transitions: Any) -> int: ...


#: Makes the upstream connection `id`: (id, config, on_event, on_ticks) -> link.
UpstreamFactory = Callable[
    [int, UpstreamConfig, Callable[[UpstreamEvent], None],
     OnTicks],
    UpstreamLink,
]


class GatewayServer:
    def __init__(
        self,
        broker: str,
        pool: Pool,
        upstream_config: Callable[[int], UpstreamConfig],
        sink: TickSink,
        socket_path: str,
        stale_after: float = 30.0,
        bus_info: dict[str, Any] | None = None,
        upstream_factory: UpstreamFactory = Upstream,
    ) -> None:
        self.broker = broker
        self.core = GatewayCore(pool)
        self._upstream_config = upstream_config
        self._upstream_factory = upstream_factory
        self._sink = sink
        self.socket_path = socket_path
        self.stale_after = stale_after
        self._bus_info = bus_info or {}
        self.upstreams: dict[int, UpstreamLink] = {}
        self._answers = ChangeAnswers()
        self._transient: dict[int, bool] = {}  # per connection: the first refusal was transient
        self._events: queue.Queue[UpstreamEvent | Callable[[], None]] = queue.Queue()
        self.router: OrderRouter | None = None  # set when the broker takes orders
        self.outages: Outages | None = None  # set with the backfiller (brokers.NAME.backfill)
        self.backfiller: Backfiller | None = None
        self.session: MarketSession | None = None  # set when the market has hours
        self._selector = selectors.DefaultSelector()
        self.clients = ClientConnections(
            broker,
            self._selector,
            on_message=lambda client, message: requests.handle(self, client, message),
            on_gone=self._client_gone,
        )
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_w.setblocking(False)
        self._listener: socket.socket | None = None
        self._closing = False  # clients gone: only order answers are handled now
        self._live: tuple[bool, str] | None = None
        self.ticks = 0
        self._tick_lock = threading.Lock()
        self._rate = TickRate(time.monotonic())
        self.started = time.time()

    # -- setup ------------------------------------------------------------------------------------
    def bind(self) -> None:
        """Listen on the unix socket (mode 0600); a stale socket file of ours is replaced."""
        if os.path.exists(self.socket_path):
            os.unlink(self.socket_path)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old_umask = os.umask(0o177)
        try:
            listener.bind(self.socket_path)
        finally:
            os.umask(old_umask)
        listener.listen(64)
        listener.setblocking(False)
        self._listener = listener
        self._selector.register(listener, selectors.EVENT_READ, "listen")
        self._wake_r.setblocking(False)
        self._selector.register(self._wake_r, selectors.EVENT_READ, "wake")

    def serve(self, stop: threading.Event, on_tick: Callable[[], None] | None = None) -> None:
        """Run the loop until `stop` is set; then stop upstreams and let clients go (their
        auto-cancel applies). The caller settles the orders (`settle`) and `close`s."""
        try:
            while not stop.is_set():
                self.run_once(0.25)
                if on_tick is not None:
                    on_tick()
        finally:
            self.close_clients()

    def settle(self, done: Callable[[], bool], timeout: float,
               on_tick: Callable[[], None] | None = None) -> bool:
        """Keep handling what the order sender and the trade stream post (broker answers,
        confirmations) until `done()` or `timeout`; True when done."""
        deadline = time.monotonic() + timeout
        while not done():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self.run_once(min(0.25, left))
            if on_tick is not None:
                on_tick()
        return True

    def run_once(self, timeout: float) -> None:
        """One turn of the loop: sockets, then posted events, then health."""
        for key, mask in self._selector.select(timeout=timeout):
            if isinstance(key.data, Client):
                self.clients.service(key.data, mask)
            elif key.data == "listen":
                assert self._listener is not None
                self.clients.accept(self._listener)
            else:
                self._drain_wake()
        self._drain_events()
        self.carry_out(self.core.tick(time.monotonic()))
        market_open = self.session is None or self.session.is_open(time.time())
        for upstream in self.upstreams.values():
            upstream.market_open = market_open
        self._check_health()

    def close_clients(self) -> None:
        """Stop the upstream connections and drop every client (their auto_cancel applies:
        nobody watches their orders any more); new clients are no longer accepted."""
        self._closing = True
        for upstream in list(self.upstreams.values()):
            upstream.stop(timeout=2)
        self.upstreams.clear()
        for client in self.clients:
            self.clients.drop(client.sock)
        if self._listener is not None:
            self._selector.unregister(self._listener)
            self._listener.close()
            self._listener = None
            if os.path.exists(self.socket_path):
                os.unlink(self.socket_path)

    def close(self) -> None:
        self.close_clients()  # idempotent: also the listener and its socket file
        for s in (self._wake_r, self._wake_w):
            s.close()
        self._selector.close()

    # -- other threads → loop -------------------------------------------------------------------
    def post(self, action: Callable[[], None]) -> None:
        """Run `action` on the loop thread (for the order sender and the trade stream)."""
        self._events.put(action)
        with suppress(OSError):  # a full pipe means the loop is already awake
            self._wake_w.send(b"\0")

    def post_replies(self, make: Callable[[], list[Reply]]) -> None:
        """On the loop thread, deliver what `make` returns (a router's answer to an event)."""
        self.post(lambda: self.deliver(make()))

    def _on_upstream_event(self, event: UpstreamEvent) -> None:  # upstream threads
        self._events.put(event)
        with suppress(OSError):
            self._wake_w.send(b"\0")

    def _on_ticks(self, connection: int, ticks: list[RecordRow],
                  books: Sequence[BookUpdate] = ()) -> None:  # upstream threads
        with self._tick_lock:
            if ticks:
                self._sink.write(connection, ticks)
            if books:
                self._sink.write_books(books)
            self.ticks += len(ticks) + len(books)
        if self.outages is not None and self.backfiller is not None:
            outage = self.outages.seen(connection, ticks)
            if outage is not None:
                self.backfiller.submit(outage)

    def write_backfill(self, ticks: list[MarketData]) -> None:  # the backfill thread
        with self._tick_lock:
            self._sink.write_backfill(ticks)

    def _drain_wake(self) -> None:
        with suppress(BlockingIOError):
            while self._wake_r.recv(4096):
                pass

    def _drain_events(self) -> None:
        while True:
            try:
                event = self._events.get_nowait()
            except queue.Empty:
                return
            try:
                if callable(event):
                    event()
                else:
                    self._upstream_event(event)
            except Exception as exc:  # a bug, or a broker answer nobody foresaw: this event
                # is lost, loudly; the loop (every feed, every client, the bus) goes on
                logger.opt(exception=exc).error(
                    f"{self.broker}: an event failed on the loop: {type(exc).__name__}: {exc}")

    def _upstream_event(self, event: UpstreamEvent) -> None:
        conn = event.connection
        if event.kind == "ready":
            logger.info("{} connection {} authenticated", self.broker, conn)
            self._answers.reset(conn)
            self._transient.pop(conn, None)
            self.carry_out(self.core.upstream_ready(conn))
        elif event.kind in ("ack", "refused"):
            refusal = None
            if event.kind == "refused":
                self._transient.setdefault(conn, event.transient)  # the first refusal decides
                logger.warning("{} connection {}: broker refused a request: {} {}",
                               self.broker, conn, event.code, event.message)
                refusal = (event.code, event.message)
            verdict = self._answers.answer(conn, refusal)
            if verdict is None:  # more answers due for this change
                return
            if verdict.refusal is None:
                self._transient.pop(conn, None)
                self.carry_out(self.core.upstream_ack(conn))
            else:
                self.carry_out(self.core.upstream_refused(
                    conn, *verdict.refusal, transient=self._transient.pop(conn, False),
                    now=time.monotonic()))
        else:
            logger.warning("{} connection {} down ({}: {}); retrying in {:.1f}s", self.broker,
                           conn, event.cause, event.message, event.retry_in)
            if self.outages is not None:
                self.outages.down(conn, list(self.core.pool.target(conn)))
            self.carry_out(self.core.upstream_down(conn, f"{event.cause}: {event.message}"))

    # -- what the client protocol and the router need -----------------------------------------
    def hello_info(self) -> dict[str, Any]:
        return {"broker": self.broker, "bus": self._bus_info, "v": requests.PROTOCOL_VERSION}

    def send(self, client: Client, message: dict[str, Any]) -> None:
        self.clients.send(client, message)

    def deliver(self, replies: list[Reply]) -> None:
        self.clients.deliver(replies)

    def _client_gone(self, sock: socket.socket) -> None:
        self.carry_out(self.core.client_gone(sock))
        if self.router is not None:
            self.deliver(self.router.client_gone(sock))

    def carry_out(self, actions: Actions) -> None:
        """Do what the core decided: open connections, send changes, answer clients."""
        for conn in actions.open:
            self._open(conn)
        for change in actions.sends:
            upstream = self.upstreams.get(change.connection)
            if upstream is None:
                continue
            confirmed = self.core.pool.confirmed(change.connection)
            # 0 answers due: not live; the change is resent in full when it is ready again.
            self._answers.expect(change.connection, upstream.send_change(
                confirmed, change.transitions))
        for upstream_id, upstream in self.upstreams.items():
            upstream.subscribed = bool(self.core.pool.target(upstream_id))
        self.deliver(actions.replies)

    def _open(self, conn: int) -> None:
        if conn in self.upstreams or self._closing:
            return
        upstream = self._upstream_factory(
            conn, self._upstream_config(conn), self._on_upstream_event, self._on_ticks
        )
        self.upstreams[conn] = upstream
        logger.info("{}: opening connection {}", self.broker, conn)
        upstream.start()

    # -- health ------------------------------------------------------------------------------------
    def _symbols_on(self, conn: int) -> int:
        return len(self.core.pool.target(conn))

    def _gate(self, now: float) -> tuple[bool, str]:
        """Live or not, and why: off-hours the market's reason, else the feed's."""
        wall = time.time()
        if self.session is not None and not self.session.is_open(wall):
            return False, self.session.closed_reason(wall)
        return liveness(self.upstreams, self._symbols_on, self.stale_after, now)

    def health(self) -> dict[str, Any]:
        now = time.monotonic()
        live, reason = self._gate(now)
        return {
            "broker": self.broker,
            "live": live,
            "reason": reason,
            "connections": connection_rows(self.upstreams, self._symbols_on, now),
            "symbols": len(self.core.interest.wanted()),
            "retrying": dict(self.core.retrying),
            "refused": dict(self.core.refused),
            "clients": len(self.clients),
            "ticks": self.ticks,
            "ticks_per_s": round(self._rate.per_s, 1),
            "uptime": round(time.time() - self.started, 1),
            "orders": order_summary(self.router.status()) if self.router is not None else {},
            "problems": child.problems(),
            "market": self.session.describe(time.time()) if self.session else "open",
            **({"backfill": asdict(self.backfiller.figures)} if self.backfiller else {}),
        }

    def _check_health(self) -> None:
        now = time.monotonic()
        self._rate.update(self.ticks, now)
        state = self._gate(now)
        if state != self._live:
            self._live = state
            if not state[0]:
                logger.warning("{}: not safe to trade: {}", self.broker, state[1])
            for client in self.clients:
                self.send_health(client)

    def send_health(self, client: Client) -> None:
        now = time.monotonic()
        live, reason = self._live if self._live is not None else self._gate(now)
        self.send(client, {"op": "health", "live": live, "reason": reason,
                           "last_tick": last_tick_wall(self.upstreams, now, time.time())})
