"""The trades the simulated market made, kept to answer Alpaca's historical trades API.

`GET /v2/stocks/trades?symbols=A,B&start=&end=&limit=&page_token=` and
`GET /v2/stocks/{symbol}/trades?start=&end=&limit=&page_token=` answer as Alpaca's market-data
API does (`{"trades": {...} | [...], "next_page_token": ...}`), from every trade the market
made, whether or not it was sent (a silence fault keeps the market moving): what a gateway
asks for to backfill an outage. Times are RFC 3339 with nanoseconds; `start` is included,
`end` excluded. Sans-I/O.
"""

from __future__ import annotations

import base64
from collections import deque
from datetime import UTC, datetime
from typing import Any

from tradeops.sim.market import Trade

#: Trades kept per symbol (the oldest go first).
KEPT = 200_000
MAX_LIMIT = 10_000


def rfc3339(t_ns: int) -> str:
    seconds, ns = divmod(t_ns, 10**9)
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{ns:09d}Z"


def parse_time(text: str) -> int:
    """RFC 3339 (any fraction, `Z` or an offset) to ns since the epoch; ValueError if not."""
    text = text.strip().replace("z", "Z")
    fraction = 0
    if "." in text:
        head, rest = text.split(".", 1)
        digits = "".join(c for c in rest if c.isdigit())
        zone = rest[len(digits):]
        fraction = int((digits + "000000000")[:9])
        text = head + zone
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp()) * 10**9 + fraction


class TradeHistory:
    def __init__(self, kept: int = KEPT) -> None:
        self._trades: dict[str, deque[Trade]] = {}
        self._kept = kept

    def record(self, trade: Trade) -> None:
        trades = self._trades.get(trade.symbol)
        if trades is None:
            trades = self._trades[trade.symbol] = deque(maxlen=self._kept)
        trades.append(trade)

    def between(self, symbols: list[str], start_ns: int, end_ns: int, limit: int,
                page_token: str | None) -> tuple[dict[str, list[dict[str, Any]]], str | None]:
        """Trades of `symbols` with start <= t < end, by symbol then time, at most `limit`
        from where `page_token` left off; the token of the next page (None at the end)."""
        after: tuple[str, int] | None = None
        if page_token:
            symbol, _, position = base64.urlsafe_b64decode(page_token).decode().rpartition(":")
            after = (symbol, int(position))
        out: dict[str, list[dict[str, Any]]] = {}
        count = 0
        for symbol in sorted(set(symbols)):
            if after is not None and symbol < after[0]:
                continue
            trades = [t for t in self._trades.get(symbol, ()) if start_ns <= t.t_ns < end_ns]
            first = after[1] if after is not None and symbol == after[0] else 0
            for index in range(first, len(trades)):
                if count == limit:
                    token = base64.urlsafe_b64encode(f"{symbol}:{index}".encode()).decode()
                    return out, token
                t = trades[index]
                out.setdefault(symbol, []).append({
                    "t": rfc3339(t.t_ns), "x": "V", "p": t.price, "s": t.size, "c": ["@"],
                    "i": t.trade_id, "z": "C"})
                count += 1
        return out, None


def answer(history: TradeHistory, symbols: list[str], query: dict[str, str],
           single: str | None) -> tuple[int, dict[str, Any]]:
    """The reply (status, body) to a historical trades request."""
    try:
        start = parse_time(query["start"]) if query.get("start") else 0
        end = parse_time(query["end"]) if query.get("end") else 2**63 - 1
        limit = min(int(query.get("limit", "1000")), MAX_LIMIT)
    except ValueError as exc:
        return 422, {"code": 42210000, "message": f"invalid query: {exc}"}
    if not symbols or limit < 1:
        return 422, {"code": 42210000, "message": "symbols and a positive limit are required"}
    trades, token = history.between(symbols, start, end, limit, query.get("page_token"))
    if single is not None:
        return 200, {"trades": trades.get(single, []), "symbol": single,
                     "next_page_token": token}
    return 200, {"trades": trades, "next_page_token": token}
