"""The whole desk's status from any node: each node's supervisor answers for its processes.

A supervisor of a cluster desk runs a :class:`StatusAnswerer` (a thread with its own event
loop, so the supervisor's loop never waits on NATS) on `tradeops.DESK.status.NODE`, replying
with the rows it last published (`Supervisor.table`, replaced whole by its loop).
:func:`ask_nodes` is the asking side, for `tradeops status`: a node that does not answer is
reported as unreachable, never left out.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from tradeops.cluster import subjects
from tradeops.cluster.link import connect
from tradeops.topology.model import Cluster

if TYPE_CHECKING:
    from nats.aio.msg import Msg

ASK_TIMEOUT = 2.0
CONNECT_TIMEOUT = 3.0


class StatusAnswerer:
    def __init__(self, cluster: Cluster, desk: str, node: str,
                 rows: Callable[[], list[dict[str, Any]]]) -> None:
        self.cluster, self.desk, self.node, self.rows = cluster, desk, node, rows
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="status-over-nats",
                                        daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        while True:  # until NATS answers: meanwhile other nodes show this one unreachable
            try:
                nc = await connect(self.cluster, f"{self.desk}:{self.node}:supervisor")
                break
            except (ConnectionError, RuntimeError):
                if self._stop.wait(1.0):
                    return

        async def answer(msg: Msg) -> None:
            reply = {"node": self.node, "processes": self.rows()}
            await msg.respond(json.dumps(reply, default=str).encode())

        await nc.subscribe(subjects.status(self.desk, self.node), cb=answer)
        while not self._stop.is_set():
            await asyncio.sleep(0.1)
        await nc.drain()


def ask_nodes(cluster: Cluster, desk: str, nodes: list[str]) -> dict[str, Any]:
    """Each node's answer: {"processes": [...]} or {"error": why it is unreachable}."""
    return asyncio.run(_ask(cluster, desk, nodes))


async def _ask(cluster: Cluster, desk: str, nodes: list[str]) -> dict[str, Any]:
    try:
        nc = await asyncio.wait_for(connect(cluster, f"{desk}:status"), CONNECT_TIMEOUT)
    except (ConnectionError, RuntimeError, TimeoutError) as exc:
        why = str(exc) or f"NATS at {', '.join(cluster.servers)} does not answer"
        return {node: {"error": why} for node in nodes}

    async def one(node: str) -> dict[str, Any]:
        try:
            msg = await nc.request(subjects.status(desk, node), b"", timeout=ASK_TIMEOUT)
            answer: dict[str, Any] = json.loads(msg.data)
            return answer
        except Exception as exc:  # no responders, timeout: the node is not there
            return {"error": f"no answer over NATS ({type(exc).__name__})"}

    try:
        answers = await asyncio.gather(*(one(node) for node in nodes))
    finally:
        await nc.close()
    return dict(zip(nodes, answers, strict=True))
