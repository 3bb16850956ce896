"""The proxy's websocket server: dialects by path, one registry, one link per gateway.

Everything runs on one asyncio loop (the tick pumps hand batches over to it), so the
registry, the sessions and the fan-out need no locks. Routes, on one port:

    /                     native (first message {"op": "hello"}) or OpenAlgo (first message
                          {"action": "authenticate"}); native msgpack when the upgrade says
                          Content-Type: application/msgpack; a client silent for
                          ROOT_SILENCE is an Alpaca client waiting for the greeting and
                          gets the /v2/iex feed (the Alpaca proxy agent's habit)
    /v2/iex /v2/sip /v2/test /v1beta3/crypto/us    Alpaca market data

Any other path is refused with HTTP 404 at the upgrade, and connections beyond
``max_clients`` with 503, so a scan costs nothing. Messages larger than ``max_message`` close
the connection (1009) as the websockets library enforces it. Each client's requests are
handled in order; while the gateway answers one, its next message waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, replace
from http import HTTPStatus
from typing import Any, Final

from loguru import logger
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from tradeops.bus.books import BookReader
from tradeops.bus.table import TableReader
from tradeops.protocol.alpaca_server import AlpacaDataSession
from tradeops.protocol.book import Book
from tradeops.protocol.codec import Codec, codec_for, decode
from tradeops.protocol.downstream import (
    Cache,
    DownstreamSession,
    Key,
    NeedChange,
    Result,
    SessionConfig,
)
from tradeops.protocol.native import NativeSession, is_native
from tradeops.protocol.openalgo import OpenAlgoSession, is_openalgo
from tradeops.protocol.tick import Tick, decode_symbol, encode_symbol
from tradeops.proxy.config import ALPACA_PATHS, ProxyConfig
from tradeops.proxy.connection import ClientSocket, Connection
from tradeops.proxy.link import GatewayLink
from tradeops.proxy.registry import Registry, Step

#: A client of the root path that says nothing this long is an Alpaca client waiting for the
#: greeting (alpaca-py with `url_override="ws://host:8765"`, as proxy-agent users have it):
#: it is served the Alpaca feed of /v2/iex. Native and OpenAlgo clients speak first.
ROOT_SILENCE: Final = 0.5
ROOT_ALPACA: Final = "/v2/iex"

#: Longest a client's request waits for the gateway before it is answered `queued`.
REQUEST_TIMEOUT: Final = 15.0
#: How often auth deadlines are checked.
TIMER_INTERVAL: Final = 0.5


@dataclass
class ProxyStats:
    accepted: int = 0
    rejected: int = 0  # refused at the upgrade: unknown path or too many clients
    refused_tokens: int = 0
    errors: int = 0  # malformed or refused messages
    dropped_slow: int = 0
    replaced: int = 0  # ticks conflation replaced, of closed connections
    sent: int = 0  # messages written, of closed connections
    ticks_in: int = 0


class ProxyServer:
    def __init__(self, config: ProxyConfig) -> None:
        self.config = config
        self.registry = Registry(config.brokers)
        self.links = {
            b: GatewayLink(b, s, config.bus, self) for b, s in config.sockets.items()
        }
        self.conns: dict[int, Connection] = {}
        self.stats = ProxyStats()
        self.url = ""
        self.port = 0
        self._next_id = 0
        self._server: Server | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._tables: dict[str, TableReader] = {}
        self._books: dict[str, BookReader] = {}
        self._symbols_due = False  # a `_sync_symbols` is scheduled
        self._encoded: dict[str, bytes] = {}  # symbol -> its raw field, as the ring has it

    # -- lifetime ---------------------------------------------------------------------------------
    async def start(self, port: int | None = None) -> None:
        """Bind (on `port`, else the configured one) and start linking to the gateways."""
        context = None
        if self.config.tls:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*self.config.tls)
        self._server = await serve(
            self._handle, self.config.host, self.config.port if port is None else port,
            process_request=self._admit, ssl=context, compression=None,
            create_connection=ClientSocket,
            max_size=self.config.max_message, max_queue=16, close_timeout=2.0,
            ping_interval=20, ping_timeout=20,
        )  # fmt: skip
        sockname = next(iter(self._server.sockets)).getsockname()
        self.port = int(sockname[1])
        host = self.config.host
        shown = f"[{host}]" if ":" in host else host
        self.url = f"{self.config.scheme}://{shown}:{self.port}"
        for link in self.links.values():
            self._tasks.append(asyncio.get_running_loop().create_task(link.run()))
        self._tasks.append(asyncio.get_running_loop().create_task(self._timer()))

    async def close(self) -> None:
        """Close every client (1001 going away), then the gateway links and bus readers."""
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), 5.0)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for link in self.links.values():
            link.stop()
        await asyncio.get_running_loop().run_in_executor(None, self._join_pumps)
        for table in self._tables.values():
            table.close()
        for books in self._books.values():
            books.close()

    def _join_pumps(self) -> None:
        for link in self.links.values():
            link.join(2.0)

    # -- connections ------------------------------------------------------------------------------
    def _admit(self, connection: ServerConnection, request: Request) -> Response | None:
        path = request.path.split("?", 1)[0]
        if not self.config.serves(path):
            self.stats.rejected += 1
            return connection.respond(HTTPStatus.NOT_FOUND, f"no websocket endpoint at {path}\n")
        if len(self.conns) >= self.config.max_clients:
            self.stats.rejected += 1
            return connection.respond(HTTPStatus.SERVICE_UNAVAILABLE, "too many clients\n")
        return None

    async def _handle(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        self._next_id += 1
        path = ws.request.path.split("?", 1)[0] or "/"
        assert isinstance(ws, ClientSocket)  # serve(create_connection=ClientSocket)
        conn = Connection(self._next_id, ws, path)
        ws.on_close_frame = lambda: self._client_closed(conn)
        self.conns[conn.id] = conn
        self.stats.accepted += 1
        codec = codec_for(ws.request.headers.get("Content-Type"))
        first: str | bytes | None = None
        if path in ALPACA_PATHS:
            self._attach(conn, AlpacaDataSession(self._session_config(path), _now(), path, codec))
        else:  # the root: whoever speaks first is native or OpenAlgo; silence is Alpaca
            try:
                first = await asyncio.wait_for(ws.recv(), ROOT_SILENCE)
            except TimeoutError:
                self._attach(conn, AlpacaDataSession(self._session_config(ROOT_ALPACA), _now(),
                                                     ROOT_ALPACA, codec))
            except ConnectionClosed:
                self._forget(conn)
                return
            if first is not None and codec is Codec.MSGPACK:
                self._attach(conn, NativeSession(self._session_config(path), _now(), codec))
        ours = False  # who ends it: we (an error, a slow client) or the client
        try:
            async for payload in _then(first, ws):
                if conn.session is None:
                    self._attach(conn, self._detect(path, payload))
                session = conn.session
                assert session is not None
                before = (session.refused, session.errors)
                change = session.receive(payload, _now())
                self.stats.refused_tokens += session.refused - before[0]
                self.stats.errors += session.errors - before[1]
                if change is not None:
                    await self._apply(conn, change)
                conn.flush()
                if session.closing is not None or conn.dropped:
                    ours = True
                    break
        except ConnectionClosed:
            pass
        finally:
            self._forget(conn)
            if ours:  # what is queued (the error saying why) goes out before the close
                conn.close(1000, "bye")
            else:  # the client left: nothing queued can reach it
                conn.closed_by_client()
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(conn.writer), 5.0)

    def _client_closed(self, conn: Connection) -> None:
        """The client's close frame arrived: release its lease and drop its outbox now,
        not when its TCP connection ends."""
        conn.closed_by_client()
        self._forget(conn)

    def _session_config(self, path: str) -> SessionConfig:
        return replace(self.config.session_config(path), book=self._book)

    def _detect(self, path: str, first: str | bytes) -> DownstreamSession:
        """The root path's dialect, told by the first message (a native session answers
        anything else with an error that says what to send)."""
        try:
            message = decode(first, Codec.JSON)
        except ValueError:
            message = None
        if is_openalgo(message) and not is_native(message):
            return OpenAlgoSession(self._session_config(path), _now())
        return NativeSession(self._session_config(path), _now())

    def _attach(self, conn: Connection, session: DownstreamSession) -> None:
        conn.session = session
        session.open(_now())
        for broker, link in self.links.items():
            session.health(broker, *link.live)
        conn.flush()

    def _forget(self, conn: Connection) -> None:
        if self.conns.pop(conn.id, None) is None:
            return
        self.stats.sent += conn.sent
        self.stats.replaced += conn.replaced
        self._carry(self.registry.drop(conn.id))

    async def _apply(self, conn: Connection, change: NeedChange) -> None:
        """Apply a session's change to the registry; wait (bounded) for every answer."""
        conn.waiting = dict.fromkeys(change.wants)
        conn.answered.clear()
        for (broker, symbol), mode in change.wants.items():
            self._carry(self.registry.want(conn.id, broker, symbol, mode))
        if any(r is None for r in conn.waiting.values()):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(conn.answered.wait(), REQUEST_TIMEOUT)
        late = "the gateway has not answered yet; ticks flow once it accepts"
        results = {k: r or Result(True, late, True) for k, r in conn.waiting.items()}
        conn.waiting = None
        session = conn.session
        assert session is not None
        session.resolved(results)
        for key, result in results.items():
            if result.ok and change.wants[key] is not None:
                session.seed(key, *self._latest(key))

    def _book(self, broker: str, symbol: str) -> Book | None:
        """The newest book of a symbol from its broker's book table (None: none yet)."""
        books = self._books.get(broker)
        if books is None or books.stale():
            try:
                books = self._books[broker] = BookReader(self.config.bus, broker)
            except (FileNotFoundError, OSError, ValueError):
                return None
        return books.book(symbol)

    def _latest(self, key: Key) -> tuple[Tick | None, Tick | None]:
        broker, symbol = key
        table = self._tables.get(broker)
        if table is None or table.stale():
            try:
                table = self._tables[broker] = TableReader(self.config.bus, broker)
            except (FileNotFoundError, OSError, ValueError):
                return None, None
        return table.last_trade(symbol), table.last_quote(symbol)

    # -- the registry's decisions -----------------------------------------------------------------
    def _carry(self, step: Step) -> None:
        if not self._symbols_due:  # once per loop pass, however many changes it made
            self._symbols_due = True
            try:
                asyncio.get_running_loop().call_soon(self._sync_symbols)
            except RuntimeError:  # no loop runs (a caller outside one): now
                self._sync_symbols()
        for request in step.requests:
            self.links[request.broker].send(request.message())
        for answer in step.answers:
            conn = self._conn(answer.client)
            if conn is None:
                continue
            key = (answer.broker, answer.symbol)
            result = Result(answer.ok, answer.reason, answer.queued)
            if conn.waiting is not None and conn.waiting.get(key, result) is None:
                conn.waiting[key] = result
                if all(r is not None for r in conn.waiting.values()):
                    conn.answered.set()
            elif not answer.ok and conn.session is not None:  # refused after we stopped waiting
                conn.session.lost(key, answer.reason)
                conn.flush()
        for lost in step.lost:
            conn = self._conn(lost.client)
            if conn is not None and conn.session is not None:
                conn.session.lost((lost.broker, lost.symbol), lost.reason)
                conn.flush()

    def _sync_symbols(self) -> None:
        """Tell each tick pump the symbols clients hold now: it reads only those."""
        self._symbols_due = False
        encoded = self._encoded
        for broker, link in self.links.items():
            wanted = []
            for symbol in self.registry.symbols(broker):
                raw = encoded.get(symbol)
                if raw is None:
                    raw = encoded[symbol] = encode_symbol(symbol)
                wanted.append(raw)
            link.want(frozenset(wanted))

    def _conn(self, client: object) -> Connection | None:
        """The connection a registry client id names (ids are the connections' ints)."""
        return self.conns.get(client) if isinstance(client, int) else None

    # -- LinkEvents -------------------------------------------------------------------------------
    def link_up(self, broker: str) -> None:
        self._carry(self.registry.link_up(broker))

    def link_down(self, broker: str, reason: str) -> None:
        self._carry(self.registry.link_down(broker, reason))
        self._health(broker, False, reason)

    def gateway_message(self, broker: str, message: dict[str, Any]) -> None:
        op = message.get("op")
        if op == "reply" and isinstance(message.get("id"), int):
            self._carry(self.registry.replied(broker, message["id"], message))
        elif op == "health":
            self._health(broker, bool(message.get("live")), str(message.get("reason", "")))
        elif op == "event" and message.get("kind") == "lost":
            symbol, reason = str(message.get("symbol")), str(message.get("reason", ""))
            self._carry(self.registry.lost(broker, symbol, reason))

    def _health(self, broker: str, live: bool, reason: str) -> None:
        for conn in list(self.conns.values()):
            if conn.session is not None:
                conn.session.health(broker, live, reason)
                conn.flush()

    def deliver(self, broker: str, ticks: list[Tick]) -> None:
        """Fan a batch out: the ticks grouped by symbol once, each symbol's encoded once per
        (message format, kinds wanted), and each client handed the ready items of the
        symbols it holds, merged back into the gateway's order."""
        self.stats.ticks_in += len(ticks)
        holders = self.registry.holders
        groups, per_client = fan_out(ticks, lambda raw: holders(broker, decode_symbol(raw)))
        cache: Cache = {}
        bound = self.config.queue
        for client, symbols in per_client.items():
            conn = self.conns.get(client)
            if conn is None or conn.session is None or conn.dropped:
                continue
            try:
                if conn.conflated is not None:
                    conn.conflate(broker, [tick for raw in symbols for tick in groups[raw]])
                    continue
                n = conn.session.symbol_ticks(broker, symbols, groups, cache)
                if n:
                    conn.push(conn.session.take(), n)
                    if conn.queued > bound:
                        self._overflow(conn)
            except Exception as exc:  # a bug one client's session ran into: that client is
                # closed (1011, internal error), every other one still gets this batch
                self._failed(conn, exc)

    def _failed(self, conn: Connection, exc: Exception) -> None:
        self.stats.errors += 1
        logger.opt(exception=exc).error(
            f"proxy: delivering to client {conn.id} ({conn.peer}) failed: "
            f"{type(exc).__name__}: {exc}; closing it")
        conn.dropped = True
        with contextlib.suppress(Exception):
            conn.close(1011, "internal error", discard=True)
        self._forget(conn)

    def _overflow(self, conn: Connection) -> None:
        if self.config.slow_client == "conflate":
            conn.conflated = {}
            return
        self.stats.dropped_slow += 1
        logger.warning("proxy: client {} ({}) is too slow ({} messages queued); dropped",
                       conn.id, conn.peer, conn.queued)
        conn.dropped = True
        conn.outbox.clear()
        conn.queued = 0
        session = conn.session
        assert session is not None
        session.slow()
        conn.flush()
        self._forget(conn)

    async def _timer(self) -> None:
        while True:
            await asyncio.sleep(TIMER_INTERVAL)
            now = _now()
            for conn in list(self.conns.values()):
                if conn.session is None:
                    if time.time() - conn.since >= self.config.auth_timeout:
                        conn.close(1008, "auth timeout")
                    continue
                conn.session.check_timeout(now)
                conn.flush()

    # -- status -----------------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        conns = list(self.conns.values())
        dialects: dict[str, int] = {}
        for conn in conns:
            name = conn.session.dialect if conn.session else "unknown"
            dialects[name] = dialects.get(name, 0) + 1
        return {
            "url": self.url,
            "port": self.port,
            "clients": len(conns),
            "dialects": dialects,
            "subscriptions": {
                f"{b}:{s}:{m}": n for (b, s, m), n in sorted(self.registry.subscriptions().items())
            },
            "messages_out": self.stats.sent + sum(c.sent for c in conns),
            "ticks_in": self.stats.ticks_in,
            "dropped_slow": self.stats.dropped_slow,
            "conflated": self.stats.replaced + sum(c.replaced for c in conns),
            "refused_tokens": self.stats.refused_tokens,
            "errors": self.stats.errors,
            "rejected": self.stats.rejected,
            "accepted": self.stats.accepted,
            "gateways": {
                b: {
                    "connected": link.connected,
                    "live": link.live[0],
                    "reason": link.live[1],
                    "reconnects": link.reconnects,
                    "lost": link.lost,
                    "held": len(self.registry.held(b)),
                    "last_error": link.last_error,
                }
                for b, link in self.links.items()
            },
            "client_list": [c.describe() for c in conns],
        }


_now: Callable[[], float] = time.monotonic


async def _then(first: str | bytes | None, ws: ServerConnection
                ) -> AsyncIterator[str | bytes]:
    """The client's messages: `first` (already read, if any), then the rest."""
    if first is not None:
        yield first
    async for payload in ws:
        yield payload


def fan_out(ticks: list[Tick], holders: Callable[[bytes], Iterable[Any]]
            ) -> tuple[dict[bytes, list[Tick]], dict[Any, list[bytes]]]:
    """A batch's ticks grouped by raw symbol (in the gateway's order), and per client the raw
    symbols it holds: what `ProxyServer.deliver` hands each session (fanout_bench runs it as
    is)."""
    groups: dict[bytes, list[Tick]] = {}
    for tick in ticks:
        group = groups.get(tick.symbol_bytes)
        if group is None:
            groups[tick.symbol_bytes] = [tick]
        else:
            group.append(tick)
    per_client: dict[Any, list[bytes]] = {}
    for raw in groups:
        for client in holders(raw):
            symbols = per_client.get(client)
            if symbols is None:
                per_client[client] = [raw]
            else:
                symbols.append(raw)
    return groups, per_client
