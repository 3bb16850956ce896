"""The recording layout (version 1): one hive-partitioned Parquet dataset per directory.

    DIR/broker=NAME/date=YYYY-MM-DD/part-SESSION-FIRSTSEQ.parquet    closed, complete files
    DIR/broker=NAME/date=YYYY-MM-DD/.part-SESSION-FIRSTSEQ.arrows    the open file's journal
    DIR/broker=NAME/_position.json                                   where the recorder stopped

`date` is the UTC date of the tick's exchange time. A file carries every field of the bus's
tick record (docs/bus.md) plus the bus epoch it came from (`session`, so a gateway restart that
starts `seq` again at 1 is visible) and `lost_before`, the ticks the recorder lost to a lap just
before this row. Names starting with `.` or `_` are skipped by pyarrow and by a
`**/*.parquet` glob (DuckDB), so readers see only closed files.

Pure data and conversions: no files are opened here (`files.py` writes, `catalog.py` reads).
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from itertools import starmap
from pathlib import Path
from typing import Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tradeops.protocol.tick import KIND_NAMES, LAYOUT_VERSION, RECORD, Tick
from tradeops.topology.model import Topology

#: Bump on any change of a column's name, type or meaning, or of the paths above.
#: 2: the broker's detail columns (trade_id ... conditions) after lost_before; files of
#: layout 1 read with them null.
RECORDING_LAYOUT: Final = 2
UTC_NS: Final = pa.timestamp("ns", tz="UTC")
KIND_TYPE: Final = pa.dictionary(pa.int8(), pa.string())

#: Columns in file order. Times are timestamp[ns, UTC] (int64 nanoseconds underneath).
SCHEMA: Final = pa.schema([
    ("exchange_ns", UTC_NS), ("receive_ns", UTC_NS), ("symbol", pa.string()),
    ("kind", KIND_TYPE), ("price", pa.float64()), ("size", pa.float64()),
    ("bid", pa.float64()), ("bid_size", pa.float64()), ("ask", pa.float64()),
    ("ask_size", pa.float64()), ("open", pa.float64()), ("high", pa.float64()),
    ("low", pa.float64()), ("close", pa.float64()), ("volume", pa.float64()),
    ("vwap", pa.float64()), ("trade_count", pa.uint32()), ("flags", pa.uint8()),
    ("seq", pa.int64()), ("session", pa.int64()), ("lost_before", pa.int64()),
    ("trade_id", pa.int64()), ("exchange", pa.string()), ("ask_exchange", pa.string()),
    ("tape", pa.string()), ("taker_side", pa.string()), ("conditions", pa.string()),
])  # fmt: skip
#: The detail columns and the record's fields behind them (docs/bus.md, "detail").
DETAIL: Final = (("exchange", "exchange"), ("ask_exchange", "ask_exchange"), ("tape", "tape"),
                 ("taker_side", "taker"), ("conditions", "conditions"))  # fmt: skip
#: The bus record (protocol/tick.py RECORD) as a numpy structured type: a batch of records
#: packed back to back is viewed as columns without a Python step per field.
RECORD_DTYPE: Final = np.dtype([
    ("seq", "<i8"), ("kind", "i1"), ("flags", "u1"), ("pad", "V2"), ("trade_count", "<u4"),
    ("exchange_ns", "<i8"), ("receive_ns", "<i8"), ("symbol", "S32"),
    *((name, "<f8") for name in ("price", "size", "bid", "bid_size", "ask", "ask_size", "open",
                                 "high", "low", "close", "volume", "vwap")),
    ("trade_id", "<i8"), ("exchange", "S4"), ("ask_exchange", "S4"), ("tape", "S1"),
    ("taker", "S1"), ("conditions", "S14"),
])  # fmt: skip
_KINDS: Final = pa.array(KIND_NAMES, pa.string())
NS_PER_DAY: Final = 86_400 * 10**9


def metadata(broker: str) -> dict[bytes, bytes]:
    """The key-value metadata every file carries: the layouts it was written in."""
    return {
        b"tradeops.recording_layout": str(RECORDING_LAYOUT).encode(),
        b"tradeops.tick_layout": str(LAYOUT_VERSION).encode(),
        b"tradeops.broker": broker.encode(),
    }


def schema_for(broker: str) -> pa.Schema:
    return SCHEMA.with_metadata(metadata(broker))


def to_table(ticks: Sequence[Tick], session: int, gaps: Sequence[tuple[int, int]] = ()) -> pa.Table:
    """The rows of `ticks` (read from one ring of epoch `session`), with `lost_before` set at
    each (index, ticks lost) of `gaps`. The ticks are packed back into bus records and viewed
    as numpy columns: about 0.6 µs a tick, where converting each field from Python values
    cost 2.2 µs (benchmarks/recorder_bench.py)."""
    n = len(ticks)
    records = np.frombuffer(b"".join(starmap(RECORD.pack, ticks)), dtype=RECORD_DTYPE)
    lost = np.zeros(n, dtype=np.int64)
    for index, count in gaps:
        lost[index] = count
    arrays: dict[str, pa.Array] = {
        "exchange_ns": pa.array(records["exchange_ns"], UTC_NS),
        "receive_ns": pa.array(records["receive_ns"], UTC_NS),
        # The record's symbol field is NUL-padded: numpy's fixed-width bytes drop the padding.
        "symbol": pa.array(records["symbol"]).cast(pa.string()),
        "kind": pa.DictionaryArray.from_arrays(pa.array(records["kind"]), _KINDS),
    }
    for name in SCHEMA.names[4:SCHEMA.names.index("session")]:
        if name not in arrays:
            arrays[name] = pa.array(records[name])
    arrays["session"] = pa.array(np.full(n, session, dtype=np.int64))
    arrays["lost_before"] = pa.array(lost)
    arrays["trade_id"] = pa.array(records["trade_id"])
    for column, field in DETAIL:
        text = pa.array(records[field]).cast(pa.string())  # NUL padding dropped, as symbols
        if column == "conditions":  # codes joined by ","; a correction's originals after "|"
            text = pc.replace_substring(pc.replace_substring(text, "\x1f", ","), "\x1e", "|")
        arrays[column] = text
    return pa.table([arrays[f.name] for f in SCHEMA], schema=SCHEMA)


def select(table: pa.Table, symbols: frozenset[str] | None, kinds: frozenset[str]) -> pa.Table:
    """Only the rows of `symbols` (None: all) and `kinds`; a gap stays with the next row kept."""
    mask = None
    if kinds != frozenset(KIND_NAMES[1:4]):
        mask = pc.is_in(table["kind"].cast(pa.string()), pa.array(sorted(kinds)))
    if symbols is not None:
        wanted = pc.is_in(table["symbol"], pa.array(sorted(symbols)))
        mask = wanted if mask is None else pc.and_(mask, wanted)
    if mask is None:
        return table
    return table.filter(mask)


def day_of(exchange_ns: int) -> str:
    """The partition date (UTC) of a tick's exchange time."""
    return datetime.datetime.fromtimestamp(exchange_ns // 10**9, datetime.UTC).date().isoformat()


def partition(broker: str, day: str) -> str:
    """The partition's path below the recording directory."""
    return f"broker={broker}/date={day}"


def stem(session: int, first_seq: int) -> str:
    """A file's name without suffix: unique per broker (an epoch and a seq in it)."""
    return f"part-{session}-{first_seq:012d}"


def recording_dir(topology: Topology, topology_file: Path | None = None) -> Path | None:
    """The desk's recording directory (`settings.record.dir`); a relative one is relative to
    the topology file's folder, like the run dir, so a desk records into its own folder
    wherever it is started from. None when the desk records nothing."""
    record = topology.settings.record
    if record is None:
        return None
    path = Path(record.dir).expanduser()
    if not path.is_absolute():
        path = (topology_file.resolve().parent if topology_file else Path.cwd()) / path
    return path.resolve()
