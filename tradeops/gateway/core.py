"""The gateway's decisions, without I/O: client requests and broker events in, actions out.

`server.py` feeds this from its sockets and threads and carries out the actions: replies to
clients, pool changes to send on upstream connections, upstream connections to open. Every
method runs on the gateway's one loop thread, so no locking is needed here.

A subscribe request is answered per symbol once its fate is known: at once when the mode is
already flowing or the pool refuses it; otherwise when the broker acknowledges or refuses the
change that carries it. While a connection is down, requests waiting on it are answered
`queued`: the interest is kept and the symbol subscribes when the connection returns.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

from tradeops.gateway.pool import Pool, PoolChange
from tradeops.protocol.interest import Interest
from tradeops.protocol.modes import Mode, covers

Client = Hashable


@dataclass
class Actions:
    replies: list[tuple[Client, dict[str, Any]]] = field(default_factory=list)
    sends: list[PoolChange] = field(default_factory=list)
    open: list[int] = field(default_factory=list)

    def extend(self, other: Actions) -> None:
        self.replies += other.replies
        self.sends += other.sends
        self.open += other.open


@dataclass
class _WaitingSubscribe:
    client: Client
    request: int
    mode: Mode
    results: dict[str, dict[str, Any]]
    waiting: dict[str, Mode | None]  # symbol → the client's previous mode (restored on refusal)


class GatewayCore:
    def __init__(self, pool: Pool) -> None:
        self.pool = pool
        self.interest = Interest()
        self._pending: list[_WaitingSubscribe] = []
        self._down: dict[int, str] = {}  # connection → why it is down

    # -- clients ------------------------------------------------------------------------------
    def subscribe(self, client: Client, request: int, symbols: list[str], mode: Mode) -> Actions:
        actions = Actions()
        pending = _WaitingSubscribe(client, request, mode, {}, {})
        changed: dict[str, Mode | None] = {}
        previous: dict[str, Mode | None] = {}
        for symbol in dict.fromkeys(symbols):  # duplicates in one request count once
            previous[symbol] = self.interest.holds(client, symbol)
            changed.update(self.interest.add(client, symbol, mode))
        plan = self.pool.apply(changed)
        refused = {r.symbol: r.reason for r in plan.refused}
        for symbol in previous:
            if symbol in refused:
                self._restore(client, symbol, previous[symbol])
                pending.results[symbol] = {"ok": False, "reason": refused[symbol]}
            elif covers(self.pool.mode_of(symbol), self.interest.strongest(symbol) or mode):
                pending.results[symbol] = {"ok": True}
            else:
                pending.waiting[symbol] = previous[symbol]
        actions.open += plan.opened
        self._pending.append(pending)
        actions.extend(self._drive(plan.dirty))
        self._queue_behind_down()
        actions.replies += self._finished()
        return actions

    def unsubscribe(self, client: Client, request: int, symbols: list[str]) -> Actions:
        changed: dict[str, Mode | None] = {}
        for symbol in symbols:
            changed.update(self.interest.remove(client, symbol))
        actions = self._apply(changed)
        actions.replies.append(
            (
                client,
                {
                    "op": "reply",
                    "id": request,
                    "ok": True,
                    "results": {s: {"ok": True} for s in symbols},
                },
            )
        )
        return actions

    def client_gone(self, client: Client) -> Actions:
        """The client's connection closed: its whole lease is released."""
        self._pending = [p for p in self._pending if p.client != client]
        return self._apply(self.interest.drop(client))

    # -- the broker -----------------------------------------------------------------------------
    def upstream_ready(self, conn: int) -> Actions:
        self._down.pop(conn, None)
        self.pool.reset(conn)
        return self._drive((conn,))

    def upstream_ack(self, conn: int) -> Actions:
        change = self.pool.confirm(conn)
        actions = Actions()
        if change is not None:
            for pending in self._pending:
                for t in change.transitions:
                    if t.symbol in pending.waiting and covers(t.after, pending.mode):
                        del pending.waiting[t.symbol]
                        pending.results[t.symbol] = {"ok": True}
        actions.extend(self._drive((conn,)))
        actions.replies += self._finished()
        return actions

    def upstream_refused(self, conn: int, code: int, message: str) -> Actions:
        reason = f"broker refused: {code} {message}".strip()
        actions = Actions()
        for t in self.pool.fail(conn):
            handled = False
            for pending in self._pending:
                if t.symbol in pending.waiting:
                    self._restore(pending.client, t.symbol, pending.waiting.pop(t.symbol))
                    pending.results[t.symbol] = {"ok": False, "reason": reason}
                    handled = True
            if not handled and t.after is not None:
                # Nobody is waiting (a resubscribe after reconnect failed): every holder loses it.
                for client in self.interest.clients():
                    if self.interest.holds(client, t.symbol) is not None:
                        self.interest.remove(client, t.symbol)
                        actions.replies.append(
                            (
                                client,
                                {
                                    "op": "event",
                                    "kind": "lost",
                                    "symbol": t.symbol,
                                    "reason": reason,
                                },
                            )
                        )
        actions.extend(self._drive((conn,)))
        actions.replies += self._finished()
        return actions

    def upstream_down(self, conn: int, reason: str) -> Actions:
        self._down[conn] = reason
        self._queue_behind_down()
        return Actions(replies=self._finished())

    # -- internals ------------------------------------------------------------------------------
    def _apply(self, changed: dict[str, Mode | None]) -> Actions:
        plan = self.pool.apply(changed)
        actions = self._drive(plan.dirty)
        actions.open += plan.opened
        return actions

    def _drive(self, conns: tuple[int, ...] | list[int]) -> Actions:
        actions = Actions()
        for conn in conns:
            if conn in self._down:
                continue
            change = self.pool.begin(conn)
            if change is not None:
                actions.sends.append(change)
        return actions

    def _queue_behind_down(self) -> None:
        """Answer `queued` for every symbol still waiting on a connection that is down: the
        interest is kept and subscribes when the connection returns."""
        for pending in self._pending:
            for symbol in list(pending.waiting):
                conn = self.pool.connection_of(symbol)
                if conn is not None and conn in self._down:
                    del pending.waiting[symbol]
                    pending.results[symbol] = {
                        "ok": True,
                        "queued": True,
                        "reason": f"broker connection down ({self._down[conn]}); subscribes "
                        "when it returns",
                    }

    def _finished(self) -> list[tuple[Client, dict[str, Any]]]:
        done = [p for p in self._pending if not p.waiting]
        self._pending = [p for p in self._pending if p.waiting]
        return [
            (
                p.client,
                {
                    "op": "reply",
                    "id": p.request,
                    "ok": all(r["ok"] for r in p.results.values()),
                    "results": p.results,
                },
            )
            for p in done
        ]

    def _restore(self, client: Client, symbol: str, previous: Mode | None) -> None:
        """Undo a client's refused request, back to what it held before, and make the pool
        want what the remaining interest wants (a no-op when it already does)."""
        if previous is None:
            self.interest.remove(client, symbol)
        else:
            self.interest.add(client, symbol, previous)
        self.pool.apply({symbol: self.interest.strongest(symbol)})
