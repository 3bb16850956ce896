"""The simulated exchange's I/O: one aiohttp server for websockets, REST and admin, one port.

`start(options)` binds and returns a `RunningSim`; `SimThread(options)` runs one on a
background thread for synchronous callers (tests, the supervisor). Everything that decides
what to say lives in the sans-I/O modules; this file moves bytes, keeps time and applies
the faults that need sockets (drops, abrupt closes, delays, slow clients).

Each websocket has one writer task draining a queue, so the market loop never waits on a
client: it only queues frames. A market-data connection whose queue plus kernel-side buffer
passes `slow_client_bytes` loses its queue, gets `[{"T":"error","code":407,...}]` and is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import deque

from aiohttp import WSMsgType, web
from loguru import logger

from tradeops.protocol.codec import Codec, codec_for, frame
from tradeops.sim.admin import admin_routes
from tradeops.sim.alltick import ALLTICK_PATHS
from tradeops.sim.exchange import DATA_PATHS, TRADE_PATH, Exchange
from tradeops.sim.openalgo import PATH as OPENALGO_PATH
from tradeops.sim.openalgo_orders import PREFIX as OPENALGO_REST
from tradeops.sim.openalgo_orders import OpenAlgoOrderApi
from tradeops.sim.options import SimOptions
from tradeops.sim.session import DataSession, Session
from tradeops.sim.trading import TradingApi

#: Seconds between two market steps; each step sends everything due since the last.
LOOP_INTERVAL = 0.005
#: Messages per market-data frame: keeps frames far below alpaca-py's 1 MiB limit.
MAX_ITEMS_PER_FRAME = 1000
#: Seconds a close handshake may take before the connection is aborted.
CLOSE_TIMEOUT = 5.0
_MAX_CLIENT_MESSAGE = 1024 * 1024


class _Connection:
    """One websocket: a queue of frames, the task that writes them, and how it ends."""

    def __init__(self, ws: web.WebSocketResponse, request: web.Request, session: Session,
                 slow_bytes: int) -> None:
        self.ws = ws
        self.request = request
        self.session = session
        self.slow_bytes = slow_bytes
        self.queue: deque[tuple[bytes, WSMsgType, int]] = deque()
        self.queued_bytes = 0
        self.wake = asyncio.Event()
        self.close_request: tuple[int, str] | None = None
        self.reason = "client closed"
        self._watchdog: asyncio.TimerHandle | None = None
        self.writer = asyncio.get_running_loop().create_task(self._write())

    def flush(self) -> None:
        """Move the session's output into the queue; apply the slow-client bound."""
        session = self.session
        text = WSMsgType.TEXT if session.codec is Codec.JSON else WSMsgType.BINARY
        for chunk in session.take():
            if session.batched:
                for i in range(0, len(chunk), MAX_ITEMS_PER_FRAME):
                    part = chunk[i:i + MAX_ITEMS_PER_FRAME]
                    self._enqueue(frame(session.codec, part), text, len(part))
            else:
                single = WSMsgType.TEXT if session.text_frames else WSMsgType.BINARY
                for item in chunk:
                    self._enqueue(item, single, 1)
        if isinstance(session, DataSession) and session.closing is None:
            transport = self.request.transport
            buffered = transport.get_write_buffer_size() if transport is not None else 0
            if self.queued_bytes + buffered > self.slow_bytes:
                self._slow()
        if session.closing is not None and self.close_request is None:
            self.request_close(*session.closing, discard=False)

    def _enqueue(self, data: bytes, opcode: WSMsgType, count: int) -> None:
        if self.close_request is not None:
            return
        self.queue.append((data, opcode, count))
        self.queued_bytes += len(data)
        self.wake.set()

    def _slow(self) -> None:
        logger.info("sim: connection {} is a slow client ({} bytes queued): 407",
                    self.session.id, self.queued_bytes)
        self.queue.clear()
        self.queued_bytes = 0
        self.session.drop_queued()
        assert isinstance(self.session, DataSession)
        self.session.error(407, fatal=True)
        self.flush()

    def request_close(self, code: int, reason: str, *, discard: bool) -> None:
        """Close after the queue is written (or at once, dropping it, if `discard`)."""
        if discard:
            self.queue.clear()
            self.queued_bytes = 0
        self.close_request = (code, reason)
        self.reason = reason
        self.wake.set()
        if self._watchdog is None:
            # A client that stops reading leaves the writer waiting for buffer space forever;
            # the close must still happen.
            self._watchdog = asyncio.get_running_loop().call_later(CLOSE_TIMEOUT, self._force)

    def _force(self) -> None:
        if not self.writer.done() and self.request.transport is not None:
            self.request.transport.abort()

    def abort(self, reason: str) -> None:
        """Cut the TCP connection without a close frame: the client sees 1006."""
        self.reason = reason
        self.close_request = (1006, reason)
        transport = self.request.transport
        if transport is not None:
            transport.abort()
        self.wake.set()

    async def _write(self) -> None:
        ws = self.ws
        try:
            while True:
                if self.queue:
                    data, opcode, count = self.queue.popleft()
                    self.queued_bytes -= len(data)
                    await ws.send_frame(data, opcode)
                    self.session.messages_sent += count
                    continue
                if self.close_request is not None:
                    break
                self.wake.clear()
                await self.wake.wait()
            code, reason = self.close_request
            if code != 1006:
                await asyncio.wait_for(ws.close(code=code, message=reason.encode()[:120]),
                                       CLOSE_TIMEOUT)
        except (TimeoutError, ConnectionError, RuntimeError):
            pass  # the peer went away or never answered the close: abort below
        finally:
            if self._watchdog is not None:
                self._watchdog.cancel()
            if not ws.closed and self.request.transport is not None:
                self.request.transport.abort()


class RunningSim:
    """A started simulated exchange. Use `url`/`http_url`, then `await close()`."""

    def __init__(self, options: SimOptions) -> None:
        self.options = options
        self.exchange = Exchange(options, time.time())
        self.api = TradingApi(self.exchange)
        self.openalgo_api = OpenAlgoOrderApi(self.exchange, self.api)
        self.connections: dict[int, _Connection] = {}
        self.host = options.host
        self.port = 0
        self._runner: web.AppRunner | None = None
        self._loop_task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        """`ws://host:port`; append a path such as `/v2/iex` or `/stream`."""
        return f"ws://{self.host}:{self.port}"

    @property
    def http_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def _start(self) -> None:
        app = web.Application(client_max_size=_MAX_CLIENT_MESSAGE)
        for path in (*DATA_PATHS, TRADE_PATH, *ALLTICK_PATHS, OPENALGO_PATH):
            app.router.add_get(path, self._websocket)
        app.router.add_routes(admin_routes(self))
        app.router.add_route("*", "/v2/{tail:.*}", self._rest)
        app.router.add_route("*", OPENALGO_REST + "{tail:.*}", self._openalgo_rest)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None,
                                     shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.options.host, self.options.port)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        self._loop_task = asyncio.get_running_loop().create_task(self._market_loop())
        logger.debug("sim: listening on {}", self.url)

    async def close(self) -> None:
        """Stop the market, close every connection (1001 going away), unbind."""
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
            self._loop_task = None
        for conn in list(self.connections.values()):
            conn.request_close(1001, "sim shutting down", discard=True)
        writers = [conn.writer for conn in self.connections.values()]
        if writers:
            await asyncio.wait(writers, timeout=CLOSE_TIMEOUT)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def flush(self) -> None:
        """Hand every session's pending output to its connection."""
        for session in self.exchange.take_dirty():
            conn = self.connections.get(session.id)
            if conn is not None:
                conn.flush()

    def drop_all(self, *, abrupt: bool | None = None, code: int | None = None) -> int:
        """The drop fault: close every websocket now. Returns how many were open."""
        faults = self.exchange.faults
        abrupt = faults.abrupt if abrupt is None else abrupt
        code = faults.drop_code if code is None else code
        conns = list(self.connections.values())
        for conn in conns:
            if abrupt:
                conn.abort("dropped (abrupt)")
            else:
                conn.request_close(code, "dropped by the sim", discard=True)
        if conns:
            logger.info("sim: dropped {} connection(s){}", len(conns), " abruptly" * abrupt)
        return len(conns)

    async def _market_loop(self) -> None:
        exchange = self.exchange
        while True:
            try:
                now = time.time()
                if exchange.faults.drop_due(now):
                    self.drop_all()
                exchange.advance(now)
                self.flush()
            except Exception:  # keep the market alive; the traceback says what broke
                logger.exception("sim: market loop step failed")
            await asyncio.sleep(LOOP_INTERVAL)

    async def _websocket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(compress=False, max_msg_size=_MAX_CLIENT_MESSAGE,
                                   autoping=True)
        await ws.prepare(request)
        exchange = self.exchange
        codec = codec_for(request.headers.get("Content-Type"))
        session = exchange.open_session(request.path, codec, time.time(),
                                        request.query_string)
        conn: _Connection | None = None
        try:
            if exchange.faults.delay:
                await asyncio.sleep(exchange.faults.delay)
            conn = _Connection(ws, request, session, self.options.slow_client_bytes)
            self.connections[session.id] = conn
            conn.flush()
            async for message in ws:
                if message.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                    break
                if exchange.faults.delay:
                    await asyncio.sleep(exchange.faults.delay)
                session.receive(message.data, time.time())
                self.flush()
        finally:
            reason = conn.reason if conn is not None else "client closed"
            if conn is not None and conn.close_request is None:
                reason = f"client closed ({ws.close_code})"
            exchange.session_closed(session, reason, time.time())
            self.connections.pop(session.id, None)
            if conn is not None:
                conn.request_close(1000, reason, discard=True)
                with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                    await asyncio.wait_for(asyncio.shield(conn.writer), CLOSE_TIMEOUT)
        return ws

    async def _rest(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        delay = self.exchange.faults.delay
        if delay:
            await asyncio.sleep(delay)
        reply = self.api.handle(request.method, request.path, request.headers, request.query,
                                body, time.time())
        self.flush()
        if reply.body is None:
            return web.Response(status=reply.status, headers=reply.headers)
        return web.json_response(reply.body, status=reply.status, headers=reply.headers)

    async def _openalgo_rest(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        delay = self.exchange.faults.delay
        if delay:
            await asyncio.sleep(delay)
        reply = self.openalgo_api.handle(request.method, request.path, body, time.time())
        self.flush()
        return web.json_response(reply.body, status=reply.status, headers=reply.headers)


async def start(options: SimOptions | None = None) -> RunningSim:
    """Check the options, bind, start the market; SimConfigError or OSError if it cannot."""
    options = options or SimOptions()
    options.check()
    sim = RunningSim(options)
    await sim._start()
    return sim


class SimThread:
    """A simulated exchange on its own thread and event loop, for synchronous code.

    `with SimThread(SimOptions(...)) as sim:` binds before the body runs (`sim.port`,
    `sim.url`, `sim.http_url`) and stops the sim and joins the thread on exit.
    """

    def __init__(self, options: SimOptions | None = None) -> None:
        self.options = options or SimOptions()
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._sim: RunningSim | None = None
        self._error: BaseException | None = None

    def start(self, timeout: float = 10.0) -> SimThread:
        self._thread = threading.Thread(target=self._run, name="tradeops-sim", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError(f"the simulated exchange did not start within {timeout} s")
        if self._error is not None:
            self._thread.join(timeout)
            raise self._error
        return self

    def _run(self) -> None:
        loop = self._loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(self._main())
        finally:
            loop.close()

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        try:
            self._sim = await start(self.options)
        except BaseException as exc:  # handed to the thread that called start()
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            await self._sim.close()

    @property
    def sim(self) -> RunningSim:
        if self._sim is None:
            raise RuntimeError("SimThread is not started")
        return self._sim

    @property
    def port(self) -> int:
        return self.sim.port

    @property
    def url(self) -> str:
        return self.sim.url

    @property
    def http_url(self) -> str:
        return self.sim.http_url

    def close(self, timeout: float = 10.0) -> None:
        """Stop the sim and join its thread (idempotent)."""
        loop, stop, thread = self._loop, self._stop, self._thread
        if thread is None:
            return
        if loop is not None and stop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop may have just finished
                loop.call_soon_threadsafe(stop.set)
        thread.join(timeout)
        if thread.is_alive():
            raise TimeoutError("the simulated exchange thread did not stop")
        self._thread = None

    def __enter__(self) -> SimThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
