"""Writes that fail (a full or unwritable disk) degrade, report and recover; none raises.

The failure is made without privileges: the file's directory is a regular file, so every
open fails (ENOTDIR) until the test removes it, as space returning would.
"""

from __future__ import annotations

import json
from pathlib import Path

from tradeops.gateway.journal import Journal
from tradeops.process import child
from tradeops.process.logfile import LogFile


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def blocked(tmp_path: Path) -> Path:
    """A directory path that cannot be created: a file stands where it should be."""
    spot = tmp_path / "dir"
    spot.write_text("in the way")
    return spot


def test_the_log_drops_lines_reports_once_and_resumes(tmp_path: Path) -> None:
    spot, clock, problems = blocked(tmp_path), Clock(), []
    log = LogFile(spot / "g.log", on_problem=problems.append, clock=clock, retry_every=1.0)
    log.write("one\n")
    log.write("two\n")
    assert log.dropped == 2 and len(problems) == 1 and "cannot write" in str(problems[0])
    spot.unlink()  # space returns
    log.write("three\n")  # within the retry interval: still dropped, no new report
    clock.now = 1.5
    log.write("four\n")
    assert problems[-1] is None
    assert (spot / "g.log").read_text() == "four\n"


def test_the_log_rotates_and_keeps_the_newest(tmp_path: Path) -> None:
    log = LogFile(tmp_path / "g.log", on_problem=lambda r: None, max_bytes=10, keep=2)
    for line in ("aaaaaaaa\n", "bbbbbbbb\n", "cccccccc\n", "dddddddd\n"):
        log.write(line)
    assert (tmp_path / "g.log").read_text() == "dddddddd\n"
    assert (tmp_path / "g.log.1").read_text() == "cccccccc\n"
    assert (tmp_path / "g.log.2").read_text() == "bbbbbbbb\n"
    assert not (tmp_path / "g.log.3").exists()


def test_the_journal_keeps_every_line_in_order_until_it_can_write(tmp_path: Path) -> None:
    spot, problems = blocked(tmp_path), []
    journal = Journal(spot / "orders.jsonl", on_problem=problems.append)
    journal.write("submit", client_order_id="a")
    journal.write("cancel", client_order_id="a")
    assert journal.waiting == 2 and "2 line(s) waiting" in journal.problem
    assert problems and problems[-1] is not None
    spot.unlink()
    assert journal.flush() and journal.waiting == 0 and problems[-1] is None
    journal.write("filled", client_order_id="b")
    journal.close()
    events = [json.loads(line)["event"] for line in (spot / "orders.jsonl").read_text().split()]
    assert events == ["submit", "cancel", "filled"]


def test_state_writes_report_and_clear_without_raising(tmp_path: Path) -> None:
    spot = blocked(tmp_path)
    assert child.write_state(spot, "gateway-sim", {"live": True}) is False
    assert "state" in child.problems()
    spot.unlink()
    assert child.write_state(spot, "gateway-sim", {"live": True}) is True
    assert "state" not in child.problems()
    assert json.loads((spot / "state" / "gateway-sim.json").read_text()) == {"live": True}
    assert [p.name for p in (spot / "state").iterdir()] == ["gateway-sim.json"]  # no temp left


def test_a_torn_last_line_is_ended_before_the_next_one_and_readers_skip_it(
    tmp_path: Path,
) -> None:
    from tradeops.gateway.journal import open_entries, tail

    path = tmp_path / "orders.jsonl"
    submit = {"event": "submit", "strategy": "s", "client_order_id": "t1.s.a"}
    path.write_text(json.dumps(submit) + '\n{"event": "cancelled", "strat')  # killed mid-line
    journal = Journal(path)
    journal.write("submit", strategy="s", client_order_id="t1.s.b")
    journal.close()
    lines = path.read_text().splitlines()
    assert lines[1] == '{"event": "cancelled", "strat'  # left alone, but ended
    assert json.loads(lines[2])["client_order_id"] == "t1.s.b"
    assert [e["client_order_id"] for e in tail(path, 10)] == ["t1.s.a", "t1.s.b"]
    assert set(open_entries(path, {"s"})) == {"t1.s.a", "t1.s.b"}  # no outcome yet for either
