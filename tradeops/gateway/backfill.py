"""Backfill after a reconnect: the trades an outage kept off the bus, from the broker's history.

`Outages` (pure) notices an outage per upstream connection: the loop tells it when a connection
went down (`down`, with the symbols it carried); the first ticks on that connection after it
came back end the outage (`seen`, on the upstream thread, O(1) a batch). The window is
strictly after the newest exchange time before the outage and strictly before the first one
after it, so no live tick is fetched again. The order is safe: a connection's "down" event
reaches the loop before its "ready", and only after "ready" does the loop send the subscribe
that makes ticks flow again, so `down` always comes before the ticks that end the outage.

`Backfiller` (I/O, one thread) asks the broker's historical trades API for the window
(Alpaca: `GET /v2/stocks/trades?symbols=&start=&end=&limit=&page_token=`; the sim answers
from what its market made), page by page, no faster than the broker's request budget and no
more than `max_trades` trades per outage, and writes them to the bus with `FLAG_BACKFILL`:
late, out of wall-clock order, never the latest value of their symbol (the latest-value
table is left alone, so neither `last_trade` nor the safety gate takes them for live data).
"""

from __future__ import annotations

import json
import queue
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from loguru import logger

from tradeops.protocol.alpaca import to_ns
from tradeops.protocol.codec import rfc3339_ns
from tradeops.protocol.feed import MarketData
from tradeops.protocol.tick import RecordRow

PAGE = 10_000
TIMEOUT = 10.0


#: The exchange time's place in a record row (protocol/tick.py).
EXCHANGE_NS = 3


@dataclass(frozen=True)
class Outage:
    connection: int
    symbols: tuple[str, ...]
    after_ns: int  # the newest exchange time before it
    before_ns: int  # the first exchange time after it


class Outages:
    """Where each connection's data stopped and started again."""

    def __init__(self) -> None:
        self._newest: dict[int, int] = {}
        self._down: dict[int, tuple[int, tuple[str, ...]]] = {}

    def down(self, connection: int, symbols: list[str]) -> None:
        """The connection went down (loop thread); a second drop before data resumed keeps the
        first outage's start."""
        newest = self._newest.get(connection)
        if newest is not None and connection not in self._down and symbols:
            self._down[connection] = (newest, tuple(sorted(symbols)))

    def seen(self, connection: int, ticks: list[RecordRow]) -> Outage | None:
        """Ticks arrived (upstream thread, as the bus's record rows): the outage they end,
        if any."""
        if not ticks:
            return None
        self._newest[connection] = int(ticks[-1][EXCHANGE_NS])
        ended = self._down.pop(connection, None)
        if ended is None:
            return None
        return Outage(connection, ended[1], ended[0], int(ticks[0][EXCHANGE_NS]))


@dataclass
class BackfillFigures:
    trades: int = 0
    outages: int = 0
    last: dict[str, Any] = field(default_factory=dict)


class Backfiller:
    """Fetch each outage's trades on a thread of its own and hand them to `write`."""

    def __init__(self, base_url: str, headers: dict[str, str],
                 write: Callable[[list[MarketData]], None], *, max_trades: int,
                 min_interval: float = 0.0, feed: str | None = None) -> None:
        self._base = base_url.rstrip("/")
        self._headers = headers
        self._write = write
        self._max = max_trades
        self._interval = min_interval
        self._feed = feed
        self._jobs: queue.Queue[Outage | None] = queue.Queue()
        self._last_request = 0.0
        self.figures = BackfillFigures()
        self._thread = threading.Thread(target=self._run, name="backfill", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._jobs.put(None)
        self._thread.join(TIMEOUT + 1)

    def submit(self, outage: Outage) -> None:
        self._jobs.put(outage)

    def _run(self) -> None:
        while (outage := self._jobs.get()) is not None:
            began = time.monotonic()
            try:
                trades = self.fetch(outage)
                error = ""
            except (OSError, ValueError, KeyError, TypeError) as exc:
                trades, error = [], str(exc)
                logger.warning("backfill of {} failed: {}", outage, exc)
            if trades:
                self._write(trades)
            self.figures.trades += len(trades)
            self.figures.outages += 1
            self.figures.last = {
                "from_ns": outage.after_ns, "to_ns": outage.before_ns, "trades": len(trades),
                "symbols": len(outage.symbols), "seconds": round(time.monotonic() - began, 3),
                **({"error": error} if error else {}),
            }
            logger.info("backfilled {} trades of {} symbols for an outage of {:.1f}s",
                        len(trades), len(outage.symbols),
                        (outage.before_ns - outage.after_ns) / 1e9)

    def fetch(self, outage: Outage) -> list[MarketData]:
        """Every trade of the outage's symbols in its window, oldest first (up to the cap)."""
        query = {"symbols": ",".join(outage.symbols), "start": rfc3339_ns(outage.after_ns + 1),
                 "end": rfc3339_ns(outage.before_ns), "limit": str(PAGE)}
        if self._feed:
            query["feed"] = self._feed
        trades: list[MarketData] = []
        token: str | None = None
        while len(trades) < self._max:
            page = self._get({**query, **({"page_token": token} if token else {})})
            for symbol, items in (page.get("trades") or {}).items():
                for item in items:
                    trades.append(MarketData("trade", symbol, to_ns(item["t"]),
                                             float(item["p"]), float(item["s"])))
            token = page.get("next_page_token")
            if not token:
                break
        trades.sort(key=lambda t: (t.ts_ns, t.symbol))
        return trades[: self._max]

    def _get(self, query: dict[str, str]) -> dict[str, Any]:
        wait = self._last_request + self._interval - time.monotonic()
        if wait > 0:
            time.sleep(wait)  # the broker's request budget
        self._last_request = time.monotonic()
        url = f"{self._base}/v2/stocks/trades?{urllib.parse.urlencode(query)}"
        request = urllib.request.Request(url, headers=self._headers)
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            data: dict[str, Any] = json.load(response)
        return data
