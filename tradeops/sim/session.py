"""One websocket connection's conversation, sans-I/O: bytes in, encoded frames out.

`DataSession` speaks the Alpaca market-data dialect (`/v2/iex`, `/v2/sip`, `/v2/test`,
`/v1beta3/crypto/us`): greeting, auth, subscribe/unsubscribe, every error code. `TradeSession`
speaks the trade-updates stream (`/stream`): no greeting, authenticate, listen.

The server feeds a session with `open()`, `receive(payload, now)` and `check_timeout(now)`, then
sends what `take()` returns and closes when `closing` is set. Shared state (credentials,
connection counts, the subscription index, the journal) lives in the `Exchange`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from tradeops.protocol import alpaca_stream
from tradeops.protocol.alpaca_stream import CRYPTO_CHANNELS, STOCK_CHANNELS
from tradeops.protocol.codec import Codec, DecodeError, decode, encode_item
from tradeops.sim.dialect import event_message
from tradeops.sim.market import MarketEvent, is_crypto, is_valid_symbol

if TYPE_CHECKING:
    from tradeops.sim.exchange import Exchange

#: Close code after a fatal error frame (policy violation), as Alpaca closes.
CLOSE_POLICY = 1008


#: Channels a stock session is indexed under along with its trades (Alpaca sends a symbol's
#: corrections and cancel/errors to whoever holds its trades).
_MIRRORS = ("corrections", "cancelErrors")


class Session:
    kind: ClassVar[str]
    #: Data sessions frame their queued messages as arrays; trade sessions send one per frame.
    batched: ClassVar[bool]
    #: Unbatched messages go out as TEXT frames (AllTick) rather than BINARY (trade updates).
    text_frames: ClassVar[bool] = False
    #: The session turns one market event into any number of messages (`encode_events`).
    own_format: ClassVar[bool] = False

    def __init__(self, exchange: Exchange, conn_id: int, path: str, codec: Codec,
                 now: float) -> None:
        self.exchange = exchange
        self.id = conn_id
        self.path = path
        self.codec = codec
        self.opened = now
        self.deadline = now + exchange.options.auth_timeout
        self.key: str | None = None
        self.authenticated = False
        self.auth_attempts: list[dict[str, Any]] = []
        # Chunks of encoded messages; each chunk goes out as its own frame(s). A control message
        # is a chunk of its own (alpaca-py reads the greeting and the auth reply as exactly one
        # frame each); market data accumulates into the last chunk.
        self.out: list[list[bytes]] = []
        self._data_chunk: list[bytes] | None = None
        self.closing: tuple[int, str] | None = None
        self.messages_sent = 0

    def send(self, message: object) -> None:
        """Queue one control message (its own frame)."""
        self.out.append([encode_item(self.codec, message)])
        self._data_chunk = None
        self.exchange.mark_dirty(self)

    def push_data(self, item: bytes) -> None:
        """Queue one encoded market-data message, batched with the data queued before it."""
        chunk = self._data_chunk
        if chunk is None:
            chunk = self._data_chunk = []
            self.out.append(chunk)
            self.exchange.mark_dirty(self)
        chunk.append(item)

    def close(self, code: int, reason: str) -> None:
        if self.closing is None:
            self.closing = (code, reason)
            self.exchange.mark_dirty(self)

    def take(self) -> list[list[bytes]]:
        """Chunks of encoded messages to send now, oldest first."""
        out, self.out = self.out, []
        self._data_chunk = None
        return out

    @property
    def cache_key(self) -> object:
        """Sessions with equal keys get the same bytes for a market event (encoded once)."""
        return self.codec

    def encode_event(self, event: MarketEvent) -> bytes:
        """One market event in this session's dialect (Alpaca's, in its codec)."""
        return encode_item(self.codec, event_message(event, self.codec))

    def encode_events(self, event: MarketEvent) -> list[bytes]:
        """This session's messages for a market event (when `own_format`)."""
        return []

    def drop_queued(self) -> None:
        """Forget everything queued (a slow client is about to be told so and closed)."""
        self.out = []
        self._data_chunk = None

    def open(self, now: float) -> None:
        raise NotImplementedError

    def receive(self, payload: str | bytes, now: float) -> None:
        raise NotImplementedError

    def check_timeout(self, now: float) -> None:
        raise NotImplementedError

    def _record_auth(self, key: object, ok: bool, code: int | None, now: float) -> None:
        self.auth_attempts.append({"at": now, "key": key if isinstance(key, str) else None,
                                   "ok": ok, "code": code})

    def describe(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "path": self.path, "codec": self.codec.value,
                "key": self.key, "authenticated": self.authenticated,
                "auth_attempts": list(self.auth_attempts), "messages_sent": self.messages_sent,
                "closing": self.closing[1] if self.closing else None}


class DataSession(Session):
    kind = "data"
    batched = True

    def __init__(self, exchange: Exchange, conn_id: int, path: str, feed: str, codec: Codec,
                 now: float) -> None:
        super().__init__(exchange, conn_id, path, codec, now)
        self.feed = feed
        self.crypto = feed == "crypto/us"
        self.channels = CRYPTO_CHANNELS if self.crypto else STOCK_CHANNELS
        self.subs: dict[str, set[str]] = {}

    def error(self, code: int, *, fatal: bool = False) -> None:
        self.send(alpaca_stream.error(code))
        if fatal:
            self.close(CLOSE_POLICY, alpaca_stream.ERRORS[code])

    def open(self, now: float) -> None:
        self.send(alpaca_stream.success("connected"))

    def check_timeout(self, now: float) -> None:
        if not self.authenticated and self.closing is None and now >= self.deadline:
            self.error(404, fatal=True)

    def receive(self, payload: str | bytes, now: float) -> None:
        if self.closing is not None:
            return
        try:
            message = decode(payload, self.codec)
        except DecodeError:
            self.error(400)
            return
        action = message.get("action") if isinstance(message, dict) else None
        if action == "auth":
            assert isinstance(message, dict)
            self._auth(message, now)
        elif action in ("subscribe", "unsubscribe"):
            assert isinstance(message, dict)
            self._subscribe(str(action), message, now)
        else:
            self.error(400)

    def _auth(self, message: dict[str, Any], now: float) -> None:
        if self.authenticated:
            self.error(403)
            return
        key, secret = message.get("key"), message.get("secret")
        if not isinstance(key, str) or not isinstance(secret, str):
            self._record_auth(key, False, 400, now)
            self.error(400)
            return
        exchange = self.exchange
        code: int | None = None
        if not exchange.check_credentials(key, secret):
            code = 402
        elif self.feed not in exchange.options.feeds:
            code = 409
        elif not exchange.claim_connection(self, key):
            code = 406
        self._record_auth(key, code is None, code, now)
        if code is not None:
            self.error(code, fatal=code != 402)
            return
        self.key = key
        self.authenticated = True
        self.send(alpaca_stream.success("authenticated"))

    def _symbol_ok(self, symbol: str) -> bool:
        if symbol == "*":
            return True
        return is_valid_symbol(symbol) and is_crypto(symbol) == self.crypto

    def _subscribe(self, action: str, message: dict[str, Any], now: float) -> None:
        if not self.authenticated:
            self.error(401)
            return
        request = {k: v for k, v in message.items() if k != "action"}
        code = self._check_request(request)
        faults = self.exchange.faults
        if code is None and faults.refuse_changes > 0:  # injected: refuse this one
            faults.refuse_changes -= 1
            code = faults.refuse_code
        new = {channel: set(symbols) for channel, symbols in self.subs.items()}
        if code is None:
            for channel, symbols in request.items():
                current = new.setdefault(channel, set())
                if action == "subscribe":
                    current.update(symbols)
                else:
                    current.difference_update(symbols)
            new = {channel: symbols for channel, symbols in new.items() if symbols}
            if not self.crypto:
                # Alpaca sends a symbol's corrections and cancel/errors with its trades.
                for mirror in _MIRRORS:
                    if "trades" in new:
                        new[mirror] = set(new["trades"])
                    else:
                        new.pop(mirror, None)
            distinct = set().union(*new.values()) if new else set()
            limit = self.exchange.options.symbols_per_connection
            if action == "subscribe" and len(distinct) > limit:
                code = 405
        entry: dict[str, Any] = {"conn": self.id, "key": self.key, "feed": self.feed,
                                 "action": action, "request": request}
        if code is not None:
            entry.update(result="error", code=code, msg=alpaca_stream.ERRORS[code])
            self.exchange.journal.subscription(entry, now)
            self.error(code)
            return
        added = {c: sorted(s - self.subs.get(c, set())) for c, s in new.items()}
        removed = {c: sorted(s - new.get(c, set())) for c, s in self.subs.items()}
        self.exchange.resubscribe(self, new, now)
        self.subs = new
        # The journal shows what the client asked for, not the channels that follow trades.
        entry.update(result="ok", added={c: s for c, s in added.items() if s and c not in _MIRRORS},
                     removed={c: s for c, s in removed.items() if s and c not in _MIRRORS},
                     subscribed={c: sorted(s) for c, s in new.items() if c not in _MIRRORS})
        self.exchange.journal.subscription(entry, now)
        self.send(alpaca_stream.subscription(self.crypto, new))
        for symbol in added.get("orderbooks", ()):
            if symbol != "*":
                self.exchange.send_book_snapshot(self, symbol, now)

    def _check_request(self, request: dict[str, Any]) -> int | None:
        """The error code for a malformed or disallowed request, None if it is fine."""
        for channel, symbols in request.items():
            if channel not in self.channels:
                return 410 if channel in alpaca_stream.KNOWN_CHANNELS else 400
            if not isinstance(symbols, list) or not all(isinstance(s, str) for s in symbols):
                return 400
            if not all(self._symbol_ok(s) for s in symbols):
                return 400
        return None

    def describe(self) -> dict[str, Any]:
        info = super().describe()
        info.update(feed=self.feed, subscriptions={c: sorted(s) for c, s in self.subs.items()
                                                   if c not in _MIRRORS})
        return info


class TradeSession(Session):
    kind = "trade"
    batched = False

    def __init__(self, exchange: Exchange, conn_id: int, path: str, codec: Codec,
                 now: float) -> None:
        super().__init__(exchange, conn_id, path, codec, now)
        self.streams: set[str] = set()

    def open(self, now: float) -> None:
        return None  # no greeting: alpaca-py reads the next frame as its auth reply

    def check_timeout(self, now: float) -> None:
        if not self.authenticated and self.closing is None and now >= self.deadline:
            self.send(alpaca_stream.authorization("unauthorized", "authenticate"))
            self.close(CLOSE_POLICY, "auth timeout")

    def receive(self, payload: str | bytes, now: float) -> None:
        if self.closing is not None:
            return
        try:
            message = decode(payload, self.codec)
        except DecodeError:
            self.send(alpaca_stream.stream_error("invalid syntax"))
            return
        if not isinstance(message, dict):
            self.send(alpaca_stream.stream_error("invalid syntax"))
            return
        action = message.get("action")
        data = message.get("data")
        data = data if isinstance(data, dict) else {}
        if action in ("authenticate", "auth"):
            source = data if action == "authenticate" else message
            key = source.get("key_id", source.get("key"))
            secret = source.get("secret_key", source.get("secret"))
            ok = (isinstance(key, str) and isinstance(secret, str)
                  and self.exchange.check_credentials(key, secret))
            self._record_auth(key, ok, None if ok else 401, now)
            if ok:
                assert isinstance(key, str)
                self.key = key
                self.authenticated = True
            self.send(alpaca_stream.authorization("authorized" if ok else "unauthorized",
                                            "authenticate"))
        elif action == "listen":
            if not self.authenticated:
                self.send(alpaca_stream.authorization("unauthorized", "listen"))
                return
            streams = data.get("streams")
            if not isinstance(streams, list):
                self.send(alpaca_stream.stream_error("invalid syntax"))
                return
            self.streams = {s for s in streams if s == "trade_updates"}
            self.send(alpaca_stream.listening(sorted(self.streams)))
        else:
            self.send(alpaca_stream.stream_error(f"unrecognized action: {action!r}"))

    def describe(self) -> dict[str, Any]:
        info = super().describe()
        info.update(streams=sorted(self.streams))
        return info
