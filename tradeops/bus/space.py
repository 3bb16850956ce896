"""How much shared memory a broker's bus takes, and whether /dev/shm has room for a desk's.

Every segment is allocated whole when its writer creates it (shm.py), so the sizes here are
what /dev/shm gives up for as long as the desk runs: per broker, its tick ring, latest-value
table and book table. The supervisor checks the sum before it starts anything; a gateway
that still finds no room (something else filled /dev/shm meanwhile) refuses at creation.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping

from tradeops.bus import names
from tradeops.bus.books import BookTable, book_table_size
from tradeops.bus.layout import DEFAULT_CAPACITY, DEFAULT_MAX_READERS, RingLayout, TableLayout
from tradeops.bus.ring import TickRing
from tradeops.bus.shm import BusSpaceError, room_message
from tradeops.bus.table import DEFAULT_MAX_SYMBOLS, LatestTable

__all__ = ["broker_bus", "create_bus", "describe", "desk_room_problem"]


def broker_bus(capacity: int = DEFAULT_CAPACITY) -> dict[str, int]:
    """Bytes of each segment of one broker's bus, by what it is."""
    return {
        "tick ring": RingLayout(capacity, DEFAULT_MAX_READERS).size,
        "latest-value table": TableLayout(DEFAULT_MAX_SYMBOLS).size,
        "book table": book_table_size(),
    }


def describe(parts: Mapping[str, int]) -> str:
    """`tick ring 48.0 MiB, latest-value table 4.0 MiB, ...`"""
    return ", ".join(f"{what} {size / 2**20:,.1f} MiB" for what, size in parts.items())


def desk_room_problem(buses: Mapping[str, int]) -> str | None:
    """What is wrong when /dev/shm cannot hold these brokers' buses (broker -> bytes), or None.
    None too when /dev/shm cannot be asked (it is then the gateways' creation that says)."""
    need = sum(buses.values())
    try:
        free = shutil.disk_usage(names.SHM_DIR).free
    except OSError:
        return None
    if need <= free:
        return None
    parts = describe({f"broker {broker!r}": size for broker, size in buses.items()})
    return room_message(f"the bus of this desk ({parts})", need, names.SHM_DIR)


def create_bus(
    topology: str, broker: str, capacity: int = DEFAULT_CAPACITY
) -> tuple[LatestTable, BookTable, TickRing]:
    """A broker's latest-value table, book table and tick ring (``capacity`` slots), created in
    that order, as its gateway (or a stand-in for a gateway on another node) writes them. If
    /dev/shm cannot hold them all, those made are removed again and BusSpaceError says what
    the broker's whole bus needs and what is free."""
    made: list[LatestTable | BookTable] = []
    try:
        table = LatestTable(topology, broker)
        made.append(table)
        books = BookTable(topology, broker)
        made.append(books)
        return table, books, TickRing(topology, broker, table=table, capacity=capacity)
    except BaseException as exc:
        for segment in reversed(made):
            segment.close()
        if not isinstance(exc, BusSpaceError):
            raise
        sizes = broker_bus(capacity)
        what = f"the bus of broker {broker!r} ({describe(sizes)})"
        need = sum(sizes.values())
        raise BusSpaceError(exc.errno, room_message(what, need, names.SHM_DIR)) from None
