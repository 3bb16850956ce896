"""The whole desk's status from any node: each node's supervisor answers for its processes,
and carries out `restart`, `stop` and `start` of its processes asked from another node.

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
                 rows: Callable[[], list[dict[str, Any]]],
                 command: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
        """`rows()` is called on this thread; `command(request)` too, and may block (the
        supervisor carries it out on its loop and waits for the reply)."""
        self.cluster, self.desk, self.node, self.rows = cluster, desk, node, rows
        self.command = command
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

        async def carry_out(msg: Msg) -> None:
            try:
                request = dict(json.loads(msg.data))
                reply = await asyncio.to_thread(self.command, request)
            except Exception as exc:  # a malformed request, or the loop did not answer
                reply = {"ok": False, "error": f"node {self.node}: {exc}"}
            await msg.respond(json.dumps(reply, default=str).encode())

        await nc.subscribe(subjects.status(self.desk, self.node), cb=answer)
        await nc.subscribe(subjects.command(self.desk, self.node), cb=carry_out)
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


def ask_command(cluster: Cluster, desk: str, node: str, command: dict[str, Any],
                timeout: float = 15.0) -> dict[str, Any]:
    """Have `node`'s supervisor carry out `command` (restart, stop or start); its reply, or
    {"ok": False, "error": ...} when the node does not answer."""

    async def ask() -> dict[str, Any]:
        try:
            nc = await asyncio.wait_for(connect(cluster, f"{desk}:command"), CONNECT_TIMEOUT)
        except (ConnectionError, RuntimeError, TimeoutError) as exc:
            return {"ok": False, "error": str(exc) or "NATS does not answer"}
        try:
            msg = await nc.request(subjects.command(desk, node), json.dumps(command).encode(),
                                   timeout=timeout)
            reply: dict[str, Any] = json.loads(msg.data)
            return reply
        except Exception as exc:
            return {"ok": False, "error": f"node {node} does not answer over NATS "
                                          f"({type(exc).__name__}); is it up?"}
        finally:
            await nc.close()

    return asyncio.run(ask())
