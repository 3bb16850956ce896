"""What crosses NATS for ticks: batches of the bus's own binary records, and their reassembly.

A message is a 32-byte header then whole records exactly as the ring holds them
(:data:`~tradeops.protocol.tick.RECORD`, 192 bytes, seq included):

    magic b"TOTB", layout version (u16), record size (u16), epoch (i64), first, last (i64)

`epoch` is the gateway ring's (a new gateway is a new epoch); `first`..`last` is the seq range
of the ring read the records came from. The bridge splits each read by symbol (one subject per
symbol) and publishes the parts back to back; :class:`Reassembly` on the other node puts a
read's parts back in seq order, so they are written to the local ring in order. The records
are never decoded on the way: no per-tick Python object between two rings.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Final

from tradeops.protocol.tick import LAYOUT_VERSION, RECORD_SIZE, SYMBOL_FIELD

MAGIC: Final = b"TOTB"
HEADER: Final = struct.Struct("<4sHHqqq")
#: Only the symbol field of a record (as the reader's filter reads it).
SYMBOL: Final = SYMBOL_FIELD


class WireError(ValueError):
    """A message that is not a tick batch this code can read."""


@dataclass(frozen=True)
class Batch:
    epoch: int
    first: int
    last: int
    records: bytes

    @property
    def count(self) -> int:
        return len(self.records) // RECORD_SIZE


def split_by_symbol(records: bytes) -> dict[bytes, bytes]:
    """A ring read's records grouped by their 32-byte symbol field, each group in seq order."""
    groups: dict[bytes, list[int]] = {}
    for i, (raw,) in enumerate(SYMBOL.iter_unpack(records)):
        groups.setdefault(raw, []).append(i)
    view = memoryview(records)
    return {
        raw: b"".join(view[i * RECORD_SIZE : (i + 1) * RECORD_SIZE] for i in indexes)
        for raw, indexes in groups.items()
    }


def encode(epoch: int, first: int, last: int, records: bytes) -> bytes:
    return HEADER.pack(MAGIC, LAYOUT_VERSION, RECORD_SIZE, epoch, first, last) + records


def decode(message: bytes) -> Batch:
    if len(message) < HEADER.size:
        raise WireError(f"a tick batch is at least {HEADER.size} bytes, got {len(message)}")
    magic, version, size, epoch, first, last = HEADER.unpack_from(message)
    if magic != MAGIC:
        raise WireError(f"not a tick batch (magic {magic!r})")
    if version != LAYOUT_VERSION or size != RECORD_SIZE:
        raise WireError(f"tick batch of layout {version} with {size}-byte records; this node "
                        f"reads layout {LAYOUT_VERSION} ({RECORD_SIZE} bytes): run the same "
                        "tradeops version on every node")
    records = message[HEADER.size :]
    if len(records) % RECORD_SIZE:
        raise WireError(f"{len(records)} bytes of records is not whole records")
    return Batch(epoch, first, last, records)


@dataclass
class Reassembly:
    """Puts one ring read's parts (one message per symbol) back into seq order.

    :meth:`add` returns the records ready for the ring, in seq order: a read's records once
    all of them arrived, or, when a later read begins first (a part was lost), what arrived
    of the earlier one (the ring shows the rest as a gap). :meth:`flush` gives up waiting.
    """

    _first: int = 0
    _last: int = 0
    _parts: list[bytes] = field(default_factory=list)
    _count: int = 0

    def add(self, batch: Batch) -> bytes:
        out = b""
        if self._parts and batch.first != self._first:
            out = self.flush()
        self._first, self._last = batch.first, batch.last
        self._parts.append(batch.records)
        self._count += batch.count
        if self._count >= self._last - self._first + 1:
            out += self.flush()
        return out

    @property
    def waiting(self) -> bool:
        return bool(self._parts)

    def flush(self) -> bytes:
        """What arrived of the current read, in seq order."""
        parts, self._parts, self._count = self._parts, [], 0
        if len(parts) == 1:
            return parts[0]
        records = b"".join(parts)
        order = sorted(range(len(records) // RECORD_SIZE),
                       key=lambda i: int.from_bytes(records[i * RECORD_SIZE : i * RECORD_SIZE + 8],
                                                    "little"))
        view = memoryview(records)
        return b"".join(view[i * RECORD_SIZE : (i + 1) * RECORD_SIZE] for i in order)
