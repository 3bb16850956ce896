"""One broker's recording: read its ring, buffer, write a flush window at a time.

A `BrokerRecorder` runs on a thread of its own. It reads the broker's ring with
`resync="oldest"` (a lapped recorder loses as little as possible), keeps the ticks of one flush
window in memory, then writes them to the open file of their date partition (`files.PartFile`)
and remembers the newest (session, seq) written. When the gateway restarts (a new ring, a new
epoch) it attaches to the new ring from its oldest tick. With `symbols` it also subscribes them
on the gateway's socket (its own lease), so they flow even when no strategy wants them.

Gaps: the ring's seq numbers are consecutive within an epoch, so a first tick whose seq is
past the one expected means the ticks between were lost (the writer lapped this reader); the
row gets `lost_before` and the status counts it.
"""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from loguru import logger

from tradeops.bus import RingReader
from tradeops.gateway.client import GatewayClient, GatewayError
from tradeops.protocol.tick import Tick
from tradeops.recording import files, layout

#: Ticks asked of the ring per read, and the most kept before a write whatever the clock.
READ_MAX = 65536
BUFFER_MAX = 1 << 18
#: How long one read waits for ticks: bounds how late a flush or a stop is noticed.
READ_WAIT = 0.2
ATTACH_RETRY = 0.5


@dataclass(frozen=True)
class RecordPlan:
    """What to record of one broker, and where (from `settings.record`)."""

    root: Path
    broker: str
    bus: str  # the desk's shared-memory namespace
    gateway_socket: Path
    symbols: frozenset[str] | None
    kinds: frozenset[str]
    flush: float
    roll: float


@dataclass
class Figures:
    """What `status` shows of one broker's recording."""

    rows: int = 0
    files_closed: int = 0
    bytes_closed: int = 0  # size of the files closed so far
    lost: int = 0
    gaps: int = 0
    last_gap: dict[str, Any] | None = None
    last_write: float | None = None
    session: int | None = None
    seq: int | None = None
    open_files: list[str] = field(default_factory=list)


class BrokerRecorder:
    """Record one broker until `stop` is set. `error` holds why it gave up (a disk it could
    not write): the role then goes fatal."""

    def __init__(self, plan: RecordPlan, stop: threading.Event,
                 start_after: tuple[int, int] | None) -> None:
        self.plan = plan
        self.stop = stop
        self.figures = Figures()
        self.error: str | None = None  # the recording cannot be written: fatal
        self.crashed: str | None = None  # anything else that ended the thread
        self._start_after = start_after
        self._open: dict[str, files.PartFile] = {}
        self._buffer: list[Tick] = []
        self._gaps: list[tuple[int, int]] = []
        self._expected: int | None = None
        self._session = 0
        self._client: GatewayClient | None = None
        self.thread = threading.Thread(target=self._run, name=f"record-{plan.broker}",
                                       daemon=True)

    def _run(self) -> None:
        try:
            self._record()
        except files.RecordingError as exc:
            self.error = str(exc)
            for part in self._open.values():
                part.abandon()
            self._open.clear()
        except Exception as exc:  # a bug: the files stay as a kill leaves them (the next
            # recorder finishes them and resumes after the last row written); the recorder
            # exits non-zero so that its supervisor starts that next one
            self.crashed = f"{type(exc).__name__}: {exc}"
            logger.opt(exception=exc).error(
                f"broker {self.plan.broker}: the recording stopped on an unexpected "
                f"{type(exc).__name__}")
        finally:
            if self._client is not None:
                self._client.close()

    def _record(self) -> None:
        reader = self._attach()
        try:
            next_flush = time.monotonic() + self.plan.flush
            while reader is not None and not self.stop.is_set():
                self._take(reader.read(READ_MAX, timeout=READ_WAIT))
                self.figures.lost = reader.lost
                now = time.monotonic()
                if now >= next_flush or len(self._buffer) >= BUFFER_MAX:
                    self._write()
                    self._roll(now)
                    next_flush = now + self.plan.flush
                self._keep_lease()
                if reader.stale():  # the gateway restarted: a new ring, a new epoch
                    self._take(reader.read(READ_MAX, timeout=0))
                    self._write()
                    reader.close()
                    logger.info("broker {}: the gateway restarted; recording its new bus",
                                self.plan.broker)
                    self._start_after = None
                    reader = self._attach(new_epoch=True, stale_epoch=self._session)
            self._write()
        finally:
            if reader is not None:
                reader.close()
        for part in list(self._open.values()):
            self._close(part)

    # -- the ring -------------------------------------------------------------------------------

    def _attach(self, new_epoch: bool = False, stale_epoch: int | None = None
                ) -> RingReader | None:
        """The broker's ring, waiting while it does not exist (or is still the stale one of
        `stale_epoch`: read again, it would record its ticks twice); None if told to stop."""
        while not self.stop.is_set():
            try:
                reader = self._open_reader()
            except FileNotFoundError:
                self.stop.wait(ATTACH_RETRY)
                continue
            if stale_epoch is not None and reader.epoch == stale_epoch:
                reader.close()
                self.stop.wait(ATTACH_RETRY)
                continue
            self._session = reader.epoch
            self.figures.session = reader.epoch
            after = self._start_after
            if after is not None and after[0] == reader.epoch:
                self._expected = after[1] + 1
            elif new_epoch or after is not None:
                self._expected = 1  # seq starts at 1 in a new ring: anything older is lost
            else:
                self._expected = None  # a first start records what the ring still holds
            self._subscribe()
            return reader
        return None

    def _open_reader(self) -> RingReader:
        after = self._start_after
        if after is None:
            return RingReader(self.plan.bus, self.plan.broker, start="oldest", resync="oldest")
        return RingReader(self.plan.bus, self.plan.broker, start=after[1] + 1,
                          epoch=after[0], resync="oldest")

    def _take(self, ticks: list[Tick]) -> None:
        if not ticks:
            return
        first = ticks[0].seq
        if self._expected is not None and first > self._expected:
            self._gap(first - self._expected, ticks[0])
        self._buffer += ticks
        self._expected = ticks[-1].seq + 1

    def _gap(self, lost: int, after: Tick) -> None:
        self._gaps.append((len(self._buffer), lost))
        self.figures.gaps += 1
        self.figures.last_gap = {"lost": lost, "at": time.time(), "before_seq": after.seq}
        logger.warning("broker {}: lapped by the gateway, {} ticks lost before seq {}",
                       self.plan.broker, lost, after.seq)

    # -- the lease ------------------------------------------------------------------------------

    def _subscribe(self) -> None:
        """With `symbols`: subscribe them on the gateway (again after it restarted)."""
        if self.plan.symbols is None:
            return
        if self._client is not None:
            self._client.close()
            self._client = None
        mode = "quote" if "quote" in self.plan.kinds else "trade"
        try:
            self._client = GatewayClient(str(self.plan.gateway_socket), "recorder")
            reply = self._client.subscribe(sorted(self.plan.symbols), mode)
        except GatewayError as exc:
            logger.warning("broker {}: cannot subscribe {}: {}; recording what flows",
                           self.plan.broker, sorted(self.plan.symbols), exc)
            return
        refused = {s: r for s, r in (reply.get("results") or {}).items()
                   if isinstance(r, dict) and not r.get("ok", True)}
        if refused:
            logger.warning("broker {}: subscriptions refused: {}", self.plan.broker, refused)

    def _keep_lease(self) -> None:
        if self._client is None:
            return
        try:
            self._client.poll(0)  # drain what the gateway says on its own
        except GatewayError:
            self._client.close()
            self._client = None  # subscribed again on the new ring

    # -- files ----------------------------------------------------------------------------------

    def _write(self) -> None:
        if not self._buffer:
            return
        ticks, gaps = self._buffer, self._gaps
        self._buffer, self._gaps = [], []
        last = ticks[-1]
        table = layout.select(layout.to_table(ticks, self._session, gaps), self.plan.symbols,
                              self.plan.kinds)
        for day, rows in _by_day(table):
            part = self._open.get(day)
            if part is None:
                directory = self.plan.root / layout.partition(self.plan.broker, day)
                stem = layout.stem(self._session, int(rows["seq"][0].as_py()))
                part = self._open[day] = files.PartFile(directory, stem, self.plan.broker)
                part.opened_ns = time.monotonic_ns()
            part.append(rows)
            self.figures.rows += rows.num_rows
        files.write_position(self.plan.root, self.plan.broker, self._session, last.seq)
        self.figures.seq = last.seq
        self.figures.last_write = time.time()
        self.figures.open_files = sorted(str(p.final) for p in self._open.values())

    def _roll(self, now: float) -> None:
        """Close files older than `roll`, and those of a date that has ended."""
        newest = max(self._open, default="")
        for day, part in list(self._open.items()):
            if day < newest or now - part.opened_ns / 1e9 >= self.plan.roll:
                self._close(part)

    def _close(self, part: files.PartFile) -> None:
        final = part.close()
        self._open = {d: p for d, p in self._open.items() if p is not part}
        if final is not None:
            self.figures.files_closed += 1
            with contextlib.suppress(OSError):
                self.figures.bytes_closed += final.stat().st_size
            logger.info("broker {}: wrote {} ({} rows)", self.plan.broker, final, part.rows)
        self.figures.open_files = sorted(str(p.final) for p in self._open.values())


def _by_day(table: pa.Table) -> list[tuple[str, pa.Table]]:
    """The table split by the UTC date of each row's exchange time (its receive time when
    the broker stamped none)."""
    if table.num_rows == 0:
        return []
    exchange = table["exchange_ns"].cast(pa.int64())
    stamped = pc.if_else(pc.equal(exchange, 0), table["receive_ns"].cast(pa.int64()), exchange)
    days = np.asarray(stamped) // layout.NS_PER_DAY
    first, last = int(days.min()), int(days.max())
    if first == last:
        return [(layout.day_of(first * layout.NS_PER_DAY), table)]
    return [(layout.day_of(day * layout.NS_PER_DAY), table.filter(pa.array(days == day)))
            for day in range(first, last + 1) if (days == day).any()]
