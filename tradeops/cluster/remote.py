"""`remote-BROKER`: a gateway's stand-in on a node where that gateway does not run.

Started by a node's supervisor as `python -m tradeops.cluster.remote --topology FILE --name
remote-BROKER --run-dir DIR --node NODE` (docs/cluster.md). It takes the gateway's place on
this node, with the same socket path and ring and table names, so the hosts, the proxy and
the recorder here work unchanged:

- **Its socket** speaks the gateway's client protocol (docs/gateway.md) for market data:
  hello, subscribe, unsubscribe, status, health. Each local client's interest is its lease
  here; the node's whole interest (per symbol, the strongest mode any local client holds)
  goes to the gateway's node as one request (`tradeops.DESK.ctl.BROKER`), sent again every
  second as the node's heartbeat, so the gateway holds one lease for this node.
- **Orders.** The heartbeat also names the groups whose hosts are connected here; the bridge
  holds a gateway connection per group (so the gateway applies a group's `auto_cancel` when
  it leaves or its node falls silent). A host's order messages go to the bridge as requests
  (`tradeops.DESK.order.BROKER`); one that cannot be delivered is refused here with the
  reason. What the gateway tells the group comes back on
  `tradeops.DESK.updates.BROKER.NODE.GROUP` and goes to that group's host.
- **Its ring** is written with the records the gateway's bridge sends this node (those of
  the symbols its clients want), with their own seq numbers (`TickRing.write_records`): the
  seqs of other symbols are hole records a reader passes over, and a message lost between the
  nodes (its range does not follow on from the last) is counted in `gaps` and logged.
- **Health.** Clients are told the gateway's liveness as its bridge publishes it, and not
  live while NATS or the gateway's bridge is unreachable, with the reason.

- **History.** With `settings.cluster.jetstream` its hello says so (`bus.history`), and it
  answers `{"op": "history", "from": SEQ, "to": SEQ}` with the records of its epoch the
  gateway's JetStream stream holds in that range (base64, in seq order, at most
  HISTORY_CHUNK of them; `next` is where to ask again): a host restarted with `resume:
  replay` catches up there on what the local ring no longer holds (runtime/catchup.py).

A new epoch upstream (the gateway restarted) ends this process so the supervisor starts a
new one: a new local ring, which the hosts re-attach to as after a local gateway restart.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import sys
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from loguru import logger

from tradeops.bus.books import BookTableFullError
from tradeops.bus.layout import DEFAULT_CAPACITY
from tradeops.bus.shm import BusSpaceError
from tradeops.bus.space import create_bus
from tradeops.cluster import history, subjects, wire
from tradeops.cluster.link import connect
from tradeops.process import child
from tradeops.process.entry import RoleContext, run_role
from tradeops.protocol.modes import MODE_HELP, Mode, is_mode, strongest
from tradeops.protocol.ndjson import LineDecoder, Malformed, encode
from tradeops.protocol.tick import RECORD_SIZE, SymbolError, encode_symbol
from tradeops.topology.plan import groups

if TYPE_CHECKING:
    from nats.aio.client import Client
    from nats.aio.msg import Msg

HEARTBEAT = 1.0
REQUEST_TIMEOUT = 2.0
#: Health older than this (the bridge publishes every second) means the bridge is gone.
HEALTH_STALE = 3.0
ORDER_OPS = ("order", "cancel", "cancel_all", "orders")
#: Records per history answer: their base64 stays well inside a socket line (1 MiB).
HISTORY_CHUNK = 2048


@dataclass
class Local:
    """A client of this stand-in: its writer and what it subscribed."""

    name: str
    writer: asyncio.StreamWriter
    interest: dict[str, Mode] = field(default_factory=dict)
    group: str | None = None  # a strategy host's process group (owner of its orders)


class Remote:
    def __init__(self, ctx: RoleContext) -> None:
        cluster = ctx.topology.settings.cluster
        assert cluster is not None  # placement starts a remote only in a cluster
        self.ctx = ctx
        self.cluster = cluster
        self.desk = ctx.topology.name
        self.broker = ctx.spec.broker
        self.node = ctx.node
        self.socket = str(ctx.paths.gateway_socket(self.broker))
        self.clients: list[Local] = []
        self.epoch: int | None = None
        self.failed = ""
        self.written = 0
        self.nats_up = False
        self.bridge_reason = "no answer from the gateway's node yet"  # "" once it answers
        self.upstream: dict[str, Any] = {"live": False, "reason": "no health report yet"}
        self.upstream_at = 0.0
        self.told: tuple[bool, str] | None = None
        self.next_seq = 0  # the first seq of the next read expected from the bridge (0: any)
        self.gaps = 0  # seqs of reads that never arrived (messages lost between the nodes)
        self._want_lock = asyncio.Lock()
        self._nats: Client | None = None
        self.groups = {g.name for g in groups(ctx.topology)}
        node = cluster.nodes.get(self.node)
        capacity = (node.ring_capacity if node is not None else None) or DEFAULT_CAPACITY
        # The books table holds depth subscribers' books here, as the gateway's bridge sends
        # them. BusSpaceError when /dev/shm has no room (nothing of it is left behind).
        self.table, self.books, self.ring = create_bus(ctx.paths.bus, self.broker, capacity)
        self.replayed = 0  # records handed to hosts from JetStream

    # -- the process ------------------------------------------------------------------------
    async def run(self) -> int:
        nc = await connect(self.cluster, f"{self.desk}:{self.node}:remote-{self.broker}",
                           on_state=self._on_nats)
        self._nats = nc
        self.nats_up = True
        server: asyncio.AbstractServer | None = None
        try:
            await nc.subscribe(subjects.node_ticks(self.desk, self.broker, self.node),
                               cb=self._on_ticks)
            await nc.subscribe(subjects.health(self.desk, self.broker), cb=self._on_health)
            await nc.subscribe(subjects.updates(self.desk, self.broker, self.node),
                               cb=self._on_update)
            if os.path.exists(self.socket):
                os.unlink(self.socket)
            old_umask = os.umask(0o177)
            try:
                server = await asyncio.start_unix_server(self._serve, path=self.socket)
            finally:
                os.umask(old_umask)
            await self._send_want(nc)
            child.report_ready({"socket": self.socket, "ring": self.ring.name,
                                "node": self.node})
            logger.info("standing in for the gateway of broker '{}' on node '{}'",
                        self.broker, self.node)
            last_beat = time.monotonic()
            while not self.ctx.stop.is_set() and not self.failed:
                await asyncio.sleep(0.05)
                now = time.monotonic()
                if now - last_beat >= HEARTBEAT:
                    last_beat = now
                    await self._send_want(nc)
                    self._write_state()
                await self._tell_health()
        finally:
            if server is not None:
                server.close()
            for client in self.clients:
                client.writer.close()
            with contextlib.suppress(Exception):
                await nc.drain()
            self.ring.close()
            self.table.close()
            self.books.close()
        if self.failed:
            logger.warning("{}", self.failed)
            return 1
        return 0

    def _write_state(self) -> None:
        child.write_state(self.ctx.paths.run_dir, self.ctx.spec.name, {
            "written": self.written, "cursor": self.ring.cursor, "epoch": self.epoch,
            "gaps": self.gaps,
            "clients": len(self.clients), "symbols": len(self._want()),
            "live": self._health()[0], "reason": self._health()[1],
            **({"replayed": self.replayed} if self.cluster.jetstream is not None else {})})

    # -- NATS -------------------------------------------------------------------------------
    async def _on_nats(self, connected: bool, why: str) -> None:
        self.nats_up = connected

    async def _on_ticks(self, msg: Msg) -> None:
        try:
            batch = wire.decode(msg.data)
        except wire.WireError as exc:
            logger.error("dropped a message on {}: {}", msg.subject, exc)
            return
        if self.epoch is None:
            self.epoch = batch.epoch
        elif batch.epoch != self.epoch:
            self.failed = (f"the gateway of broker '{self.broker}' started anew (a new bus "
                           "epoch); restarting so local readers attach to a new ring")
            return
        if self.next_seq and batch.first > self.next_seq:
            lost = batch.first - self.next_seq
            self.gaps += lost
            logger.warning("seqs {}-{} of broker '{}' never reached this node (a message lost "
                           "between the nodes: NATS dropped it, or the bridge restarted); "
                           "the ring shows them as a gap", self.next_seq, batch.first - 1,
                           self.broker)
        self.next_seq = max(self.next_seq, batch.last + 1)
        for symbol, exchange_ns, receive_ns, bids, asks in batch.books:
            # Before the records: a host that reads a depth record finds its book here.
            with contextlib.suppress(SymbolError, BookTableFullError, ValueError, TypeError):
                self.books.write(encode_symbol(symbol), exchange_ns, receive_ns,
                                 [(float(p), float(s)) for p, s in bids],
                                 [(float(p), float(s)) for p, s in asks])
        self._write(batch.records)

    def _write(self, records: bytes) -> None:
        if records:
            self.ring.write_records(records)
            self.written += len(records) // RECORD_SIZE

    async def _on_health(self, msg: Msg) -> None:
        with contextlib.suppress(ValueError, TypeError):
            self.upstream = dict(json.loads(msg.data))
            self.upstream_at = time.monotonic()

    async def _on_update(self, msg: Msg) -> None:
        """What the gateway told a group: to that group's host here."""
        group = msg.subject.rsplit(".", 1)[-1]
        try:
            message = dict(json.loads(msg.data))
        except (ValueError, TypeError):
            return
        for client in self.clients:
            if client.group == group:
                self._send(client, message)

    def _want(self) -> dict[str, Mode]:
        held: dict[str, list[Mode]] = {}
        for client in self.clients:
            for symbol, mode in client.interest.items():
                held.setdefault(symbol, []).append(mode)
        want: dict[str, Mode] = {}
        for symbol, modes in held.items():
            best = strongest(modes)
            if best is not None:
                want[symbol] = best
        return want

    async def _send_want(self, nc: Client) -> dict[str, Any] | None:
        """This node's whole interest to the gateway's bridge: its lease and heartbeat. The
        per-symbol results of what changed; None when the bridge did not answer."""
        async with self._want_lock:
            groups = sorted({c.group for c in self.clients if c.group is not None})
            request = json.dumps({"node": self.node, "want": self._want(),
                                  "groups": groups}).encode()
            try:
                reply: Msg = await nc.request(subjects.control(self.desk, self.broker),
                                              request, timeout=REQUEST_TIMEOUT)
                answer = dict(json.loads(reply.data))
            except Exception as exc:  # timeout, no responders, NATS down: all mean unreachable
                self.bridge_reason = (f"the gateway of broker '{self.broker}' is unreachable "
                                      f"over NATS ({type(exc).__name__})")
                return None
        if not answer.get("ok"):
            self.bridge_reason = str(answer.get("error") or "the gateway's node refused")
            return None
        self.bridge_reason = ""
        results: dict[str, Any] = answer.get("results") or {}
        return results

    def _health(self) -> tuple[bool, str]:
        if not self.nats_up:
            return False, "NATS is unreachable"
        if self.bridge_reason:
            return False, self.bridge_reason
        if time.monotonic() - self.upstream_at > HEALTH_STALE:
            return False, f"no health report of broker '{self.broker}' over NATS"
        return bool(self.upstream.get("live")), str(self.upstream.get("reason") or "")

    async def _tell_health(self) -> None:
        live = self._health()
        if live == self.told:
            return
        self.told = live
        message = {"op": "health", "live": live[0], "reason": live[1],
                   "last_tick": self.upstream.get("last_tick")}
        for client in list(self.clients):
            self._send(client, message)

    # -- the local socket -------------------------------------------------------------------
    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        client = Local("?", writer)
        self.clients.append(client)
        lines = LineDecoder()
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                for message in lines.feed(data):
                    if isinstance(message, Malformed):
                        self._send(client, {"op": "error", "error": message.reason})
                        continue
                    await self._handle(client, message)
        except (ConnectionError, OSError):
            pass
        finally:
            self.clients.remove(client)
            writer.close()
            if client.interest or client.group:  # its lease here: released upstream too
                await self._send_want(self._nc())

    def _nc(self) -> Client:
        assert self._nats is not None  # clients are served only once NATS is connected
        return self._nats

    def _send(self, client: Local, message: dict[str, Any]) -> None:
        with contextlib.suppress(ConnectionError, OSError, RuntimeError):
            client.writer.write(encode(message))

    async def _handle(self, client: Local, msg: dict[str, Any]) -> None:
        op, rid = msg.get("op"), msg.get("id")
        if op == "hello":
            client.name = str(msg.get("client", "?"))
            self._send(client, {"op": "hello", "ok": True, "broker": self.broker, "v": 1,
                                "bus": {"ring": self.ring.name, "table": self.table.name,
                                        "history": self.cluster.jetstream is not None},
                                "node": self.node})
            live = self._health()
            self._send(client, {"op": "health", "live": live[0], "reason": live[1],
                                "last_tick": self.upstream.get("last_tick")})
            group = msg.get("group")
            if isinstance(group, str) and group in self.groups:
                client.group = group
                await self._send_want(self._nc())  # the bridge joins as the group
        elif op in ("subscribe", "unsubscribe"):
            await self._subscription(client, op, rid, msg)
        elif op == "status":
            live = self._health()
            self._send(client, {"op": "reply", "id": rid, "ok": True, "status": {
                "broker": self.broker, "node": self.node, "live": live[0],
                "reason": live[1], "symbols": len(self._want()),
                "clients": len(self.clients), "ticks": self.written}})
        elif op in ORDER_OPS:
            await self._order(client, str(op), rid, msg)
        elif op == "history":
            self._send(client, {"op": "reply", "id": rid, **await self._history(msg)})
        else:
            self._send(client, {"op": "reply", "id": rid, "ok": False,
                                "error": f"{op!r} is not served on a remote node; run it on "
                                         f"the node of broker '{self.broker}'"})

    async def _history(self, msg: dict[str, Any]) -> dict[str, Any]:
        """Records of this epoch from the gateway's JetStream stream, for a host catching up."""
        if self.cluster.jetstream is None:
            return {"ok": False, "error": "no history: settings.cluster.jetstream is off"}
        try:
            first, last = int(msg["from"]), int(msg["to"])
        except (KeyError, TypeError, ValueError):
            return {"ok": False, "error": "history needs integer 'from' and 'to' seqs"}
        if self.epoch is None:
            return {"ok": False, "error": "no tick of the gateway has arrived yet"}
        try:
            records, after = await history.fetch(self._nc().jetstream(), self.desk,
                                                 self.broker, self.epoch, first, last,
                                                 HISTORY_CHUNK)
        except history.HistoryError as exc:
            return {"ok": False, "error": f"JetStream history of broker '{self.broker}': {exc}"}
        self.replayed += len(records) // RECORD_SIZE
        return {"ok": True, "records": base64.b64encode(records).decode("ascii"),
                "next": after}

    async def _order(self, client: Local, op: str, rid: Any, msg: dict[str, Any]) -> None:
        """An order message to the gateway's node; refused here when it cannot get there."""
        error = ""
        if client.group is None:
            error = "only a strategy host's group places orders"
        else:
            request = json.dumps({"node": self.node, "group": client.group,
                                  "message": msg}).encode()
            try:
                reply = await self._nc().request(subjects.orders(self.desk, self.broker),
                                                 request, timeout=REQUEST_TIMEOUT)
                answer = dict(json.loads(reply.data))
                error = "" if answer.get("ok") else str(answer.get("error"))
            except Exception as exc:  # timeout, no responders, NATS down
                error = (f"the gateway of broker '{self.broker}' is unreachable over NATS "
                         f"({type(exc).__name__})")
        if not error:
            return
        logger.warning("refused {} of {}: {}", op, client.name, error)
        if op == "order":
            order = {k: msg.get(k) for k in ("order_id", "symbol", "side", "qty", "limit",
                                              "tif")}
            self._send(client, {"op": "order_update", "strategy": msg.get("strategy"),
                                "event": "rejected", "reason": error,
                                "order": {**order, "status": "rejected"}, "position": 0.0})
        elif rid is not None:
            self._send(client, {"op": "reply", "id": rid, "ok": False, "error": error})

    async def _subscription(self, client: Local, op: str, rid: Any,
                            msg: dict[str, Any]) -> None:
        symbols = [str(s) for s in msg.get("symbols") or []]
        if op == "unsubscribe":
            for symbol in symbols:
                client.interest.pop(symbol, None)
            await self._send_want(self._nc())
            self._send(client, {"op": "reply", "id": rid, "ok": True,
                                "results": {s: {"ok": True} for s in symbols}})
            return
        mode = msg.get("mode") or "trade"
        if not is_mode(mode):
            self._send(client, {"op": "reply", "id": rid, "ok": False,
                                "error": f"unknown mode {mode!r}: {MODE_HELP}"})
            return
        for symbol in symbols:
            client.interest[symbol] = mode
        results = await self._send_want(self._nc())
        out: dict[str, Any] = {}
        for symbol in symbols:
            if results is None:
                out[symbol] = {"ok": True, "queued": True, "reason": self.bridge_reason}
            else:
                out[symbol] = results.get(symbol, {"ok": True})
                if not out[symbol].get("ok"):
                    client.interest.pop(symbol, None)
        self._send(client, {"op": "reply", "id": rid,
                            "ok": all(r.get("ok") for r in out.values()), "results": out})


def run_remote(ctx: RoleContext) -> int:
    async def main() -> int:
        try:
            remote = Remote(ctx)
        except BusSpaceError as exc:
            # No room in /dev/shm for the stand-in's bus: a restart cannot mend that.
            logger.error("remote-{} cannot create its bus: {}", ctx.spec.broker, exc)
            child.report_fatal(str(exc))
            return child.FATAL_EXIT
        return await remote.run()

    return asyncio.run(main())


if __name__ == "__main__":
    sys.exit(run_role("remote", run_remote))
