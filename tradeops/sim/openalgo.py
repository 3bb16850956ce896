"""The sim as an OpenAlgo server: its market-data websocket dialect, sans-I/O.

Served on `/openalgo` (the real server listens on `/` of port 8765; point a client's `ws_url`
or a broker's `url` here). What it speaks, as OpenAlgo's websocket proxy does:

- `{"action": "authenticate", "api_key": KEY}` → `{"type": "auth", "status": "success", ...}`;
  a key the sim does not accept → `{"status": "error", "code": "AUTHENTICATION_ERROR", ...}`
  and the connection closes. Anything before authenticating → `NOT_AUTHENTICATED`.
- `subscribe` / `unsubscribe` with `symbol` + `exchange` or a `symbols` array, `mode` 1 (LTP),
  2 (Quote) or 3 (Depth) as a number or a label; answered with the per-symbol outcome.
  More distinct symbols than `symbols_per_connection` → that symbol fails with
  `SUBSCRIPTION_LIMIT`.
- `market_data` per subscribed mode: LTP from each trade (`ltp`, `ltt`, `timestamp`,
  `last_trade_quantity`), Quote from each trade with the session's OHLC and volume, Depth
  from each quote (5 levels each side around the quoted best, in ticks of 0.05).
- `{"action": "ping"}` → `pong`.

The sim's market is keyed by `EXCHANGE:SYMBOL`, so NSE:X and BSE:X walk apart.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, ClassVar

from tradeops.protocol.codec import Codec
from tradeops.sim.market import MarketEvent, Quote, Trade
from tradeops.sim.session import CLOSE_POLICY, DataSession

if TYPE_CHECKING:
    from tradeops.sim.exchange import Exchange

PATH = "/openalgo"
LABELS = {"LTP": 1, "QUOTE": 2, "DEPTH": 3}
NAMES = {1: "LTP", 2: "Quote", 3: "Depth"}
CHANNEL = {1: "trades", 2: "trades", 3: "quotes"}
TICK = 0.05


def parse_mode(value: object) -> int | None:
    if isinstance(value, int) and value in NAMES:
        return value
    if isinstance(value, str):
        return LABELS.get(value.upper()) or (int(value) if value in ("1", "2", "3") else None)
    return None


class OpenAlgoServerSession(DataSession):
    kind = "openalgo"
    batched: ClassVar[bool] = False
    text_frames: ClassVar[bool] = True
    own_format: ClassVar[bool] = True

    def __init__(self, exchange: Exchange, conn_id: int, path: str, now: float) -> None:
        super().__init__(exchange, conn_id, path, "openalgo", Codec.JSON, now)
        self.modes: dict[str, set[int]] = {}  # market symbol (EXCHANGE:SYMBOL) → modes
        self._ohlc: dict[str, list[float]] = {}  # symbol → open, high, low, volume

    def _send(self, message: dict[str, Any]) -> None:
        self.out.append([json.dumps(message).encode()])
        self._data_chunk = None
        self.exchange.mark_dirty(self)

    def _error(self, code: str, message: str, fatal: bool = False) -> None:
        self._send({"status": "error", "code": code, "message": message})
        if fatal:
            self.close(CLOSE_POLICY, message)

    def open(self, now: float) -> None:
        return None  # OpenAlgo greets nothing

    def check_timeout(self, now: float) -> None:
        if not self.authenticated and self.closing is None and now >= self.deadline:
            self._error("AUTHENTICATION_ERROR", "authenticate within the time limit", True)

    def receive(self, payload: str | bytes, now: float) -> None:
        if self.closing is not None:
            return
        try:
            message = json.loads(payload)
        except (ValueError, UnicodeDecodeError):
            self._error("INVALID_JSON", "messages are JSON objects")
            return
        if not isinstance(message, dict):
            self._error("INVALID_JSON", "messages are JSON objects")
            return
        action = message.get("action") or message.get("type")
        if action == "authenticate":
            self._authenticate(message, now)
        elif not self.authenticated:
            self._error("NOT_AUTHENTICATED", "authenticate first")
        elif action == "ping":
            self._send({"type": "pong", "status": "success", "server_timestamp": int(now * 1e3)})
        elif action in ("subscribe", "unsubscribe"):
            self._change(str(action), message, now)
        else:
            self._error("INVALID_ACTION", f"unknown action {action!r}")

    def _authenticate(self, message: dict[str, Any], now: float) -> None:
        key = message.get("api_key", message.get("apikey"))
        exchange = self.exchange
        ok = isinstance(key, str) and bool(key) and not exchange.faults.reject_auth and (
            not exchange.options.keys or key in exchange.options.keys)
        self._record_auth(key, ok, None if ok else 401, now)
        if not ok:
            self._error("AUTHENTICATION_ERROR", "Invalid API key", fatal=True)
            return
        assert isinstance(key, str)
        if not exchange.claim_connection(self, key):
            self._error("CONNECTION_LIMIT", "too many connections for this API key", fatal=True)
            return
        self.key, self.authenticated = key, True
        self._send({"type": "auth", "status": "success", "message": "Authentication successful",
                    "broker": "sim", "user_id": "sim",
                    "supported_features": {"ltp": True, "quote": True, "depth": True}})

    def _change(self, action: str, message: dict[str, Any], now: float) -> None:
        mode = parse_mode(message.get("mode", 1))
        if mode is None:
            self._error("INVALID_MODE", "mode is 1 (LTP), 2 (Quote) or 3 (Depth)")
            return
        items = message.get("symbols")
        if not isinstance(items, list):
            items = [{"symbol": message.get("symbol"), "exchange": message.get("exchange")}]
        outcome: list[dict[str, Any]] = []
        modes = {s: set(m) for s, m in self.modes.items()}
        limit = self.exchange.options.symbols_per_connection
        for item in items:
            name = item.get("symbol") if isinstance(item, dict) else None
            venue = item.get("exchange") if isinstance(item, dict) else None
            entry = {"symbol": name, "exchange": venue, "mode": NAMES[mode], "broker": "sim"}
            if not isinstance(name, str) or not isinstance(venue, str) or not name or not venue:
                outcome.append(entry | {"status": "error", "message": "symbol and exchange"})
                continue
            symbol = f"{venue}:{name}"
            held = modes.setdefault(symbol, set())
            if action == "subscribe":
                if symbol not in self.modes and sum(1 for m in modes.values() if m) >= limit:
                    modes.pop(symbol, None)
                    outcome.append(entry | {"status": "error", "code": "SUBSCRIPTION_LIMIT",
                                            "message": f"at most {limit} symbols"})
                    continue
                held.add(mode)
            else:
                held.discard(mode)
            outcome.append(entry | {"status": "success"})
        self.modes = {s: m for s, m in modes.items() if m}
        new: dict[str, set[str]] = {}
        for symbol, held in self.modes.items():
            for m in held:
                new.setdefault(CHANNEL[m], set()).add(symbol)
        self.exchange.resubscribe(self, new, now)
        self.subs = new
        failed = [o for o in outcome if o["status"] == "error"]
        status = "success" if not failed else "partial" if len(failed) < len(outcome) else "error"
        self.exchange.journal.subscription(
            {"conn": self.id, "key": self.key, "feed": "openalgo", "action": action,
             "request": {"mode": mode, "symbols": items}, "result": status,
             "subscribed": {c: sorted(s) for c, s in new.items()}}, now)
        if action == "subscribe":
            self._send({"type": "subscribe", "status": status, "subscriptions": outcome,
                        "message": f"subscribed {len(outcome) - len(failed)} of "
                                   f"{len(outcome)}"})
        else:
            self._send({"type": "unsubscribe", "status": status,
                        "successful": [o for o in outcome if o["status"] == "success"],
                        "failed": failed, "message": "unsubscribed", "broker": "sim"})

    def encode_events(self, event: MarketEvent) -> list[bytes]:
        """This session's market_data messages for one market event (one per mode it holds
        that the event feeds)."""
        held = self.modes.get(event.symbol)
        if not held:
            return []
        venue, _, name = event.symbol.partition(":")
        ms = event.t_ns // 1_000_000
        out: list[bytes] = []
        if isinstance(event, Trade):
            ohlc = self._ohlc.setdefault(event.symbol, [event.price, event.price, event.price,
                                                        0.0])
            ohlc[1], ohlc[2] = max(ohlc[1], event.price), min(ohlc[2], event.price)
            ohlc[3] += event.size
            if 1 in held:
                out.append(_message(venue, name, 1, {
                    "ltp": event.price, "ltt": ms, "timestamp": ms,
                    "last_trade_quantity": event.size}))
            if 2 in held:
                out.append(_message(venue, name, 2, {
                    "open": ohlc[0], "high": ohlc[1], "low": ohlc[2], "close": ohlc[0],
                    "ltp": event.price, "volume": ohlc[3], "last_trade_quantity": event.size,
                    "timestamp": ms}))
        elif isinstance(event, Quote) and 3 in held:
            buy = [{"price": round(event.bid - i * TICK, 2), "quantity": event.bid_size,
                    "orders": 1} for i in range(5)]
            sell = [{"price": round(event.ask + i * TICK, 2), "quantity": event.ask_size,
                     "orders": 1} for i in range(5)]
            out.append(_message(venue, name, 3, {
                "ltp": round((event.bid + event.ask) / 2, 2), "timestamp": ms,
                "depth": {"buy": buy, "sell": sell}}))
        return out

    def describe(self) -> dict[str, Any]:
        info = super().describe()
        info.update(modes={s: sorted(m) for s, m in self.modes.items()})
        return info


def _message(exchange: str, symbol: str, mode: int, data: dict[str, Any]) -> bytes:
    return json.dumps({"type": "market_data", "symbol": symbol, "exchange": exchange,
                       "mode": mode, "data": data}).encode()
