"""The proxy's own protocol, version 1, sans-I/O (docs/proxy.md is its reference).

JSON objects in TEXT frames; or msgpack maps in BINARY frames when the upgrade request says
``Content-Type: application/msgpack``. The client speaks first::

    → {"op": "hello", "v": 1, "token": "...", "client": "dashboard"}
    ← {"op": "hello", "v": 1, "server": "tradeops 0.1.0", "brokers": {...}, "modes": [...]}
    → {"op": "subscribe", "id": 1, "broker": "sim", "symbols": ["AAPL"], "mode": "quote"}
    ← {"op": "ack", "id": 1, "broker": "sim", "ok": true, "results": {"AAPL": {"ok": true}}}
    ← {"op": "ticks", "broker": "sim", "ticks": [{"seq": 7, "kind": "trade", ...}, ...]}
    ← {"op": "status", "broker": "sim", "live": false, "reason": "..."}
    ← {"op": "lost", "broker": "sim", "symbol": "AAPL", "reason": "..."}
    → {"op": "unsubscribe", "id": 2, "broker": "sim", "symbols": ["AAPL"]}
    → {"op": "ping", "id": 3}             ← {"op": "pong", "id": 3, "time_ns": ...}
    ← {"op": "error", "code": "unknown-op", "message": "...", "id": 4}

Modes: ``trade`` delivers trades, ``quote`` trades and quotes, ``depth`` also order books
(a ``depth`` tick per book change, with ``bids`` and ``asks`` as ``[price, size]`` best first:
the symbol's newest book when the proxy sends it); each with ``+bars`` adds bars (the
broker's bars are subscribed only while someone holds them), and likewise ``+daily_bars``,
``+updated_bars``, ``+statuses`` and ``+lulds`` (protocol/modes.py). Trades carry their
corrections and cancel/errors. The broker's detail (trade id, exchange codes, tape,
conditions) is carried when it said it.
One mode per symbol per client; subscribing again replaces it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import msgpack

from tradeops.protocol.book import Book
from tradeops.protocol.codec import (
    Codec,
    DecodeError,
    array_header,
    decode,
    encode_item,
    item_separator,
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
from tradeops.protocol.modes import MODE_HELP, Mode, is_mode, kinds_of
from tradeops.protocol.tick import (
    BAR,
    CANCEL_ERROR,
    CORRECTION,
    DAILY_BAR,
    DEPTH,
    FLAG_SNAPSHOT,
    KIND_CODES,
    LULD,
    NO_DETAIL,
    QUOTE,
    STATUS,
    TRADE,
    UPDATED_BAR,
    SymbolError,
    Tick,
    encode_symbol,
)

VERSION: Final = 1
#: The modes the hello lists: the common ones; any mode of protocol/modes.py is taken.
MODES: Final = ("trade", "quote", "depth", "trade+bars", "quote+bars", "depth+bars")
#: Ticks per `ticks` message: keeps frames far below common 1 MiB client limits.
MAX_TICKS_PER_FRAME: Final = 1000
_KINDS: dict[str, frozenset[int]] = {}


def kind_codes(mode: Mode) -> frozenset[int]:
    """Tick kind codes a mode delivers (the rule is protocol/modes.py's)."""
    codes = _KINDS.get(mode)
    if codes is None:
        codes = _KINDS[mode] = frozenset(KIND_CODES[kind] for kind in kinds_of(mode))
    return codes


_OPS: Final = ("hello", "subscribe", "unsubscribe", "ping")


def is_native(message: object) -> bool:
    """True for a message that opens a native session (``{"op": "hello", ...}``)."""
    return isinstance(message, dict) and message.get("op") == "hello"


def tick_message(tick: Tick, book: Book | None = None) -> dict[str, Any]:
    """One tick as the native protocol carries it: only the fields its kind uses (a depth
    tick: its symbol's ``book`` levels, or the best level the record holds without one)."""
    out: dict[str, Any] = {
        "seq": tick.seq, "kind": tick.kind, "symbol": tick.symbol,
        "ts": tick.exchange_ns, "rx": tick.receive_ns,
    }  # fmt: skip
    code = tick.kind_code
    if code == TRADE:
        out.update(price=tick.price, size=tick.size)
        _detail(out, tick, "exchange")
    elif code == QUOTE:
        out.update(bid=tick.bid, bid_size=tick.bid_size, ask=tick.ask, ask_size=tick.ask_size)
        _detail(out, tick, "bid_exchange")
    elif code in (BAR, DAILY_BAR, UPDATED_BAR):
        out.update(open=tick.open, high=tick.high, low=tick.low, close=tick.close,
                   volume=tick.volume, vwap=tick.vwap, trade_count=tick.trade_count)
    elif code == STATUS:
        out.update(status_code=tick.exchange, status_message=tick.status_message,
                   reason_code=tick.ask_exchange, reason_message=tick.reason_message)
        _detail(out, tick, "")
    elif code == LULD:
        out.update(limit_up=tick.ask, limit_down=tick.bid, indicator="".join(tick.conditions))
        _detail(out, tick, "")
    elif code == CORRECTION:
        out.update(price=tick.price, size=tick.size, original_price=tick.bid,
                   original_size=tick.bid_size, original_id=int(tick.ask),
                   original_conditions=list(tick.original_conditions))
        _detail(out, tick, "exchange")
    elif code == CANCEL_ERROR:
        out.update(price=tick.price, size=tick.size, action="".join(tick.conditions))
        _detail(out, tick, "exchange", conditions=False)
    elif code == DEPTH:
        if book is not None:
            out.update(bids=[list(level) for level in book.bids],
                       asks=[list(level) for level in book.asks], version=book.version)
        else:
            out.update(bids=[[tick.bid, tick.bid_size]], asks=[[tick.ask, tick.ask_size]])
    if tick.flags & FLAG_SNAPSHOT:
        out["snapshot"] = True
    return out


def _detail(out: dict[str, Any], tick: Tick, exchange: str, conditions: bool = True) -> None:
    """The broker's detail a tick has (docs/bus.md), under ``exchange``'s name for its
    exchange code; fields the broker did not say are left out. All but the trade id repeat
    from tick to tick: decoded once per distinct detail and kept."""
    detail = tick.detail
    if detail == NO_DETAIL:
        return
    trade_id = int.from_bytes(detail[:8], "little", signed=True)
    if trade_id:
        out["trade_id"] = trade_id
    key = (detail[8:], exchange, conditions and tick.kind_code != LULD)
    fields = _DETAIL_FIELDS.get(key)
    if fields is None:
        fields = {}
        if exchange and (value := tick.exchange):
            fields[exchange] = value
        if exchange == "bid_exchange" and (value := tick.ask_exchange):
            fields["ask_exchange"] = value
        if value := tick.tape:
            fields["tape"] = value
        if value := tick.taker_side:
            fields["taker_side"] = value
        if key[2] and (codes := tick.conditions):
            fields["conditions"] = list(codes)
        if len(_DETAIL_FIELDS) < 4096:
            _DETAIL_FIELDS[key] = fields
    if fields:
        out.update(fields)
        if "conditions" in fields:  # a list: each message its own
            out["conditions"] = list(fields["conditions"])


_DETAIL_FIELDS: dict[tuple[bytes, str, bool], dict[str, Any]] = {}


def ticks_frame(codec: Codec, broker: str, items: list[bytes]) -> bytes:
    """A `ticks` message from tick items encoded by `encode_item` in the same codec."""
    return ticks_frame_of(codec, broker, len(items), item_separator(codec).join(items))


def ticks_frame_of(codec: Codec, broker: str, count: int, body: bytes) -> bytes:
    """A `ticks` message of `count` items already joined by `item_separator`."""
    head = _HEADS.get((codec, broker))
    if head is None:
        if codec is Codec.MSGPACK:
            head = b"\x83" + msgpack.packb("op") + msgpack.packb("ticks")
            head += msgpack.packb("broker") + msgpack.packb(broker) + msgpack.packb("ticks")
        else:
            head = b'{"op":"ticks","broker":' + json.dumps(broker).encode() + b',"ticks":['
        _HEADS[(codec, broker)] = head
    if codec is Codec.MSGPACK:
        return head + array_header(count) + body
    return head + body + b"]}"


#: The bytes before the items of a `ticks` message, per (codec, broker): built once.
_HEADS: dict[tuple[Codec, str], bytes] = {}


@dataclass(frozen=True)
class _NativeRequest:
    op: str
    id: object
    broker: str
    mode: Mode | None
    results: dict[str, dict[str, Any]]  # answers known before asking (bad symbols, ...)
    order: tuple[str, ...]  # the symbols as the client listed them


class NativeSession(DownstreamSession):
    dialect = "native"

    def __init__(
        self,
        config: SessionConfig,
        now: float,
        codec: Codec = Codec.JSON,
        clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        """`clock_ns` is the server's time that `pong` reports (the wall clock in the proxy;
        a fixed function in tests): the session reads no clock of its own."""
        super().__init__(config, now)
        self._clock_ns = clock_ns
        self.codec = codec
        self.version = 0  # 0 until hello
        self.subs: dict[Key, Mode] = {}
        # What `ticks` looks up per tick: broker → raw symbol field → kinds delivered.
        self._index: dict[str, dict[bytes, frozenset[int]]] = {}
        self._format = f"native-{codec.value}"
        self._live: dict[str, tuple[bool, str]] = {
            b: (False, "not connected to the gateway yet") for b in config.brokers
        }
        self._pending: _NativeRequest | None = None

    # -- messages in ------------------------------------------------------------------------------
    def receive(self, payload: str | bytes, now: float) -> NeedChange | None:
        if self.closing is not None:
            return None
        try:
            message = decode(payload, self.codec)
        except DecodeError as exc:
            self.error("bad-message", f"not a {self.codec.value} message: {exc}")
            return None
        if not isinstance(message, dict):
            self.error("bad-message", "a message is an object with an `op`")
            return None
        op, rid = message.get("op"), message.get("id")
        if op == "hello":
            self._hello(message)
            return None
        if not self.authenticated:
            self.error("hello-first", 'send {"op": "hello", "v": 1, "token": ...} first', rid)
            if self.version == 0:
                self.close(CLOSE_POLICY, "hello first")
            return None
        if op == "ping":
            self.send({"op": "pong", "id": rid, "time_ns": self._clock_ns()})
            return None
        if op == "subscribe":
            return self._subscribe(message, rid)
        if op == "unsubscribe":
            return self._unsubscribe(message, rid)
        self.error("unknown-op", f"unknown op {op!r}; one of {', '.join(_OPS)}", rid)
        return None

    def _hello(self, message: dict[str, Any]) -> None:
        if self.authenticated:
            self.error("already-hello", "hello was already accepted", message.get("id"))
            return
        v = message.get("v")
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            self.error("version", f"`v` must be a protocol version; this server speaks {VERSION}")
            self.close(CLOSE_POLICY, "unsupported version")
            return
        if not self.config.token_ok(message.get("token")):
            self.refused += 1
            self.error("auth-failed", "wrong or missing token")
            self.close(CLOSE_POLICY, "auth failed")
            return
        self.version = min(v, VERSION)
        self.authenticated = True
        client = message.get("client")
        self.name = client[:64] if isinstance(client, str) else ""
        self.send({
            "op": "hello", "v": self.version, "server": self.config.server,
            "brokers": {b: {"live": live, "reason": why} for b, (live, why) in self._live.items()},
            "modes": list(MODES), "max_symbols": self.config.max_symbols,
            "codec": self.codec.value,
        })  # fmt: skip

    def _broker(self, message: dict[str, Any], rid: object) -> str | None:
        broker = message.get("broker")
        brokers = self.config.brokers
        if broker is None and len(brokers) == 1:
            return brokers[0]
        if not isinstance(broker, str) or broker not in brokers:
            self.error("unknown-broker", f"`broker` must be one of: {', '.join(brokers)}", rid)
            return None
        return broker

    def _symbols(self, message: dict[str, Any], rid: object) -> list[str] | None:
        symbols = message.get("symbols")
        if isinstance(symbols, str):
            symbols = [symbols]
        if not isinstance(symbols, list) or not all(isinstance(s, str) for s in symbols):
            self.error("bad-message", "`symbols` must be a list of strings", rid)
            return None
        return list(dict.fromkeys(symbols))

    def _subscribe(self, message: dict[str, Any], rid: object) -> NeedChange | None:
        broker = self._broker(message, rid)
        symbols = self._symbols(message, rid) if broker else None
        if broker is None or symbols is None:
            return None
        mode = message.get("mode", "trade")
        if not is_mode(mode):
            self.error("bad-mode", f"`mode` {mode!r} is not a mode: {MODE_HELP}", rid)
            return None
        results: dict[str, dict[str, Any]] = {}
        held = set(self.subs)
        room = self.config.max_symbols - len(held)
        wants: dict[Key, Mode | None] = {}
        for symbol in symbols:
            key = (broker, symbol)
            problem = self.config.check_symbol(broker, symbol)
            if problem:
                results[symbol] = {"ok": False, "code": "bad-symbol", "reason": problem}
            elif key not in held and room <= 0:
                results[symbol] = {"ok": False, "code": "too-many-symbols",
                                   "reason": f"at most {self.config.max_symbols} symbols "
                                             "per client"}  # fmt: skip
            else:
                room -= key not in held
                held.add(key)
                wants[key] = mode
        if results:
            self.count_error()
        return self._ask("subscribe", rid, broker, mode, wants, results, symbols)

    def _unsubscribe(self, message: dict[str, Any], rid: object) -> NeedChange | None:
        broker = message.get("broker")
        if "symbols" not in message:  # everything (of one broker, when named)
            keys = [k for k in self.subs if broker is None or k[0] == broker]
            wants: dict[Key, Mode | None] = dict.fromkeys(keys)
            order = [k[1] for k in keys]
            return self._ask("unsubscribe", rid, str(broker or ""), None, wants, {}, order)
        name = self._broker(message, rid)
        symbols = self._symbols(message, rid) if name else None
        if name is None or symbols is None:
            return None
        wants = {(name, s): None for s in symbols if (name, s) in self.subs}
        results = {s: {"ok": True} for s in symbols if (name, s) not in self.subs}
        return self._ask("unsubscribe", rid, name, None, wants, results, symbols)

    def _ask(self, op: str, rid: object, broker: str, mode: Mode | None,
             wants: dict[Key, Mode | None], results: dict[str, dict[str, Any]],
             order: list[str]) -> NeedChange | None:
        self._pending = _NativeRequest(op, rid, broker, mode, results, tuple(order))
        return self._request_change(wants)

    def resolved(self, results: Mapping[Key, Result]) -> None:
        pending, self._pending = self._pending, None
        if pending is None:
            return
        out = dict(pending.results)
        for key, result in results.items():
            if result.ok:
                if pending.mode is None:
                    self.subs.pop(key, None)
                else:
                    self.subs[key] = pending.mode
                self._reindex()
                entry: dict[str, Any] = {"ok": True}
                if result.queued:
                    entry.update(queued=True, reason=result.reason)
            else:
                entry = {"ok": False, "code": "refused", "reason": result.reason}
            out[key[1]] = entry
        ordered = {s: out[s] for s in pending.order if s in out}
        message: dict[str, Any] = {"op": "ack", "id": pending.id, "ok": all(
            r["ok"] for r in out.values()), "results": {**ordered, **out}}
        if pending.broker:
            message["broker"] = pending.broker
        self.send(message)

    # -- messages out -----------------------------------------------------------------------------
    def ticks(self, broker: str, ticks: Sequence[Tick], cache: Cache) -> int:
        wanted = self._index.get(broker)
        if not wanted:
            return 0
        codec, items = self.codec, []
        encoded = cache.get(self._format)
        if encoded is None:
            encoded = cache[self._format] = {}
        for tick in ticks:
            kinds = wanted.get(tick.symbol_bytes)
            if kinds is None or tick.kind_code not in kinds:
                continue
            item = encoded.get(tick.seq)
            if item is None:
                item = encoded[tick.seq] = self._encode_tick(tick, broker)
            items.append(item)
        text = codec is Codec.JSON
        for i in range(0, len(items), MAX_TICKS_PER_FRAME):
            self.out.append((ticks_frame(codec, broker, items[i:i + MAX_TICKS_PER_FRAME]), text))
        return len(items)

    def symbol_ticks(
        self, broker: str, symbols: Sequence[bytes], groups: Groups, cache: Cache
    ) -> int:
        """One `ticks` message (or more past MAX_TICKS_PER_FRAME) of these symbols' ticks in
        the gateway's order, each symbol's items encoded once per batch for every client, and
        the whole message once for every client holding the same symbols and kinds."""
        wanted = self._index.get(broker)
        if not wanted:
            return 0
        frames = cache.get(self._format + "/frames")
        if frames is None:
            frames = cache[self._format + "/frames"] = {}
        key = (broker, *[(raw, wanted.get(raw)) for raw in symbols])
        done = frames.get(key)
        if done is not None:
            self.out += done[1]
            return int(done[0])
        before = len(self.out)
        n = self._symbol_ticks(broker, symbols, wanted, groups, cache)
        frames[key] = (n, self.out[before:])
        return n

    def _symbol_ticks(self, broker: str, symbols: Sequence[bytes],
                      wanted: dict[bytes, frozenset[int]], groups: Groups, cache: Cache) -> int:
        codec = self.codec

        def encode(tick: Tick) -> bytes:
            return self._encode_tick(tick, broker)

        items = batch_items(cache, self._format, symbols, wanted, groups, encode)
        if not items:
            return 0
        text = codec is Codec.JSON
        if len(items) <= MAX_TICKS_PER_FRAME:
            body = item_separator(codec).join(items)
            self.out.append((ticks_frame_of(codec, broker, len(items), body), text))
            return len(items)
        for i in range(0, len(items), MAX_TICKS_PER_FRAME):
            self.out.append((ticks_frame(codec, broker, items[i:i + MAX_TICKS_PER_FRAME]), text))
        return len(items)

    def _encode_tick(self, tick: Tick, broker: str) -> bytes:
        book = self.config.book(broker, tick.symbol) if tick.kind_code == DEPTH else None
        return encode_item(self.codec, tick_message(tick, book))

    def _reindex(self) -> None:
        index: dict[str, dict[bytes, frozenset[int]]] = {}
        for (broker, symbol), mode in self.subs.items():
            try:
                index.setdefault(broker, {})[encode_symbol(symbol)] = kind_codes(mode)
            except SymbolError:  # validated on subscribe: cannot happen
                continue
        self._index = index

    def health(self, broker: str, live: bool, reason: str) -> None:
        if self._live.get(broker) == (live, reason):
            return
        self._live[broker] = (live, reason)
        if self.authenticated:
            self.send({"op": "status", "broker": broker, "live": live, "reason": reason})

    def lost(self, key: Key, reason: str) -> None:
        if self.subs.pop(key, None) is not None:
            self._reindex()
            self.send({"op": "lost", "broker": key[0], "symbol": key[1], "reason": reason})

    def slow(self) -> None:
        self.out.clear()
        self.error("slow-client", "the connection fell too far behind; reconnect and "
                   "resubscribe (or ask the desk for slow_client: conflate)")
        super().slow()

    def auth_timeout(self) -> None:
        self.error("auth-timeout", "no hello in time")
        super().auth_timeout()

    def holding(self) -> dict[Key, Mode]:
        return dict(self.subs)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "codec": self.codec.value}

    # -- helpers ----------------------------------------------------------------------------------
    def send(self, message: dict[str, Any]) -> None:
        self.out.append((encode_item(self.codec, message), self.codec is Codec.JSON))

    def error(self, code: str, message: str, rid: object = None) -> None:
        body: dict[str, Any] = {"op": "error", "code": code, "message": message}
        if rid is not None:
            body["id"] = rid
        self.send(body)
        if code not in ("slow-client", "auth-timeout"):
            self.count_error()
