"""Several accounts on one broker, their limits, halts and flatten, at the router with fake
senders (one per account, as the gateway builds them) and a fake day.

Each test feeds the router what a host and the broker would, and reads which account's
sender got which broker call: the broker's side as far as a unit test can see it (the e2e
tests in tests/orders/test_accounts_e2e.py read the simulated exchange's book)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.gateway.test_router import FakeSender, broker_order, order
from tradeops.gateway.accounts import AccountBook, Exposure
from tradeops.gateway.journal import Journal
from tradeops.gateway.orders import OrderDesk
from tradeops.gateway.router import OrderRouter
from tradeops.gateway.trading import Job, JobResult
from tradeops.protocol import alpaca_trading as at
from tradeops.topology.load import load_topology
from tradeops.topology.model import AccountLimits

TOPOLOGY = """
version: 1
name: accounts
brokers:
  sim:
    adapter: sim
    accounts:
      alpha: {limits: {max_open_orders: 2, max_orders_per_day: 3}}
      beta: {}
strategies:
  a:
    class: recipes.momentum:Momentum
    broker: sim
    account: alpha
    symbols: [AAPL, MSFT]
  a2:
    class: recipes.momentum:Momentum
    broker: sim
    account: alpha
    symbols: [AAPL]
  b:
    class: recipes.momentum:Momentum
    broker: sim
    account: beta
    symbols: [AAPL]
"""
HOST_A, HOST_B = "host-a", "host-b"


class Desk:
    """A router over two accounts, with the day under the test's control: the real UTC day
    (the journal stamps its lines with it, and a restart counts them by it) plus `days_on`."""

    def __init__(self, tmp_path: Path, policy: str = "account",
                 limits: dict[str, AccountLimits] | None = None) -> None:
        path = tmp_path / "t.yaml"
        path.write_text(TOPOLOGY)
        self.topology = load_topology(path)
        self.journal_path = tmp_path / "orders.jsonl"
        self.days_on = 0
        self.policy = policy
        broker = self.topology.brokers["sim"]
        self.limits = limits or {a: s.limits for a, s in broker.trading_accounts.items()}
        self.router, self.senders = self.build()

    def build(self) -> tuple[OrderRouter, dict[str, FakeSender]]:
        """A fresh router on the same journal: what a restarted gateway starts from."""
        senders = {"alpha": FakeSender(), "beta": FakeSender()}
        router = OrderRouter(
            OrderDesk.for_broker(self.topology, "sim"), senders, Journal(self.journal_path),
            {"ga": (["a", "a2"], self.policy), "gb": (["b"], "none")}, lambda s: 100.0,
            limits=self.limits, today=self.today,
        )
        router.hello(HOST_A, "ga")
        router.hello(HOST_B, "gb")
        return router, senders

    def today(self) -> str:
        day = datetime.now(UTC).date() + timedelta(days=self.days_on)
        return day.isoformat()

    def working(self, strategy: str, order_id: str, **kw: Any) -> Job:
        """An order the broker accepted, through its account's sender."""
        account = self.router.account_of[strategy]
        host = HOST_B if strategy == "b" else HOST_A
        assert self.router.order(host, order(strategy, order_id, **kw)) == []
        job = self.senders[account].take()
        assert job.account == account
        self.router.on_result(JobResult(job, 200, broker_order(job)))
        return job

    def fill(self, job: Job, qty: float, price: float) -> list[Any]:
        body = broker_order(job, "filled", qty) | {"filled_avg_price": str(price)}
        return self.router.on_trade_update(at.TradeUpdate("fill", body, price=price, qty=qty))

    def refused(self, strategy: str, order_id: str, **kw: Any) -> str:
        host = HOST_B if strategy == "b" else HOST_A
        ((_, update),) = self.router.order(host, order(strategy, order_id, **kw))
        assert update["event"] == "rejected"
        return str(update["reason"])

    def journal(self) -> list[dict[str, Any]]:
        return [json.loads(x) for x in self.journal_path.read_text().splitlines()]


def test_each_account_s_orders_go_out_on_its_own_login(tmp_path: Path) -> None:
    desk = Desk(tmp_path)
    desk.working("a", "1")
    desk.working("b", "1")
    submits = [e for e in desk.journal() if e["event"] == "submit"]
    assert [(e["strategy"], e["account"]) for e in submits] == [("a", "alpha"), ("b", "beta")]


def test_auto_cancel_account_cancels_only_that_account(tmp_path: Path) -> None:
    desk = Desk(tmp_path)
    desk.working("a", "1")
    desk.working("a2", "1")
    desk.working("b", "1")
    desk.router.client_gone(HOST_A)
    assert [j.kind for j in desk.senders["alpha"].queue] == ["cancel_all"]
    assert desk.senders["beta"].queue == [], "beta's order must stay working"
    assert {o.strategy for o in desk.router.cancelling()} == {"a", "a2"}


def test_a_mismatch_on_one_account_blocks_that_account_only(tmp_path: Path) -> None:
    desk = Desk(tmp_path)
    desk.router.start()
    for account in ("alpha", "beta"):
        (job,) = desk.senders[account].queue
        assert (job.kind, job.account) == ("open_orders", account)
        desk.router.on_result(JobResult(desk.senders[account].take(), 200, []))
    alpha_positions = desk.senders["alpha"].take()
    desk.router.on_result(JobResult(alpha_positions, 200, [{"symbol": "AAPL", "qty": "4"}]))
    desk.router.on_result(JobResult(desk.senders["beta"].take(), 200, []))
    assert set(desk.router.mismatch) == {"alpha"}
    assert "tradeops orders --ack sim.alpha" in desk.refused("a", "1")
    desk.working("b", "1")  # beta trades on
    assert desk.router.acknowledge("beta") == {}
    assert desk.router.acknowledge("alpha") == {"alpha": {"AAPL": (0.0, 4.0)}}
    desk.working("a", "2")


def test_max_open_orders_counts_the_whole_account(tmp_path: Path) -> None:
    desk = Desk(tmp_path)
    desk.working("a", "1")
    desk.working("a2", "1")
    assert "account 'alpha' has 2 working order(s), limits.max_open_orders 2" in desk.refused(
        "a", "2")
    desk.working("b", "1")  # another account: its own count


def test_orders_per_day_survive_a_restart_and_reset_the_next_day(tmp_path: Path) -> None:
    desk = Desk(tmp_path, limits={"alpha": AccountLimits(max_orders_per_day=3)})
    for i in range(3):
        job = desk.working("a", str(i))
        desk.fill(job, 1, 100.0)
    assert "sent 3 order(s) today (UTC), limits.max_orders_per_day 3" in desk.refused("a", "x")
    desk.router, desk.senders = desk.build()  # a gateway restart: the day is not reset
    assert desk.router.books["alpha"].orders_today == 3  # the refusal did not count
    assert "limits.max_orders_per_day 3" in desk.refused("a", "y")
    desk.days_on = 1  # the next day
    desk.working("a", "z")


def test_daily_loss_allows_only_reducing_orders(tmp_path: Path) -> None:
    desk = Desk(tmp_path, limits={"alpha": AccountLimits(max_daily_loss=50)})
    desk.fill(desk.working("a", "1", qty=10), 10, 100.0)
    sell = order("a", "2", qty=4)
    sell["side"] = "sell"
    assert desk.router.order(HOST_A, sell) == []
    job = desk.senders["alpha"].take()
    desk.router.on_result(JobResult(job, 200, broker_order(job)))
    desk.fill(job, 4, 85.0)  # realises 4 x -15 = -60
    assert desk.router.books["alpha"].realised_today == pytest.approx(-60.0)
    reason = desk.refused("a", "3", qty=1)
    assert "account 'alpha' lost 60.00 today (realised), limits.max_daily_loss 50.00" in reason
    sell["order_id"] = "4"
    assert desk.router.order(HOST_A, sell) == []  # reduces the 6 left: goes
    desk.router, desk.senders = desk.build()  # the loss is rebuilt from the journal's fills
    assert desk.router.books["alpha"].realised_today == pytest.approx(-60.0)


def test_gross_notional_counts_positions_and_working_orders() -> None:
    book = AccountBook("alpha", AccountLimits(max_gross_notional=1000))
    exposure = {"AAPL": Exposure(position=5), "MSFT": Exposure(buys=2)}
    prices = {"AAPL": 100.0, "MSFT": 200.0}.get
    # 5 x 100 + 2 x 200 = 900; one more AAPL at 100 reaches 1000: allowed, two are not.
    assert book.refusal("d", "AAPL", "buy", 1, 100.0, 0, exposure, prices) is None
    reason = book.refusal("d", "AAPL", "buy", 2, 100.0, 0, exposure, prices)
    assert reason is not None and "1,100.00 gross notional" in reason
    # Selling AAPL down does not add to the gross.
    assert book.refusal("d", "AAPL", "sell", 5, 100.0, 0, exposure, prices) is None


def test_realised_pnl_uses_average_cost_through_a_flip() -> None:
    book = AccountBook("alpha")
    book.on_fill("d", "X", "buy", 2, 10.0)
    book.on_fill("d", "X", "buy", 2, 20.0)  # 4 at 15
    assert book.on_fill("d", "X", "sell", 6, 18.0) == pytest.approx(12.0)  # 4 x 3, 2 short
    assert book.lots["X"] == (-2.0, 18.0)
    assert book.on_fill("d", "X", "buy", 2, 17.0) == pytest.approx(2.0)
    assert book.lots["X"] == (0.0, 0.0)


def test_a_strategy_halt_refuses_and_cancels_and_survives_a_restart(tmp_path: Path) -> None:
    desk = Desk(tmp_path, limits={"alpha": AccountLimits()})
    job = desk.working("a", "1")
    desk.router.halt(("strategy", "a"))
    (cancel,) = desk.senders["alpha"].queue
    assert (cancel.kind, cancel.cid) == ("cancel", job.cid)
    assert "a is halted" in desk.refused("a", "2") and "`tradeops resume a`" in desk.refused(
        "a", "3")
    desk.working("a2", "1")  # the other strategy on the account is not halted
    desk.router, desk.senders = desk.build()
    assert "a is halted" in desk.refused("a", "4")
    assert desk.router.resume(("strategy", "a"))
    desk.working("a", "5")
    desk.router, desk.senders = desk.build()
    desk.working("a", "6")  # resumed for good
    assert [e["event"] for e in desk.journal() if e["event"] in ("halt", "resume")] == [
        "halt", "resume"]


def test_an_account_halt_cancels_everything_on_that_account(tmp_path: Path) -> None:
    desk = Desk(tmp_path)
    desk.working("a", "1")
    desk.working("b", "1")
    scope = desk.router.scope_of("sim.alpha")
    assert scope == ("account", "alpha")
    desk.router.halt(scope)
    assert [j.kind for j in desk.senders["alpha"].queue] == ["cancel_all"]
    assert desk.senders["beta"].queue == []
    assert "sim.alpha is halted" in desk.refused("a2", "1")
    desk.working("b", "2")
    assert desk.router.scope_of("sim") == ("broker", "sim")
    assert desk.router.scope_of("nobody") is None


def test_flatten_closes_positions_at_market_even_when_halted(tmp_path: Path) -> None:
    desk = Desk(tmp_path)
    desk.fill(desk.working("a", "1", qty=3), 3, 100.0)
    resting = desk.working("a", "2", qty=1, symbol="MSFT")
    desk.router.halt(("strategy", "a"))
    desk.senders["alpha"].queue.clear()
    placed, _ = desk.router.flatten("a")
    assert [(o["side"], o["qty"], o["symbol"], o["limit"]) for o in placed] == [
        ("sell", 3.0, "AAPL", None)]
    kinds = [(j.kind, j.request.body) for j in desk.senders["alpha"].queue]
    assert kinds[0][0] == "submit" and kinds[0][1]["type"] == "market"
    assert desk.router.desk.orders[resting.cid].cancel_requested
    assert any(e.get("flatten") for e in desk.journal() if e["event"] == "submit")


def test_a_reload_keeps_what_connected_hosts_and_live_orders_need(tmp_path: Path) -> None:
    """`tradeops apply` reloads a gateway while a removed group's host may still be there."""
    desk = Desk(tmp_path, limits={"alpha": AccountLimits()})
    job = desk.working("a", "1")
    strategies = {n: s for n, s in desk.topology.strategies.items() if n != "a"}
    desk.router.reconfigure(strategies, {"gb": (["b"], "none")}, {})
    assert "ga" in desk.router.groups  # still connected: kept until its host goes
    desk.router.client_gone(HOST_A)  # its group, gone from the file, still cancels
    (cancel,) = [j for j in desk.senders["alpha"].queue if j.kind == "cancel_all"]
    assert cancel.account == "alpha"
    assert desk.router.desk.orders[job.cid].cancel_requested
