"""`tradeops down` with the rate-limit window spent: the auto-cancels wait for the window and
are confirmed before the gateway stops, or `down` lists what is still working and exits 1.

The exchange runs in the test (a SimThread the desk reaches as an Alpaca broker), so it
outlives the desk and its order book can be read after `down`."""

from __future__ import annotations

import json
import os
import signal
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.desk import Desk, processes_mentioning
from tests.orders.test_orders_e2e import FAR, events
from tests.waiting import wait_for
from tradeops.sim.options import SimOptions
from tradeops.sim.server import SimThread

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(150)]


@pytest.fixture
def sim() -> Iterator[SimThread]:
    with SimThread(SimOptions(keys={"k": "s"}, rate=40.0, seed=5)) as running:
        yield running


def body(sim: SimThread, out: Path, rate: str, cancel_timeout: str) -> str:
    orders = [["buy", 1, FAR], ["buy", 1, FAR], ["buy", 1, FAR]]
    return f"""
brokers:
  ext:
    adapter: alpaca
    url: {sim.url}/v2/iex
    credentials: {{key: k, secret: s}}
    orders: {{url: "{sim.http_url}", rate_limit: {rate}, cancel_timeout: {cancel_timeout}}}
strategies:
  resting:
    class: tests.orders.strategies:OrderBot
    broker: ext
    symbols: [AAPL]
    params: {{out: "{out}", symbol: AAPL, orders: {json.dumps(orders)}}}
"""


def open_at_sim(sim: SimThread) -> list[dict[str, Any]]:
    with urllib.request.urlopen(f"{sim.http_url}/admin/orders", timeout=5) as resp:
        orders = json.loads(resp.read())["orders"]
    return [o for o in orders if o["status"] in ("accepted", "new", "partially_filled")]


def rest_three(desk: Desk, tmp_path: Path, sim: SimThread) -> None:
    desk.up()
    wait_for(lambda: len([e for e in events(tmp_path, "resting") if e["event"] == "accepted"])
             == 3, timeout=30, what="three resting orders")
    assert len(open_at_sim(sim)) == 3  # and the window is spent: the gateway asked for
    # the open orders and the positions at start (two requests) and sent three


def test_down_waits_for_the_window_and_leaves_nothing_working(
    make_desk: Any, tmp_path: Path, sim: SimThread
) -> None:
    desk: Desk = make_desk("downwait", body(sim, tmp_path / "resting.jsonl", "5/8s", "30s"))
    rest_three(desk, tmp_path, sim)
    result = desk.down()
    assert result.returncode == 0, result.stdout + result.stderr
    assert open_at_sim(sim) == [], "down must leave no order working at the broker"
    journal = [json.loads(x) for x in (desk.run_dir / "orders.jsonl").read_text().splitlines()]
    assert sum(e["event"] == "cancelled" for e in journal) == 3


def test_down_lists_what_is_still_working_and_fails_when_time_runs_out(
    make_desk: Any, tmp_path: Path, sim: SimThread
) -> None:
    desk: Desk = make_desk("downleft", body(sim, tmp_path / "resting.jsonl", "5/60s", "1s"))
    rest_three(desk, tmp_path, sim)
    result = desk.down()
    assert result.returncode == 1, result.stdout + result.stderr
    still = [line for line in result.stderr.splitlines() if line.startswith("STILL WORKING")]
    assert len(still) == 3 and all("resting buy 1 AAPL" in line for line in still), still
    assert "3 order(s) are still working at the broker" in result.stderr
    assert len(open_at_sim(sim)) == 3  # what down said is what the broker has


def test_a_gateway_starting_after_a_crash_fills_in_the_journal(
    make_desk: Any, tmp_path: Path, sim: SimThread
) -> None:
    """A submit the journal has no outcome for (its gateway was killed before the broker's
    answer was written) gets one from the broker when the next gateway starts."""
    desk: Desk = make_desk("recon", body(sim, tmp_path / "resting.jsonl", "200/min", "10s"))
    cid = "t1.resting.crashed1"
    headers = {"APCA-API-KEY-ID": "k", "APCA-API-SECRET-KEY": "s",
               "Content-Type": "application/json"}
    order = {"symbol": "AAPL", "qty": "1", "side": "buy", "type": "limit",
             "time_in_force": "day", "limit_price": str(FAR), "client_order_id": cid}
    request = urllib.request.Request(f"{sim.http_url}/v2/orders", method="POST",
                                     data=json.dumps(order).encode(), headers=headers)
    with urllib.request.urlopen(request, timeout=5) as resp:
        broker_id = json.loads(resp.read())["id"]
    cancel = urllib.request.Request(f"{sim.http_url}/v2/orders/{broker_id}", method="DELETE",
                                    headers=headers)
    urllib.request.urlopen(cancel, timeout=5).close()
    desk.run_dir.mkdir(parents=True, exist_ok=True)
    journal = desk.run_dir / "orders.jsonl"
    journal.write_text(json.dumps({"event": "submit", "strategy": "resting",
                                   "client_order_id": cid}) + '\n{"event": "cance')  # torn
    desk.up()

    def outcome() -> list[dict[str, Any]]:
        lines = [json.loads(x) for x in journal.read_text().splitlines()[2:]]
        return [e for e in lines if e.get("client_order_id") == cid and e.get("reconciled")]

    (line,) = wait_for(outcome, timeout=30, what="the reconciled outcome in the journal")
    assert line["event"] == "cancelled" and "canceled at the broker" in line["reason"]
    listing = desk.cli("orders", "-f", str(desk.file))
    assert listing.returncode == 0, listing.stderr  # the torn line breaks no reader


def test_a_position_the_strategies_do_not_know_blocks_orders_until_acknowledged(
    make_desk: Any, tmp_path: Path, sim: SimThread
) -> None:
    """Someone bought on the account outside the desk: the gateway's start finds the broker's
    position different from its strategies', refuses their orders, and `tradeops orders
    --ack BROKER` (after a person checked) lets them go again."""
    headers = {"APCA-API-KEY-ID": "k", "APCA-API-SECRET-KEY": "s",
               "Content-Type": "application/json"}
    manual = {"symbol": "AAPL", "qty": "2", "side": "buy", "type": "market",
              "time_in_force": "day", "client_order_id": "by-hand-1"}
    request = urllib.request.Request(f"{sim.http_url}/v2/orders", method="POST",
                                     data=json.dumps(manual).encode(), headers=headers)
    urllib.request.urlopen(request, timeout=5).close()
    desk: Desk = make_desk("posack", body(sim, tmp_path / "resting.jsonl", "200/min", "10s"))
    desk.up()
    wait_for(lambda: desk.cli("status", "-f", str(desk.file)).returncode == 1
             and "positions of account ext.main differ from the broker's" in desk.cli(
                 "status", "-f", str(desk.file)).stdout, timeout=30,
             what="the mismatch in status")
    rejected = wait_for(lambda: [e for e in events(tmp_path, "resting")
                                 if e["event"] == "rejected"], timeout=30,
                        what="the strategy's orders refused")
    assert ("positions of account 'main' differ from the broker's (AAPL ours 0, broker 2)"
            in rejected[0]["reason"])
    with urllib.request.urlopen(f"{sim.http_url}/admin/orders", timeout=5) as resp:
        at_broker = json.loads(resp.read())["orders"]
    assert [o["client_order_id"] for o in at_broker] == ["by-hand-1"]  # none of ours went out
    unknown = desk.cli("orders", "-f", str(desk.file), "--ack", "ext.nope")
    assert unknown.returncode == 2 and "ext.main" in unknown.stderr, unknown
    acked = desk.cli("orders", "-f", str(desk.file), "--ack", "main")  # a bare account name
    assert acked.returncode == 0 and "ext.main: positions acknowledged (AAPL)" in acked.stdout, \
        acked
    again = desk.cli("orders", "-f", str(desk.file), "--ack", "ext")
    assert "nothing to acknowledge" in again.stdout


def test_stop_of_a_group_waits_for_its_cancels_to_be_confirmed(
    make_desk: Any, tmp_path: Path, sim: SimThread
) -> None:
    desk: Desk = make_desk("stopwait", body(sim, tmp_path / "resting.jsonl", "5/8s", "30s"))
    rest_three(desk, tmp_path, sim)
    result = desk.cli("stop", "resting", "-f", str(desk.file))
    assert result.returncode == 0, result.stdout + result.stderr
    assert open_at_sim(sim) == [], "stop must leave none of the group's orders working"


def test_after_a_supervisor_kill_every_order_in_the_journal_gets_its_outcome(
    make_desk: Any, tmp_path: Path, sim: SimThread
) -> None:
    """kill -9 of the supervisor and its gateway together: no process is left to write what
    happens next. One order is cancelled at the broker meanwhile (as a cancel in flight would
    be). Once the desk is up again, every order the journal holds has the state the broker's
    book has, the one the desk did not see marked as reconciled."""
    desk: Desk = make_desk("supkill", body(sim, tmp_path / "resting.jsonl", "200/min", "10s"))
    rest_three(desk, tmp_path, sim)
    gateway, supervisor = desk.proc("gateway-ext")["pid"], desk.supervisor_pid()
    os.kill(gateway, signal.SIGKILL)
    os.kill(supervisor, signal.SIGKILL)
    wait_for(lambda: not processes_mentioning(str(desk.file)), timeout=30,
             what="the desk gone with its supervisor")
    (gone, *_) = open_at_sim(sim)
    headers = {"APCA-API-KEY-ID": "k", "APCA-API-SECRET-KEY": "s"}
    urllib.request.urlopen(urllib.request.Request(
        f"{sim.http_url}/v2/orders/{gone['id']}", method="DELETE", headers=headers),
        timeout=5).close()
    journal = desk.run_dir / "orders.jsonl"
    assert not any(json.loads(x).get("event") == "cancelled"
                   for x in journal.read_text().splitlines())
    desk.up()

    def final() -> dict[str, dict[str, Any]]:
        state: dict[str, dict[str, Any]] = {}
        for e in (json.loads(x) for x in journal.read_text().splitlines() if x.strip()):
            cid = e.get("client_order_id")
            if e.get("strategy") == "resting" and cid and e["event"] in (
                    "submit", "working", "cancelled", "filled", "rejected"):
                state[cid] = e
        return state

    def settled() -> dict[str, dict[str, Any]] | None:
        state = final()
        return state if state and all(e["event"] != "submit" for e in state.values()) \
            else None

    state = wait_for(settled, timeout=40, what="an outcome for every submit")
    working = {o["client_order_id"] for o in open_at_sim(sim)}
    assert len(state) == 3 and len(working) == 2
    for cid, entry in state.items():  # what the journal says is what the broker has
        assert (entry["event"] == "working") == (cid in working), (cid, entry, working)
    assert state[gone["client_order_id"]]["event"] == "cancelled"
    assert state[gone["client_order_id"]].get("reconciled") is True
