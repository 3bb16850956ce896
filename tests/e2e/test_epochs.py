"""Bus epochs on a real desk: a replaying host across a gateway kill -9 reads the new
epoch from its start, told so; across its own kill -9 it resumes exactly, flagging only what
it may have handed over already."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from tests.e2e.desk import Desk
from tests.waiting import wait_for
from tradeops.protocol.tick import FLAG_EPOCH_START, FLAG_REPEAT

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(150)]


def body(out: Path) -> str:
    return f"""
brokers:
  sim:
    adapter: sim
    market: {{seed: 5, rate: 40}}
strategies:
  rec:
    class: tests.e2e.strategies:FlagRecorder
    broker: sim
    symbols: [AAPL, MSFT]
    params: {{out: "{out}"}}
processes:
  recgroup: {{strategies: [rec], resume: replay}}
"""


def lines(out: Path) -> list[str]:
    return out.read_text().splitlines() if out.exists() else []


def ticks(entries: list[str]) -> list[tuple[int, int]]:
    return [(int(a), int(b)) for a, b in (e.split() for e in entries if e[0].isdigit())]


def test_a_replaying_host_reads_a_restarted_gateway_s_new_epoch_from_its_start(
    make_desk: object, tmp_path: Path
) -> None:
    out = tmp_path / "rec.out"
    desk: Desk = make_desk("e2eepoch", body(out))  # type: ignore[operator]
    desk.up()
    wait_for(lambda: len(lines(out)) > 50, what="ticks of the first epoch")
    host = desk.proc("recgroup")["pid"]
    os.kill(desk.proc("gateway-sim")["pid"], signal.SIGKILL)
    wait_for(lambda: "restart sim" in lines(out), timeout=60,
             what="the strategy to hear that its broker's bus restarted")
    wait_for(lambda: len(ticks(lines(out)[lines(out).index("restart sim") + 1:])) > 20,
             timeout=60, what="ticks of the new epoch")
    after = ticks(lines(out)[lines(out).index("restart sim") + 1:])
    assert after[0][0] == 1, "the new epoch must be read from its start, not skipped"
    assert after[0][1] & FLAG_EPOCH_START
    seqs = [seq for seq, _ in after]
    assert seqs == list(range(1, len(seqs) + 1)), "seq is consecutive within an epoch"
    assert desk.proc("recgroup")["pid"] == host, "the host reconnects, it does not restart"


def test_a_replaying_host_killed_mid_session_resumes_exactly(
    make_desk: object, tmp_path: Path
) -> None:
    out = tmp_path / "rec.out"
    desk: Desk = make_desk("e2eexact", body(out))  # type: ignore[operator]
    desk.up()
    wait_for(lambda: len(lines(out)) > 50, what="first ticks")
    os.kill(desk.proc("recgroup")["pid"], signal.SIGKILL)
    wait_for(lambda: desk.proc("recgroup")["restarts"] == 1
             and desk.proc("recgroup")["state"] == "running", timeout=60,
             what="the host to be restarted")
    count = len(lines(out))
    wait_for(lambda: len(lines(out)) > count + 50, timeout=60, what="ticks after the restart")
    seen = ticks(lines(out))
    first = {}
    for i, (seq, flags) in enumerate(seen):
        if seq in first:  # a tick handed over twice must say so the second time
            assert flags & FLAG_REPEAT, f"seq {seq} repeated without FLAG_REPEAT"
        else:
            first[seq] = i
    seqs = sorted(first)
    assert seqs == list(range(seqs[0], seqs[-1] + 1)), "no tick skipped across the kill"
