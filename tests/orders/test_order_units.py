"""The pure parts of orders: risk checks, routing ids, broker events, the rate limit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tradeops.gateway.orders import OrderDesk
from tradeops.gateway.ratelimit import FairQueue, SlidingWindow
from tradeops.protocol import alpaca_trading as at
from tradeops.topology.load import load_topology

TOPOLOGY = """
version: 1
name: units
brokers:
  sim: {adapter: sim}
strategies:
  a:
    class: recipes.momentum:Momentum
    broker: sim
    symbols: [AAPL, MSFT]
    limits: {max_order_qty: 100, max_position: 150, max_notional: 10000}
  b:
    class: recipes.momentum:Momentum
    broker: sim
    symbols: [AAPL]
    limits: {symbols: [AAPL, SPY]}
"""


@pytest.fixture
def desk(tmp_path: Path) -> OrderDesk:
    path = tmp_path / "t.yaml"
    path.write_text(TOPOLOGY)
    return OrderDesk.for_broker(load_topology(path), "sim")


def order_json(cid: str, status: str, filled: float = 0, avg: float | None = None) -> dict:
    return {
        "id": "b-" + cid,
        "client_order_id": cid,
        "symbol": "AAPL",
        "side": "buy",
        "qty": "100",
        "filled_qty": str(filled),
        "filled_avg_price": avg,
        "status": status,
        "time_in_force": "day",
        "limit_price": None,
    }


def test_risk_checks_name_the_limit(desk: OrderDesk) -> None:
    assert desk.check("a", "AAPL", "buy", 50, None, "day", 100.0) is None
    assert "max_order_qty 100" in (desk.check("a", "AAPL", "buy", 101, None, "day", 1.0) or "")
    assert "max_notional" in (desk.check("a", "AAPL", "buy", 50, 250.0, "day", None) or "")
    assert "no price" in (desk.check("a", "AAPL", "buy", 5, None, "day", None) or "")
    assert "not among strategy 'a''s symbols" in (
        desk.check("a", "SPY", "buy", 1, 1.0, "day", 1.0) or ""
    )
    assert desk.check("b", "SPY", "buy", 1, 1.0, "day", 1.0) is None  # limits.symbols
    assert "does not trade on broker" in (desk.check("zz", "AAPL", "buy", 1, 1, "day", 1) or "")
    assert "qty must be" in (desk.check("a", "AAPL", "buy", 0, 1, "day", 1) or "")


def test_max_position_counts_fills_and_working_orders(desk: OrderDesk) -> None:
    first = desk.new("a", "1", "AAPL", "buy", 100, 10.0, "day")
    desk.on_trade_update(
        at.TradeUpdate("fill", order_json(first.client_order_id, "filled", 100, 10.0), 10.0, 100)
    )
    assert desk.position("a", "AAPL") == 100
    desk.new("a", "2", "AAPL", "buy", 40, 10.0, "day")  # working, not yet filled
    reason = desk.check("a", "AAPL", "buy", 20, 10.0, "day", 10.0)
    assert reason is not None and "max_position 150" in reason
    assert desk.check("a", "AAPL", "sell", 20, 10.0, "day", 10.0) is None


def test_updates_route_to_the_owner_with_fill_details(desk: OrderDesk) -> None:
    record = desk.new("a", "7", "AAPL", "buy", 100, None, "day")
    ((owner, accepted),) = desk.on_submitted(
        record.client_order_id, order_json(record.client_order_id, "accepted"), ""
    )
    assert owner == "a" and accepted["event"] == "accepted"
    assert (
        desk.on_trade_update(at.TradeUpdate("new", order_json(record.client_order_id, "new"))) == []
    )  # accepted once, not twice
    ((_, partial),) = desk.on_trade_update(
        at.TradeUpdate(
            "partial_fill", order_json(record.client_order_id, "partially_filled", 40, 9.5), 9.5, 40
        )
    )
    assert partial["event"] == "partially_filled" and partial["fill_qty"] == 40
    ((_, done),) = desk.on_trade_update(
        at.TradeUpdate("fill", order_json(record.client_order_id, "filled", 100, 9.6), 9.7, 60)
    )
    assert done["event"] == "filled" and done["fill_qty"] == 60 and done["position"] == 100
    assert desk.working("a") == []


def test_an_unknown_order_of_ours_is_adopted_by_its_routing_id(desk: OrderDesk) -> None:
    cid = at.routing_id("b")
    ((owner, update),) = desk.on_trade_update(
        at.TradeUpdate("canceled", order_json(cid, "canceled"))
    )
    assert owner == "b" and update["event"] == "cancelled"
    assert desk.on_trade_update(at.TradeUpdate("fill", order_json("someone-else", "filled"))) == []


def test_routing_ids_are_unique_and_name_their_strategy() -> None:
    ids = {at.routing_id("momentum-fast") for _ in range(1000)}
    assert len(ids) == 1000
    assert all(at.owner_of(i) == "momentum-fast" and len(i) <= 128 for i in ids)
    assert at.owner_of("not.ours") is None


def test_requests_and_stream_frames() -> None:
    req = at.submit("AAPL", "buy", 10, 101.5, "day", "t1.a.x")
    assert (req.method, req.path) == ("POST", "/v2/orders")
    assert req.body == {
        "symbol": "AAPL",
        "qty": "10",
        "side": "buy",
        "type": "limit",
        "time_in_force": "day",
        "client_order_id": "t1.a.x",
        "limit_price": "101.5",
    }
    assert json.loads(at.stream_auth("k", "s"))["data"] == {"key_id": "k", "secret_key": "s"}
    (auth,) = at.stream_events('{"stream":"authorization","data":{"status":"authorized"}}')
    assert auth == at.StreamAuth(True)
    frame = json.dumps(
        {
            "stream": "trade_updates",
            "data": {
                "event": "fill",
                "order": {"client_order_id": "t1.a.x"},
                "price": "10.5",
                "qty": "3",
            },
        }
    )
    (update,) = at.stream_events(frame)
    assert isinstance(update, at.TradeUpdate) and (update.price, update.qty) == (10.5, 3.0)
    assert at.stream_events("nonsense") == []


def test_sliding_window_never_exceeds_its_budget() -> None:
    window = SlidingWindow(3, 10.0, margin=0.0)
    sent = []
    now = 0.0
    while len(sent) < 9:
        wait = window.wait(now)
        if wait == 0:
            window.record(now)
            sent.append(now)
        now += max(wait, 0.5)
    assert all(sum(1 for t in sent if s <= t < s + 10.0) <= 3 for s in sent)
    window.throttled(now, 30.0)
    assert window.wait(now) >= 30.0


def test_fair_queue_serves_clients_in_turn_and_is_bounded() -> None:
    q: FairQueue[str] = FairQueue(limit=5)
    for i in range(4):
        assert q.put("greedy", f"g{i}")
    assert q.put("polite", "p0")
    assert not q.put("polite", "p1")  # full
    order = [q.take() for _ in range(5)]
    assert order[:3] == ["g0", "p0", "g1"]
    assert q.take() is None
