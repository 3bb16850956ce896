"""The simulated exchange's core state, sans-I/O: market, book, sessions, faults, journal.

The server owns the sockets and the clock; it calls `advance(now)` on a timer, hands every
websocket message to its session, and after each call sends what the sessions returned by
`take_dirty()` have queued. Everything here runs on one thread (the server's event loop).

Market data fan-out: an index (channel, symbol) -> sessions, plus per-feed wildcard (`*`)
subscribers. A symbol is *active* (the walk steps it) while some connection subscribes to it
or an order on it is working; each event is encoded once per codec and queued to every
subscriber of its channel and symbol. Trade updates go to the `/stream` sessions of the key
that owns the order.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from tradeops.protocol.alpaca_stream import trade_update
from tradeops.protocol.codec import Codec, encode_item
from tradeops.sim.alltick import ALLTICK_PATHS, AllTickSession
from tradeops.sim.book import Book, Update
from tradeops.sim.depth import Depth
from tradeops.sim.dialect import book_message
from tradeops.sim.events import MarketExtras
from tradeops.sim.faults import FaultState
from tradeops.sim.history import TradeHistory
from tradeops.sim.hours import TradingHours
from tradeops.sim.journal import Journal
from tradeops.sim.market import (
    BAR_CHANNELS,
    EVENT_CHANNELS,
    Bar,
    Feed,
    MarketEvent,
    Quote,
    RandomWalkMarket,
    Trade,
    is_crypto,
)
from tradeops.sim.openalgo import PATH as OPENALGO_PATH
from tradeops.sim.openalgo import OpenAlgoServerSession
from tradeops.sim.options import SimOptions
from tradeops.sim.replay import ReplayFeed, load_rows
from tradeops.sim.session import DataSession, Session, TradeSession

#: Market-data paths and the feed each serves.
DATA_PATHS = {"/v2/iex": "iex", "/v2/sip": "sip", "/v2/test": "test",
              "/v1beta3/crypto/us": "crypto/us"}
TRADE_PATH = "/stream"
#: A connection that subscribes market data, in either dialect.
Subscriber = DataSession | AllTickSession


def make_feed(options: SimOptions, hours: TradingHours) -> Feed:
    """The replay of `options.replay` if set, else the seeded random walk."""
    if options.replay is not None:
        return ReplayFeed(load_rows(options.replay, options), speed=options.speed,
                          bar_seconds=options.bar_seconds, spread_bps=options.spread_bps)
    return RandomWalkMarket(seed=options.seed, rate=options.rate, max_rate=options.max_rate,
                            spread_bps=options.spread_bps, volatility=options.volatility,
                            hours=hours, bar_seconds=options.bar_seconds)


class Exchange:
    def __init__(self, options: SimOptions, now: float, feed: Feed | None = None) -> None:
        self.options = options
        self.hours = TradingHours.parse(options.hours)
        self.feed = feed if feed is not None else make_feed(options, self.hours)
        self.book = Book(seed=options.seed, cash=options.cash)
        self.faults = FaultState.from_options(options, now)
        self.journal = Journal()
        self.history = TradeHistory()  # what the market traded, sent or not (backfill)
        self.depth = Depth()  # crypto order books, from the quotes (orderbooks channel)
        # Daily bars, LULD bands, halts, corrections, cancel/errors (sim/events.py).
        self.extras = MarketExtras(bar_ns=max(1, int(options.bar_seconds * 1e9)))
        self.started = now
        self.sessions: dict[int, Session] = {}
        self._listed = frozenset(options.symbols)
        self._index: dict[tuple[str, str], set[Subscriber]] = {}
        self._wild: dict[tuple[bool, str], set[DataSession]] = {}
        self._active: set[str] = set()
        self._dirty: dict[int, Session] = {}
        self._next_id = 1
        self._next_timeout_check = now
        self.events_generated = 0
        self.messages_queued = 0

    # -- sessions -------------------------------------------------------------------------

    def mark_dirty(self, session: Session) -> None:
        self._dirty[session.id] = session

    def take_dirty(self) -> list[Session]:
        """Sessions with something to send or to close, in the order they became so."""
        dirty = list(self._dirty.values())
        self._dirty.clear()
        return dirty

    def open_session(self, path: str, codec: Codec, now: float, query: str = "") -> Session:
        """A session for a websocket on `path` (a key of DATA_PATHS, TRADE_PATH or one of
        ALLTICK_PATHS, whose token is in the URL's `query`)."""
        conn_id = self._next_id
        self._next_id += 1
        session: Session
        if path in ALLTICK_PATHS:
            session = AllTickSession(self, conn_id, path, query, now)
        elif path == TRADE_PATH:
            session = TradeSession(self, conn_id, path, codec, now)
        elif path == OPENALGO_PATH:
            session = OpenAlgoServerSession(self, conn_id, path, now)
        else:
            session = DataSession(self, conn_id, path, DATA_PATHS[path], codec, now)
        self.sessions[conn_id] = session
        session.open(now)
        return session

    def session_closed(self, session: Session, reason: str, now: float) -> None:
        """Forget a connection that closed (for any reason) and record it in the journal."""
        if self.sessions.pop(session.id, None) is None:
            return
        self._dirty.pop(session.id, None)
        if isinstance(session, DataSession | AllTickSession) and session.subs:
            self.resubscribe(session, {}, now)
        entry = session.describe()
        entry.update(opened_at=session.opened, closed_at=now, reason=reason)
        self.journal.connection(entry, now)

    def check_credentials(self, key: str, secret: str) -> bool:
        """Accepted keys from the options (any non-empty key when none are configured)."""
        if self.faults.reject_auth or not key:
            return False
        if not self.options.keys:
            return True
        return self.options.keys.get(key) == secret

    def check_token(self, token: str) -> bool:
        """An AllTick token: one of the sim's keys (any non-empty one when none are set)."""
        if self.faults.reject_auth or not token:
            return False
        return not self.options.keys or token in self.options.keys

    def claim_connection(self, session: Session, key: str) -> bool:
        """True if `key` may open one more market-data connection (406 otherwise)."""
        if isinstance(session, AllTickSession):  # AllTick counts per token, its own paths
            used = sum(1 for s in self.sessions.values()
                       if isinstance(s, AllTickSession) and s.authenticated
                       and s.token_is(key) and s is not session)
            return used < self.options.max_connections
        used = sum(1 for s in self.sessions.values()
                   if isinstance(s, DataSession) and s.authenticated and s.key == key
                   and s is not session)
        return used < self.options.max_connections

    def listed(self, symbol: str) -> bool:
        return not self._listed or symbol in self._listed

    # -- subscriptions ----------------------------------------------------------------------

    def resubscribe(self, session: Subscriber, new: dict[str, set[str]], now: float) -> None:
        """Replace a session's subscriptions in the index and (de)activate symbols."""
        for channel, symbols in session.subs.items():
            for symbol in symbols - new.get(channel, set()):
                self._index_remove(session, channel, symbol)
        for channel, symbols in new.items():
            for symbol in symbols - session.subs.get(channel, set()):
                if symbol == "*":
                    assert isinstance(session, DataSession)  # AllTick has no wildcard
                    self._wild.setdefault((session.crypto, channel), set()).add(session)
                else:
                    self._index.setdefault((channel, symbol), set()).add(session)
        self.refresh_active(now)

    def _index_remove(self, session: Subscriber, channel: str, symbol: str) -> None:
        key = (session.crypto, channel) if symbol == "*" else (channel, symbol)
        table: dict[Any, set[Any]] = self._wild if symbol == "*" else self._index
        members = table.get(key)
        if members is not None:
            members.discard(session)
            if not members:
                del table[key]

    def refresh_active(self, now: float) -> None:
        """Activate exactly the symbols someone subscribes to or has a working order on."""
        wanted = {symbol for (_, symbol) in self._index}
        wanted |= self.book.working_symbols()
        if self._wild and self._listed:
            wanted |= self._listed
        for symbol in wanted - self._active:
            self.feed.activate(symbol, now)
        for symbol in self._active - wanted:
            self.feed.deactivate(symbol)
        self._active = wanted

    @property
    def active_symbols(self) -> set[str]:
        return set(self._active)

    # -- market -----------------------------------------------------------------------------

    def advance(self, now: float) -> None:
        """Step the market to `now`: fan events out, fill orders, enforce auth timeouts."""
        self.dispatch(self.feed.advance(now), now)
        if now >= self._next_timeout_check:
            self._next_timeout_check = now + 0.05
            for session in list(self.sessions.values()):
                session.check_timeout(now)

    def set_mid(self, symbol: str, mid: float, now: float) -> None:
        """Move a symbol's price at once (admin): its quote and trade are sent and matched."""
        self.dispatch(self.feed.set_mid(symbol, mid, now), now)

    def inject(self, events: Iterable[MarketEvent], now: float) -> None:
        """Send market events made by the admin endpoint (a status, a correction, ...)."""
        self.dispatch(events, now)

    def dispatch(self, events: Iterable[MarketEvent], now: float) -> None:
        silent = self.faults.silent(now)
        index, wild, book = self._index, self._wild, self.book
        updates: list[Update] = []
        count = 0
        for event in self.extras.expand(events):
            count += 1
            kind = type(event)
            if kind is Quote:
                assert isinstance(event, Quote)
                filled = book.on_quote(event)
                if filled:
                    updates.extend(filled)
                channel = "quotes"
                if not silent and (index.get(("orderbooks", event.symbol))
                                   or (wild and wild.get((True, "orderbooks")))):
                    self._send_book(event)
            elif kind is Trade:
                assert isinstance(event, Trade)
                self.history.record(event)
                channel = "trades"
            elif kind is Bar:
                assert isinstance(event, Bar)
                channel = BAR_CHANNELS[event.kind]
            else:
                channel = EVENT_CHANNELS[kind]
            if silent:
                continue
            subscribers = index.get((channel, event.symbol))
            wildcard = wild.get((is_crypto(event.symbol), channel)) if wild else None
            if not subscribers and not wildcard:
                continue
            encoded: dict[object, bytes] = {}  # by dialect and codec: encoded once each
            for group in (subscribers, wildcard):
                if not group:
                    continue
                for session in group:
                    if session.own_format:  # one event, several messages (OpenAlgo)
                        for own in session.encode_events(event):
                            session.push_data(own)
                            self.messages_queued += 1
                        continue
                    key = session.cache_key
                    item = encoded.get(key)
                    if item is None:
                        item = encoded[key] = session.encode_event(event)
                    session.push_data(item)
                    self.messages_queued += 1
        self.events_generated += count
        if updates:
            self.publish(updates, now)
            self.refresh_active(now)

    def _send_book(self, quote: Quote) -> None:
        """The `orderbooks` message a quote makes: what changed in the symbol's book."""
        change = self.depth.update(quote)
        if change is None:
            return
        sessions = set(self._index.get(("orderbooks", quote.symbol), ()))
        sessions |= self._wild.get((True, "orderbooks"), set())
        encoded: dict[Codec, bytes] = {}
        for session in sessions:
            item = encoded.get(session.codec)
            if item is None:
                item = encoded[session.codec] = encode_item(
                    session.codec, book_message(change, session.codec))
            session.push_data(item)
            self.messages_queued += 1

    def send_book_snapshot(self, session: Session, symbol: str, now: float) -> None:
        """A new `orderbooks` subscriber's snapshot of the symbol's book, as Alpaca sends: the
        book the other subscribers hold now (re-made from a fresh quote, it would both differ
        from the quote stream and reset the base of everyone's next difference)."""
        change = self.depth.current(symbol)
        if change is None:
            return  # the first quote of the symbol will be a snapshot, for everyone
        session.push_data(encode_item(session.codec, book_message(change, session.codec)))

    # -- orders -----------------------------------------------------------------------------

    def publish(self, updates: list[Update], now: float) -> None:
        """Journal trade updates and send them to the owning key's listening streams."""
        listeners: dict[str, list[TradeSession]] = {}
        for session in self.sessions.values():
            if (isinstance(session, TradeSession) and session.key is not None
                    and "trade_updates" in session.streams):
                listeners.setdefault(session.key, []).append(session)
        for update in updates:
            order = update.order
            self.journal.update({
                "key": update.key, "event": update.event, "order_id": order["id"],
                "client_order_id": order["client_order_id"], "symbol": order["symbol"],
                "side": order["side"], "status": order["status"], "qty": update.qty,
                "price": update.price, "position_qty": update.position_qty}, now)
            message = trade_update(update.to_json())
            for session in listeners.get(update.key, ()):
                session.send(message)

    def touch(self, symbol: str, now: float) -> Quote | None:
        """The quote an order arriving now would meet; None while the market is closed."""
        if not self.feed.is_open(now):
            return None
        return self.feed.touch(symbol, now)

    # -- status -----------------------------------------------------------------------------

    def connections(self) -> list[dict[str, Any]]:
        return [dict(s.describe(), opened_at=s.opened) for s in self.sessions.values()]

    def status(self, now: float) -> dict[str, Any]:
        feed = self.feed
        status: dict[str, Any] = {
            "uptime": round(now - self.started, 3),
            "market": "replay" if isinstance(feed, ReplayFeed) else "random_walk",
            "open": feed.is_open(now),
            "active_symbols": sorted(self._active),
            "connections": len(self.sessions),
            "events_generated": self.events_generated,
            "messages_queued": self.messages_queued,
            "faults": self.faults.to_json(now),
        }
        if isinstance(feed, RandomWalkMarket):
            status.update(steps=feed.steps, skipped_steps=feed.skipped_steps,
                          step_interval=feed.interval())
        if isinstance(feed, ReplayFeed):
            status.update(rows_played=feed.rows_played)
        return status
