"""The gateway's order transport (I/O): REST calls within the rate limit, and the broker's
trade-updates stream. Decisions stay in `orders.py` and `server.py`; this module only moves
requests and answers, and reports each as an event for the gateway's loop.

- `OrderSender`: one thread. Requests wait in a fair queue (one line per client, served in
  turn) until the sliding-window limiter allows them; a 429 closes the window for the
  broker's Retry-After and puts the request back first in its line, so the desk slows down
  instead of hammering the broker.
- `TradeStream`: one thread on the trade-updates websocket (JSON; authenticate, then listen),
  reconnecting with backoff; after every reconnect it reports `resync` so the gateway asks the
  broker for the orders whose updates may have been missed.
"""

from __future__ import annotations

import datetime
import email.utils
import http.client
import json
import threading
import time
import urllib.parse
from collections.abc import Callable, Hashable
from contextlib import suppress
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import websocket
from loguru import logger

from tradeops.gateway.backoff import Backoff, BackoffPolicy
from tradeops.gateway.ratelimit import FairQueue, SlidingWindow, admission
from tradeops.gateway.upstream import hang_up
from tradeops.protocol import alpaca_trading as at


@dataclass(frozen=True)
class Job:
    """One REST call and whom its answer concerns."""

    kind: Literal["submit", "cancel", "cancel_all", "lookup", "open_orders", "reconcile",
                  "positions"]
    request: at.HttpRequest
    client: Hashable = None
    cid: str = ""  # the order's routing id, for submit / cancel / lookup
    account: str = ""  # whose login the request goes out with


@dataclass(frozen=True)
class JobResult:
    job: Job
    status: int  # HTTP status; 0 when the broker could not be reached
    body: Any  # decoded JSON (or None)
    error: str = ""


class Transport(Protocol):
    """What the sender calls: one request → (HTTP status, headers, body bytes)."""

    def call(self, request: at.HttpRequest) -> tuple[int, dict[str, str], bytes]: ...
    def close(self) -> None: ...


class RestTransport:
    """Keep-alive HTTP(S) to the broker's trading API, authenticated by headers."""

    def __init__(self, base_url: str, key: str, secret: str, timeout: float = 10.0,
                 *, auth_headers: bool = True) -> None:
        url = urllib.parse.urlsplit(base_url)
        self._https = url.scheme == "https"
        self._host = url.netloc
        self._headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if auth_headers:  # Alpaca's login; OpenAlgo's goes in each body instead
            self._headers |= {"APCA-API-KEY-ID": key, "APCA-API-SECRET-KEY": secret}
        self._timeout = timeout
        self._conn: http.client.HTTPConnection | None = None

    def call(self, request: at.HttpRequest) -> tuple[int, dict[str, str], bytes]:
        body = json.dumps(request.body).encode() if request.body is not None else None
        for attempt in (1, 2):  # a kept-alive connection the server closed: reconnect once
            conn = self._connection()
            try:
                conn.request(request.method, request.path, body=body, headers=self._headers)
                response = conn.getresponse()
                data = response.read()
                return response.status, dict(response.getheaders()), data
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
            self._conn = cls(self._host, timeout=self._timeout)
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def retry_after(value: str | None, now: float | None = None) -> float:
    """Seconds to wait from a ``Retry-After`` header: delay-seconds or an HTTP-date (RFC 9110
    allows both); 1 s when absent or unreadable, at most an hour, never negative."""
    if not value:
        return 1.0
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return 1.0
        if when.tzinfo is None:
            when = when.replace(tzinfo=datetime.UTC)
        seconds = when.timestamp() - (time.time() if now is None else now)
    if seconds != seconds:  # NaN
        return 1.0
    return min(max(seconds, 0.0), 3600.0)


class OrderSender:
    def __init__(
        self,
        transport: Transport,
        window: SlidingWindow | None,
        queue_size: int,
    ) -> None:
        self._transport = transport
        self._window = window
        self._queue_size = queue_size
        # Submits are bounded by `admit`; the queue's own bound only guards memory.
        self._queue: FairQueue[Job] = FairQueue(queue_size + (window.count if window else 0)
                                                + 10_000)
        self._cond = threading.Condition()
        self._on_result: Callable[[JobResult], None] = _ignore
        self._stop = False
        self._busy = False
        self.sent = 0
        self.throttled = 0
        self._thread = threading.Thread(target=self._run, name="orders", daemon=True)

    def start(self, on_result: Callable[[JobResult], None]) -> None:
        """Start sending; `on_result` gets each job's outcome (on the sender's thread)."""
        self._on_result = on_result
        self._thread.start()

    def put(self, job: Job) -> bool:
        """Queue a job; False when the queue is full (the caller rejects the order)."""
        with self._cond:
            ok = self._queue.put(job.client, job)
            self._cond.notify()
            return ok

    def admit(self, job: Job, reject_when_spent: bool) -> str | None:
        """Queue an order unless the rate limit says no (`ratelimit.admission`): None when
        queued, else the reason, which names the real cause."""
        with self._cond:
            now = time.monotonic()
            window = self._window
            reason = admission(
                len(self._queue), window.room(now) if window else None, self._queue_size,
                reject_when_spent,
                lambda: window.spent_because(now, len(self._queue)) if window else "",
            )
            if reason is None:
                self._queue.put(job.client, job)
                self._cond.notify()
            return reason

    def withdraw(self, client: Hashable, cid: str) -> bool:
        """Take a not-yet-sent submit out of the queue (a cancel that beat it)."""
        with self._cond:
            return bool(self._queue.remove(client, lambda j: j.kind == "submit" and j.cid == cid))

    def withdraw_submits(self) -> list[Job]:
        """Take every not-yet-sent submit out of the queue (the gateway is stopping: orders
        nobody will watch must not go out; cancels still should)."""
        with self._cond:
            return self._queue.remove_all(lambda j: j.kind == "submit")

    def pending(self) -> int:
        with self._cond:
            return len(self._queue) + (1 if self._busy else 0)

    def drain(self, timeout: float) -> bool:
        """Wait until everything queued has been sent (for shutdown); False on timeout."""
        deadline = time.monotonic() + timeout
        while self.pending() and time.monotonic() < deadline:
            time.sleep(0.02)
        return not self.pending()

    def stop(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify()
        self._thread.join(5)
        self._transport.close()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stop and not len(self._queue):
                    self._cond.wait()
                if self._stop:
                    return
                wait = self._window.wait(time.monotonic()) if self._window else 0.0
                if wait > 0:
                    self._cond.wait(wait)  # a stop or a new job wakes us early; loop again
                    continue
                job = self._queue.take()
                if job is None:
                    continue
                if self._window is not None:
                    self._window.record(time.monotonic())
                self._busy = True
            try:
                self._execute(job)
            except Exception as exc:  # a bug, or a broker answer nobody foresaw: this job
                # fails, visibly, and the thread lives on to send the next one. Without this
                # the sender died and every later order waited in its queue for ever.
                logger.opt(exception=exc).error(
                    f"order {job.kind} {job.cid or ''}: unexpected {type(exc).__name__}")
                with suppress(Exception):
                    self._on_result(JobResult(job, 0, None,
                                              f"internal error: {type(exc).__name__}: {exc}"))
            finally:
                with self._cond:
                    self._busy = False

    def _execute(self, job: Job) -> None:
        try:
            status, headers, data = self._transport.call(job.request)
        except (OSError, http.client.HTTPException) as exc:
            self._on_result(JobResult(job, 0, None, f"{type(exc).__name__}: {exc}"))
            return
        if status == 429:
            self.throttled += 1
            retry = retry_after(headers.get("Retry-After") or headers.get("retry-after"))
            logger.warning("the broker answered 429; pausing order requests for {:g}s", retry)
            with self._cond:
                if self._window is not None:
                    self._window.throttled(time.monotonic(), retry)
                self._queue.put(job.client, job, front=True)
            return
        self.sent += 1
        body: Any = None
        if data:
            with suppress(ValueError):
                body = json.loads(data)
        error = at.error_message(status, data) if status >= 400 else ""
        self._on_result(JobResult(job, status, body, error))


class TradeStream:
    """The broker's trade-updates websocket, kept connected."""

    def __init__(
        self,
        url: str,
        key: str,
        secret: str,
        on_update: Callable[[at.TradeUpdate], None],
        on_state: Callable[[str, str], None],
        backoff: BackoffPolicy | None = None,
        name: str = "trade-updates",
    ) -> None:
        self.url, self._key, self._secret = url, key, secret
        self._on_update, self._on_state = on_update, on_state
        self._backoff = Backoff(backoff or BackoffPolicy())
        self._stop = threading.Event()
        self._ws: websocket.WebSocket | None = None
        self.state = "connecting"
        self.reconnects = 0
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        ws = self._ws
        if ws is not None:
            hang_up(ws)
        self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.is_set():
            cause = "network"
            try:
                cause = self._session()
            except (OSError, websocket.WebSocketException) as exc:
                if not self._stop.is_set():  # our own hang-up at stop is not news
                    logger.warning("trade updates stream: {}: {}", type(exc).__name__, exc)
            except Exception as exc:  # a bug, or a frame nobody foresaw: reconnect (the
                # router reconciles on the next "live"), never stop hearing about fills
                logger.opt(exception=exc).error(
                    f"trade updates stream: unexpected {type(exc).__name__}; reconnecting")
            finally:
                ws, self._ws = self._ws, None
                if ws is not None:
                    hang_up(ws)
            if self._stop.is_set():
                return
            self.state = "backoff"
            self.reconnects += 1
            delay = self._backoff.next_delay("auth" if cause == "auth" else "network")
            self._on_state("down", cause)
            self._stop.wait(delay)

    def _session(self) -> str:
        ws = websocket.create_connection(self.url, timeout=10)
        self._ws = ws
        ws.send(at.stream_auth(self._key, self._secret))
        for event in at.stream_events(ws.recv()):
            if isinstance(event, at.StreamAuth) and not event.ok:
                logger.error("trade updates stream: authentication failed: {}", event.message)
                return "auth"
        ws.send(at.stream_listen())
        self.state = "live"
        self._backoff.reset()
        self._on_state("live", "")
        ws.settimeout(1.0)
        while not self._stop.is_set():
            try:
                frame = ws.recv()
            except websocket.WebSocketTimeoutException:
                continue
            if not frame:
                return "dropped"
            for event in at.stream_events(frame):
                if isinstance(event, at.TradeUpdate):
                    self._on_update(event)
        return "stopped"


def _ignore(result: JobResult) -> None:
    pass
