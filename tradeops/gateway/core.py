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
RETRY_FIRST = 1.0  # seconds before the first retry of a refused change; doubled each time
RETRY_MAX = 60.0


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
        self._retry_at: dict[str, tuple[float, int]] = {}  # symbol → (when, attempt)
        self._attempts: dict[str, int] = {}  # symbol → refusals in a row (the backoff)
        self.retrying: dict[str, str] = {}  # symbol → why the broker has not taken it yet
        self.refused: dict[str, str] = {}  # symbol → the broker's last final refusal ...
        self._refused_for: dict[str, set[Client]] = {}  # ... kept while a client it hit lives

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
        for symbol, clients in list(self._refused_for.items()):
            clients.discard(client)
            if not clients:  # nobody it hit is left to care
                del self._refused_for[symbol]
                self.refused.pop(symbol, None)
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
            for t in change.transitions:  # taken: the broker's earlier answers are history
                self._attempts.pop(t.symbol, None)
                self.refused.pop(t.symbol, None)
                self._refused_for.pop(t.symbol, None)
            for pending in self._pending:
                for t in change.transitions:
                    if t.symbol in pending.waiting and covers(t.after, pending.mode):
                        del pending.waiting[t.symbol]
                        pending.results[t.symbol] = {"ok": True}
        actions.extend(self._drive((conn,)))
        actions.replies += self._finished()
        return actions

    def upstream_refused(
        self, conn: int, code: int, message: str, transient: bool = False, now: float = 0.0
    ) -> Actions:
        """The broker refused the change in flight on `conn`.

        A transient refusal (a rate limit, a busy broker) is retried with backoff: the
        clients waiting on it are answered `queued` and keep their interest. A final one is
        answered `ok: false` to the clients waiting on it. With nobody waiting: a refused
        downgrade or removal keeps the stronger mode the broker still sends (it serves every
        remaining holder) and is retried later; a refused upgrade is lost by the holders the
        confirmed mode does not serve, who are told with a `lost` event."""
        reason = f"broker refused: {code} {message}".strip()
        actions = Actions()
        for t in self.pool.fail(conn):
            waiting = [p for p in self._pending if t.symbol in p.waiting]
            if transient:
                self._retry_later(t.symbol, now, f"{reason}; retrying")
                for pending in waiting:
                    del pending.waiting[t.symbol]
                    pending.results[t.symbol] = {"ok": True, "queued": True,
                                                 "reason": f"{reason}; retrying"}
                continue
            for pending in waiting:
                self._restore(pending.client, t.symbol, pending.waiting.pop(t.symbol))
                pending.results[t.symbol] = {"ok": False, "reason": reason}
                self._record_refusal(t.symbol, reason, pending.client)
            if waiting:
                continue
            if t.after is None or (t.before is not None and covers(t.before, t.after)):
                # A refused downgrade or removal: the stronger mode still flows and serves.
                self._retry_later(t.symbol, now, f"{reason}; kept at {t.before}, retrying")
            else:
                actions.replies += self._lose(t.symbol, t.before, reason)
        actions.extend(self._drive((conn,)))
        actions.replies += self._finished()
        return actions

    def tick(self, now: float) -> Actions:
        """Retry what is due: re-ask the broker for what the interest wants now."""
        due = [s for s, (when, _) in self._retry_at.items() if when <= now]
        if not due:
            return Actions()
        for symbol in due:
            del self._retry_at[symbol]
            self.retrying.pop(symbol, None)
        return self._apply({s: self.interest.strongest(s) for s in due})

    def _retry_later(self, symbol: str, now: float, why: str) -> None:
        attempts = self._attempts.get(symbol, 0)
        self._attempts[symbol] = attempts + 1
        delay = min(RETRY_FIRST * 2**attempts, RETRY_MAX)
        self._retry_at[symbol] = (now + delay, attempts + 1)
        self.retrying[symbol] = why

    def _record_refusal(self, symbol: str, reason: str, client: Client) -> None:
        self.refused[symbol] = reason
        self._refused_for.setdefault(symbol, set()).add(client)

    def _lose(self, symbol: str, flowing: Mode | None, reason: str
              ) -> list[tuple[Client, dict[str, Any]]]:
        """Holders of `symbol` whose mode the broker's `flowing` mode does not serve lose it."""
        replies = []
        for client in self.interest.clients():
            held = self.interest.holds(client, symbol)
            if held is not None and not covers(flowing, held):
                self.interest.remove(client, symbol)
                replies.append((client, {"op": "event", "kind": "lost", "symbol": symbol,
                                         "reason": reason}))
                self._record_refusal(symbol, reason, client)
        self.pool.apply({symbol: self.interest.strongest(symbol)})
        return replies

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
