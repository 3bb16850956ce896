"""The files of a recording: an open file's journal, its Parquet file, and their recovery.

A Parquet file's footer is written only when the file is closed, so a Parquet file cut short
by a kill -9 cannot be read at all. The recorder therefore appends each flush window's rows to
a *journal* next to the file-to-be (Arrow IPC stream format, zstd-compressed): a journal cut
short is readable up to its last complete batch. Closing a file (roll, date change, stop)
writes the journal's batches as row groups of `NAME.parquet.tmp`, renames it to
`NAME.parquet` (so a reader never sees half a file) and then removes the journal. At the next
start `recover` finishes what a killed recorder left: a journal whose Parquet file exists is
removed, any other journal is closed as above with the batches it holds, and a `.tmp` is
removed; each with a log line.

Why not one Parquet writer per file kept open: its row groups reach the disk as they are
written, but without a footer no reader can find them, and pyarrow gives no way to write an
interim footer. Writing a separate small Parquet file per flush would leave thousands of files
per day, which DuckDB and pandas read slowly.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

from tradeops.recording.layout import schema_for

JOURNAL: Final = ".arrows"
#: Rows per Parquet row group when a journal becomes a file: big enough for zstd and
#: dictionaries to pay, small enough to convert in bounded memory.
ROW_GROUP: Final = 1 << 17
POSITION: Final = "_position.json"
_IPC_OPTIONS: Final = ipc.IpcWriteOptions(compression="zstd")


class RecordingError(OSError):
    """A recording file could not be written; the message names the file and why."""


@dataclass(frozen=True)
class Recovered:
    """What `recover` did with one leftover: the file, how many rows it kept, and a log line."""

    path: Path
    rows: int
    message: str
    last: tuple[int, int] | None = None  # (session, seq) of its newest row


class PartFile:
    """One file being written: rows go to its journal at each `append`; `close` makes it a
    Parquet file under its final name. RecordingError on any failure to write."""

    def __init__(self, directory: Path, stem: str, broker: str) -> None:
        self.final = directory / f"{stem}.parquet"
        self.journal = directory / f".{stem}{JOURNAL}"
        self.broker = broker
        self.rows = 0
        self.opened_ns = 0
        try:
            directory.mkdir(parents=True, exist_ok=True)
            self._file = open(self.journal, "xb")  # noqa: SIM115  (closed in close())
        except OSError as exc:
            raise _error(self.journal, exc) from None
        self._writer: ipc.RecordBatchStreamWriter | None = None

    def append(self, table: pa.Table) -> None:
        """Append rows to the journal and hand them to the kernel: a kill -9 after this
        returns loses none of them (a crash of the machine may; the file is fsynced at close)."""
        try:
            if self._writer is None:
                self._writer = ipc.new_stream(self._file, schema_for(self.broker),
                                              options=_IPC_OPTIONS)
            self._writer.write_table(table)
            self._file.flush()
        except (OSError, pa.ArrowException) as exc:
            raise _error(self.journal, exc) from None
        self.rows += table.num_rows

    def close(self) -> Path | None:
        """Write the Parquet file and remove the journal; the file (None when empty)."""
        try:
            if self._writer is not None:
                self._writer.close()
            self._file.close()
        except (OSError, pa.ArrowException) as exc:
            raise _error(self.journal, exc) from None
        if self.rows == 0:
            self.journal.unlink(missing_ok=True)
            return None
        finish(self.journal, self.final, self.broker)
        return self.final

    def abandon(self) -> None:
        """Close the handles without writing anything (the disk failed; recovery at the next
        start makes a file of what the journal holds)."""
        with contextlib.suppress(OSError, pa.ArrowException):
            self._file.close()


def journal_batches(journal: Path) -> Iterator[pa.RecordBatch]:
    """The complete batches of a journal; a torn last batch (a kill mid-write) ends it."""
    try:
        reader = ipc.open_stream(pa.OSFile(str(journal), "rb"))
    except (OSError, pa.ArrowException):
        return  # empty, or cut inside its schema: holds no rows
    try:
        while True:
            yield reader.read_next_batch()
    except StopIteration:
        return
    except (OSError, pa.ArrowException):
        return  # a torn tail


def finish(journal: Path, final: Path, broker: str) -> int:
    """Make `final` from the complete batches of `journal` (write, fsync, rename), then remove
    the journal; the rows written. RecordingError if it cannot be written."""
    tmp = final.with_name(f".{final.name}.tmp")  # hidden: no reader picks it up
    rows = 0
    try:
        with pq.ParquetWriter(str(tmp), schema_for(broker), compression="zstd") as writer:
            pending: list[pa.RecordBatch] = []
            count = 0
            for batch in journal_batches(journal):
                pending.append(batch)
                count += batch.num_rows
                if count >= ROW_GROUP:
                    writer.write_table(pa.Table.from_batches(pending), row_group_size=ROW_GROUP)
                    rows, pending, count = rows + count, [], 0
            if pending:
                writer.write_table(pa.Table.from_batches(pending), row_group_size=ROW_GROUP)
                rows += count
        _fsync(tmp)
        os.replace(tmp, final)
        _fsync(final.parent)
        journal.unlink()
    except (OSError, pa.ArrowException) as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise _error(final, exc) from None
    return rows


def recover(root: Path, broker: str) -> list[Recovered]:
    """Finish what a killed recorder left under `root/broker=BROKER`: one entry per leftover."""
    done: list[Recovered] = []
    base = root / f"broker={broker}"
    for tmp in sorted(base.glob("date=*/.part-*.parquet.tmp")):
        tmp.unlink(missing_ok=True)
        done.append(Recovered(tmp, 0, f"removed {tmp}, a file half-converted when the "
                                       "recorder stopped (its journal is kept)"))
    for journal in sorted(base.glob(f"date=*/.part-*{JOURNAL}")):
        final = journal.with_name(journal.name[1 : -len(JOURNAL)] + ".parquet")
        if final.exists():
            journal.unlink()
            done.append(Recovered(journal, 0, f"removed the journal of {final}, which was "
                                              "complete already"))
            continue
        last = _last_position(journal)
        rows = finish(journal, final, broker)
        if rows:
            message = f"recovered {rows} rows of an unfinished file into {final}"
        else:
            final.unlink(missing_ok=True)
            message = f"removed {journal}, an unfinished file that held no complete rows"
        done.append(Recovered(final if rows else journal, rows, message, last))
    return done


def _last_position(journal: Path) -> tuple[int, int] | None:
    last = None
    for batch in journal_batches(journal):
        if batch.num_rows:
            row = batch.slice(batch.num_rows - 1).to_pylist()[0]
            last = (int(row["session"]), int(row["seq"]))
    return last


def read_position(root: Path, broker: str) -> tuple[int, int] | None:
    """(session, seq) of the newest tick the recorder wrote for `broker`, if it knows."""
    try:
        data = json.loads((root / f"broker={broker}" / POSITION).read_text())
        return int(data["session"]), int(data["seq"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write_position(root: Path, broker: str, session: int, seq: int) -> None:
    """Remember (session, seq) atomically; RecordingError if it cannot be written."""
    path = root / f"broker={broker}" / POSITION
    tmp = path.with_name(POSITION + ".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps({"session": session, "seq": seq}))
        os.replace(tmp, path)
    except OSError as exc:
        raise _error(path, exc) from None


def check_writable(root: Path) -> None:
    """RecordingError unless files can be created in `root` (made if missing)."""
    probe = root / f".probe-{os.getpid()}"
    try:
        root.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise _error(root, exc) from None


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _error(path: Path, exc: BaseException) -> RecordingError:
    why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    return RecordingError(f"cannot write {path}: {why}")
