"""The gateway's loop: its unix socket for clients, its upstream threads, its health.

One thread runs the loop and owns every decision (through :class:`GatewayCore`); upstream
threads only report events through a queue (and write ticks through the sink, which
serialises the bus's single writer). The wire protocol with clients is newline-delimited JSON,
documented in docs/gateway.md:

    → {"op": "hello", "client": "host:signals", "pid": 123}
    ← {"op": "hello", "ok": true, "broker": "sim", "bus": {...}, "v": 1}
    → {"op": "subscribe", "id": 1, "symbols": ["AAPL"], "mode": "quote"}
    ← {"op": "reply", "id": 1, "ok": true, "results": {"AAPL": {"ok": true}}}
    → {"op": "unsubscribe", "id": 2, "symbols": ["AAPL"]}
    → {"op": "status", "id": 3}
    ← {"op": "event", "kind": "lost", "symbol": "AAPL", "reason": "..."}   (unsolicited)
    ← {"op": "health", "live": false, "reason": "..."}                     (on change)

A client's connection is its lease: when it closes, everything it subscribed is released.
"""

from __future__ import annotations

import json
import os
import queue
import selectors
import socket
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any, Protocol

from loguru import logger

from tradeops.gateway.core import Actions, GatewayCore
from tradeops.gateway.pool import Pool
from tradeops.gateway.router import OrderRouter
from tradeops.gateway.upstream import Upstream, UpstreamConfig, UpstreamEvent
from tradeops.protocol.feed import MarketData
from tradeops.protocol.modes import MODES

PROTOCOL_VERSION = 1
MAX_LINE = 1 << 20  # a request larger than this is malformed
MAX_BACKLOG = 4 << 20  # bytes queued for a client that does not read: it is dropped


class TickSink(Protocol):
    """Where upstream threads put normalised ticks (the bus writer, behind a lock)."""

    def write(self, connection: int, ticks: list[MarketData]) -> None: ...


@dataclass
class _Client:
    sock: socket.socket
    name: str = ""
    pid: int = 0
    inbuf: bytearray = field(default_factory=bytearray)
    outbuf: bytearray = field(default_factory=bytearray)


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
    ) -> None:
        self.broker = broker
        self.core = GatewayCore(pool)
        self._upstream_config = upstream_config
        self._sink = sink
        self.socket_path = socket_path
        self.stale_after = stale_after
        self._bus_info = bus_info or {}
        self.upstreams: dict[int, Upstream] = {}
        # Per connection: answers still due for the change in flight, and its first refusal.
        self._answers: dict[int, tuple[int, tuple[int, str] | None]] = {}
        self._events: queue.Queue[UpstreamEvent | Callable[[], None]] = queue.Queue()
        self.router: OrderRouter | None = None  # set when the broker takes orders
        self._selector = selectors.DefaultSelector()
        self._clients: dict[socket.socket, _Client] = {}
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_w.setblocking(False)
        self._listener: socket.socket | None = None
        self._live: tuple[bool, str] | None = None
        self.ticks = 0
        self._tick_lock = threading.Lock()
        self._rate = (time.monotonic(), 0, 0.0)  # (when, ticks then, ticks/s)
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
        """Run the loop until `stop` is set; then stop upstreams and close every socket."""
        try:
            while not stop.is_set():
                for key, mask in self._selector.select(timeout=0.25):
                    if key.data == "listen":
                        self._accept()
                    elif key.data == "wake":
                        self._drain_wake()
                    else:
                        self._service(key.fileobj, mask)  # type: ignore[arg-type]
                self._drain_events()
                self._check_health()
                if on_tick is not None:
                    on_tick()
        finally:
            self.close()

    def close(self) -> None:
        for upstream in list(self.upstreams.values()):
            upstream.stop(timeout=2)
        for sock in list(self._clients):
            self._drop(sock)  # their auto_cancel policies apply: nobody watches their orders
        if self._listener is not None:
            self._selector.unregister(self._listener)
            self._listener.close()
            self._listener = None
            if os.path.exists(self.socket_path):
                os.unlink(self.socket_path)
        for s in (self._wake_r, self._wake_w):
            s.close()
        self._selector.close()

    # -- upstream threads → loop ----------------------------------------------------------------
    def _on_upstream_event(self, event: UpstreamEvent) -> None:  # called on upstream threads
        self._events.put(event)
        with suppress(OSError):  # a full pipe means the loop is already awake
            self._wake_w.send(b"\0")

    def _on_ticks(self, connection: int, ticks: list[MarketData]) -> None:  # upstream threads
        with self._tick_lock:
            self._sink.write(connection, ticks)
            self.ticks += len(ticks)

    def _drain_wake(self) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except BlockingIOError:
            pass

    def _drain_events(self) -> None:
        while True:
            try:
                event = self._events.get_nowait()
            except queue.Empty:
                return
            if callable(event):
                event()
                continue
            if event.kind == "ready":
                logger.info("{} connection {} authenticated", self.broker, event.connection)
                self._answers.pop(event.connection, None)
                actions = self.core.upstream_ready(event.connection)
            elif event.kind in ("ack", "refused"):
                if event.kind == "refused":
                    logger.warning(
                        "{} connection {}: broker refused a request: {} {}",
                        self.broker,
                        event.connection,
                        event.code,
                        event.message,
                    )
                due, refusal = self._answers.get(event.connection, (1, None))
                if event.kind == "refused" and refusal is None:
                    refusal = (event.code, event.message)
                if due > 1:  # more answers due for this change
                    self._answers[event.connection] = (due - 1, refusal)
                    continue
                self._answers.pop(event.connection, None)
                if refusal is None:
                    actions = self.core.upstream_ack(event.connection)
                else:
                    actions = self.core.upstream_refused(event.connection, *refusal)
            else:
                logger.warning(
                    "{} connection {} down ({}: {}); retrying in {:.1f}s",
                    self.broker,
                    event.connection,
                    event.cause,
                    event.message,
                    event.retry_in,
                )
                actions = self.core.upstream_down(
                    event.connection, f"{event.cause}: {event.message}"
                )
            self._carry_out(actions)

    # -- clients --------------------------------------------------------------------------------
    def _accept(self) -> None:
        assert self._listener is not None
        try:
            sock, _ = self._listener.accept()
        except BlockingIOError:
            return
        sock.setblocking(False)
        self._clients[sock] = _Client(sock)
        self._selector.register(sock, selectors.EVENT_READ, "client")

    def _service(self, sock: socket.socket, mask: int) -> None:
        client = self._clients.get(sock)
        if client is None:
            return
        if mask & selectors.EVENT_WRITE:
            self._flush(client)
        if mask & selectors.EVENT_READ:
            try:
                data = sock.recv(65536)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:
                self._drop(sock)
                return
            client.inbuf += data
            while (end := client.inbuf.find(b"\n")) >= 0:
                line = bytes(client.inbuf[:end])
                del client.inbuf[: end + 1]
                self._handle(client, line)
                if sock not in self._clients:
                    return
            if len(client.inbuf) > MAX_LINE:
                self._send(client, {"op": "error", "error": "request too large"})
                self._drop(sock)

    def _handle(self, client: _Client, line: bytes) -> None:
        try:
            msg = json.loads(line)
            if not isinstance(msg, dict):
                raise ValueError("not an object")
        except ValueError as exc:
            self._send(client, {"op": "error", "error": f"malformed request: {exc}"})
            return
        op, rid = msg.get("op"), msg.get("id", 0)
        router = self.router
        if op == "hello":
            client.name = str(msg.get("client", "")) or f"client-{client.sock.fileno()}"
            client.pid = int(msg.get("pid", 0) or 0)
            logger.info("{}: client {} (pid {}) connected", self.broker, client.name, client.pid)
            hello = {
                "op": "hello",
                "ok": True,
                "broker": self.broker,
                "bus": self._bus_info,
                "v": PROTOCOL_VERSION,
            }
            self._send(client, hello)
            self._send_health(client)
            if router is not None and msg.get("group"):
                self._deliver(router.hello(client.sock, str(msg["group"])))
        elif op in ("subscribe", "unsubscribe"):
            symbols, mode = msg.get("symbols"), msg.get("mode", "trade")
            if not isinstance(symbols, list) or not all(isinstance(s, str) and s for s in symbols):
                self._reply(client, rid, error="symbols must be a list of non-empty strings")
            elif op == "subscribe" and mode not in MODES:
                self._reply(client, rid, error=f"mode must be trade, quote or depth, not {mode!r}")
            elif op == "subscribe":
                self._carry_out(self.core.subscribe(client.sock, rid, symbols, mode))
            else:
                self._carry_out(self.core.unsubscribe(client.sock, rid, symbols))
        elif op == "status":
            self._reply(client, rid, status=self.health())
        elif op in ("order", "cancel", "cancel_all", "orders") and router is not None:
            strategy = str(msg.get("strategy", ""))
            if op == "order":
                self._deliver(router.order(client.sock, msg))
            elif op == "cancel":
                self._deliver(router.cancel(client.sock, strategy, str(msg.get("order_id"))))
            elif op == "cancel_all":
                self._deliver(router.cancel_all(client.sock, strategy))
            else:
                self._reply(client, rid, orders=router.status())
        else:
            self._reply(client, rid, error=f"unknown op {op!r}")

    def _reply(self, client: _Client, rid: Any, error: str = "", **fields: Any) -> None:
        message = {"op": "reply", "id": rid, "ok": not error, **fields}
        if error:
            message["error"] = error
        self._send(client, message)

    def _deliver(self, replies: list[tuple[Any, dict[str, Any]]]) -> None:
        """Send each message to its client, if it is still connected."""
        for target, message in replies:
            client = self._clients.get(target)
            if client is not None:
                self._send(client, message)

    def post(self, action: Callable[[], None]) -> None:
        """Run `action` on the loop thread (for the order sender and the trade stream)."""
        self._events.put(action)
        with suppress(OSError):  # a full pipe means the loop is already awake
            self._wake_w.send(b"\0")

    def _send(self, client: _Client, message: dict[str, Any]) -> None:
        client.outbuf += json.dumps(message, separators=(",", ":")).encode() + b"\n"
        if len(client.outbuf) > MAX_BACKLOG:
            logger.warning(
                "{}: client {} does not read its replies; dropping it", self.broker, client.name
            )
            self._drop(client.sock)
            return
        self._flush(client)

    def _flush(self, client: _Client) -> None:
        try:
            sent = client.sock.send(client.outbuf)
            del client.outbuf[:sent]
        except BlockingIOError:
            pass
        except OSError:
            self._drop(client.sock)
            return
        events = selectors.EVENT_READ | (selectors.EVENT_WRITE if client.outbuf else 0)
        self._selector.modify(client.sock, events, "client")

    def _drop(self, sock: socket.socket, notify: bool = True) -> None:
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
            self._carry_out(self.core.client_gone(sock))
            if self.router is not None:
                self._deliver(self.router.client_gone(sock))

    # -- actions ----------------------------------------------------------------------------------
    def _carry_out(self, actions: Actions) -> None:
        for conn in actions.open:
            self._open(conn)
        for change in actions.sends:
            upstream = self.upstreams.get(change.connection)
            if upstream is None:
                continue
            confirmed = self.core.pool.confirmed(change.connection)
            due = upstream.send_change(confirmed, change.transitions)
            if due:
                self._answers[change.connection] = (due, None)
            # 0: not live; the change is resent in full when the connection is ready again.
        for upstream_id, upstream in self.upstreams.items():
            upstream.subscribed = bool(self.core.pool.target(upstream_id))
        self._deliver(actions.replies)

    def _open(self, conn: int) -> None:
        if conn in self.upstreams:
            return
        upstream = Upstream(
            conn, self._upstream_config(conn), self._on_upstream_event, self._on_ticks
        )
        self.upstreams[conn] = upstream
        logger.info("{}: opening connection {}", self.broker, conn)
        upstream.start()

    # -- health ------------------------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        now = time.monotonic()
        conns = []
        for conn_id, up in sorted(self.upstreams.items()):
            conns.append(
                {
                    "id": conn_id,
                    "state": up.state,
                    "symbols": len(self.core.pool.target(conn_id)),
                    "last_tick_age": round(now - up.last_tick, 3) if up.last_tick else None,
                    "reconnects": up.reconnects,
                    "attempts": up.attempts,
                    "last_error": up.last_error,
                }
            )
        live, reason = self._liveness(now)
        return {
            "broker": self.broker,
            "live": live,
            "reason": reason,
            "connections": conns,
            "symbols": len(self.core.interest.wanted()),
            "clients": len(self._clients),
            "ticks": self.ticks,
            "ticks_per_s": round(self._rate[2], 1),
            "uptime": round(time.time() - self.started, 1),
            "orders": self._order_summary(),
        }

    def _order_summary(self) -> dict[str, int]:
        if self.router is None:
            return {}
        status = self.router.status()
        return {"working": len(status["working"]), "queued": status["queued"],
                "rejected": status["rejected"], "throttled": status["throttled"],
                "unrouted": len(status["unrouted"])}

    def _liveness(self, now: float) -> tuple[bool, str]:
        for conn_id, up in sorted(self.upstreams.items()):
            if not self.core.pool.target(conn_id):
                continue
            if up.state != "live":
                return False, f"connection {conn_id} is {up.state}: {up.last_error}".rstrip(": ")
            if now - (up.last_tick or up.last_frame) > self.stale_after:
                # A stable reason: health is re-sent only when it changes.
                return False, f"connection {conn_id}: no tick for over {self.stale_after:g}s"
        return True, ""

    def _check_health(self) -> None:
        now = time.monotonic()
        when, then, _ = self._rate
        if now - when >= 1.0:
            self._rate = (now, self.ticks, (self.ticks - then) / (now - when))
        state = self._liveness(now)
        if state != self._live:
            self._live = state
            if not state[0]:
                logger.warning("{}: not safe to trade: {}", self.broker, state[1])
            for client in list(self._clients.values()):
                self._send_health(client)

    def _send_health(self, client: _Client) -> None:
        live, reason = self._live if self._live is not None else self._liveness(time.monotonic())
        self._send(client, {"op": "health", "live": live, "reason": reason})
