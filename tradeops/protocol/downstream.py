"""What the proxy's client-facing dialects share: one sans-I/O session per websocket.

The proxy speaks three dialects to outside programs (native.py, alpaca_server.py,
openalgo.py). Each is a :class:`DownstreamSession`: payloads in through :meth:`receive`,
frames out through :meth:`take`, no sockets. The server drives every session the same way:

1. ``open(now)`` when the websocket is accepted (Alpaca greets here);
2. ``receive(payload, now)`` per client message. It may return a :class:`NeedChange`: the
   session's new need per (broker, symbol), at the gateway's granularity (the strongest mode
   it needs, None when it needs nothing). The server applies it to the registry and calls
   ``resolved(results)`` once every key has an answer; a session receives no other message
   meanwhile, so a client's requests are handled in order;
3. ``symbol_ticks(broker, symbols, groups, cache)`` with the symbols it holds of one batch
   (``groups``: the batch's ticks by symbol field, each symbol's in seq order); it encodes
   those its subscriptions select and returns how many messages it queued. Dialects whose
   frames are arrays of items encode each (symbol, kinds wanted) of a batch once for every
   client (:func:`group_items`, through ``cache``) and merge a client's symbols back into
   the gateway's order with C-level work (:func:`merged_items`), so a client costs no
   Python work per tick (issue 13). ``ticks(broker, ticks, cache)`` is the same for a flat
   list;
4. ``health``, ``lost``, ``slow`` for gateway status, subscriptions the gateway dropped, and
   a client about to be cut off; ``check_timeout(now)`` enforces the auth deadline.

The server sends what ``take()`` returns and closes the connection (with ``closing``'s code
and reason) once it is sent.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from itertools import chain
from operator import itemgetter
from typing import Any, ClassVar

from tradeops.protocol.book import Book
from tradeops.protocol.modes import Mode
from tradeops.protocol.tick import Tick

#: One websocket message to a proxy client, (payload, text): text frames carry UTF-8 JSON,
#: binary frames msgpack. (A broker's frames are feed.BrokerFrame.)
ClientFrame = tuple[bytes, bool]
#: (broker, symbol)
Key = tuple[str, str]
#: Encoded messages shared by every session during one batch of one broker's ticks: per
#: message format (a name the dialect chooses), encoded items (or groups of them, see
#: group_items) by a key of its choosing.
Cache = dict[str, dict[Any, Any]]
#: One batch of one broker's ticks by 32-byte symbol field, each symbol's in seq order.
Groups = Mapping[bytes, Sequence[Tick]]


def group_items(
    cache: Cache,
    fmt: str,
    raw: bytes,
    kinds: AbstractSet[int],
    group: Sequence[Tick],
    encode: Callable[[Tick], bytes | None],
) -> list[tuple[int, bytes]]:
    """(seq, encoded item) of one symbol's ticks of a batch (``group``) whose kind is in
    ``kinds``, encoded by ``encode`` (None: not sent): computed once per batch for every
    session of format ``fmt`` wanting the same kinds of the symbol, each item once per
    format whatever the kinds."""
    groups = cache.get(fmt + "/groups")
    if groups is None:
        groups = cache[fmt + "/groups"] = {}
    key = (raw, kinds)
    pairs: list[tuple[int, bytes]] | None = groups.get(key)
    if pairs is None:
        encoded = cache.get(fmt)
        if encoded is None:
            encoded = cache[fmt] = {}
        pairs = []
        for tick in group:
            if tick.kind_code in kinds:
                item = encoded.get(tick.seq)
                if item is None:
                    item = encode(tick)
                    if item is None:
                        continue
                    encoded[tick.seq] = item
                pairs.append((tick.seq, item))
        groups[key] = pairs
    return pairs


def merged_items(runs: list[list[tuple[int, bytes]]]) -> list[tuple[int, bytes]]:
    """The (seq, item) runs of several symbols as one run in seq order (the gateway's): C-level
    work (a concatenation and a sort of presorted runs), no Python per tick."""
    if len(runs) == 1:
        return runs[0]
    merged = list(chain.from_iterable(runs))
    merged.sort(key=itemgetter(0))
    return merged


def batch_items(cache: Cache, fmt: str, symbols: Sequence[bytes],
                wanted: Mapping[bytes, AbstractSet[int]], groups: Mapping[bytes, Sequence[Tick]],
                encode: Callable[[Tick], bytes | None]) -> list[bytes]:
    """A session's encoded items of a batch, in the gateway's order: for each symbol it
    holds (``symbols``) with the kinds it wants (``wanted``), ``group_items``, merged. What
    every dialect's ``symbol_ticks`` frames its own way."""
    runs = []
    for raw in symbols:
        kinds = wanted.get(raw)
        if kinds is not None:
            pairs = group_items(cache, fmt, raw, kinds, groups[raw], encode)
            if pairs:
                runs.append(pairs)
    return list(map(itemgetter(1), merged_items(runs))) if runs else []


CLOSE_POLICY = 1008  # a client broke the rules (auth, protocol, too many errors)
CLOSE_TRY_AGAIN = 1013  # a slow client: come back when you can keep up


@dataclass(frozen=True)
class Result:
    """The fate of one key of a change."""

    ok: bool
    reason: str = ""
    queued: bool = False


@dataclass(frozen=True)
class NeedChange:
    """A session's new need per key; None releases the key."""

    wants: Mapping[Key, Mode | None]


@dataclass(frozen=True)
class SessionConfig:
    """What every session needs to know about the desk.

    ``check_symbol(broker, symbol)`` returns why a symbol cannot be carried by that broker's
    feed (None when it can); ``brokers`` are the desk's broker names in topology order.
    """

    brokers: tuple[str, ...]
    token: str | None = None
    max_symbols: int = 1000
    auth_timeout: float = 10.0
    max_errors: int = 100
    server: str = "tradeops"
    check_symbol: Callable[[str, str], str | None] = lambda broker, symbol: None
    #: Alpaca dialect: the broker behind this connection's path (None: no broker has it).
    alpaca_broker: str | None = None
    #: OpenAlgo dialect: exchange code → broker.
    exchanges: Mapping[str, str] = field(default_factory=dict)
    #: Brokers whose bus symbols carry their exchange (`NSE:RELIANCE`: OpenAlgo, AllTick).
    qualified: frozenset[str] = frozenset()
    #: Brokers whose feed has order books (a depth subscription is served from the book table).
    book_brokers: frozenset[str] = frozenset()
    #: The newest book of (broker, symbol) from the bus's book table (the proxy's reader; None
    #: when it has none): how a session reaches books without I/O of its own.
    book: Callable[[str, str], Book | None] = lambda broker, symbol: None

    def token_ok(self, given: object) -> bool:
        """True when no token is configured, or `given` is it (compared in constant time)."""
        if self.token is None:
            return True
        if not isinstance(given, str):
            return False
        return hmac.compare_digest(given.encode(), self.token.encode())


class DownstreamSession:
    """The state every dialect's session shares: queued frames, closing, counters."""

    dialect: ClassVar[str]

    def __init__(self, config: SessionConfig, now: float) -> None:
        self.config = config
        self.opened = now
        self.authenticated = False
        self.closing: tuple[int, str] | None = None
        self.out: list[ClientFrame] = []
        #: Tokens refused on this connection; malformed or refused messages.
        self.refused = 0
        self.errors = 0
        #: A client-chosen name, for status (native hello's `client`, alpaca's key).
        self.name = ""

    # -- driven by the server ---------------------------------------------------------------------
    def open(self, now: float) -> None:
        """The websocket was accepted."""

    def receive(self, payload: str | bytes, now: float) -> NeedChange | None:
        raise NotImplementedError

    def resolved(self, results: Mapping[Key, Result]) -> None:
        """Every key of the last NeedChange has its answer."""
        raise NotImplementedError

    def _request_change(self, wants: dict[Key, Mode | None]) -> NeedChange | None:
        """The NeedChange a request needs, or None when it needs none (then it is answered
        at once, as if the registry had replied)."""
        if not wants:
            self.resolved({})
            return None
        return NeedChange(wants)

    def ticks(self, broker: str, ticks: Sequence[Tick], cache: Cache) -> int:
        raise NotImplementedError

    def symbol_ticks(
        self, broker: str, symbols: Sequence[bytes], groups: Groups, cache: Cache
    ) -> int:
        """The ticks of ``symbols`` in this batch (``groups``), symbol by symbol; dialects
        with array frames encode each symbol's once per batch instead."""
        return self.ticks(broker, [tick for raw in symbols for tick in groups[raw]], cache)

    def lost(self, key: Key, reason: str) -> None:
        """The gateway dropped `key`; the session no longer holds it."""

    def seed(self, key: Key, trade: Tick | None, quote: Tick | None) -> None:
        """The latest trade and quote of a key the session just started holding (from the
        bus's latest-value table); dialects that carry state between ticks use them."""

    def health(self, broker: str, live: bool, reason: str) -> None:
        """The broker's feed became live or stopped being live."""

    def slow(self) -> None:
        """The client cannot keep up and is cut off: say so, then close."""
        self.close(CLOSE_TRY_AGAIN, "slow client")

    def check_timeout(self, now: float) -> None:
        late = now - self.opened >= self.config.auth_timeout
        if late and not self.authenticated and self.closing is None:
            self.auth_timeout()

    def auth_timeout(self) -> None:
        self.close(CLOSE_POLICY, "auth timeout")

    def holding(self) -> dict[Key, Mode]:
        """What the session holds now, at the gateway's granularity."""
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        return {"dialect": self.dialect, "name": self.name, "authenticated": self.authenticated,
                "symbols": len({k[1] for k in self.holding()})}

    # -- helpers ----------------------------------------------------------------------------------
    def take(self) -> list[ClientFrame]:
        out, self.out = self.out, []
        return out

    def close(self, code: int, reason: str) -> None:
        if self.closing is None:
            self.closing = (code, reason)

    def count_error(self) -> None:
        """One more malformed or refused message; past `max_errors` the client is closed."""
        self.errors += 1
        if self.errors >= self.config.max_errors:
            self.close(CLOSE_POLICY, "too many errors")
