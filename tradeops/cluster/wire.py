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
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import msgpack

from tradeops.protocol.tick import DEPTH, LAYOUT_VERSION, RECORD_SIZE, SYMBOL_FIELD

MAGIC: Final = b"TOTB"
HEADER: Final = struct.Struct("<4sHHqqq")
#: Only the symbol field of a record (as the reader's filter reads it).
SYMBOL: Final = SYMBOL_FIELD


class WireError(ValueError):
    """A message that is not a tick batch this code can read."""


#: A batch that also carries books: the header, the record count (u32), the records, then
#: the books (msgpack: [[symbol, exchange_ns, receive_ns, [[price, size], ...] bids, asks]]).
BOOKS_MAGIC: Final = b"TOTK"
COUNT: Final = struct.Struct("<I")
BookRow = tuple[str, int, int, list[list[float]], list[list[float]]]


@dataclass(frozen=True)
class Batch:
    epoch: int
    first: int
    last: int
    records: bytes
    books: tuple[BookRow, ...] = ()

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


def encode(epoch: int, first: int, last: int, records: bytes,
           books: Sequence[BookRow] = ()) -> bytes:
    """A batch; with `books` (the newest book of each symbol whose depth record is among the
    records), the books travel with it, so the other node has them before the records."""
    if not books:
        return HEADER.pack(MAGIC, LAYOUT_VERSION, RECORD_SIZE, epoch, first, last) + records
    packed: bytes = msgpack.packb([list(book) for book in books])
    return (HEADER.pack(BOOKS_MAGIC, LAYOUT_VERSION, RECORD_SIZE, epoch, first, last)
            + COUNT.pack(len(records) // RECORD_SIZE) + records + packed)


def depth_symbols(records: bytes) -> list[bytes]:
    """The symbol fields of the depth records among `records` (each once, in order)."""
    seen: dict[bytes, None] = {}
    for i, (raw,) in enumerate(SYMBOL.iter_unpack(records)):
        if records[i * RECORD_SIZE + 8] == DEPTH:
            seen[raw] = None
    return list(seen)


def decode(message: bytes) -> Batch:
    if len(message) < HEADER.size:
        raise WireError(f"a tick batch is at least {HEADER.size} bytes, got {len(message)}")
    magic, version, size, epoch, first, last = HEADER.unpack_from(message)
    if magic not in (MAGIC, BOOKS_MAGIC):
        raise WireError(f"not a tick batch (magic {magic!r})")
    if version != LAYOUT_VERSION or size != RECORD_SIZE:
        raise WireError(f"tick batch of layout {version} with {size}-byte records; this node "
                        f"reads layout {LAYOUT_VERSION} ({RECORD_SIZE} bytes): run the same "
                        "tradeops version on every node")
    if magic == BOOKS_MAGIC:
        (count,) = COUNT.unpack_from(message, HEADER.size)
        start = HEADER.size + COUNT.size
        end = start + count * RECORD_SIZE
        try:
            books = tuple(tuple(book) for book in msgpack.unpackb(message[end:]))
        except (ValueError, TypeError, msgpack.ExtraData, msgpack.FormatError) as exc:
            raise WireError(f"a batch's books are unreadable: {exc}") from None
        return Batch(epoch, first, last, message[start:end], books)
    records = message[HEADER.size :]
    if len(records) % RECORD_SIZE:
        raise WireError(f"{len(records)} bytes of records is not whole records")
    return Batch(epoch, first, last, records)
