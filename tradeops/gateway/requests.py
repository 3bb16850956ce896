"""The gateway's client protocol: one request line in, the gateway's answer out.

    → {"op": "hello", "client": "host:signals", "pid": 123, "group": "signals"}
    ← {"op": "hello", "ok": true, "broker": "sim", "bus": {...}, "v": 1}
    → {"op": "subscribe", "id": 1, "symbols": ["AAPL"], "mode": "quote"}
    ← {"op": "reply", "id": 1, "ok": true, "results": {"AAPL": {"ok": true}}}
    → {"op": "unsubscribe", "id": 2, "symbols": ["AAPL"]}
    → {"op": "status", "id": 3}
    → {"op": "order" | "cancel" | "cancel_all" | "orders", ...}   (brokers that take orders)
    → {"op": "halt" | "resume", "target": "sim.alpha"}      (`tradeops halt`, `resume`)
    → {"op": "flatten", "strategy": "s", "dry_run": true}    (`tradeops flatten`)
    → {"op": "ack_positions", "target": "sim.alpha"}        (`tradeops orders --ack`)
    → {"op": "reload", "topology": "/path/desk.yaml"}       (`tradeops apply`)

docs/gateway.md has the whole protocol. Requests are checked here; the decisions belong to
the core (subscriptions) and the router (orders), whose answers the gateway delivers.
"""

from __future__ import annotations

from contextlib import suppress
from typing import Any, Protocol

from loguru import logger

from tradeops.gateway.clients import Client, Reply
from tradeops.gateway.core import Actions, GatewayCore
from tradeops.gateway.router import OrderRouter, order_config
from tradeops.protocol.modes import MODE_HELP, is_mode
from tradeops.protocol.ndjson import Malformed, Message

PROTOCOL_VERSION = 1


class Gateway(Protocol):
    """What the protocol needs of the gateway it serves (`GatewayServer`)."""

    broker: str
    core: GatewayCore
    router: OrderRouter | None

    def hello_info(self) -> dict[str, Any]: ...
    def health(self) -> dict[str, Any]: ...
    def send(self, client: Client, message: dict[str, Any]) -> None: ...
    def send_health(self, client: Client) -> None: ...
    def deliver(self, replies: list[Reply]) -> None: ...
    def carry_out(self, actions: Actions) -> None: ...


def handle(gateway: Gateway, client: Client, msg: Message | Malformed) -> None:
    """Answer one request from `client` (a line that was not a JSON object: say so). A
    request that raises (a field of a type nobody foresaw, or a bug it hit) is answered with
    an error and logged with its traceback; the gateway serves on. Until then such a line
    from any local client ended the gateway, and with it every feed and the bus's epoch."""
    try:
        _handle(gateway, client, msg)
    except Exception as exc:
        op = msg.get("op") if isinstance(msg, dict) else None
        logger.opt(exception=exc).error(
            f"{gateway.broker}: request {op!r} from {client.name or 'a client'} failed: "
            f"{type(exc).__name__}: {exc}")
        rid = msg.get("id", 0) if isinstance(msg, dict) else 0
        with suppress(Exception):
            reply(gateway, client, rid, error=f"internal error: {type(exc).__name__}: {exc}")


def _handle(gateway: Gateway, client: Client, msg: Message | Malformed) -> None:
    if isinstance(msg, Malformed):
        gateway.send(client, {"op": "error", "error": f"malformed request: {msg.reason}"})
        return
    op, rid = msg.get("op"), msg.get("id", 0)
    if op == "hello":
        _hello(gateway, client, msg)
    elif op in ("subscribe", "unsubscribe"):
        _subscription(gateway, client, op, rid, msg)
    elif op == "status":
        reply(gateway, client, rid, status=gateway.health())
    elif op == "reload" and gateway.router is not None:
        _reload(gateway, gateway.router, client, rid, str(msg.get("topology", "")))
    elif op in ("ack_positions", "halt", "resume", "flatten") and gateway.router is not None:
        _desk_control(gateway, gateway.router, client, op, rid, msg)
    elif op in ("order", "cancel", "cancel_all", "orders") and gateway.router is not None:
        _orders(gateway, gateway.router, client, op, rid, msg)
    else:
        reply(gateway, client, rid, error=f"unknown op {op!r}")


def reply(gateway: Gateway, client: Client, rid: Any, error: str = "", **fields: Any) -> None:
    message = {"op": "reply", "id": rid, "ok": not error, **fields}
    if error:
        message["error"] = error
    gateway.send(client, message)


def _hello(gateway: Gateway, client: Client, msg: dict[str, Any]) -> None:
    client.name = str(msg.get("client", "")) or f"client-{client.sock.fileno()}"
    pid = msg.get("pid", 0)
    client.pid = pid if isinstance(pid, int) and not isinstance(pid, bool) else 0
    logger.info("{}: client {} (pid {}) connected", gateway.broker, client.name, client.pid)
    gateway.send(client, {"op": "hello", "ok": True, **gateway.hello_info()})
    gateway.send_health(client)
    if gateway.router is not None and msg.get("group"):
        gateway.deliver(gateway.router.hello(client.sock, str(msg["group"])))


def _subscription(gateway: Gateway, client: Client, op: str, rid: Any, msg: dict[str, Any]
                  ) -> None:
    symbols, mode = msg.get("symbols"), msg.get("mode", "trade")
    if not isinstance(symbols, list) or not all(isinstance(s, str) and s for s in symbols):
        reply(gateway, client, rid, error="symbols must be a list of non-empty strings")
    elif op == "subscribe" and not is_mode(mode):
        reply(gateway, client, rid, error=f"mode {mode!r} is not a mode: {MODE_HELP}")
    elif op == "subscribe":
        gateway.carry_out(gateway.core.subscribe(client.sock, rid, symbols, mode))
    else:
        gateway.carry_out(gateway.core.unsubscribe(client.sock, rid, symbols))


def _reload(gateway: Gateway, router: OrderRouter, client: Client, rid: Any, path: str) -> None:
    """`tradeops apply`: the strategies' limits and groups from the edited file. A change to
    the broker itself is not loaded: the supervisor restarts the gateway for that."""
    from tradeops.topology.load import TopologyError, load_topology

    try:
        topology = load_topology(path)
    except (TopologyError, OSError) as exc:
        reply(gateway, client, rid, error=f"cannot load {path}: {exc}")
        return
    if gateway.broker not in topology.brokers:
        reply(gateway, client, rid, error=f"{path} has no broker '{gateway.broker}'")
        return
    gateway.deliver(router.reconfigure(*order_config(topology, gateway.broker)))
    reply(gateway, client, rid, strategies=sorted(router.desk.strategies))


def _desk_control(gateway: Gateway, router: OrderRouter, client: Client, op: str, rid: Any,
                  msg: dict[str, Any]) -> None:
    """A person's commands: acknowledge positions, halt, resume, flatten. A target this
    broker does not know is answered `known: false` with what it does know, so the CLI,
    asking every gateway, can tell a typo from a target on another broker."""
    target = str(msg.get("target") or msg.get("strategy") or "")
    if op == "ack_positions":
        account = target.removeprefix(router.desk.broker + ".") if target else ""
        if account and account != router.desk.broker and account not in router.books:
            reply(gateway, client, rid, known=False, targets=router.targets())
            return
        was = router.acknowledge(None if account in ("", router.desk.broker) else account)
        reply(gateway, client, rid, known=True, acknowledged={a: sorted(d) for a, d in was.items()})
        return
    if op == "flatten":
        if target not in router.desk.strategies:
            reply(gateway, client, rid, known=False, targets=router.targets())
        elif msg.get("dry_run"):
            reply(gateway, client, rid, known=True,
                  positions=router.desk.positions_of(target),
                  working=len(router.desk.working(target)))
        else:
            placed, replies = router.flatten(target)
            gateway.deliver(replies)
            reply(gateway, client, rid, known=True, orders=placed)
        return
    scope = router.scope_of(target)
    if scope is None:
        reply(gateway, client, rid, known=False, targets=router.targets())
    elif op == "halt":
        gateway.deliver(router.halt(scope))
        reply(gateway, client, rid, known=True, scope=list(scope))
    else:
        reply(gateway, client, rid, known=True, scope=list(scope), resumed=router.resume(scope))


def _orders(gateway: Gateway, router: OrderRouter, client: Client, op: str, rid: Any,
            msg: dict[str, Any]) -> None:
    strategy = str(msg.get("strategy", ""))
    if op == "order":
        gateway.deliver(router.order(client.sock, msg))
    elif op == "cancel":
        gateway.deliver(router.cancel(client.sock, strategy, str(msg.get("order_id"))))
    elif op == "cancel_all":
        gateway.deliver(router.cancel_all(client.sock, strategy))
    else:
        reply(gateway, client, rid, orders=router.status())
