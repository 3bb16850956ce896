"""`bridge-BROKER`: beside a gateway, its ticks out to NATS and other nodes' interest in.

Started by a node's supervisor as `python -m tradeops.cluster.bridge --topology FILE --name
bridge-BROKER --run-dir DIR --node NODE` when another node reads the broker (docs/cluster.md).

- **Ticks out.** A reader of the gateway's ring (it lags alone if NATS is slow: the gateway
  never waits for it) takes what was published, splits each read by symbol and publishes
  each part, the records as the ring holds them (wire.py), on `tradeops.DESK.tick.BROKER.SYM`.
- **Interest in.** A remote node asks on `tradeops.DESK.ctl.BROKER` with everything it wants
  (`{"node": N, "want": {SYMBOL: MODE}}`, again every second as its heartbeat). The bridge
  holds one gateway connection per remote node, so each node is one lease at the gateway,
  and brings its subscriptions to `want`. A node not heard for `settings.cluster.grace` loses
  its lease: the gateway releases its symbols as it does for any client that goes away.
- **Health.** The gateway's liveness goes out on `tradeops.DESK.health.BROKER`, on change and
  every second, so a remote node's strategies see the same safety gate as local ones.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from loguru import logger

from tradeops.bus.reader import RingReader
from tradeops.cluster import subjects, wire
from tradeops.cluster.link import connect
from tradeops.gateway.client import GatewayClient, GatewayError
from tradeops.process import child
from tradeops.process.entry import RoleContext, run_role
from tradeops.protocol.modes import MODES
from tradeops.protocol.tick import decode_symbol

if TYPE_CHECKING:
    from nats.aio.client import Client
    from nats.aio.msg import Msg

READ_MAX = 4096
HEALTH_EVERY = 1.0
STATE_EVERY = 1.0


@dataclass
class Lease:
    """A remote node's interest at the gateway: one gateway connection, its symbols."""

    node: str
    seen: float
    client: GatewayClient | None = None
    held: dict[str, str] = field(default_factory=dict)  # symbol -> mode subscribed
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def apply(self, socket_path: str, want: dict[str, str]) -> dict[str, Any]:
        """Bring the lease's subscriptions to `want` (blocking: run it on a thread); the
        gateway's per-symbol results of what was (re)subscribed."""
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
        if self.client is not None:
            self.client.close()
            self.client = None
            self.held = {}


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

    async def run(self) -> int:
        nc = await connect(self.cluster, f"{self.desk}:{self.ctx.node}:bridge-{self.broker}")
        reader = await self._attach()
        try:
            await nc.subscribe(subjects.control(self.desk, self.broker), cb=self._on_control)
            child.report_ready({"node": self.ctx.node,
                                "subject": subjects.ticks(self.desk, self.broker)})
            logger.info("bridging broker '{}' to NATS as {}", self.broker,
                        subjects.ticks(self.desk, self.broker))
            tasks = [asyncio.create_task(self._pump(nc, reader)),
                     asyncio.create_task(self._watch(nc))]
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
            await nc.drain()
        return 0

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
                first = batch.first_seq
                last = first + len(batch) - 1
                for raw, records in wire.split_by_symbol(batch.data).items():
                    subject = subjects.ticks(self.desk, self.broker, decode_symbol(raw))
                    await nc.publish(subject, wire.encode(reader.epoch, first, last, records))
                    self.messages += 1
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
                    "nats": nc.is_connected})

    async def _on_control(self, msg: Msg) -> None:
        try:
            request = json.loads(msg.data)
            node = str(request["node"])
            want = {str(s): str(m) for s, m in dict(request["want"]).items()}
            bad = sorted({m for m in want.values() if m not in MODES})
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
        async with lease.lock:
            try:
                results = await asyncio.to_thread(lease.apply, self.socket, want)
                answer: dict[str, Any] = {"ok": True, "results": results, **self.health}
            except GatewayError as exc:
                lease.close()
                answer = {"ok": False, "error": f"the gateway of broker '{self.broker}' on "
                          f"node '{self.ctx.node}': {exc}", "live": False,
                          "reason": f"the gateway of broker '{self.broker}' is not running"}
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


def run_bridge(ctx: RoleContext) -> int:
    return asyncio.run(Bridge(ctx).run())


if __name__ == "__main__":
    sys.exit(run_role("bridge", run_bridge))
