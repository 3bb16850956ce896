"""`tradeops apply`: an edited file changes only what it changes. A strategy's params edited:
only its group restarts, and the neighbour's tick sequence has no gap; a new group starts,
a removed one stops; a broker's pool edited restarts its gateway and the hosts rejoin."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.e2e.desk import Desk
from tests.e2e.test_desk import contiguous, desk_body, recorder
from tests.waiting import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]


def pids(desk: Desk) -> dict[str, int | None]:
    return {p["name"]: p["pid"] for p in desk.status()["processes"]}


def test_apply_touches_only_what_changed(make_desk: Any, tmp_path: Path) -> None:
    body = desk_body(tmp_path, recorder("edited", tmp_path) + recorder("other", tmp_path))
    desk: Desk = make_desk("applied", body)
    desk.up()
    wait_for(lambda: len(desk.lines("other")) > 20 and len(desk.lines("edited")) > 5,
             what="ticks at both groups")
    before = pids(desk)

    same = desk.cli("apply", str(desk.file), "--yes")
    assert same.returncode == 0 and "nothing to change" in same.stdout, same.stdout

    desk.edit(f'params: {{out: "{tmp_path / "edited.seq"}"}}',
              f'params: {{out: "{tmp_path / "edited.seq"}", threshold: 2}}')
    dry = desk.cli("apply", str(desk.file), "--dry-run")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert "~ restart edited" in dry.stdout and "= keep    other" in dry.stdout
    assert "= keep    gateway-sim" in dry.stdout
    assert pids(desk) == before  # a dry run changes nothing
    refused = desk.cli("apply", str(desk.file), input_="n\n")
    assert refused.returncode == 1 and pids(desk) == before

    applied = desk.cli("apply", str(desk.file), "--yes")
    assert applied.returncode == 0 and "applied" in applied.stdout, applied.stdout + applied.stderr
    after = wait_for(lambda: (p := pids(desk))["edited"] not in (None, before["edited"])
                     and desk.proc("edited")["state"] == "running" and p,
                     timeout=30, what="the edited group running again")
    assert {n: after[n] for n in after if n != "edited"} == {
        n: before[n] for n in before if n != "edited"}, "only the edited group may restart"
    count = len(desk.lines("other"))
    wait_for(lambda: len(desk.lines("other")) > count + 20, what="the neighbour still fed")
    assert contiguous(desk.lines("other")), "the neighbour missed ticks during the apply"

    # A new strategy in a group of its own starts; nothing else is touched.
    desk.edit("strategies:\n", "strategies:\n" + recorder("newcomer", tmp_path).lstrip("\n"))
    added = desk.cli("apply", str(desk.file), "--yes")
    assert added.returncode == 0 and "+ start   newcomer" in added.stdout, added.stdout
    assert "~ reload  gateway-sim" in added.stdout  # it learns the new group, running on
    wait_for(lambda: len(desk.lines("newcomer")) > 5, what="ticks at the new group")
    assert {n: p for n, p in pids(desk).items() if n != "newcomer"} == after

    # The pool of the broker changes: its gateway restarts, the hosts rejoin it.
    desk.edit("market: {seed: 3, rate: 40}",
              "market: {seed: 3, rate: 40}\n    pool: {symbols_per_connection: 500}")
    plan = desk.cli("apply", str(desk.file), "--dry-run").stdout
    assert "~ restart gateway-sim" in plan and "~ restart sim-sim" in plan
    assert "= keep    other" in plan
    gateway = desk.proc("gateway-sim")["pid"]
    assert desk.cli("apply", str(desk.file), "--yes").returncode == 0
    wait_for(lambda: desk.proc("gateway-sim")["pid"] != gateway, what="a new gateway")
    count = len(desk.lines("other"))
    wait_for(lambda: len(desk.lines("other")) > count + 20, timeout=30,
             what="the neighbour fed by the new gateway")
    assert desk.proc("other")["pid"] == after["other"]

    # A strategy removed from the file: its group stops and leaves the status.
    desk.edit(recorder("newcomer", tmp_path).lstrip("\n"), "")
    removed = desk.cli("apply", str(desk.file), "--yes")
    assert removed.returncode == 0 and "- stop    newcomer" in removed.stdout, removed.stdout
    assert "newcomer" not in pids(desk)
