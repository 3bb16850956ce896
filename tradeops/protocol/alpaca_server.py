"""Alpaca's v2 market-data dialect, server side, as the proxy speaks it. Sans-I/O.

What an unmodified alpaca-py ``StockDataStream(..., url_override="ws://HOST:PORT/v2/iex")``
(or any Alpaca v2 client) expects, in order (docs/proxy.md; alpaca-py's client is
``alpaca/data/live/websocket.py`` at https://github.com/alpacahq/alpaca-py):

1. ``[{"T":"success","msg":"connected"}]`` at once;
2. the client's ``{"action":"auth","key":..,"secret":..}`` answered by exactly one frame:
   ``authenticated``, or an error (402 wrong secret: the secret is the proxy token; the key
   is free; 409 when no broker of the desk carries this path's feed, which makes alpaca-py
   stop rather than retry);
3. ``subscribe`` / ``unsubscribe`` (re-sent in full by alpaca-py: an idempotent union),
   answered by the client's full current set; refusals (405 symbol limit, a broker's 409, ...)
   are forwarded as error frames to the client they concern and are never in the set;
4. data as arrays of messages, msgpack (``t`` a Timestamp ext) when the upgrade said
   ``Content-Type: application/msgpack``, JSON otherwise.

Every market-data channel of Alpaca's stock feed is carried: ``trades`` (with their
``corrections`` and ``cancelErrors``, as Alpaca sends them), ``quotes``, ``bars``,
``dailyBars``, ``updatedBars``, ``statuses`` and ``lulds``; the crypto feed's without
statuses and LULD bands. A channel is asked of the gateway, and so of the broker, only while
some client holds it (protocol/modes.py: each is a mode extra). Messages carry what the
broker said as the bus keeps it (docs/bus.md): a trade's own id, exchange, conditions and
tape, a quote's exchanges. ``orderbooks`` and ``news`` are answered with error 410 and left
out of the set. The message builders and error texts (``alpaca_stream.py``) and the codecs
(``codec.py``) are shared with the simulated exchange: one source for the dialect.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from tradeops.protocol import alpaca_stream
from tradeops.protocol.alpaca_stream import CRYPTO_CHANNELS, ERRORS, KNOWN_CHANNELS, STOCK_CHANNELS
from tradeops.protocol.codec import (
    Codec,
    DecodeError,
    decode,
    encode_item,
    frame,
    frame_of,
    item_separator,
    timestamp,
)
from tradeops.protocol.downstream import (
    CLOSE_POLICY,
    Cache,
    DownstreamSession,
    Groups,
    Key,
    NeedChange,
    Result,
    SessionConfig,
    batch_items,
)
from tradeops.protocol.modes import BaseMode, Mode, make
from tradeops.protocol.tick import (
    BAR,
    CANCEL_ERROR,
    CORRECTION,
    DAILY_BAR,
    LULD,
    QUOTE,
    STATUS,
    TRADE,
    UPDATED_BAR,
    SymbolError,
    Tick,
    encode_symbol,
)

#: Every channel the proxy carries (a crypto path: those of CRYPTO_CHANNELS among them).
SERVED: Final = ("trades", "quotes", "bars", "dailyBars", "updatedBars", "statuses", "lulds")
#: The tick kinds each served channel carries.
_CHANNEL_KINDS: Final = (
    ("trades", (TRADE, CORRECTION, CANCEL_ERROR)), ("quotes", (QUOTE,)), ("bars", (BAR,)),
    ("dailyBars", (DAILY_BAR,)), ("updatedBars", (UPDATED_BAR,)), ("statuses", (STATUS,)),
    ("lulds", (LULD,)),
)  # fmt: skip
#: The mode extra each channel beyond trades and quotes needs (protocol/modes.py).
_CHANNEL_EXTRA: Final = {
    "bars": "bars", "dailyBars": "daily_bars", "updatedBars": "updated_bars",
    "statuses": "statuses", "lulds": "lulds",
}
#: Messages per data frame: alpaca-py refuses frames over 1 MiB (the websockets
#: library's default `max_size`, which alpaca-py's client keeps).
MAX_ITEMS_PER_FRAME: Final = 1000
_CODE = re.compile(r"\b(40[0-9]|410|500)\b")


def alpaca_code(reason: str) -> int | None:
    """The Alpaca error code a gateway's reason carries ("broker refused: 405 ..."); a full
    pool is Alpaca's 405 (symbol limit exceeded); None when the reason names no cause."""
    match = _CODE.search(reason)
    if match and int(match.group(1)) in ERRORS:
        return int(match.group(1))
    if "is full" in reason:
        return 405
    return None


def _size(symbol: str, size: float) -> float | int:
    # Stock sizes are integers on Alpaca's wire; crypto sizes are fractional.
    return size if "/" in symbol or not size.is_integer() else int(size)


def data_message(tick: Tick, codec: Codec) -> dict[str, Any] | None:
    """The Alpaca message for one tick (None for kinds Alpaca has no message for), with the
    broker's detail the record keeps. A trade's ``i`` is the broker's trade id, or the bus's
    seq when the upstream gave none (AllTick, OpenAlgo)."""
    symbol, code = tick.symbol, tick.kind_code
    ts = timestamp(codec, tick.exchange_ns)
    crypto = "/" in symbol
    if code == TRADE:
        message: dict[str, Any] = {"T": "t", "S": symbol, "i": tick.trade_id or tick.seq}
        if not crypto and (exchange := tick.exchange):
            message["x"] = exchange
        message.update(p=tick.price, s=_size(symbol, tick.size))
        if crypto:
            message["t"] = ts
            if taker := tick.taker_side:
                message["tks"] = taker
            return message
        return _said(message, tick, ts)
    if code == QUOTE:
        if crypto:
            return {"T": "q", "S": symbol, "bp": tick.bid, "bs": _size(symbol, tick.bid_size),
                    "ap": tick.ask, "as": _size(symbol, tick.ask_size), "t": ts}
        message = {"T": "q", "S": symbol}
        if exchange := tick.exchange:
            message["bx"] = exchange
        message.update(bp=tick.bid, bs=_size(symbol, tick.bid_size))
        if exchange := tick.ask_exchange:
            message["ax"] = exchange
        message.update({"ap": tick.ask, "as": _size(symbol, tick.ask_size)})
        return _said(message, tick, ts)
    if code in _BAR_TYPES:
        return {"T": _BAR_TYPES[code], "S": symbol, "o": tick.open, "h": tick.high,
                "l": tick.low, "c": tick.close, "v": _size(symbol, tick.volume), "t": ts,
                "n": tick.trade_count, "vw": tick.vwap}
    if code == STATUS:
        return {"T": "s", "S": symbol, "sc": tick.exchange, "sm": tick.status_message,
                "rc": tick.ask_exchange, "rm": tick.reason_message, "t": ts, "z": tick.tape}
    if code == LULD:
        return {"T": "l", "S": symbol, "u": tick.ask, "d": tick.bid,
                "i": "".join(tick.conditions), "t": ts, "z": tick.tape}
    if code == CORRECTION:
        return {"T": "c", "S": symbol, "x": tick.exchange, "oi": int(tick.ask),
                "op": tick.bid, "os": _size(symbol, tick.bid_size),
                "oc": list(tick.original_conditions), "ci": tick.trade_id, "cp": tick.price,
                "cs": _size(symbol, tick.size), "cc": list(tick.conditions), "t": ts,
                "z": tick.tape}
    if code == CANCEL_ERROR:
        return {"T": "x", "S": symbol, "i": tick.trade_id, "x": tick.exchange, "p": tick.price,
                "s": _size(symbol, tick.size), "a": "".join(tick.conditions), "t": ts,
                "z": tick.tape}
    return None


_BAR_TYPES: Final = {BAR: "b", DAILY_BAR: "d", UPDATED_BAR: "u"}


def _said(message: dict[str, Any], tick: Tick, ts: object) -> dict[str, Any]:
    """A stock trade's or quote's closing fields, as Alpaca orders them: the conditions and
    the tape when the broker said them, then the time."""
    if conditions := tick.conditions:
        message["c"] = list(conditions)
    if tape := tick.tape:
        message["z"] = tape
    message["t"] = ts
    return message


def _need(subs: dict[str, set[str]], symbol: str) -> Mode | None:
    """The gateway mode a client's channels of ``symbol`` need (bars alone: trade+bars,
    whose trades this client is then not sent)."""
    base: BaseMode | None = (
        "quote" if symbol in subs["quotes"] else "trade" if symbol in subs["trades"] else None
    )
    more = [extra for channel, extra in _CHANNEL_EXTRA.items() if symbol in subs[channel]]
    if more:
        return make(base or "trade", more=more)
    return base


@dataclass(frozen=True)
class _AlpacaRequest:
    before: dict[str, set[str]]
    after: dict[str, set[str]]
    unserved: tuple[str, ...]


class AlpacaDataSession(DownstreamSession):
    dialect = "alpaca"

    def __init__(self, config: SessionConfig, now: float, path: str,
                 codec: Codec = Codec.MSGPACK) -> None:
        super().__init__(config, now)
        self.path = path
        self.codec = codec
        self.crypto = "crypto" in path
        self.broker = config.alpaca_broker
        self.subs: dict[str, set[str]] = {c: set() for c in SERVED}
        # The channels this path's feed has (Alpaca's crypto feed: no statuses, no LULD).
        self.served = tuple(c for c in SERVED if c in (CRYPTO_CHANNELS if self.crypto
                                                       else STOCK_CHANNELS))
        # What `ticks` looks up per tick: raw symbol field → the kinds subscribed.
        self._index: dict[bytes, frozenset[int]] = {}
        self._format = f"alpaca-{codec.value}"
        self._pending: _AlpacaRequest | None = None

    def open(self, now: float) -> None:
        self.send(alpaca_stream.success("connected"))

    def receive(self, payload: str | bytes, now: float) -> NeedChange | None:
        if self.closing is not None:
            return None
        try:
            message = decode(payload, self.codec)
        except DecodeError:
            self.error(400)
            return None
        action = message.get("action") if isinstance(message, dict) else None
        if action == "auth":
            assert isinstance(message, dict)
            self._auth(message)
        elif action in ("subscribe", "unsubscribe"):
            assert isinstance(message, dict)
            if not self.authenticated:
                self.error(401)
                return None
            return self._subscribe(str(action), message)
        else:
            self.error(400)
        return None

    def _auth(self, message: dict[str, Any]) -> None:
        if self.authenticated:
            self.error(403)
            return
        key, secret = message.get("key"), message.get("secret")
        if not isinstance(key, str) or not isinstance(secret, str):
            self.error(400)
            return
        if self.broker is None:
            self.error(409, fatal=True)
            return
        if not self.config.token_ok(secret):
            self.refused += 1
            self.error(402)  # like Alpaca: the connection stays open for another try
            return
        self.authenticated = True
        self.name = key[:64]
        self.send(alpaca_stream.success("authenticated"))

    def _subscribe(self, action: str, message: dict[str, Any]) -> NeedChange | None:
        assert self.broker is not None
        after = {c: set(s) for c, s in self.subs.items()}
        unserved: list[str] = []
        for channel, symbols in message.items():
            if channel == "action":
                continue
            if channel not in KNOWN_CHANNELS or not isinstance(symbols, list):
                self.error(400)
                return None
            if not all(isinstance(s, str) and not self.config.check_symbol(self.broker, s)
                       for s in symbols):
                self.error(400)
                return None
            if channel not in self.served:
                if symbols and action == "subscribe":
                    unserved.append(channel)
                continue
            if action == "subscribe":
                after[channel].update(symbols)
            else:
                after[channel].difference_update(symbols)
        if len(set().union(*(after[c] for c in SERVED))) > self.config.max_symbols and (
            action == "subscribe"
        ):
            self.error(405)
            return None
        touched: set[str] = set().union(*(after[c] ^ self.subs[c] for c in SERVED))
        wants: dict[Key, Mode | None] = {}
        for symbol in touched:
            need = _need(after, symbol)
            if need != _need(self.subs, symbol):
                wants[(self.broker, symbol)] = need
        self._pending = _AlpacaRequest(self.subs, after, tuple(unserved))
        return self._request_change(wants)

    def resolved(self, results: Mapping[Key, Result]) -> None:
        pending, self._pending = self._pending, None
        if pending is None:
            return
        after = pending.after
        codes: dict[int, None] = {}
        for (_, symbol), result in results.items():
            code = alpaca_code(result.reason)
            if not result.ok:
                for channel in SERVED:  # back to what the client had before asking
                    if symbol in pending.before[channel]:
                        after[channel].add(symbol)
                    else:
                        after[channel].discard(symbol)
                codes[code or 500] = None
            elif result.queued and code is not None:
                codes[code] = None  # kept, but say why nothing flows yet
        self.subs = after
        self._reindex()
        for code in codes:
            self.error(code)
        if pending.unserved:
            self.error(410)
        self.send(self._ack())

    def _ack(self) -> dict[str, Any]:
        """The full current set, every channel of the feed listed (empty ones too; a stock
        feed's corrections and cancel/errors are its trades', as Alpaca's)."""
        return alpaca_stream.subscription(self.crypto, self.subs)

    def ticks(self, broker: str, ticks: Sequence[Tick], cache: Cache) -> int:
        wanted, codec = self._index, self.codec
        if not wanted or broker != self.broker:
            return 0
        encoded = cache.get(self._format)
        if encoded is None:
            encoded = cache[self._format] = {}
        items: list[bytes] = []
        for tick in ticks:
            kinds = wanted.get(tick.symbol_bytes)
            if kinds is None or tick.kind_code not in kinds:
                continue
            item = encoded.get(tick.seq)
            if item is None:
                message = data_message(tick, codec)
                if message is None:
                    continue
                item = encoded[tick.seq] = encode_item(codec, message)
            items.append(item)
        text = codec is Codec.JSON
        for i in range(0, len(items), MAX_ITEMS_PER_FRAME):
            self.out.append((frame(codec, items[i:i + MAX_ITEMS_PER_FRAME]), text))
        return len(items)

    def symbol_ticks(
        self, broker: str, symbols: Sequence[bytes], groups: Groups, cache: Cache
    ) -> int:
        """One array frame (or more past MAX_ITEMS_PER_FRAME) of these symbols' trades and
        quotes in the gateway's order, each symbol's items encoded once per batch."""
        wanted, codec = self._index, self.codec
        if not wanted or broker != self.broker:
            return 0
        items = batch_items(cache, self._format, symbols, wanted, groups, self._encode_tick)
        if not items:
            return 0
        text = codec is Codec.JSON
        if len(items) <= MAX_ITEMS_PER_FRAME:
            body = item_separator(codec).join(items)
            self.out.append((frame_of(codec, len(items), body), text))
            return len(items)
        for i in range(0, len(items), MAX_ITEMS_PER_FRAME):
            self.out.append((frame(codec, items[i:i + MAX_ITEMS_PER_FRAME]), text))
        return len(items)

    def _encode_tick(self, tick: Tick) -> bytes | None:
        message = data_message(tick, self.codec)
        return None if message is None else encode_item(self.codec, message)

    def _reindex(self) -> None:
        index: dict[bytes, set[int]] = {}
        for channel, codes in _CHANNEL_KINDS:
            for symbol in self.subs[channel]:
                try:
                    index.setdefault(encode_symbol(symbol), set()).update(codes)
                except SymbolError:  # validated on subscribe: cannot happen
                    continue
        self._index = {raw: frozenset(kinds) for raw, kinds in index.items()}

    def lost(self, key: Key, reason: str) -> None:
        symbol = key[1]
        if any(symbol in self.subs[c] for c in SERVED):
            for channel in SERVED:
                self.subs[channel].discard(symbol)
            self._reindex()
            self.error(alpaca_code(reason) or 500)
            self.send(self._ack())

    def slow(self) -> None:
        self.out.clear()
        self.error(407)
        super().slow()

    def auth_timeout(self) -> None:
        self.error(404, fatal=True)

    def holding(self) -> dict[Key, Mode]:
        if self.broker is None:
            return {}
        symbols = set().union(*self.subs.values())
        return {(self.broker, s): m for s in symbols if (m := _need(self.subs, s))}

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "path": self.path, "codec": self.codec.value}

    # -- helpers ----------------------------------------------------------------------------------
    def send(self, message: dict[str, Any]) -> None:
        """One control message in a frame of its own (alpaca-py reads the greeting and the
        auth reply as exactly one frame each)."""
        self.out.append((frame(self.codec, [encode_item(self.codec, message)]),
                         self.codec is Codec.JSON))

    def error(self, code: int, *, fatal: bool = False) -> None:
        self.send(alpaca_stream.error(code))
        if code not in (407, 404):
            self.count_error()
        if fatal:
            self.close(CLOSE_POLICY, ERRORS[code])
