"""Reading a recording directory: what it holds (`tradeops data ls|show`), its rows (`head`),
and the ticks a replay plays.

A directory is either a recording's root (`DIR/broker=NAME/...`) or one broker's part of it
(`DIR/broker=NAME`). Only closed files are read: an open file's journal is counted as open,
never read (it may be half written).
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from tradeops.recording.files import JOURNAL
from tradeops.recording.layout import SCHEMA, UTC_NS


class NotARecording(ValueError):
    """A directory that is not a recording; the message says what to pass instead."""


@dataclass(frozen=True)
class Partition:
    """One `broker=NAME/date=DAY` folder: its closed files, rows, bytes and time range."""

    broker: str
    date: str
    files: int
    rows: int
    bytes: int
    first_ns: int | None
    last_ns: int | None
    open_files: int

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def brokers_in(directory: Path) -> dict[str, Path]:
    """broker name → its folder. NotARecording when `directory` is neither a recording's root
    nor one broker's folder (or does not exist)."""
    if not directory.is_dir():
        raise NotARecording(f"{directory} is not a directory: name a recording directory "
                            "(settings.record.dir), or run in one")
    if directory.name.startswith("broker="):
        return {directory.name.removeprefix("broker="): directory}
    return {p.name.removeprefix("broker="): p for p in sorted(directory.glob("broker=*"))
            if p.is_dir()}


def partitions(directory: Path) -> list[Partition]:
    """Every partition of the recording, by broker and date."""
    out = []
    for broker, folder in brokers_in(directory).items():
        for day in sorted(folder.glob("date=*")):
            closed = sorted(day.glob("*.parquet"))
            rows = size = 0
            first: int | None = None
            last: int | None = None
            for path in closed:
                meta = pq.ParquetFile(path).metadata
                rows += meta.num_rows
                size += path.stat().st_size
                lo, hi = _time_range(meta)
                first = lo if first is None or (lo is not None and lo < first) else first
                last = hi if last is None or (hi is not None and hi > last) else last
            journals = len(list(day.glob(f".part-*{JOURNAL}")))
            out.append(Partition(broker, day.name.removeprefix("date="), len(closed), rows,
                                 size, first, last, journals))
    return out


def _time_range(meta: pq.FileMetaData) -> tuple[int | None, int | None]:
    """The smallest and largest exchange time of a file, from its row groups' statistics."""
    index = meta.schema.names.index("exchange_ns")
    lows, highs = [], []
    for i in range(meta.num_row_groups):
        stats = meta.row_group(i).column(index).statistics
        if stats is not None and stats.has_min_max:
            lows.append(_ns(stats.min))
            highs.append(_ns(stats.max))
    return (min(lows), max(highs)) if lows else (None, None)


def _ns(value: object) -> int:
    if isinstance(value, datetime.datetime):
        return int(value.timestamp()) * 10**9 + value.microsecond * 1000
    if hasattr(value, "value"):  # a pandas Timestamp keeps its nanoseconds
        return int(value.value)
    return int(str(value)) if not isinstance(value, int) else value


def dataset(directory: Path, broker: str | None = None) -> ds.Dataset:
    """The closed files of one broker (or of the only one) as a pyarrow dataset."""
    folders = brokers_in(directory)
    if not folders:
        raise NotARecording(f"{directory} holds no recording (no broker=NAME folders)")
    if broker is None:
        if len(folders) > 1:
            raise NotARecording(f"{directory} holds brokers {', '.join(folders)}: name one "
                                f"(e.g. {directory / ('broker=' + next(iter(folders)))})")
        broker = next(iter(folders))
    if broker not in folders:
        raise NotARecording(f"{directory} has no broker '{broker}'; it has "
                            f"{', '.join(folders)}")
    paths = sorted(str(p) for p in folders[broker].glob("date=*/*.parquet"))
    # The schema of this layout: a file of an older one reads with its missing columns null.
    return ds.dataset(paths, format="parquet", schema=SCHEMA)


def read(
    directory: Path,
    broker: str | None = None,
    *,
    start_ns: int | None = None,
    end_ns: int | None = None,
    symbols: Iterable[str] | None = None,
    kinds: Iterable[str] | None = None,
    columns: list[str] | None = None,
) -> pa.Table:
    """The rows of one broker in the order they were recorded (session, then seq), between
    `start_ns` (inclusive) and `end_ns` (exclusive) exchange time."""
    data = dataset(directory, broker)
    where = None
    for condition in (
        ds.field("exchange_ns") >= pa.scalar(start_ns, UTC_NS) if start_ns is not None else None,
        ds.field("exchange_ns") < pa.scalar(end_ns, UTC_NS) if end_ns is not None else None,
        ds.field("symbol").isin(sorted(symbols)) if symbols is not None else None,
    ):
        if condition is not None:
            where = condition if where is None else where & condition
    table = data.to_table(filter=where)
    if kinds is not None:
        table = table.filter(pc.is_in(table["kind"].cast(pa.string()), pa.array(sorted(kinds))))
    table = table.sort_by([("session", "ascending"), ("seq", "ascending")])
    return table.select(columns) if columns else table
