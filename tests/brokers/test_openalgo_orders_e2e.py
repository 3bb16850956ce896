"""Orders through an OpenAlgo server (the sim's OpenAlgo REST dialect): real host processes,
a real gateway and the sim's one order book. OpenAlgo pushes no order updates: the gateway
polls `orderstatus`, and these tests see its fills and cancels reach the strategies."""

from __future__ import annotations

import json
import os
import signal
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.desk import Desk
from tests.waiting import wait_for
from tradeops.sim.options import SimOptions
from tradeops.sim.server import SimThread

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(150)]
KEY = "oa-key-5f1c"
FAR = 1.0  # a buy limit far below any price the walk reaches: it rests


@pytest.fixture
def server() -> Iterator[SimThread]:
    with SimThread(SimOptions(keys={KEY: ""}, rate=20.0, seed=11)) as running:
        yield running


def bot(name: str, tmp: Path, orders: list[list[Any]], cls: str = "OrderBot") -> str:
    return f"""
  {name}:
    class: tests.orders.strategies:{cls}
    broker: india
    symbols: [NSE:INFY]
    mode: quote
    params: {{out: "{tmp / (name + '.jsonl')}", symbol: "NSE:INFY",
              orders: {json.dumps(orders)}}}
"""


def body(server: SimThread, key: str, strategies: str, processes: str = "") -> str:
    http = server.url.replace("ws://", "http://")
    return f"""
brokers:
  india:
    adapter: openalgo
    url: {server.url}/openalgo
    credentials: {{api_key: {key}}}
    orders: {{url: "{http}", poll_interval: 200ms, product: MIS}}
strategies:
{strategies}
processes:
{processes}
"""


def events(tmp: Path, name: str) -> list[dict[str, Any]]:
    path = tmp / f"{name}.jsonl"
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def openalgo(server: SimThread, path: str, **fields: Any) -> tuple[int, dict[str, Any]]:
    """One call of the sim's OpenAlgo REST API, as any OpenAlgo client makes it."""
    url = server.url.replace("ws://", "http://") + "/api/v1/" + path
    request = urllib.request.Request(url, data=json.dumps({"apikey": KEY, **fields}).encode(),
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def broker_ids(desk: Desk, strategy: str) -> list[str]:
    """The OpenAlgo order ids of a strategy's orders, from the gateway's journal."""
    path = desk.run_dir / "orders.jsonl"
    lines = [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []
    return [e["broker_order_id"] for e in lines if e.get("strategy") == strategy
            and e["event"] == "accepted" and e.get("broker_order_id")]


def status_at_sim(server: SimThread, order_id: str) -> str:
    code, answer = openalgo(server, "orderstatus", strategy="test", orderid=order_id)
    assert code == 200, answer
    return str(answer["data"]["order_status"])


def test_orders_place_fill_cancel_and_auto_cancel_through_openalgo(
        make_desk: Any, tmp_path: Path, server: SimThread) -> None:
    strategies = (
        bot("rester", tmp_path, [["buy", 3, FAR]], cls="CancellingBot")
        + bot("taker", tmp_path, [["buy", 2, None]])
        + bot("victim", tmp_path, [["buy", 1, FAR]])
    )
    processes = (
        "  pair:\n    strategies: [rester, taker]\n    auto_cancel: none\n"
        "  victims:\n    strategies: [victim]\n    auto_cancel: strategy\n"
    )
    desk: Desk = make_desk("oaorders", body(server, KEY, strategies, processes))
    desk.up()

    # A resting limit order reaches the sim's book, is accepted, and the strategy's cancel
    # cancels it there; the strategy hears `cancelled`.
    wait_for(lambda: any(e["event"] == "cancelled" for e in events(tmp_path, "rester")),
             timeout=40, what="the rester's cancel confirmed")
    (rested,) = broker_ids(desk, "rester")
    assert status_at_sim(server, rested) == "cancelled"
    assert [e["event"] for e in events(tmp_path, "rester")
            if e["event"] not in ("start", "sent")] == ["accepted", "cancelled"]

    # A market order fills at the sim; the fill, all of it at OpenAlgo's average_price,
    # reaches the strategy that sent it and no other.
    fills = wait_for(lambda: [e for e in events(tmp_path, "taker") if e["event"] == "filled"],
                     timeout=30, what="the taker's fill")
    assert [(f["fill_qty"], f["position"]) for f in fills] == [(2.0, 2.0)]
    (taken,) = broker_ids(desk, "taker")
    assert status_at_sim(server, taken) == "complete"
    assert not [e for e in events(tmp_path, "rester") + events(tmp_path, "victim")
                if e["event"] in ("filled", "partially_filled")]
    code, book = openalgo(server, "positionbook")
    assert code == 200
    assert [(p["exchange"], p["symbol"], p["quantity"]) for p in book["data"]] == [
        ("NSE", "INFY", 2)]

    # kill -9 of the victim's host: auto_cancel: strategy cancels its order at the sim.
    wait_for(lambda: any(e["event"] == "accepted" for e in events(tmp_path, "victim")),
             timeout=30, what="the victim's order working")
    (victims,) = broker_ids(desk, "victim")
    assert status_at_sim(server, victims) == "open"
    pid = desk.proc("victims")["pid"]
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: status_at_sim(server, victims) == "cancelled", timeout=20,
             what="the victim's order cancelled at the sim")
    def journal() -> list[dict[str, Any]]:
        path = desk.run_dir / "orders.jsonl"
        return [json.loads(x) for x in path.read_text().splitlines()]

    assert [e["policy"] for e in journal() if e["event"] == "auto_cancel"] == ["strategy"]
    wait_for(lambda: [e for e in journal() if e["event"] == "cancelled"
                      and e.get("broker_order_id") == victims],
             timeout=20, what="the gateway's journal confirming the victim's cancel")
    logs = "".join(p.read_text() for p in (desk.run_dir / "logs").glob("*.log"))
    assert KEY not in logs and KEY not in journal_text(desk)  # the key travels in bodies only


def journal_text(desk: Desk) -> str:
    return (desk.run_dir / "orders.jsonl").read_text()


def test_a_refused_api_key_is_reported_clearly_and_never_shown(
        make_desk: Any, tmp_path: Path, server: SimThread) -> None:
    wrong = "wrong-key-7d3e9a"
    desk: Desk = make_desk("oabadkey", body(server, wrong, bot("lone", tmp_path, [])))
    desk.up()

    def refused() -> dict[str, Any] | None:
        stats = desk.proc("gateway-india").get("stats") or {}
        rejected = (stats.get("orders") or {}).get("auth_rejected") or {}
        return rejected or None

    rejected = wait_for(refused, timeout=30, what="the gateway reporting the refused login")
    assert rejected == {"main": "403 Invalid openalgo apikey"}
    status = desk.cli("status", "--file", str(desk.file))
    assert "refused the login of account india.main (403 Invalid openalgo apikey)" in (
        status.stdout)
    logs = "".join(p.read_text() for p in (desk.run_dir / "logs").glob("*.log"))
    assert "refused the login of account 'main'" in logs
    assert wrong not in logs and wrong not in status.stdout
    assert wrong not in journal_text(desk)
