"""The order router with a fake order sender: who may trade, risk refusals, the rate limit's
two policies, the broker's answers, and auto_cancel when a host's connection goes away.

The router holds no clock and no socket: a host's request goes in, replies come out, and the
fake sender records the broker calls it would make (`take` plays the sender's thread taking
a job off the queue). What the broker then does is fed back as `on_result` / trade updates.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Any

import pytest

from tradeops.gateway.journal import Journal
from tradeops.gateway.orders import OrderDesk
from tradeops.gateway.ratelimit import admission
from tradeops.gateway.router import OrderRouter
from tradeops.gateway.trading import Job, JobResult
from tradeops.protocol import alpaca_trading as at
from tradeops.topology.load import load_topology

TOPOLOGY = """
version: 1
name: routing
brokers:
  sim: {adapter: sim}
strategies:
  victim:
    class: recipes.momentum:Momentum
    broker: sim
    symbols: [AAPL, MSFT]
    limits: {max_order_qty: 10}
  other:
    class: recipes.momentum:Momentum
    broker: sim
    symbols: [AAPL]
  neighbour:
    class: recipes.momentum:Momentum
    broker: sim
    symbols: [AAPL]
"""
HOST, RESTARTED, NEIGHBOUR = "host-1", "host-2", "host-n"


class FakeSender:
    """The order transport's queue, without a thread or a broker."""

    def __init__(self, capacity: int = 100) -> None:
        self.queue: list[Job] = []
        self.capacity = capacity
        self.busy = False  # a job is out at the broker
        self.room: int | None = None  # what the rate-limit window allows now (None: no limit)
        self.throttled = 0

    def put(self, job: Job) -> bool:
        if len(self.queue) >= self.capacity:
            return False
        self.queue.append(job)
        return True

    def admit(self, job: Job, reject_when_spent: bool) -> str | None:
        reason = admission(len(self.queue), self.room, self.capacity, reject_when_spent,
                           lambda: "the window is spent")
        if reason is None:
            self.queue.append(job)
        return reason

    def withdraw(self, client: Hashable, cid: str) -> bool:
        for job in self.queue:
            if job.kind == "submit" and job.cid == cid and job.client == client:
                self.queue.remove(job)
                return True
        return False

    def pending(self) -> int:
        return len(self.queue) + (1 if self.busy else 0)

    def take(self) -> Job:
        """The sender's thread takes the next job to the broker."""
        return self.queue.pop(0)

    def kinds(self) -> list[str]:
        return [j.kind for j in self.queue]


Make = Callable[..., tuple[OrderRouter, FakeSender]]


@pytest.fixture
def make(tmp_path: Path) -> Make:
    """`make(policy="strategy", on_limit="queue", ...)`: a router for broker sim, where group
    `victims` (run by HOST, then RESTARTED) holds strategies victim and other with `policy`,
    and group `neighbours` (NEIGHBOUR) holds neighbour with auto_cancel none."""
    path = tmp_path / "t.yaml"
    path.write_text(TOPOLOGY)
    topology = load_topology(path)

    def build(
        policy: str = "strategy", capacity: int = 100, **kw: Any
    ) -> tuple[OrderRouter, FakeSender]:
        sender = FakeSender(capacity)
        groups = {"victims": (["victim", "other"], policy), "neighbours": (["neighbour"], "none")}
        router = OrderRouter(
            OrderDesk.for_broker(topology, "sim"), {"main": sender},
            Journal(tmp_path / "orders.jsonl"),
            groups, lambda symbol: 100.0, **kw,
        )  # fmt: skip
        router.hello(HOST, "victims")
        router.hello(NEIGHBOUR, "neighbours")
        return router, sender

    return build


def order(strategy: str, order_id: str, qty: float = 1, limit: float | None = 90.0,
          symbol: str = "AAPL") -> dict[str, Any]:
    return {"strategy": strategy, "order_id": order_id, "symbol": symbol, "side": "buy",
            "qty": qty, "limit": limit, "tif": "day"}  # fmt: skip


def broker_order(job: Job, status: str = "accepted", filled: float = 0) -> dict[str, Any]:
    body = job.request.body or {}
    return {"id": "b-" + job.cid, "client_order_id": job.cid, "symbol": body.get("symbol"),
            "side": body.get("side"), "qty": body.get("qty"), "filled_qty": str(filled),
            "filled_avg_price": "90" if filled else None, "status": status,
            "time_in_force": "day", "limit_price": body.get("limit_price")}  # fmt: skip


def working(router: OrderRouter, make_sent: FakeSender, strategy: str, order_id: str,
            client: Hashable = HOST) -> Job:
    """An order the broker accepted: submitted, taken by the sender, answered 200."""
    assert router.order(client, order(strategy, order_id)) == []
    job = make_sent.take()
    (reply,) = router.on_result(JobResult(job, 200, broker_order(job)))
    assert reply[0] == client and reply[1]["event"] == "accepted"
    return job


def journal(tmp_path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in (tmp_path / "orders.jsonl").read_text().splitlines()]


# -- routing ids and who may trade ------------------------------------------------------------
def test_an_order_gets_a_routing_id_naming_its_strategy_and_waits_for_the_broker(
    make: Make, tmp_path: Path
) -> None:
    router, sender = make()
    assert router.order(HOST, order("victim", "1")) == []  # nothing to say until the broker
    assert router.order(HOST, order("victim", "2")) == []
    first, second = sender.queue
    assert (first.kind, first.client) == ("submit", HOST)
    assert at.owner_of(first.cid) == "victim" and first.cid != second.cid
    assert first.request.body and first.request.body["client_order_id"] == first.cid
    assert [e["event"] for e in journal(tmp_path)] == ["submit", "submit"]
    assert [o["order_id"] for o in router.status()["working"]] == ["1", "2"]


def test_a_connection_trades_only_for_its_own_group(make: Make) -> None:
    router, sender = make()
    ((client, update),) = router.order(NEIGHBOUR, order("victim", "1"))
    assert client == HOST  # like every update of victim's, to the connection that runs it
    assert update["event"] == "rejected"
    assert "does not run strategy 'victim'" in update["reason"]
    assert sender.queue == [] and router.rejected == 1


def test_a_risk_refusal_never_reaches_the_broker(make: Make, tmp_path: Path) -> None:
    router, sender = make()
    ((client, update),) = router.order(HOST, order("victim", "big", qty=50))
    assert client == HOST and update["event"] == "rejected"
    assert "max_order_qty 10" in update["reason"]
    ((_, update),) = router.order(HOST, order("victim", "spy", symbol="SPY"))
    assert "not among strategy 'victim''s symbols" in update["reason"]
    assert sender.queue == []
    assert [e["event"] for e in journal(tmp_path)] == ["submit", "rejected"] * 2


def test_without_an_order_transport_every_order_is_refused_with_the_reason(
    make: Make,
) -> None:
    router, sender = make(no_orders_reason="broker 'sim' has no trading credentials")
    ((_, update),) = router.order(HOST, order("victim", "1"))
    assert update["reason"] == "broker 'sim' has no trading credentials"
    assert sender.queue == []


# -- the rate limit: on_limit ------------------------------------------------------------------
def test_on_limit_queue_holds_only_what_waits_for_the_window(make: Make) -> None:
    router, sender = make(on_limit="queue", capacity=3)
    sender.room = 5  # the window allows five requests now
    refused = [router.order(HOST, order("victim", str(i))) for i in range(20)]
    assert sender.kinds() == ["submit"] * 8  # five go now, three wait for the window
    reasons = [u["reason"] for r in refused for _, u in r]
    assert len(reasons) == 12
    assert all("3 order(s) already wait for the rate limit, as many as orders.queue_size (3)"
               in r for r in reasons), reasons[0]


def test_on_limit_reject_refuses_only_once_the_budget_is_spent(make: Make) -> None:
    router, sender = make(on_limit="reject")
    sender.room = 5
    results = [router.order(HOST, order("victim", str(i))) for i in range(20)]
    assert [r == [] for r in results].count(True) == 5
    ((_, update),) = results[5]
    assert update["reason"].startswith("rate limit spent: the window is spent")
    assert update["reason"].endswith("orders.on_limit is reject")


def test_max_position_counts_the_order_being_checked_once(make: Make) -> None:
    router, _ = make()
    router.desk.strategies["other"] = router.desk.strategies["other"].model_copy(
        update={"limits": router.desk.strategies["other"].limits.model_copy(
            update={"max_position": 3.0})})
    accepted = [router.order(HOST, order("other", str(i))) == [] for i in range(4)]
    assert accepted == [True, True, True, False]  # three one-lot buys fit under 3
    router.desk.strategies["other"] = router.desk.strategies["other"].model_copy(
        update={"limits": router.desk.strategies["other"].limits.model_copy(
            update={"max_position": 100.0})})
    assert router.order(HOST, order("other", "big", qty=60)) == []  # 3 + 60 from flat-ish


# -- the broker's answers ----------------------------------------------------------------------
def test_on_result_accepts_refuses_or_asks_the_broker(make: Make) -> None:
    router, sender = make()
    job = working(router, sender, "victim", "ok")
    assert router.desk.find("victim", "ok").broker_id == "b-" + job.cid  # type: ignore[union-attr]

    router.order(HOST, order("victim", "refused"))
    job = sender.take()
    ((_, update),) = router.on_result(JobResult(job, 403, None, "insufficient buying power"))
    assert update["event"] == "rejected"
    assert update["reason"] == "broker refused: insufficient buying power"

    router.order(HOST, order("victim", "lost"))  # the POST may or may not have arrived
    job = sender.take()
    assert router.on_result(JobResult(job, 0, None, "ConnectionResetError")) == []
    (lookup,) = sender.queue
    assert lookup.kind == "lookup" and job.cid in lookup.request.path
    sender.take()
    ((_, update),) = router.on_result(JobResult(lookup, 404, None, "not found"))
    assert (update["event"], update["reason"]) == ("rejected", "the broker never received it")

    router.order(HOST, order("victim", "arrived"))
    job = sender.take()
    router.on_result(JobResult(job, 0, None, "timeout"))
    lookup = sender.take()
    ((_, update),) = router.on_result(JobResult(lookup, 200, broker_order(job, "accepted")))
    assert (update["event"], update["order"]["order_id"]) == ("accepted", "arrived")


def test_a_cancel_before_sending_withdraws_and_one_before_the_answer_follows_it(
    make: Make,
) -> None:
    router, sender = make()
    router.order(HOST, order("victim", "queued"))
    ((_, update),) = router.cancel(HOST, "victim", "queued")
    assert update["event"] == "cancelled" and "before it reached the broker" in update["reason"]
    assert sender.queue == []  # the submit never goes out

    router.order(HOST, order("victim", "inflight"))
    job = sender.take()  # out at the broker, no broker id yet
    assert router.cancel(HOST, "victim", "inflight") == []
    assert sender.queue == []  # the cancel waits for the submit's answer...
    ((_, update),) = router.on_result(JobResult(job, 200, broker_order(job)))
    assert update["event"] == "accepted"
    (cancel,) = sender.queue  # ...and follows it
    assert cancel.kind == "cancel" and cancel.request.path.endswith("b-" + job.cid)

    ((_, refused),) = router.cancel(NEIGHBOUR, "victim", "inflight")  # not its strategy
    assert refused["event"] == "rejected" and "no working order" in refused["reason"]


def test_trade_updates_reach_the_strategy_owner_with_fills_and_positions(make: Make) -> None:
    router, sender = make()
    job = working(router, sender, "victim", "1")
    fill = at.TradeUpdate("fill", broker_order(job, "filled", filled=1), 90.0, 1)
    ((client, update),) = router.on_trade_update(fill)
    assert client == HOST
    assert (update["event"], update["fill_qty"], update["position"]) == ("filled", 1.0, 1.0)
    assert router.on_trade_update(fill) == []  # a repeated event changes nothing


def test_a_restarted_host_takes_its_strategies_orders_over(make: Make) -> None:
    router, sender = make(policy="none")
    job = working(router, sender, "victim", "1")
    assert router.client_gone(HOST) == []
    update = at.TradeUpdate("partial_fill", broker_order(job, "partially_filled", 0.5), 90, 0.5)
    assert router.on_trade_update(update) == []  # nobody owns victim now: kept aside
    assert [u["event"] for u in router.status()["unrouted"]] == ["partially_filled"]
    snapshots = router.hello(RESTARTED, "victims")
    (victim,) = [m for c, m in snapshots if m["strategy"] == "victim"]
    assert [o["order_id"] for o in victim["working"]] == ["1"]
    assert victim["positions"] == {"AAPL": 0.5}
    fill = at.TradeUpdate("fill", broker_order(job, "filled", 1), 90.0, 0.5)
    ((client, _),) = router.on_trade_update(fill)
    assert client == RESTARTED


# -- auto_cancel when a host's connection goes away ---------------------------------------------
def test_auto_cancel_strategy_cancels_the_groups_orders_and_nobody_elses(
    make: Make, tmp_path: Path
) -> None:
    router, sender = make(policy="strategy")
    victim = working(router, sender, "victim", "1")
    other = working(router, sender, "other", "2")
    working(router, sender, "neighbour", "3", client=NEIGHBOUR)
    router.order(HOST, order("victim", "queued"))  # not sent yet
    (queued,) = sender.queue
    assert router.client_gone(HOST) == []  # nobody to tell
    cancels = [j for j in sender.queue if j.kind == "cancel"]
    assert sorted(j.request.path for j in cancels) == sorted(
        f"/v2/orders/b-{j.cid}" for j in (victim, other)
    )
    entry = [e for e in journal(tmp_path) if e["event"] == "auto_cancel"]
    assert entry == [{**entry[0], "group": "victims", "policy": "strategy", "orders": 3}]
    assert router.desk.working("neighbour") != []
    # The submit still queued for the rate limit never goes out: it is withdrawn, and the
    # journal says it was cancelled before sending.
    assert queued not in sender.queue
    assert {j.kind for j in sender.queue} == {"cancel"}
    cancelled = [e for e in journal(tmp_path) if e["event"] == "cancelled"]
    assert [e["client_order_id"] for e in cancelled] == [queued.cid]


def test_auto_cancel_account_cancels_everything_at_the_broker_in_one_call(make: Make) -> None:
    router, sender = make(policy="account")
    working(router, sender, "victim", "1")
    working(router, sender, "neighbour", "3", client=NEIGHBOUR)
    assert router.client_gone(HOST) == []
    (job,) = sender.queue
    assert (job.kind, job.request.method) == ("cancel_all", "DELETE")
    assert (job.client, job.request.path) == (HOST, "/v2/orders")


def test_auto_cancel_none_keeps_the_orders_for_the_restarted_host(
    make: Make, tmp_path: Path
) -> None:
    router, sender = make(policy="none")
    working(router, sender, "victim", "1")
    working(router, sender, "victim", "2")
    assert router.client_gone(HOST) == []
    assert sender.queue == []
    assert len(router.desk.working("victim")) == 2
    assert not {"cancel", "cancelled", "auto_cancel"} & {e["event"] for e in journal(tmp_path)}
    snapshots = dict((m["strategy"], m) for _, m in router.hello(RESTARTED, "victims"))
    assert [o["order_id"] for o in snapshots["victim"]["working"]] == ["1", "2"]


def test_a_group_with_nothing_working_cancels_nothing(make: Make) -> None:
    for policy in ("strategy", "account"):
        router, sender = make(policy=policy)
        assert router.client_gone(HOST) == [] and sender.queue == []
        assert router.client_gone(HOST) == []  # twice: the second knows nothing of it


@pytest.mark.parametrize(("on_limit", "queue_size", "accepted"), [("reject", 3, 5),
                                                                  ("queue", 3, 8)])
def test_the_real_sender_admits_what_its_window_allows(
    on_limit: str, queue_size: int, accepted: int
) -> None:
    """5 orders a minute: `reject` takes the five the budget allows (it took 1 of 20 when
    anything in flight counted as limited); `queue` also holds three for the window (it
    refused 16 of 20 when its size counted the whole backlog). The sender is not started:
    nothing leaves, as when the window is spent."""
    from tradeops.gateway.ratelimit import SlidingWindow
    from tradeops.gateway.trading import OrderSender

    sender = OrderSender(None, SlidingWindow(5, 60.0), queue_size)  # type: ignore[arg-type]
    answers = [sender.admit(Job("submit", at.submit("AAPL", "buy", 1, 90.0, "day", f"c{i}")),
                            reject_when_spent=on_limit == "reject") for i in range(20)]
    assert answers.count(None) == accepted
    refusal = next(a for a in answers if a is not None)
    assert "orders.rate_limit (5/60s)" in refusal


def test_a_gateway_after_a_crash_reconciles_journal_entries_without_an_outcome(
    make: Make, tmp_path: Path
) -> None:
    journal = tmp_path / "orders.jsonl"  # a gateway died after these submits
    journal.write_text("".join(
        json.dumps({"event": "submit", "strategy": "victim", "client_order_id": cid}) + "\n"
        for cid in ("t1.victim.open1", "t1.victim.gone1", "t1.victim.lost1")))
    router, sender = make()
    open_order = {"id": "b1", "client_order_id": "t1.victim.open1", "symbol": "AAPL",
                  "side": "buy", "qty": "1", "status": "new", "time_in_force": "day"}
    router.on_result(JobResult(Job("open_orders", at.open_orders(), account="main"), 200,
                               [open_order]))
    asked = [j.cid for j in sender.queue if j.kind == "reconcile"]
    assert asked == ["t1.victim.gone1", "t1.victim.lost1"]
    jobs = {j.cid: j for j in sender.queue}
    router.on_result(JobResult(jobs["t1.victim.gone1"], 200,
                               {"id": "b2", "status": "canceled", "filled_qty": "0"}))
    router.on_result(JobResult(jobs["t1.victim.lost1"], 404, None, "not found"))
    written = [json.loads(x) for x in journal.read_text().splitlines()][3:]
    assert [(e["event"], e["client_order_id"], e["reconciled"]) for e in written] == [
        ("working", "t1.victim.open1", True),
        ("cancelled", "t1.victim.gone1", True),
        ("rejected", "t1.victim.lost1", True),
    ]


def test_positions_survive_a_gateway_restart_and_max_position_still_limits(
    make: Make, tmp_path: Path
) -> None:
    first, sender = make()
    first.desk.strategies["other"] = first.desk.strategies["other"].model_copy(
        update={"limits": first.desk.strategies["other"].limits.model_copy(
            update={"max_position": 3.0})})
    assert first.order(HOST, order("other", "1", qty=3)) == []
    job = sender.take()
    first.on_result(JobResult(job, 200, {"id": "b1", "client_order_id": job.cid,
                                         "status": "accepted", "filled_qty": "0"}))
    first.on_trade_update(at.TradeUpdate("fill", {
        "id": "b1", "client_order_id": job.cid, "symbol": "AAPL", "side": "buy", "qty": "3",
        "filled_qty": "3", "filled_avg_price": "90", "status": "filled"}))
    assert first.desk.position("other", "AAPL") == 3
    # The gateway is killed and a new one starts on the same journal: not a silent reset.
    again, _ = make()
    again.desk.strategies["other"] = first.desk.strategies["other"]
    assert again.desk.position("other", "AAPL") == 3
    ((_, update),) = again.order(HOST, order("other", "2", qty=1))
    assert update["event"] == "rejected" and "beyond limits.max_position 3" in update["reason"]


def test_fills_the_journal_missed_are_taken_from_the_broker_once(make: Make, tmp_path: Path
                                                                  ) -> None:
    (tmp_path / "orders.jsonl").write_text(json.dumps(
        {"event": "submit", "strategy": "victim", "client_order_id": "t1.victim.x1",
         "symbol": "AAPL", "side": "sell", "qty": 5}) + "\n")
    router, _ = make()
    assert router.desk.position("victim", "AAPL") == 0
    open_order = {"id": "b9", "client_order_id": "t1.victim.x1", "symbol": "AAPL",
                  "side": "sell", "qty": "5", "filled_qty": "2", "status": "partially_filled",
                  "time_in_force": "day"}
    router.on_result(JobResult(Job("open_orders", at.open_orders(), account="main"), 200,
                               [open_order]))
    router.on_result(JobResult(Job("open_orders", at.open_orders(), account="main"), 200,
                               [open_order]))
    assert router.desk.position("victim", "AAPL") == -2  # counted once


def test_positions_that_differ_from_the_broker_block_orders_until_acknowledged(
    make: Make, tmp_path: Path
) -> None:
    router, sender = make()
    router.start()
    (start,) = sender.queue
    assert (start.kind, start.account) == ("open_orders", "main")
    router.on_result(JobResult(sender.take(), 200, []))
    (positions,) = [j for j in sender.queue if j.kind == "positions"]
    assert positions.account == "main"
    # Someone else bought 5 AAPL on this account: the strategies hold nothing.
    router.on_result(JobResult(positions, 200, [{"symbol": "AAPL", "qty": "5"}]))
    assert router.mismatch == {"main": {"AAPL": (0.0, 5.0)}}
    assert router.status()["positions_mismatch"] == {
        "main": {"AAPL": {"ours": 0.0, "broker": 5.0}}}
    ((_, update),) = router.order(HOST, order("victim", "1"))
    assert ("positions of account 'main' differ from the broker's (AAPL ours 0, broker 5)"
            in update["reason"])
    assert "tradeops orders --ack sim.main" in update["reason"]
    assert router.acknowledge("main") == {"main": {"AAPL": (0.0, 5.0)}}
    assert router.order(HOST, order("victim", "2")) == []
    events = [json.loads(x)["event"] for x in (tmp_path / "orders.jsonl").read_text().splitlines()]
    assert "positions_mismatch" in events and "positions_acknowledged" in events
    router.on_result(JobResult(positions, 200, []))  # they match (both flat): nothing blocks
    assert router.mismatch == {}


# -- broker answers nobody foresaw ------------------------------------------------------------
@pytest.mark.parametrize("body", [[], "OK", None])
def test_a_submit_taken_with_an_unreadable_answer_is_looked_up_not_rejected(
    make: Make, body: object
) -> None:
    router, sender = make()
    assert router.order(HOST, order("victim", "o1")) == []
    job = sender.take()
    assert router.on_result(JobResult(job, 200, body)) == []  # no "rejected": it may be live
    (lookup,) = sender.queue
    assert lookup.kind == "lookup" and lookup.cid == job.cid
    record = router.desk.orders[job.cid]
    assert record.live and record.status == "new"


def test_an_update_with_unreadable_fill_numbers_changes_nothing_and_is_looked_up(
    make: Make, tmp_path: Path
) -> None:
    router, sender = make()
    job = working(router, sender, "victim", "o1")
    bad = {**broker_order(job, "filled", 1), "filled_qty": "one"}
    assert router.on_trade_update(at.TradeUpdate("fill", bad, 90.0, 1.0)) == []
    assert router.desk.position("victim", "AAPL") == 0  # a fill not counted is not guessed
    assert router.desk.orders[job.cid].status == "working"
    assert journal(tmp_path)[-1]["event"] == "unreadable_update"
    (lookup,) = sender.queue
    assert lookup.kind == "lookup" and lookup.cid == job.cid
    # The broker's own record of it, asked for, is readable: the fill counts now.
    ((_, update),) = router.on_result(JobResult(sender.take(), 200,
                                                broker_order(job, "filled", 1)))  # fmt: skip
    assert (update["event"], update["fill_qty"], update["fill_price"]) == ("filled", 1.0, 90.0)
    assert router.desk.position("victim", "AAPL") == 1


def test_an_unreadable_lookup_answer_is_journaled_and_not_asked_again(
    make: Make, tmp_path: Path
) -> None:
    router, sender = make()
    job = working(router, sender, "victim", "o1")
    router.on_trade_update(at.TradeUpdate("fill", {**broker_order(job), "filled_qty": []},
                                          None, None))  # fmt: skip
    lookup = sender.take()
    bad = {**broker_order(job, "filled", 1), "filled_avg_price": "ninety"}
    assert router.on_result(JobResult(lookup, 200, bad)) == []
    assert sender.queue == [] and router.desk.position("victim", "AAPL") == 0
    assert [e["event"] for e in journal(tmp_path)][-2:] == ["unreadable_update"] * 2
