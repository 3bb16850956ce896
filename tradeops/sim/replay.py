"""Replay a recorded file of trades and quotes at 1x..Nx speed instead of the random walk.

File format (CSV with a header row, or Parquet with the same column names):

    timestamp,symbol,type,price,size,bid_price,bid_size,ask_price,ask_size
    2024-05-01T13:30:00.000001Z,AAPL,q,,,189.10,300,189.12,200
    2024-05-01T13:30:00.000900Z,AAPL,t,189.11,100,,,,

`timestamp` is ISO 8601 or a number (epoch seconds, ms, µs or ns, told apart by size).
`type` is `t`/`trade` or `q`/`quote`; without the column a row with a bid or ask is a quote.
Short Alpaca names are accepted too (`p, s, bp, bs, ap, as`).

The replay clock starts when the first symbol is subscribed, so a client that subscribes first
sees the file from its first row; the file then loops. Messages carry the replay-time timestamp
(start + offset / speed), so downstream staleness checks see live-looking data.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from tradeops.sim.market import BarBuilder, MarketEvent, Quote, Trade
from tradeops.sim.options import SimConfigError, SimOptions

_ALIASES = {
    "timestamp": "timestamp", "t": "timestamp", "time": "timestamp",
    "symbol": "symbol", "S": "symbol",
    "type": "type", "T": "type", "kind": "type",
    "price": "price", "p": "price", "size": "size", "s": "size",
    "bid_price": "bid_price", "bp": "bid_price", "bid_size": "bid_size", "bs": "bid_size",
    "ask_price": "ask_price", "ap": "ask_price", "ask_size": "ask_size", "as": "ask_size",
}
#: The pause between the last row and the first row of the next loop, in file time.
_LOOP_GAP_NS = 1_000_000_000


@dataclass(frozen=True, slots=True)
class ReplayRow:
    offset_ns: int  # from the first row of the file
    kind: str  # "t" or "q"
    symbol: str
    price: float = 0.0
    size: float = 0.0
    bid: float = 0.0
    bid_size: float = 0.0
    ask: float = 0.0
    ask_size: float = 0.0


def _timestamp_ns(value: object, where: str) -> int:
    if isinstance(value, datetime):
        return int(value.timestamp() * 1e9)
    if isinstance(value, int | float):
        number = float(value)
    else:
        text = str(value).strip()
        try:
            number = float(text)
        except ValueError:
            try:
                return int(datetime.fromisoformat(text).timestamp() * 1e9)
            except ValueError:
                raise SimConfigError(f"{where}: bad timestamp {text!r}") from None
    for limit, scale in ((1e17, 1.0), (1e14, 1e3), (1e11, 1e6)):
        if abs(number) >= limit:
            return int(number * scale)
    return int(number * 1e9)


def _number(row: Mapping[str, object], name: str, where: str) -> float:
    value = row.get(name)
    if value is None or value == "":
        return 0.0
    try:
        return float(str(value))
    except ValueError:
        raise SimConfigError(f"{where}: column {name} is not a number: {value!r}") from None


def parse_rows(records: Iterable[Mapping[str, object]], source: str) -> list[ReplayRow]:
    """Turn raw records (column -> value) into rows sorted by time; SimConfigError if malformed."""
    raw: list[tuple[int, int, ReplayRow]] = []
    for line, record in enumerate(records, start=2):
        where = f"{source}, row {line}"
        row = {_ALIASES.get(str(k).strip(), str(k).strip()): v for k, v in record.items()}
        if "timestamp" not in row or not row.get("symbol"):
            raise SimConfigError(f"{where}: needs timestamp and symbol columns")
        kind = str(row.get("type") or "").strip().lower()[:1]
        if not kind:
            kind = "q" if row.get("bid_price") not in (None, "") else "t"
        if kind not in ("t", "q"):
            raise SimConfigError(f"{where}: type must be t/trade or q/quote, got {row['type']!r}")
        ts = _timestamp_ns(row["timestamp"], where)
        item = ReplayRow(0, kind, str(row["symbol"]).strip(), _number(row, "price", where),
                         _number(row, "size", where), _number(row, "bid_price", where),
                         _number(row, "bid_size", where), _number(row, "ask_price", where),
                         _number(row, "ask_size", where))
        if kind == "t" and item.price <= 0:
            raise SimConfigError(f"{where}: a trade needs a positive price")
        if kind == "q" and (item.bid <= 0 or item.ask <= 0):
            raise SimConfigError(f"{where}: a quote needs positive bid_price and ask_price")
        raw.append((ts, line, item))
    if not raw:
        raise SimConfigError(f"{source}: no rows to replay")
    raw.sort(key=lambda r: (r[0], r[1]))
    first = raw[0][0]
    return [ReplayRow(ts - first, *_fields(item)) for ts, _, item in raw]


def _fields(row: ReplayRow) -> tuple[str, str, float, float, float, float, float, float]:
    return (row.kind, row.symbol, row.price, row.size, row.bid, row.bid_size, row.ask,
            row.ask_size)


def load_rows(path: Path, options: SimOptions | None = None) -> list[ReplayRow]:
    """Read a recording directory, or a .csv or .parquet replay file."""
    if path.is_dir():
        return load_recording(path, options or SimOptions())
    if path.suffix.lower() in (".parquet", ".pq"):
        import pyarrow.parquet as parquet

        records: list[Mapping[str, object]] = parquet.read_table(str(path)).to_pylist()
        return parse_rows(records, str(path))
    with path.open(newline="", encoding="utf-8") as handle:
        return parse_rows(csv.DictReader(handle), str(path))


def load_recording(directory: Path, options: SimOptions) -> list[ReplayRow]:
    """The trades and quotes of a recording directory (docs/data.md) in the order they were
    recorded, within the options' window and symbols. A directory holding several brokers is
    read for the broker of the same name as the one replaying (`replay_broker`), or for its
    only broker. Offsets follow the exchange times, never going back."""
    import numpy as np

    from tradeops.recording.catalog import NotARecording, brokers_in, read

    where = str(directory)
    try:
        brokers = brokers_in(directory)
        broker = options.replay_broker if options.replay_broker in brokers else None
        table = read(directory, broker, start_ns=options.replay_from, end_ns=options.replay_to,
                     symbols=options.replay_symbols or None, kinds=("trade", "quote"),
                     columns=["exchange_ns", "symbol", "kind", "price", "size", "bid",
                              "bid_size", "ask", "ask_size"])
    except NotARecording as exc:
        raise SimConfigError(f"replay {where}: {exc}") from None
    if table.num_rows == 0:
        raise SimConfigError(f"replay {where}: no trades or quotes in the window and symbols "
                             "asked for")
    times = np.asarray(table["exchange_ns"].cast("int64"))
    offsets = np.maximum.accumulate(times - times[0]).tolist()
    kinds = ["t" if k == "trade" else "q" for k in table["kind"].cast("string").to_pylist()]
    values = [table[c].to_pylist() for c in ("symbol", "price", "size", "bid", "bid_size",
                                             "ask", "ask_size")]
    return [ReplayRow(int(offset), kind, *row)
            for offset, kind, *row in zip(offsets, kinds, *values, strict=True)]


class ReplayFeed:
    """A `Feed` that plays rows at `speed`x from the first activation, looping at the end."""

    def __init__(self, rows: list[ReplayRow], *, speed: float, bar_seconds: float,
                 spread_bps: float) -> None:
        self._rows = rows
        self._speed = speed
        self._cycle_ns = rows[-1].offset_ns + _LOOP_GAP_NS
        self._bars = BarBuilder(bar_seconds)
        self._half_spread = spread_bps / 20_000.0
        self._start: float | None = None
        self._played = 0  # rows played over all loops
        self._quotes: dict[str, Quote] = {}
        self._trade_ids: dict[str, int] = {}

    def activate(self, symbol: str, now: float) -> None:
        if self._start is None:
            self._start = now

    def deactivate(self, symbol: str) -> None:
        return None

    def is_open(self, now: float) -> bool:
        return True  # a recording carries its own hours

    @property
    def rows_played(self) -> int:
        return self._played

    def touch(self, symbol: str, now: float) -> Quote | None:
        return self._quotes.get(symbol)

    def set_mid(self, symbol: str, mid: float, now: float) -> list[MarketEvent]:
        half = max(mid * self._half_spread, 0.005)
        t_ns = int(now * 1e9)
        quote = Quote(symbol, round(mid - half, 2), 100.0, round(mid + half, 2), 100.0, t_ns)
        self._quotes[symbol] = quote
        return [quote, self._trade(symbol, round(mid, 2), 100.0, t_ns)]

    def _trade(self, symbol: str, price: float, size: float, t_ns: int) -> Trade:
        trade_id = self._trade_ids[symbol] = self._trade_ids.get(symbol, 0) + 1
        return Trade(symbol, price, size, t_ns, trade_id)

    def advance(self, now: float) -> list[MarketEvent]:
        events: list[MarketEvent] = []
        if self._start is None:
            return events
        start_ns = int(self._start * 1e9)
        file_ns = int((now - self._start) * self._speed * 1e9)  # elapsed, in file time
        n = len(self._rows)
        while True:
            loop, index = divmod(self._played, n)
            row = self._rows[index]
            at = loop * self._cycle_ns + row.offset_ns
            if at > file_ns:
                break
            t_ns = start_ns + int(at / self._speed)
            if row.kind == "q":
                quote = Quote(row.symbol, row.bid, row.bid_size, row.ask, row.ask_size, t_ns)
                self._quotes[row.symbol] = quote
                events.append(quote)
            else:
                trade = self._trade(row.symbol, row.price, row.size, t_ns)
                events.append(trade)
                bar = self._bars.add(trade)
                if bar is not None:
                    events.append(bar)
            self._played += 1
        events.extend(self._bars.flush(now))
        return events
