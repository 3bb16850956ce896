"""docs/bus.md stays true: its record table matches the code and its example runs."""

from __future__ import annotations

import contextlib
import io
import re

from tests.conftest import REPO
from tradeops.bus import LatestTable, TickRing
from tradeops.protocol.tick import RECORD_FIELDS as RECORD

DOC = (REPO / "docs" / "bus.md").read_text(encoding="utf-8")
SIZES = {"int64": "q", "uint8": "B", "uint32": "I", "float64": "d", "bytes": "32s", "-": "2x"}


def test_the_documented_record_table_is_the_records_struct() -> None:
    section = DOC.split("## The tick record", 1)[1].split("###", 1)[0]
    rows = re.findall(r"^\| (\d+) \| (\d+) \| (\S+) \| (\w+) \|", section, flags=re.M)
    assert [name for *_, name in rows][:3] == ["seq", "kind", "flags"]
    offset = 0
    codes = []
    for start, size, kind, name in rows:
        assert int(start) == offset, f"{name} documented at {start}, packed at {offset}"
        offset += int(size)
        code = SIZES[kind]
        codes.append(code if kind != "bytes" else ("s" if size == "1" else f"{size}s"))
    assert offset == RECORD.size
    assert "<" + "".join(codes) == RECORD.format.replace("12d", "d" * 12)


def test_the_reading_example_runs_against_a_live_ring(topology: str) -> None:
    example = re.findall(r"```python\n(.*?)```", DOC, flags=re.S)[0]
    assert 'RingReader("desk", "alpaca"' in example
    code = example.replace('"desk"', repr(topology))
    with (
        LatestTable(topology, "alpaca", max_symbols=4) as table,
        TickRing(topology, "alpaca", capacity=64, table=table) as ring,
    ):
        ring.append("trade", "AAPL", 1, 187.5, 100.0)
        ring.append("quote", "AAPL", 2, 0.0, 0.0, 187.4, 3.0, 187.6, 5.0)
        ring.publish()
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(compile(code, "docs/bus.md", "exec"), {})
    lines = out.getvalue().splitlines()
    assert lines[0] == "#1 AAPL trade 100 @ 187.5"
    assert lines[1] == "#2 AAPL quote 3 x 187.4 / 187.6 x 5"
    assert lines[2] == lines[1]  # the table's last quote of AAPL is that same tick
