"""A batch of records copied out of the ring, read by column: for readers that want many
ticks and few fields (a recorder writing Parquet, a bar builder), not a ``Tick`` each.

``RingReader.read_batch`` copies the records with one memcpy and decodes nothing. A column is
a strided ``memoryview`` over that copy (no copy, no Python object per tick until you ask):
``batch.column("price").tolist()``, or ``numpy.asarray(batch.column("price"))``, or the
whole batch as a numpy structured array with :meth:`TickBatch.numpy` (numpy is optional: only
this method imports it). Measured here: a column of 512 records in about 4 ns a tick, the
whole ``Tick`` about 350 ns (benchmarks/bus_bench.py).
"""

from __future__ import annotations

import importlib
import struct
from typing import Any, Final

from tradeops.protocol.tick import RECORD, RECORD_SIZE, SYMBOL_FIELD, Tick, tick_from_values

__all__ = ["COLUMNS", "TickBatch"]

_FLOATS: Final = ("price", "size", "bid", "bid_size", "ask", "ask_size", "open", "high", "low",
                  "close", "volume", "vwap")  # fmt: skip
#: Column name -> (memoryview format, byte offset in the record). The record's layout:
#: docs/bus.md; a test pins these against ``RECORD``.
COLUMNS: Final[dict[str, tuple[str, int]]] = {
    "seq": ("q", 0),
    "kind_code": ("B", 8),
    "flags": ("B", 9),
    "trade_count": ("I", 12),
    "exchange_ns": ("q", 16),
    "receive_ns": ("q", 24),
    **{name: ("d", 64 + 8 * i) for i, name in enumerate(_FLOATS)},
}
_SYMBOL: Final = SYMBOL_FIELD


class TickBatch:
    """``len(batch)`` consecutive records, seq ``first_seq`` on, as the ring held them.

    ``data`` is the records' bytes (``len(batch) * 192``, the layout of docs/bus.md). Nothing
    here is decoded until asked for; the batch owns its copy, so the ring moving on does not
    change it.
    """

    __slots__ = ("data", "first_seq")

    def __init__(self, first_seq: int, data: bytes) -> None:
        if len(data) % RECORD_SIZE:
            raise ValueError(f"{len(data)} bytes is not a whole number of records")
        self.first_seq = first_seq
        self.data = data

    def __len__(self) -> int:
        return len(self.data) // RECORD_SIZE

    def __bool__(self) -> bool:
        return bool(self.data)

    def column(self, name: str) -> memoryview:
        """One field of every record as a strided view: ``.tolist()``, ``numpy.asarray``.

        ``name`` is a :class:`Tick` field (KeyError for another; the symbol is not a fixed-
        width number: see :meth:`symbols`)."""
        fmt, offset = COLUMNS[name]
        size = struct.calcsize(fmt)
        step = RECORD_SIZE // size
        view: memoryview = memoryview(self.data).cast(fmt)  # type: ignore[call-overload]
        return view[offset // size :: step]

    def symbols(self) -> list[bytes]:
        """Every record's 32-byte symbol field (``decode_symbol`` makes it a str)."""
        return [raw for (raw,) in _SYMBOL.iter_unpack(self.data)]

    def ticks(self) -> list[Tick]:
        """Every record as a :class:`Tick` (what ``RingReader.read`` returns)."""
        return list(map(tick_from_values, RECORD.iter_unpack(self.data)))

    def numpy(self) -> Any:
        """The batch as a numpy structured array over ``data`` (no copy; read-only).

        ImportError with the install command if numpy is missing."""
        try:
            np = importlib.import_module("numpy")
        except ImportError as exc:
            raise ImportError("TickBatch.numpy() needs numpy: pip install numpy") from exc
        fields = {name: (fmt, offset) for name, (fmt, offset) in COLUMNS.items()}
        names = [*fields, "symbol"]
        formats = [{"q": "<i8", "B": "u1", "I": "<u4", "d": "<f8"}[f] for f, _ in fields.values()]
        dtype = np.dtype(
            {
                "names": names,
                "formats": [*formats, "S32"],
                "offsets": [*(o for _, o in fields.values()), 32],
                "itemsize": RECORD_SIZE,
            }
        )
        return np.frombuffer(self.data, dtype=dtype)

    def __repr__(self) -> str:
        return f"TickBatch(first_seq={self.first_seq}, records={len(self)})"
