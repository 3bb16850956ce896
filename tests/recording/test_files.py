"""The recording's files: layout, write then rename, and recovery of what a kill left."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.recording.helpers import T0, ticks, write_file
from tradeops.protocol.tick import LAYOUT_VERSION, Tick
from tradeops.recording import files, layout


def test_a_table_keeps_every_tick_field_with_times_in_ns_and_the_session() -> None:
    batch = ticks(4, first_seq=10)
    table = layout.to_table(batch, session=123, gaps=[(2, 5)])
    rows = table.to_pylist()
    assert table.schema == layout.SCHEMA
    assert [r["seq"] for r in rows] == [10, 11, 12, 13]
    assert [r["kind"] for r in rows] == ["quote", "trade", "quote", "trade"]
    assert [r["lost_before"] for r in rows] == [0, 0, 5, 0]
    assert {r["session"] for r in rows} == {123}
    assert table["exchange_ns"].cast("int64").to_pylist() == [t.exchange_ns for t in batch]
    assert table["receive_ns"].cast("int64").to_pylist() == [t.receive_ns for t in batch]
    assert rows[1]["price"] == batch[1].price and rows[0]["ask_size"] == 200
    assert rows[0]["symbol"] == "AAPL"  # no NUL padding left


def test_the_brokers_detail_is_kept_in_readable_columns() -> None:
    trade = Tick.make("trade", "AAPL", seq=1, price=1, size=2, trade_id=77, exchange="V",
                      tape="C", conditions=["@", "I"])
    quote = Tick.make("quote", "AAPL", seq=2, bid=1, ask=2, exchange="Q", ask_exchange="Z",
                      conditions=["R"])
    crypto = Tick.make("trade", "BTC/USD", seq=3, price=1, size=0.5, taker_side="S")
    rows = layout.to_table([trade, quote, crypto], session=1).to_pylist()
    assert [(r["trade_id"], r["exchange"], r["ask_exchange"], r["tape"], r["taker_side"],
             r["conditions"]) for r in rows] == [
        (77, "V", "", "C", "", "@,I"), (0, "Q", "Z", "", "", "R"), (0, "", "", "", "S", "")]


def test_select_keeps_the_symbols_and_kinds_asked_for() -> None:
    table = layout.to_table(ticks(8, symbols=("AAPL", "MSFT")), session=1)
    trades = layout.select(table, None, frozenset({"trade"}))
    assert set(trades["kind"].cast("string").to_pylist()) == {"trade"}
    msft = layout.select(table, frozenset({"MSFT"}), frozenset({"trade", "quote", "bar"}))
    assert set(msft["symbol"].to_pylist()) == {"MSFT"} and msft.num_rows == 4


def test_a_closed_file_appears_only_under_its_final_name_with_its_metadata(
    tmp_path: Path,
) -> None:
    batch = ticks(10)
    part = files.PartFile(tmp_path / "broker=sim/date=2026-04-24", "part-7-000000000001", "sim")
    part.append(layout.to_table(batch[:5], 7))
    part.append(layout.to_table(batch[5:], 7))
    assert not part.final.exists() and part.journal.exists()
    final = part.close()
    assert final == part.final and final.exists() and not part.journal.exists()
    assert [p.name for p in final.parent.iterdir()] == [final.name]  # no .tmp left
    parquet = pq.ParquetFile(final)
    meta = parquet.schema_arrow.metadata
    assert meta[b"tradeops.tick_layout"] == str(LAYOUT_VERSION).encode()
    assert meta[b"tradeops.recording_layout"] == b"2" and meta[b"tradeops.broker"] == b"sim"
    assert parquet.metadata.row_group(0).column(0).compression == "ZSTD"
    assert parquet.read()["seq"].to_pylist() == list(range(1, 11))


def test_an_empty_file_leaves_nothing(tmp_path: Path) -> None:
    part = files.PartFile(tmp_path / "p", "part-1-000000000001", "sim")
    assert part.close() is None
    assert list((tmp_path / "p").iterdir()) == []


def _killed_journal(root: Path, batches: list[list[Tick]], torn: int) -> Path:
    """A journal as a kill -9 leaves it: the batches appended, the last cut `torn` bytes short."""
    part = files.PartFile(root / "broker=sim/date=2026-04-24", "part-7-000000000001", "sim")
    for batch in batches:
        part.append(layout.to_table(batch, 7))
    part.abandon()
    size = part.journal.stat().st_size
    os.truncate(part.journal, size - torn)
    return part.journal


def test_recovery_keeps_the_complete_batches_of_a_torn_journal(tmp_path: Path) -> None:
    batch = ticks(300)
    journal = _killed_journal(tmp_path, [batch[:100], batch[100:200], batch[200:]], torn=40)
    (done,) = files.recover(tmp_path, "sim")
    assert done.rows == 200 and "recovered 200 rows" in done.message
    assert done.last == (7, 200)
    assert not journal.exists()
    final = journal.with_name("part-7-000000000001.parquet")
    assert pq.read_table(final)["seq"].to_pylist() == list(range(1, 201))


def test_recovery_removes_a_journal_without_a_complete_batch(tmp_path: Path) -> None:
    journal = _killed_journal(tmp_path, [ticks(50)], torn=60)
    (done,) = files.recover(tmp_path, "sim")
    assert done.rows == 0 and "removed" in done.message
    assert list(journal.parent.iterdir()) == []


def test_recovery_removes_a_journal_whose_file_was_finished_and_a_stray_tmp(
    tmp_path: Path,
) -> None:
    final = write_file(tmp_path, "sim", ticks(5, start_ns=T0))
    journal = final.with_name(f".{final.stem}{files.JOURNAL}")
    journal.write_bytes(b"left behind")  # killed between the rename and the unlink
    tmp = final.with_name(".part-9-000000000001.parquet.tmp")
    tmp.write_bytes(b"half")
    messages = [d.message for d in files.recover(tmp_path, "sim")]
    assert len(messages) == 2 and all("removed" in m for m in messages)
    assert sorted(p.name for p in final.parent.iterdir()) == [final.name]


def test_the_position_round_trips_and_a_missing_one_is_none(tmp_path: Path) -> None:
    assert files.read_position(tmp_path, "sim") is None
    files.write_position(tmp_path, "sim", 5, 42)
    assert files.read_position(tmp_path, "sim") == (5, 42)


def test_an_unwritable_place_is_a_recording_error_naming_it(tmp_path: Path) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where a directory should be")
    with pytest.raises(files.RecordingError, match=r"cannot write .*blocker.*: Not a directory"):
        files.check_writable(blocker / "recording")
    with pytest.raises(files.RecordingError, match="blocker"):
        files.PartFile(blocker / "x", "part-1-1", "sim")
