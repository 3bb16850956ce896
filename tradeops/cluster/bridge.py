"""`bridge-BROKER`: beside a gateway, its ticks out to NATS and other nodes' interest in.

Started by a node's supervisor as `python -m tradeops.cluster.bridge --topology FILE --name
bridge-BROKER --run-dir DIR --node NODE` when another node reads the broker (docs/cluster.md).

- **Ticks out.** A reader of the gateway's ring (it lags alone if NATS is slow: the gateway
  never waits for it) takes what was published and sends each read to each remote node
  holding a lease, on `tradeops.DESK.node.NODE.tick.BROKER`: the records of the symbols that
  node wants, as the ring holds them (wire.py), with the read's whole seq range, so only what
  a node asked for crosses to it and a message lost on the way is a gap it counts. With
  `settings.cluster.jetstream` each read also goes out split by symbol on
  `tradeops.DESK.tick.BROKER.SYM`, the subjects the broker's stream keeps.
- **Interest in.** A remote node asks on `tradeops.DESK.ctl.BROKER` with everything it wants
  (`{"node": N, "want": {SYMBOL: MODE}}`, again every second as its heartbeat). The bridge
  holds one gateway connection per remote node, so each node is one lease at the gateway,
  and brings its subscriptions to `want`. A node not heard for `settings.cluster.grace` loses
  its lease: the gateway releases its symbols as it does for any client that goes away.
- **Orders.** A remote node's heartbeat also names the groups whose hosts it serves; the
  bridge holds a gateway connection per such group, saying hello as that group, so the group
  owns its strategies' orders there exactly as a local host would. Order messages arrive as
  requests on `tradeops.DESK.order.BROKER` and go to the gateway on the group's connection;
  what the gateway tells the group (order updates, fills, the orders that survived) goes back
  on `tradeops.DESK.updates.BROKER.NODE.GROUP`. A group that leaves, or whose node falls
  silent past the grace, has its connection closed: the gateway applies the group's
  `auto_cancel`, as when a local host goes away.
- **Health.** The gateway's liveness goes out on `tradeops.DESK.health.BROKER`, on change and
  every second, so a remote node's strategies see the same safety gate as local ones.
- **History.** With `settings.cluster.jetstream` the bridge makes sure the broker's stream
  exists, bounded as configured (history.py), at start and after every reconnect: JetStream
  then keeps what the bridge publishes anyway. A server without JetStream is said plainly
  (in the log and the bridge's status) and retried; ticks flow regardless.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from loguru import logger

from tradeops.bus.batch import TickBatch
from tradeops.bus.books import BookReader
from tradeops.bus.reader import RingReader
from tradeops.cluster import history, subjects, wire
from tradeops.cluster.link import connect
from tradeops.gateway.client import GatewayClient, GatewayError
from tradeops.process import child
from tradeops.process.entry import RoleContext, run_role
from tradeops.protocol.modes import is_mode
from tradeops.protocol.tick import LayoutError, SymbolError, decode_symbol, encode_symbol

if TYPE_CHECKING:
    from nats.aio.client import Client
    from nats.aio.msg import Msg

READ_MAX = 4096
HEALTH_EVERY = 1.0
STATE_EVERY = 1.0
#: How often a stream that could not be made is tried again.
STREAM_RETRY = 5.0


#: (subject, payload) -> None: publish from any thread.
Publish = Callable[[str, bytes], None]


class GroupLink:
    """A remote group's own gateway connection (its orders), and the thread that passes
    what the gateway says to it back over NATS."""

    def __init__(self, socket_path: str, node: str, group: str, subject: str,
                 publish: Publish) -> None:
        self.client = GatewayClient(socket_path, f"host:{group}@{node}", group=group)
        self.subject = subject
        self._publish = publish
        self._closed = threading.Event()
        for message in self.client.poll(0.0):  # what came with the hello (its orders)
            self._pass(message)
        self._thread = threading.Thread(target=self._run, name=f"group-{group}@{node}",
                                        daemon=True)
        self._thread.start()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _pass(self, message: dict[str, Any]) -> None:
        if message.get("op") != "health":  # the remote tells its clients health itself
            self._publish(self.subject, json.dumps(message).encode())

    def _run(self) -> None:
        while not self._closed.is_set():
            try:
                messages = self.client.poll(0.2)
            except GatewayError:
                return
            for message in messages:
                self._pass(message)

    def send(self, message: dict[str, Any]) -> None:
        self.client.send(message)

    def close(self) -> None:
        self._closed.set()
        self.client.close()


@dataclass
class Lease:
    """A remote node at the gateway: one connection for its symbols, one per group."""

    node: str
    seen: float
    client: GatewayClient | None = None
    held: dict[str, str] = field(default_factory=dict)  # symbol -> mode subscribed
    #: The symbol fields the node wants: what its ticks are filtered by (set on the loop).
    wanted: frozenset[bytes] = frozenset()
    groups: dict[str, GroupLink] = field(default_factory=dict)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def join(self, socket_path: str, groups: list[str], desk: str, broker: str,
             publish: Publish) -> None:
        """Hold a gateway connection for exactly `groups` (blocking: run it on a thread).
        A group no longer named is closed: the gateway applies its auto-cancel."""
        for group in list(self.groups):
            if group not in groups or not self.groups[group].alive:
                logger.info("group '{}' of node '{}' leaves the gateway", group, self.node)
                self.groups.pop(group).close()
        for group in groups:
            if group not in self.groups:
                subject = subjects.updates(desk, broker, self.node, group)
                self.groups[group] = GroupLink(socket_path, self.node, group, subject,
                                               publish)

    def apply(self, socket_path: str, want: dict[str, str]) -> dict[str, Any]:
        """Bring the lease's subscriptions to `want` (blocking: run it on a thread); the
        gateway's per-symbol results of what was (re)subscribed. A connection the gateway
        closed (it restarted) is replaced, and everything wanted subscribed again."""
        if self.client is not None:
            try:
                self.client.poll(0.0)  # raises once the gateway has gone
            except GatewayError:
                self.client.close()
                self.client = None
        if self.client is None:
            self.client = GatewayClient(socket_path, f"node:{self.node}")
            self.held = {}
        gone = [s for s in self.held if s not in want]
        if gone:
            self.client.unsubscribe(gone)
            for symbol in gone:
                del self.held[symbol]
        by_mode: dict[str, list[str]] = {}
        for symbol, mode in want.items():
            if self.held.get(symbol) != mode:
                by_mode.setdefault(mode, []).append(symbol)
        results: dict[str, Any] = {}
        for mode, symbols in by_mode.items():
            reply = self.client.subscribe(symbols, mode)
            for symbol, result in reply.get("results", {}).items():
                results[symbol] = result
                if result.get("ok"):
                    self.held[symbol] = mode
        return results

    def close(self) -> None:
        for link in self.groups.values():
            link.close()
        self.groups = {}
        if self.client is not None:
            self.client.close()
            self.client = None
            self.held = {}


async def publish_read(nc: Client, desk: str, broker: str, epoch: int, batch: TickBatch,
                       nodes: Mapping[str, frozenset[bytes]] | None = None,
                       per_symbol: bool = True,
                       book_of: Callable[[bytes], wire.BookRow | None] | None = None) -> int:
    """One ring read onto NATS, with the read's seq range (wire.py); returns how many
    messages. To each node of `nodes` (node -> the 32-byte symbol fields it wants) one
    message of its symbols' records, empty when there are none, so its ranges follow on
    and a lost message is a gap it sees; with the newest book (`book_of`) of each symbol
    whose depth record is among them. With `per_symbol` (what a JetStream stream keeps)
    also a message per symbol."""
    first = batch.first_seq
    last = first + len(batch) - 1
    sent = 0
    for node, wanted in (nodes or {}).items():
        records = wire.only(batch.data, wanted) if wanted else b""
        books: list[wire.BookRow] = []
        if book_of is not None and records:
            books = [row for raw in wire.depth_symbols(records)
                     if (row := book_of(raw)) is not None]
        await nc.publish(subjects.node_ticks(desk, broker, node),
                         wire.encode(epoch, first, last, records, books))
        sent += 1
    if per_symbol:
        parts = wire.split_by_symbol(batch.data)
        for raw, records in parts.items():
            subject = subjects.ticks(desk, broker, decode_symbol(raw))
            await nc.publish(subject, wire.encode(epoch, first, last, records))
        sent += len(parts)
    return sent


class Bridge:
    def __init__(self, ctx: RoleContext) -> None:
        cluster = ctx.topology.settings.cluster
        assert cluster is not None  # placement starts a bridge only in a cluster
        self.ctx = ctx
        self.cluster = cluster
        self.desk = ctx.topology.name
        self.broker = ctx.spec.broker
        self.socket = str(ctx.paths.gateway_socket(self.broker))
        self.leases: dict[str, Lease] = {}
        self.published = 0
        self.messages = 0
        self.health: dict[str, Any] = {"live": False, "reason": "no word from the gateway yet"}
        self._health_client: GatewayClient | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._nc: Client | None = None
        #: The JetStream stream as last made sure of, or why it could not be ("" when off).
        self.history = ""
        self._stream_due = asyncio.Event()
        self._books: BookReader | None = None  # the gateway's book table, once needed

    async def run(self) -> int:
        nc = await connect(self.cluster, f"{self.desk}:{self.ctx.node}:bridge-{self.broker}",
                           on_state=self._on_nats)
        reader = await self._attach()
        try:
            self._loop = asyncio.get_running_loop()
            self._nc = nc
            if self.cluster.jetstream is not None:
                await self._ensure_stream(nc)  # before the first tick goes out
            await nc.subscribe(subjects.control(self.desk, self.broker), cb=self._on_control)
            await nc.subscribe(subjects.orders(self.desk, self.broker), cb=self._on_order)
            child.report_ready({"node": self.ctx.node,
                                "subject": subjects.ticks(self.desk, self.broker)})
            logger.info("bridging broker '{}' to NATS as {}", self.broker,
                        subjects.ticks(self.desk, self.broker))
            tasks = [asyncio.create_task(self._pump(nc, reader)),
                     asyncio.create_task(self._watch(nc))]
            if self.cluster.jetstream is not None:
                tasks.append(asyncio.create_task(self._keep_stream(nc)))
            while not self.ctx.stop.is_set() and not any(t.done() for t in tasks):
                await asyncio.sleep(0.1)
            for task in tasks:
                task.cancel()
            for task in tasks:
                if task.done() and not task.cancelled() and task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
        finally:
            for lease in self.leases.values():
                lease.close()
            if self._health_client is not None:
                self._health_client.close()
            if self._books is not None:
                self._books.close()
            await nc.drain()
        return 0

    def _book(self, raw: bytes) -> wire.BookRow | None:
        """The newest book of a symbol from the gateway's book table (opened when first
        needed, again after the gateway replaced it); None when it has none."""
        reader = self._books
        if reader is None or reader.stale():
            if reader is not None:
                reader.close()
            try:
                reader = self._books = BookReader(self.ctx.paths.bus, self.broker)
            except (FileNotFoundError, LayoutError):
                self._books = None
                return None
        try:
            book = reader.book(decode_symbol(raw))
        except (RuntimeError, SymbolError):
            return None
        if book is None:
            return None
        return (book.symbol, book.exchange_ns, book.receive_ns,
                [list(level) for level in book.bids], [list(level) for level in book.asks])

    async def _on_nats(self, connected: bool, why: str) -> None:
        if connected:  # a restarted server may have lost the stream: make sure of it again
            self._stream_due.set()

    async def _ensure_stream(self, nc: Client) -> bool:
        assert self.cluster.jetstream is not None
        try:
            name = await history.ensure_stream(nc.jetstream(), self.desk, self.broker,
                                               self.cluster.jetstream)
        except history.HistoryError as exc:
            why = f"no JetStream history of broker '{self.broker}': {exc}"
            if why != self.history:
                logger.error("{}", why)
            self.history = why
            return False
        if self.history != f"stream {name}":
            logger.info("ticks of broker '{}' are kept on JetStream, stream {}", self.broker,
                        name)
        self.history = f"stream {name}"
        return True

    async def _keep_stream(self, nc: Client) -> None:
        """The stream made sure of after every reconnect, and retried until it exists."""
        ok = self.history.startswith("stream ")
        while True:
            if ok:
                await self._stream_due.wait()
            else:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stream_due.wait(), STREAM_RETRY)
            self._stream_due.clear()
            if nc.is_connected:
                ok = await self._ensure_stream(nc)

    async def _attach(self) -> RingReader:
        """A reader of the gateway's ring, from what it publishes next (waits for the ring)."""
        while True:
            try:
                return RingReader(self.ctx.paths.bus, self.broker, start="newest",
                                  resync="oldest")
            except FileNotFoundError:
                if self.ctx.stop.is_set():
                    raise
                await asyncio.sleep(0.1)

    async def _pump(self, nc: Client, reader: RingReader) -> None:
        """Ring → NATS, until stopped; a new gateway (a new ring) is followed."""
        last_state = 0.0
        while True:
            batch = await asyncio.to_thread(reader.read_batch, READ_MAX, 0.05)
            if batch:
                nodes = {node: lease.wanted for node, lease in self.leases.items()}
                self.messages += await publish_read(
                    nc, self.desk, self.broker, reader.epoch, batch, nodes,
                    per_symbol=self.cluster.jetstream is not None, book_of=self._book)
                self.published += len(batch)
            elif reader.stale():
                logger.info("the gateway of '{}' replaced its ring (a new epoch); following",
                            self.broker)
                reader.close()
                reader = await self._attach()
            now = time.monotonic()
            if now - last_state >= STATE_EVERY:
                last_state = now
                child.write_state(self.ctx.paths.run_dir, self.ctx.spec.name, {
                    "published": self.published, "messages": self.messages,
                    "lost": reader.lost, "nodes": sorted(self.leases),
                    "nats": nc.is_connected, **({"history": self.history} if self.history
                                                else {})})

    async def _on_control(self, msg: Msg) -> None:
        """A node's request, answered even when handling it fails (nats-py would swallow the
        exception, and the node would see only a timeout)."""
        try:
            await self._control(msg)
        except Exception as exc:
            logger.exception("a node's request on broker '{}' failed", self.broker)
            with contextlib.suppress(Exception):
                await msg.respond(json.dumps({
                    "ok": False, "error": f"the bridge failed: {type(exc).__name__}: {exc}",
                }).encode())

    async def _control(self, msg: Msg) -> None:
        try:
            request = json.loads(msg.data)
            node = str(request["node"])
            want = {str(s): str(m) for s, m in dict(request["want"]).items()}
            groups = [str(g) for g in request.get("groups") or []]
            bad = sorted({m for m in want.values() if not is_mode(m)})
            if bad:
                raise ValueError(f"unknown mode(s) {bad}")
        except (ValueError, KeyError, TypeError) as exc:
            await msg.respond(json.dumps({"ok": False, "error": f"bad request: {exc}"}).encode())
            return
        lease = self.leases.get(node)
        if lease is None:
            lease = self.leases[node] = Lease(node, time.monotonic())
            logger.info("node '{}' takes a lease on broker '{}'", node, self.broker)
        lease.seen = time.monotonic()
        lease.wanted = frozenset(raw for s in want if (raw := _symbol_field(s)) is not None)
        async with lease.lock:
            try:
                results = await asyncio.to_thread(lease.apply, self.socket, want)
                await asyncio.to_thread(lease.join, self.socket, groups, self.desk,
                                        self.broker, self._publish)
                answer: dict[str, Any] = {"ok": True, "results": results, **self.health}
            except GatewayError as exc:
                lease.close()
                answer = {"ok": False, "error": f"the gateway of broker '{self.broker}' on "
                          f"node '{self.ctx.node}': {exc}", "live": False,
                          "reason": f"the gateway of broker '{self.broker}' is not running"}
        await msg.respond(json.dumps(answer).encode())

    def _publish(self, subject: str, payload: bytes) -> None:
        """Publish from a group's thread, on the loop."""
        loop, nc = self._loop, self._nc
        if loop is not None and nc is not None and not loop.is_closed():
            asyncio.run_coroutine_threadsafe(nc.publish(subject, payload), loop)

    async def _on_order(self, msg: Msg) -> None:
        """A remote host's order message, to the gateway on its group's connection."""
        try:
            request = json.loads(msg.data)
            node, group = str(request["node"]), str(request["group"])
            message = dict(request["message"])
        except (ValueError, KeyError, TypeError) as exc:
            await msg.respond(json.dumps({"ok": False, "error": f"bad request: {exc}"}).encode())
            return
        lease = self.leases.get(node)
        link = lease.groups.get(group) if lease is not None else None
        if link is None or not link.alive:
            error = (f"group '{group}' of node '{node}' holds no connection to the gateway of "
                     f"broker '{self.broker}' (its node was silent, or the gateway restarted)")
            await msg.respond(json.dumps({"ok": False, "error": error}).encode())
            return
        try:
            await asyncio.to_thread(link.send, message)
            answer: dict[str, Any] = {"ok": True}
        except GatewayError as exc:
            answer = {"ok": False, "error": f"the gateway of broker '{self.broker}': {exc}"}
        await msg.respond(json.dumps(answer).encode())

    async def _watch(self, nc: Client) -> None:
        """Health out every second; leases of silent nodes released."""
        while True:
            health = await asyncio.to_thread(self._read_health)
            self.health = health
            await nc.publish(subjects.health(self.desk, self.broker), json.dumps(health).encode())
            now = time.monotonic()
            for node, lease in list(self.leases.items()):
                if now - lease.seen > self.cluster.grace and not lease.lock.locked():
                    logger.warning("node '{}' not heard for {:g}s: releasing its subscriptions "
                                   "on broker '{}'", node, self.cluster.grace, self.broker)
                    lease.close()
                    del self.leases[node]
            await asyncio.sleep(HEALTH_EVERY)

    def _read_health(self) -> dict[str, Any]:
        """The gateway's liveness as its own clients see it (blocking: on a thread)."""
        try:
            if self._health_client is None:
                self._health_client = GatewayClient(self.socket, "bridge")
            client = self._health_client
            client.poll(0.0)
            live, reason = client.live
            return {"live": live, "reason": reason, "last_tick": client.last_tick}
        except GatewayError as exc:
            if self._health_client is not None:
                self._health_client.close()
            self._health_client = None
            return {"live": False, "reason": f"the gateway of broker '{self.broker}' is not "
                    f"reachable: {exc}", "last_tick": None}


def _symbol_field(symbol: str) -> bytes | None:
    try:
        return encode_symbol(symbol)
    except SymbolError:  # the gateway refuses it: no tick of it will come
        return None


def run_bridge(ctx: RoleContext) -> int:
    return asyncio.run(Bridge(ctx).run())


if __name__ == "__main__":
    sys.exit(run_role("bridge", run_bridge))

