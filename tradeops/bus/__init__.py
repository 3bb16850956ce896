"""The shared-memory bus: one writer (a broker's gateway), any number of readers.

``TickRing`` writes ticks, ``RingReader`` reads them (as ``Tick``s, or as a ``TickBatch``
read by column), ``LatestTable`` / ``TableReader`` hold
the last trade and quote per symbol, ``BookTable`` / ``BookReader`` the newest order book per
symbol, ``names`` finds and removes a topology's segments. The
layout is documented in docs/bus.md.
"""

from tradeops.bus.batch import TickBatch
from tradeops.bus.books import BookReader, BookTable, BookTableFullError
from tradeops.bus.doorbell import ReadersFullError
from tradeops.bus.names import list_segments, remove_segments
from tradeops.bus.reader import RingReader
from tradeops.bus.ring import ReaderInfo, TickRing
from tradeops.bus.shm import BusSpaceError, SegmentBusyError
from tradeops.bus.table import LatestTable, TableFullError, TableReader

__all__ = [
    "BookReader",
    "BookTable",
    "BookTableFullError",
    "BusSpaceError",
    "LatestTable",
    "ReaderInfo",
    "ReadersFullError",
    "RingReader",
    "SegmentBusyError",
    "TableFullError",
    "TableReader",
    "TickBatch",
    "TickRing",
    "list_segments",
    "remove_segments",
]
