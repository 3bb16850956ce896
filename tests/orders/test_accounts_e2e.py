"""Accounts, positions after a crash, and the kill switch, end to end, read at the broker.

The exchange runs in the test (a SimThread the desk reaches as an Alpaca broker with two
logins, ka and kb), so its order book and positions can be read whatever the desk does."""

from __future__ import annotations

import json
import os
import signal
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.desk import Desk
from tests.orders.test_orders_e2e import FAR, events
from tests.waiting import wait_for
from tradeops.sim.options import SimOptions
from tradeops.sim.server import SimThread

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]
LOGINS = {"ka": "sa", "kb": "sb"}


@pytest.fixture
def sim() -> Iterator[SimThread]:
    with SimThread(SimOptions(keys=LOGINS, rate=40.0, seed=7)) as running:
        yield running


def at_sim(sim: SimThread) -> list[dict[str, Any]]:
    with urllib.request.urlopen(f"{sim.http_url}/admin/orders", timeout=5) as resp:
        return list(json.loads(resp.read())["orders"])


def working_at_sim(sim: SimThread) -> list[dict[str, Any]]:
    return [o for o in at_sim(sim) if o["status"] in ("accepted", "new", "partially_filled")]


def positions_at_sim(sim: SimThread, key: str) -> dict[str, float]:
    request = urllib.request.Request(f"{sim.http_url}/v2/positions", headers={
        "APCA-API-KEY-ID": key, "APCA-API-SECRET-KEY": LOGINS[key]})
    with urllib.request.urlopen(request, timeout=5) as resp:
        return {p["symbol"]: float(p["qty"]) for p in json.loads(resp.read())}


def broker(sim: SimThread) -> str:
    return f"""
brokers:
  ext:
    adapter: alpaca
    url: {sim.url}/v2/iex
    accounts:
      alpha: {{credentials: {{key: ka, secret: sa}}}}
      beta: {{credentials: {{key: kb, secret: sb}}}}
    orders: {{url: "{sim.http_url}", cancel_timeout: 20s}}
"""


def strategy(name: str, account: str, tmp: Path, orders: list[list[Any]],
             each_restart: list[list[Any]] | None = None, limits: str = "") -> str:
    params = {"out": str(tmp / f"{name}.jsonl"), "symbol": "AAPL", "orders": orders,
              "each_restart": each_restart or []}
    return f"""
  {name}:
    class: tests.orders.strategies:OrderBot
    broker: ext
    account: {account}
    symbols: [AAPL]
    limits: {{{limits}}}
    params: {json.dumps(params)}
"""


def accepted(tmp: Path, name: str) -> list[dict[str, Any]]:
    return [e for e in events(tmp, name) if e["event"] == "accepted"]


def test_a_kill_under_auto_cancel_account_leaves_the_other_account_working(
    make_desk: Any, tmp_path: Path, sim: SimThread
) -> None:
    body = broker(sim) + "strategies:" + strategy("a", "alpha", tmp_path, [["buy", 1, FAR]]) \
        + strategy("b", "beta", tmp_path, [["buy", 1, FAR]]) + """
processes:
  ga: {strategies: [a], auto_cancel: account, restart: {policy: never}}
  gb: {strategies: [b], auto_cancel: none}
"""
    desk: Desk = make_desk("twoacct", body)
    desk.up()
    wait_for(lambda: accepted(tmp_path, "a") and accepted(tmp_path, "b"), timeout=40,
             what="both accounts' orders accepted")
    by_key = {o["key"]: o for o in working_at_sim(sim)}
    assert set(by_key) == {"ka", "kb"}, "each account's order went out on its own login"
    assert by_key["ka"]["client_order_id"].split(".")[1] == "a"
    os.kill(desk.proc("ga")["pid"], signal.SIGKILL)
    wait_for(lambda: [o["key"] for o in working_at_sim(sim)] == ["kb"], timeout=40,
             what="alpha's order cancelled at the broker, beta's still working")
    assert {o["key"]: o["status"] for o in at_sim(sim)}["ka"] == "canceled"


def test_positions_survive_a_gateway_kill_and_max_position_still_refuses(
    make_desk: Any, tmp_path: Path, sim: SimThread
) -> None:
    body = broker(sim) + "strategies:" + strategy(
        "p", "alpha", tmp_path, [["buy", 2, None]], each_restart=[["buy", 1, None]],
        limits="max_position: 2") + """
processes:
  gp: {strategies: [p], auto_cancel: none}
"""
    desk: Desk = make_desk("keeppos", body)
    desk.up()
    wait_for(lambda: any(e["event"] == "filled" for e in events(tmp_path, "p")), timeout=40,
             what="the first buy filled")
    assert positions_at_sim(sim, "ka") == {"AAPL": 2.0}
    gateway = desk.proc("gateway-ext")
    os.kill(gateway["pid"], signal.SIGKILL)
    wait_for(lambda: desk.proc("gateway-ext")["state"] == "running"
             and desk.proc("gateway-ext")["pid"] != gateway["pid"], timeout=40,
             what="the gateway restarted")
    restarted = desk.cli("restart", "gp", "-f", str(desk.file))
    assert restarted.returncode == 0, restarted.stdout + restarted.stderr
    rejected = wait_for(lambda: [e for e in events(tmp_path, "p") if e["event"] == "rejected"],
                        timeout=40, what="the buy after the restart refused")
    assert "position would reach 3 AAPL" in rejected[0]["reason"], rejected
    assert positions_at_sim(sim, "ka") == {"AAPL": 2.0}, "nothing more was bought"
    status = desk.status_cli()
    assert "differ from the broker's" not in json.dumps(status)  # 2 = 2: reconciled


def test_halt_cancels_outlives_a_gateway_restart_and_flatten_closes_at_market(
    make_desk: Any, tmp_path: Path, sim: SimThread
) -> None:
    body = broker(sim) + "strategies:" + strategy(
        "h", "alpha", tmp_path, [["buy", 3, None], ["buy", 1, FAR]],
        each_restart=[["buy", 1, FAR]]) + strategy("k", "beta", tmp_path, [["buy", 1, FAR]]) \
        + """
processes:
  gh: {strategies: [h], auto_cancel: none}
  gk: {strategies: [k], auto_cancel: none}
"""
    desk: Desk = make_desk("killsw", body)
    desk.up()
    wait_for(lambda: len(accepted(tmp_path, "h")) == 2 and accepted(tmp_path, "k")
             and positions_at_sim(sim, "ka") == {"AAPL": 3.0}, timeout=40,
             what="h long 3 with one resting order, k resting")
    unknown = desk.cli("halt", "nobody", "-f", str(desk.file))
    assert unknown.returncode == 2 and "ext.alpha" in unknown.stderr, unknown
    halted = desk.cli("halt", "h", "-f", str(desk.file))
    assert halted.returncode == 0 and "halted h" in halted.stdout, halted.stdout + halted.stderr
    wait_for(lambda: [o["key"] for o in working_at_sim(sim)] == ["kb"], timeout=30,
             what="h's resting order cancelled at the broker, k's untouched")
    # A gateway restart does not lift the halt: the restarted host's buy is refused.
    gateway = desk.proc("gateway-ext")
    os.kill(gateway["pid"], signal.SIGKILL)
    wait_for(lambda: desk.proc("gateway-ext")["state"] == "running"
             and desk.proc("gateway-ext")["pid"] != gateway["pid"], timeout=40,
             what="the gateway restarted")
    assert desk.cli("restart", "gh", "-f", str(desk.file)).returncode == 0
    rejected = wait_for(lambda: [e for e in events(tmp_path, "h") if e["event"] == "rejected"],
                        timeout=40, what="h's order after the restart refused")
    assert "h is halted" in rejected[0]["reason"]
    status = desk.cli("status", "-f", str(desk.file))
    assert "strategy h halted since" in status.stdout, status.stdout
    # Flatten: asks first (no answer = no), then with --yes sells the 3 at market.
    refused = desk.cli("flatten", "h", "-f", str(desk.file), input_="n\n")
    assert refused.returncode == 1 and "sell 3 AAPL at market" in refused.stdout, refused
    assert positions_at_sim(sim, "ka") == {"AAPL": 3.0}
    flat = desk.cli("flatten", "h", "--yes", "-f", str(desk.file))
    assert flat.returncode == 0, flat.stdout + flat.stderr
    wait_for(lambda: positions_at_sim(sim, "ka") == {}, timeout=30, what="alpha flat at the sim")
    assert positions_at_sim(sim, "kb") == {}  # beta never bought: k's order still rests
    assert [o["key"] for o in working_at_sim(sim)] == ["kb"]
    resumed = desk.cli("resume", "h", "-f", str(desk.file))
    assert resumed.returncode == 0 and "resumed h" in resumed.stdout, resumed
    wait_for(lambda: "halted" not in desk.cli("status", "-f", str(desk.file)).stdout.lower(),
             timeout=20, what="status without the halt")
    journal = [json.loads(x) for x in (desk.run_dir / "orders.jsonl").read_text().splitlines()]
    assert [e["event"] for e in journal if e["event"] in ("halt", "resume")] == ["halt",
                                                                                 "resume"]
    # An account halt: one cancel-all on that account's login, at the broker.
    assert [o["key"] for o in working_at_sim(sim)] == ["kb"]
    account = desk.cli("halt", "ext.beta", "-f", str(desk.file))
    assert account.returncode == 0 and "halted ext.beta" in account.stdout, account
    wait_for(lambda: working_at_sim(sim) == [], timeout=30,
             what="beta's resting order cancelled at the broker by the account halt")
    assert {o["key"]: o["status"] for o in at_sim(sim) if o["key"] == "kb"} == {
        "kb": "canceled"}


def test_a_sim_broker_makes_a_login_per_declared_account(
    make_desk: Any, tmp_path: Path
) -> None:
    """`adapter: sim` without credentials: the desk generates one login per account, the sim
    accepts only those, and each account's orders go out on its own."""
    body = """
brokers:
  sim:
    adapter: sim
    market: {rate: 40}
    accounts: {alpha: {}, beta: {}}
strategies:""" + strategy("a", "alpha", tmp_path, [["buy", 1, FAR]]).replace(
        "broker: ext", "broker: sim") + strategy("b", "beta", tmp_path, [["buy", 1, FAR]]
                                                ).replace("broker: ext", "broker: sim")
    desk: Desk = make_desk("simacct", body)
    desk.up()
    try:
        wait_for(lambda: accepted(tmp_path, "a") and accepted(tmp_path, "b"), timeout=60,
                 what="both accounts' orders accepted")
    except AssertionError as exc:  # say what the strategies saw
        raise AssertionError(f"{exc}; a: {events(tmp_path, 'a')}; b: {events(tmp_path, 'b')}; "
                             f"status: {desk.status_cli()}") from None
    http = desk.proc("sim-sim")["detail"]["http"]
    with urllib.request.urlopen(f"{http}/admin/orders", timeout=5) as resp:
        orders = json.loads(resp.read())["orders"]
    keys = {o["client_order_id"].split(".")[1]: o["key"] for o in orders}
    assert keys["a"] != keys["b"] and all(k.startswith("sim-") for k in keys.values())
    status = json.dumps(desk.status_cli())
    assert keys["a"] not in status and keys["b"] not in status  # logins are never shown
