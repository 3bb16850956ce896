"""What crosses NATS for ticks: batches of the bus's own binary records.

A message is a 32-byte header then whole records exactly as the ring holds them
(:data:`~tradeops.protocol.tick.RECORD`, 192 bytes, seq included):

    magic b"TOTB", layout version (u16), record size (u16), epoch (i64), first, last (i64)

`epoch` is the gateway ring's (a new gateway is a new epoch); `first`..`last` is the seq range
of the ring read the records came from. The bridge publishes each read once per remote node,
with only the records of the symbols that node wants (:func:`only`; an empty batch when it
wants none of them) and the read's whole range, so consecutive messages to a node cover
consecutive ranges and a lost one is a gap the node counts. With JetStream on it also
publishes each read split by symbol (:func:`split_by_symbol`, one subject per symbol), which
the stream keeps. The records are never decoded on the way: no per-tick Python object between
two rings.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
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


def only(records: bytes, wanted: frozenset[bytes]) -> bytes:
    """The records whose 32-byte symbol field is in `wanted`, in their order."""
    keep = [i for i, (raw,) in enumerate(SYMBOL.iter_unpack(records)) if raw in wanted]
    if len(keep) * RECORD_SIZE == len(records):
        return records
    view = memoryview(records)
    return b"".join(view[i * RECORD_SIZE : (i + 1) * RECORD_SIZE] for i in keep)


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
