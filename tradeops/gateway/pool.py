"""Placing symbols on a broker's websocket connections: a pure data structure, no I/O.

The pool holds two views per connection: the **target** (what every client wants now, at the
strongest mode per symbol) and the **confirmed** state (what the broker has acknowledged). The
upstream connection asks :meth:`Pool.begin` for the next change to send; it is always the exact
difference confirmed → target, so duplicate or empty requests never reach the broker and a
change that clients cancelled before it was sent is never sent. One change per connection is
in flight at a time (broker acks do not carry request ids); :meth:`Pool.confirm` applies it,
:meth:`Pool.fail` rolls the symbols it touched back to the confirmed state, and
:meth:`Pool.reset` forgets what a dropped connection had, so the next change resubscribes the
whole target.

Modes nest (depth ⊇ quote ⊇ trade, and a mode with bars ⊇ the same without): the pool is
given the join of the wanted modes per symbol (protocol/modes.py), so a weaker request under a
stronger one changes nothing, and when the strong one leaves the symbol is downgraded rather
than dropped. Two modes can be incomparable (``quote`` → ``trade+bars`` adds bars and drops
quotes): such a move is carried out in two changes, first the growth to their join
(``quote+bars``), then the shrinkage, so each change is still one subscribe or one unsubscribe
and the symbol never stops flowing in between.

Capacity: a symbol occupies a slot on its connection from the moment it is placed until the
broker confirms its removal, so the pool never asks the broker for more than its cap. A new
symbol goes to the first connection with room; a connection is opened only when every open
one is full and the broker's connection cap allows another.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from tradeops.protocol.modes import Mode, covers, join


def _grows(t: Transition) -> bool:
    """The move adds something the broker does not send yet (it may also drop something)."""
    return t.after is not None and not covers(t.before, t.after)


def _growth(t: Transition) -> Transition:
    """The growing half of a move: to the join of before and after (after itself unless the
    two are incomparable; the shrinking half follows in a later change)."""
    return Transition(t.symbol, t.before, join(t.before, t.after))


@dataclass(frozen=True)
class Transition:
    """One symbol's move on the broker: `before` → `after` (None: not subscribed)."""

    symbol: str
    before: Mode | None
    after: Mode | None


@dataclass(frozen=True)
class PoolChange:
    """One broker call on one connection: only growth (subscribe) or only shrinkage."""

    connection: int
    transitions: tuple[Transition, ...]


@dataclass(frozen=True)
class Refusal:
    symbol: str
    mode: Mode | None
    reason: str


@dataclass(frozen=True)
class Plan:
    """What `apply` did: the connections that now have a change to send, newly opened
    connections (start an upstream for each), and the requests refused with a reason."""

    dirty: tuple[int, ...]
    opened: tuple[int, ...]
    refused: tuple[Refusal, ...]


@dataclass
class _Connection:
    target: dict[str, Mode] = field(default_factory=dict)
    confirmed: dict[str, Mode] = field(default_factory=dict)
    occupied: set[str] = field(default_factory=set)
    in_flight: PoolChange | None = None

    def touch(self, symbol: str) -> None:
        if symbol in self.target or symbol in self.confirmed:
            self.occupied.add(symbol)
        else:
            self.occupied.discard(symbol)

    def dirty(self) -> bool:
        return self.target != self.confirmed


class Pool:
    """The placement of one broker's symbols on its connections."""

    def __init__(self, broker: str, symbols_per_connection: int, max_connections: int) -> None:
        if symbols_per_connection < 1 or max_connections < 1:
            raise ValueError("a pool needs at least one connection of at least one symbol")
        self.broker = broker
        self.symbols_per_connection = symbols_per_connection
        self.max_connections = max_connections
        self._connections: list[_Connection] = []
        self._home: dict[str, int] = {}  # symbol → connection, while it occupies a slot

    # -- requests ---------------------------------------------------------------------------
    def apply(self, desired: Mapping[str, Mode | None]) -> Plan:
        """Set the strongest wanted mode of each symbol (None: nobody wants it any more)."""
        dirty: set[int] = set()
        opened: list[int] = []
        refused: list[Refusal] = []
        for symbol, mode in desired.items():
            conn_id = self._home.get(symbol)
            if conn_id is None:
                if mode is None:
                    continue
                conn_id = self._place()
                if conn_id is None:
                    refused.append(Refusal(symbol, mode, self._full_reason(symbol)))
                    continue
                if conn_id == len(self._connections):
                    self._connections.append(_Connection())
                    opened.append(conn_id)
                self._home[symbol] = conn_id
            conn = self._connections[conn_id]
            if conn.target.get(symbol) == mode:
                continue
            if mode is None:
                del conn.target[symbol]
            else:
                conn.target[symbol] = mode
            conn.touch(symbol)
            if symbol not in conn.occupied:
                del self._home[symbol]
            dirty.add(conn_id)
        return Plan(
            tuple(sorted(c for c in dirty if self._connections[c].dirty())),
            tuple(opened),
            tuple(refused),
        )

    def _place(self) -> int | None:
        for conn_id, conn in enumerate(self._connections):
            if len(conn.occupied) < self.symbols_per_connection:
                return conn_id
        if len(self._connections) < self.max_connections:
            return len(self._connections)
        return None

    def _full_reason(self, symbol: str) -> str:
        held = sum(len(c.occupied) for c in self._connections)
        return (
            f"broker '{self.broker}' is full: {held} symbols on {len(self._connections)} "
            f"connection(s), the cap is {self.symbols_per_connection} per connection × "
            f"{self.max_connections} connection(s); {symbol} refused"
        )

    # -- the conversation with the broker --------------------------------------------------------
    def begin(self, conn_id: int) -> PoolChange | None:
        """The next change to send on a connection, or None (nothing to do, or one in flight)."""
        conn = self._connections[conn_id]
        if conn.in_flight is not None or not conn.dirty():
            return None
        symbols = set(conn.target) | set(conn.confirmed)
        moves = [
            Transition(s, conn.confirmed.get(s), conn.target.get(s))
            for s in sorted(symbols)
            if conn.confirmed.get(s) != conn.target.get(s)
        ]
        # Growth (new symbols, upgrades) first and shrinkage in a later change: each change is
        # then one subscribe or one unsubscribe message, answered by exactly one broker ack.
        growing = tuple(_growth(t) for t in moves if _grows(t))
        conn.in_flight = PoolChange(conn_id, growing or tuple(t for t in moves if not _grows(t)))
        return conn.in_flight

    def confirm(self, conn_id: int) -> PoolChange | None:
        """The broker acknowledged the change in flight; returns it (None if none was)."""
        conn = self._connections[conn_id]
        change, conn.in_flight = conn.in_flight, None
        if change is None:
            return None
        for t in change.transitions:
            if t.after is None:
                conn.confirmed.pop(t.symbol, None)
            else:
                conn.confirmed[t.symbol] = t.after
            self._settle(conn_id, t.symbol)
        return change

    def fail(self, conn_id: int) -> list[Transition]:
        """The broker refused the change in flight: every symbol it touched goes back to the
        confirmed state. Returns the transitions that were undone (tell their requesters)."""
        conn = self._connections[conn_id]
        change, conn.in_flight = conn.in_flight, None
        if change is None:
            return []
        undone = []
        for t in change.transitions:
            before = conn.confirmed.get(t.symbol)
            if conn.target.get(t.symbol) != before:
                undone.append(Transition(t.symbol, before, conn.target.get(t.symbol)))
            if before is None:
                conn.target.pop(t.symbol, None)
            else:
                conn.target[t.symbol] = before
            self._settle(conn_id, t.symbol)
        return undone

    def reset(self, conn_id: int) -> None:
        """The connection dropped: the broker holds nothing on it now."""
        conn = self._connections[conn_id]
        conn.in_flight = None
        for symbol in list(conn.confirmed):
            del conn.confirmed[symbol]
            self._settle(conn_id, symbol)

    def _settle(self, conn_id: int, symbol: str) -> None:
        conn = self._connections[conn_id]
        conn.touch(symbol)
        if symbol not in conn.occupied and self._home.get(symbol) == conn_id:
            del self._home[symbol]

    # -- views ----------------------------------------------------------------------------------
    @property
    def connections(self) -> int:
        return len(self._connections)

    def target(self, conn_id: int) -> dict[str, Mode]:
        return dict(self._connections[conn_id].target)

    def confirmed(self, conn_id: int) -> dict[str, Mode]:
        return dict(self._connections[conn_id].confirmed)

    def connection_of(self, symbol: str) -> int | None:
        return self._home.get(symbol)

    def mode_of(self, symbol: str) -> Mode | None:
        """The mode the broker has confirmed for a symbol (None: not flowing)."""
        conn_id = self._home.get(symbol)
        return None if conn_id is None else self._connections[conn_id].confirmed.get(symbol)

    def in_flight(self, conn_id: int) -> PoolChange | None:
        return self._connections[conn_id].in_flight

    def occupancy(self) -> list[int]:
        return [len(c.occupied) for c in self._connections]
