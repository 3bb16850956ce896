"""A broker's ticks on JetStream: a bounded, durable history that a remote node catches up from.

With `settings.cluster.jetstream` the gateway-side bridge makes sure a stream
`tradeops-DESK-tick-BROKER` captures the broker's tick subjects (`tradeops.DESK.tick.BROKER.>`):
file storage, bounded by `max_age` and/or `max_bytes`, its oldest messages dropped first. What
the stream stores are the bridge's ordinary publishes: no second publish and no
acknowledgement on the tick path. Each message is a wire.py batch, whose header holds the
ring read's epoch and seq range and whose records keep their bus seqs, so the stream is
searched by bus seq without any mapping: stream seq and (epoch, bus seq) grow together.

:func:`fetch` gives the records of one epoch between two bus seqs, in seq order: a binary
search over the stream (direct message gets) finds the first message that can hold the first
seq, then a short-lived pull consumer reads on from there. Seqs the stream no longer holds
(dropped by its retention, or never published: an outage) are simply absent from the answer:
the caller sees them as a gap.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
import uuid
from typing import TYPE_CHECKING, Final

from tradeops.cluster import subjects, wire
from tradeops.protocol.tick import RECORD_SIZE

if TYPE_CHECKING:
    from nats.js.client import JetStreamContext

    from tradeops.topology.model import JetStream

#: Only the seq of a record.
SEQ: Final = struct.Struct(f"<q{RECORD_SIZE - 8}x")
#: Messages asked of the consumer at a time.
FETCH: Final = 256


class HistoryError(RuntimeError):
    """JetStream cannot answer (no JetStream on the server, no stream, a timeout)."""


def stream_name(desk: str, broker: str) -> str:
    return f"tradeops-{desk}-tick-{broker}"


async def ensure_stream(js: JetStreamContext, desk: str, broker: str,
                        settings: JetStream) -> str:
    """Create the broker's stream, or bring an existing one to `settings`; return its name.

    HistoryError, saying how to fix it, when the server has no JetStream."""
    from nats.js import api
    from nats.js.errors import NotFoundError

    name = stream_name(desk, broker)
    config = api.StreamConfig(
        name=name, subjects=[subjects.all_ticks(desk, broker)],
        description=f"tradeops: the ticks of broker '{broker}' of desk '{desk}'",
        storage=api.StorageType.FILE, retention=api.RetentionPolicy.LIMITS,
        discard=api.DiscardPolicy.OLD,
        max_age=settings.max_age or 0.0,  # 0: no age bound
        max_bytes=settings.max_bytes if settings.max_bytes is not None else -1,
    )
    try:
        try:
            info = await js.stream_info(name)
        except NotFoundError:
            await js.add_stream(config)
            return name
        current = info.config
        if (current.max_age or 0.0, current.max_bytes or -1, current.subjects) != (
                config.max_age, config.max_bytes, config.subjects):
            await js.update_stream(config)
    except Exception as exc:
        raise HistoryError(_why(exc)) from None
    return name


def _why(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".strip()
    if any(w in text for w in ("NoResponders", "no responders", "ServiceUnavailable")):
        return ("the NATS server has no JetStream: start nats-server with -js (and a store "
                "dir, -sd DIR), or set settings.cluster.jetstream: off")
    return text


async def fetch(js: JetStreamContext, desk: str, broker: str, epoch: int, first: int,
                last: int, limit: int) -> tuple[bytes, int]:
    """The records of `epoch` with `first` <= seq <= `last` the stream holds, in seq order, at
    most `limit` of them; and the seq to ask for next (`last + 1` once the range is done).

    Every seq below the returned next that is not among the records is not in the stream.
    HistoryError when JetStream does not answer."""
    try:
        return await asyncio.wait_for(_fetch(js, desk, broker, epoch, first, last, limit), 30)
    except HistoryError:
        raise
    except Exception as exc:
        raise HistoryError(_why(exc)) from None


async def _fetch(js: JetStreamContext, desk: str, broker: str, epoch: int, first: int,
                 last: int, limit: int) -> tuple[bytes, int]:
    from nats.errors import TimeoutError as NatsTimeout
    from nats.js import api

    name = stream_name(desk, broker)
    state = (await js.stream_info(name)).state
    if not state.messages:
        return b"", last + 1
    start = await _first_holding(js, name, state.first_seq, state.last_seq, (epoch, first))
    if start is None:
        return b"", last + 1
    consumer = f"history-{uuid.uuid4().hex[:12]}"
    await js.add_consumer(name, api.ConsumerConfig(
        name=consumer, deliver_policy=api.DeliverPolicy.BY_START_SEQUENCE,
        opt_start_seq=start, ack_policy=api.AckPolicy.NONE, mem_storage=True,
        inactive_threshold=30.0, filter_subject=subjects.all_ticks(desk, broker)))
    sub = await js.pull_subscribe_bind(consumer=consumer, stream=name)
    records: list[bytes] = []
    stopped_at: int | None = None  # the first seq of a read left for the next call
    read_first: int | None = None
    try:
        done = False
        while not done:
            try:
                messages = await sub.fetch(FETCH, timeout=2.0)
            except NatsTimeout:
                break  # nothing more (dropped while we read)
            for message in messages:
                try:
                    batch = wire.decode(message.data)
                except wire.WireError:  # not a tick batch (another publisher): not history
                    batch = wire.Batch(-1, 0, 0, b"")
                if batch.epoch > epoch or (batch.epoch == epoch and batch.first > last):
                    done = True
                elif batch.epoch == epoch and batch.last >= first:
                    if len(records) >= limit and batch.first != read_first:
                        stopped_at, done = batch.first, True
                    else:
                        read_first = batch.first
                        view = memoryview(batch.records)
                        for i, (seq,) in enumerate(SEQ.iter_unpack(batch.records)):
                            if first <= seq <= last:
                                records.append(bytes(view[i * RECORD_SIZE:(i + 1) * RECORD_SIZE]))
                if done or message.metadata.sequence.stream >= state.last_seq:
                    done = True
                    break
    finally:
        with contextlib.suppress(Exception):
            await sub.unsubscribe()
        with contextlib.suppress(Exception):
            await js.delete_consumer(name, consumer)
    records.sort(key=lambda r: int.from_bytes(r[:8], "little", signed=True))
    if len(records) > limit:
        stopped_at = int.from_bytes(records[limit][:8], "little", signed=True)
        records = records[:limit]
    if stopped_at is None:
        stopped_at = last + 1
    return b"".join(records), stopped_at


async def _first_holding(js: JetStreamContext, name: str, low: int, high: int,
                         key: tuple[int, int]) -> int | None:
    """The first stream seq whose (epoch, last seq of its read) is at least `key`."""
    from nats.js.errors import NotFoundError

    found = None
    while low <= high:
        middle = (low + high) // 2
        try:
            message = await js.get_msg(name, middle)
        except NotFoundError:  # dropped by the retention meanwhile: older than anything
            low = middle + 1
            continue
        try:
            batch = wire.decode(message.data or b"")
        except wire.WireError:  # not a tick batch: searched past like an older message
            low = middle + 1
            continue
        if (batch.epoch, batch.last) >= key:
            found, high = middle, middle - 1
        else:
            low = middle + 1
    return found
