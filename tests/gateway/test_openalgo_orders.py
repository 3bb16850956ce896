"""Orders on an OpenAlgo broker, without processes: the translation of the router's requests
into OpenAlgo's REST calls and back, the router's polling that stands in for a trade stream,
and the transport against the sim's OpenAlgo dialect over loopback HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.gateway.test_router import HOST, FakeSender, journal, order
from tests.waiting import wait_for
from tradeops.gateway.journal import Journal
from tradeops.gateway.openalgo_orders import OpenAlgoTransport
from tradeops.gateway.orders import OrderDesk
from tradeops.gateway.router import POLL, OrderRouter
from tradeops.gateway.trading import Job, JobResult
from tradeops.protocol import alpaca_trading as at
from tradeops.protocol.openalgo_trading import TIFS, Answer, Call, OpenAlgoOrders
from tradeops.sim.options import SimOptions
from tradeops.sim.server import SimThread
from tradeops.topology.load import load_topology

CID = "t1.nifty.abc123"


def place(orders: OpenAlgoOrders, limit: float | None = 1500.5, tif: str = "day",
          symbol: str = "NSE:RELIANCE") -> Call | Answer:
    return orders.call_for(at.submit(symbol, "buy", 5, limit, tif, CID))


# -- the mapping -------------------------------------------------------------------------------
def test_a_limit_order_becomes_placeorder_with_the_key_in_the_body() -> None:
    call = place(OpenAlgoOrders("k-1", "CNC"))
    assert call == Call("/api/v1/placeorder", {
        "apikey": "k-1", "strategy": "nifty", "exchange": "NSE", "symbol": "RELIANCE",
        "action": "BUY", "quantity": "5", "pricetype": "LIMIT", "product": "CNC",
        "price": "1500.5", "trigger_price": "0", "disclosed_quantity": "0"})
    market = OpenAlgoOrders("k-1").call_for(at.submit("NSE:INFY", "sell", 2, None, "day", CID))
    assert isinstance(market, Call)
    assert (market.body["pricetype"], market.body["action"], market.body["price"],
            market.body["product"]) == ("MARKET", "SELL", "0", "MIS")


def test_what_openalgo_cannot_carry_is_answered_at_once_with_the_reason() -> None:
    orders = OpenAlgoOrders("k")
    assert TIFS == ("day",)
    gtc = place(orders, tif="gtc")
    assert gtc == Answer(422, {"message": "OpenAlgo orders are DAY orders; time in force "
                                          "'gtc' is not available"})
    bare = place(orders, symbol="RELIANCE")
    assert isinstance(bare, Answer) and bare.status == 422
    assert "EXCHANGE:SYMBOL" in bare.body["message"]
    unknown = orders.call_for(at.HttpRequest(
        "GET", "/v2/orders:by_client_order_id?client_order_id=t1.nifty.zzz"))
    assert isinstance(unknown, Answer) and unknown.status == 404
    with pytest.raises(ValueError, match="product 'BO'"):
        OpenAlgoOrders("k", "BO")


def test_answers_come_back_in_the_routers_words_and_name_the_routing_id() -> None:
    orders = OpenAlgoOrders("k")
    request = at.submit("NSE:RELIANCE", "buy", 5, None, "day", CID)
    call = orders.call_for(request)
    assert isinstance(call, Call)
    placed = orders.answer(request, call, 200, {"status": "success", "orderid": "250101"})
    assert placed.status == 200 and placed.body["id"] == "250101"
    assert placed.body["client_order_id"] == CID and placed.body["status"] == "new"
    # The order is now found by its routing id, and a cancel names its strategy.
    lookup = at.HttpRequest("GET", f"/v2/orders:by_client_order_id?client_order_id={CID}")
    status_call = orders.call_for(lookup)
    assert status_call == Call("/api/v1/orderstatus",
                               {"apikey": "k", "strategy": "nifty", "orderid": "250101"})
    assert orders.call_for(at.cancel("250101")) == Call(
        "/api/v1/cancelorder", {"apikey": "k", "strategy": "nifty", "orderid": "250101"})
    assert isinstance(status_call, Call)
    row = {"orderid": "250101", "exchange": "NSE", "symbol": "RELIANCE", "action": "BUY",
           "quantity": 5, "price": 0.0, "pricetype": "MARKET", "product": "MIS"}
    complete = orders.answer(lookup, status_call, 200, {"status": "success", "data": {
        **row, "order_status": "complete", "average_price": 1501.25}})
    assert (complete.body["status"], complete.body["filled_qty"],
            complete.body["filled_avg_price"], complete.body["client_order_id"],
            complete.body["symbol"]) == ("filled", 5.0, 1501.25, CID, "NSE:RELIANCE")
    still_open = orders.answer(lookup, status_call, 200, {"status": "success", "data": {
        **row, "order_status": "open", "average_price": 0.0}})
    assert (still_open.body["status"], still_open.body["filled_qty"]) == ("new", 0.0)
    gone = orders.answer(lookup, status_call, 200, {"status": "success", "data": {
        **row, "order_status": "cancelled"}})
    assert gone.body["status"] == "canceled"


def test_errors_keep_openalgos_status_and_message() -> None:
    orders = OpenAlgoOrders("k")
    request = at.submit("NSE:RELIANCE", "buy", 5, None, "day", CID)
    call = orders.call_for(request)
    assert isinstance(call, Call)
    refused = orders.answer(request, call, 403, {"status": "error",
                                                 "message": "Invalid openalgo apikey"})
    assert refused == Answer(403, {"message": "Invalid openalgo apikey"})
    said_error = orders.answer(request, call, 200, {"status": "error", "message": "RMS: margin"})
    assert said_error == Answer(422, {"message": "RMS: margin"})
    invalid = orders.answer(request, call, 400, {"status": "error",
                                                 "message": {"quantity": ["too big"]}})
    assert invalid.status == 400 and "quantity" in invalid.body["message"]


def test_open_orders_and_positions_come_from_the_order_and_position_books() -> None:
    orders = OpenAlgoOrders("k", "MIS")
    orders.know(CID, "7")
    open_request = at.open_orders()
    call = orders.call_for(open_request)
    assert call == Call("/api/v1/orderbook", {"apikey": "k"})
    assert isinstance(call, Call)
    rows = [{"orderid": "7", "order_status": "open", "exchange": "NSE", "symbol": "INFY",
             "action": "SELL", "quantity": 3, "price": 1400, "pricetype": "LIMIT"},
            {"orderid": "8", "order_status": "complete", "exchange": "NSE", "symbol": "INFY",
             "action": "BUY", "quantity": 1, "price": 0, "pricetype": "MARKET"}]
    answer = orders.answer(open_request, call, 200, {"status": "success", "data": {
        "orders": rows, "statistics": {}}})
    ((working,),) = [answer.body]
    assert (working["client_order_id"], working["side"], working["limit_price"],
            working["symbol"]) == (CID, "sell", 1400.0, "NSE:INFY")
    positions = at.HttpRequest("GET", "/v2/positions")
    pcall = orders.call_for(positions)
    assert isinstance(pcall, Call) and pcall.path == "/api/v1/positionbook"
    book = [{"exchange": "NSE", "symbol": "INFY", "product": "MIS", "quantity": "-4"},
            {"exchange": "NSE", "symbol": "INFY", "product": "CNC", "quantity": "10"},
            {"exchange": "NSE", "symbol": "TCS", "product": "MIS", "quantity": 0}]
    assert orders.answer(positions, pcall, 200, {"status": "success", "data": book}).body == [
        {"symbol": "NSE:INFY", "qty": -4.0}]  # the product's rows, signed; flat ones left out


# -- the router, polled --------------------------------------------------------------------
TOPOLOGY = """
version: 1
name: oa
brokers:
  india: {adapter: openalgo, credentials: {api_key: k}}
strategies:
  nifty: {class: "recipes.momentum:Momentum", broker: india, symbols: ["NSE:RELIANCE"]}
"""


@pytest.fixture
def polled(tmp_path: Path) -> tuple[OrderRouter, FakeSender]:
    path = tmp_path / "t.yaml"
    path.write_text(TOPOLOGY)
    sender = FakeSender()
    router = OrderRouter(OrderDesk.for_broker(load_topology(path), "india"), {"main": sender},
                         Journal(tmp_path / "orders.jsonl"), {"g": (["nifty"], "strategy")},
                         lambda symbol: 100.0, tifs=TIFS,
                         tif_why=" (OpenAlgo orders are DAY orders)", polled=True)
    router.hello(HOST, "g")
    return router, sender


def accepted(router: OrderRouter, sender: FakeSender, order_id: str = "1") -> Job:
    assert router.order(HOST, order("nifty", order_id, qty=5, symbol="NSE:RELIANCE")) == []
    job = sender.take()
    ((_, update),) = router.on_result(JobResult(job, 200, {"id": "oa-" + order_id,
                                                           "client_order_id": job.cid,
                                                           "status": "new"}))
    assert update["event"] == "accepted"
    return job


def filled_order(job: Job, status: str = "filled") -> dict[str, Any]:
    return {"id": "oa-1", "client_order_id": job.cid, "status": status, "symbol": "NSE:RELIANCE",
            "side": "buy", "qty": 5.0, "filled_qty": 5.0 if status == "filled" else 0.0,
            "filled_avg_price": 99.5 if status == "filled" else None}


def test_polling_asks_about_working_orders_only_when_nothing_waits(
        polled: tuple[OrderRouter, FakeSender]) -> None:
    router, sender = polled
    job = accepted(router, sender)
    router.order(HOST, order("nifty", "2", qty=1, symbol="NSE:RELIANCE"))
    router.poll()
    assert sender.kinds() == ["submit"]  # an order waits: polling waits its turn
    sender.take()  # (its answer is still out: it has no broker id, so it is not polled)
    router.poll()
    (lookup,) = sender.queue
    assert (lookup.kind, lookup.client, lookup.cid) == ("lookup", POLL, job.cid)
    assert router.polls == 1
    router.poll()  # the last round has not come back: no second one piles up
    assert len(sender.queue) == 1


def test_a_polled_complete_status_is_the_fill_at_the_average_price(
        polled: tuple[OrderRouter, FakeSender], tmp_path: Path) -> None:
    router, sender = polled
    job = accepted(router, sender)
    router.poll()
    lookup = sender.take()
    assert router.on_result(JobResult(lookup, 200, filled_order(job, "new"))) == []
    router.poll()
    lookup = sender.take()
    ((client, update),) = router.on_result(JobResult(lookup, 200, filled_order(job)))
    assert client == HOST
    assert (update["event"], update["fill_qty"], update["fill_price"], update["position"]) == (
        "filled", 5.0, 99.5, 5.0)
    fill = [e for e in journal(tmp_path) if e["event"] == "filled"]
    assert [(e["fill_qty"], e["fill_price"]) for e in fill] == [(5.0, 99.5)]
    router.poll()
    assert sender.queue == []  # nothing working: nothing to ask


def test_an_accepted_cancel_is_confirmed_by_asking_at_once(
        polled: tuple[OrderRouter, FakeSender]) -> None:
    router, sender = polled
    job = accepted(router, sender)
    assert router.cancel(HOST, "nifty", "1") == []
    cancel = sender.take()
    assert cancel.kind == "cancel" and cancel.request == at.cancel("oa-1")
    assert router.on_result(JobResult(cancel, 204, None)) == []
    (lookup,) = sender.queue  # no stream will say so: the router asks
    assert lookup.kind == "lookup" and lookup.cid == job.cid
    sender.take()
    ((_, update),) = router.on_result(JobResult(lookup, 200, filled_order(job, "canceled")))
    assert update["event"] == "cancelled"


def test_a_time_in_force_openalgo_lacks_is_refused_before_the_broker(
        polled: tuple[OrderRouter, FakeSender]) -> None:
    router, sender = polled
    ((_, update),) = router.order(HOST, {**order("nifty", "1", symbol="NSE:RELIANCE"),
                                         "tif": "ioc"})
    assert update["event"] == "rejected"
    assert update["reason"] == ("time in force 'ioc' is not available on broker 'india' "
                                "(OpenAlgo orders are DAY orders); send tif='day'")
    assert sender.queue == []


def test_a_refused_api_key_is_remembered_until_the_broker_accepts_it_again(
        polled: tuple[OrderRouter, FakeSender], tmp_path: Path) -> None:
    router, sender = polled
    router.start()
    (orderbook,) = sender.queue
    sender.take()
    router.on_result(JobResult(orderbook, 403, {"message": "Invalid openalgo apikey"},
                               "403 Invalid openalgo apikey"))
    assert router.status()["auth_rejected"] == {"main": "403 Invalid openalgo apikey"}
    assert [e["event"] for e in journal(tmp_path)] == ["auth_rejected"]
    router.on_result(JobResult(orderbook, 200, []))
    assert router.status()["auth_rejected"] == {}


# -- the transport against the sim's dialect ----------------------------------------------
@pytest.fixture
def sim() -> Iterator[SimThread]:
    with SimThread(SimOptions(keys={"oa-k": ""}, rate=20.0, seed=4)) as running:
        yield running


@pytest.mark.e2e
@pytest.mark.timeout(60)
def test_the_transport_places_finds_and_cancels_at_the_sim(sim: SimThread) -> None:
    transport = OpenAlgoTransport(sim.url.replace("ws://", "http://"), OpenAlgoOrders("oa-k"))
    try:
        status, _, data = transport.call(at.submit("NSE:INFY", "buy", 2, 1.0, "day", CID))
        assert status == 200
        placed = json.loads(data)
        lookup = at.HttpRequest("GET", f"/v2/orders:by_client_order_id?client_order_id={CID}")
        status, _, data = transport.call(lookup)
        assert status == 200 and json.loads(data)["status"] == "new"
        status, _, data = transport.call(at.open_orders())
        assert [o["client_order_id"] for o in json.loads(data)] == [CID]
        assert transport.call(at.cancel(placed["id"]))[0] == 204
        status, _, data = transport.call(lookup)
        assert json.loads(data)["status"] == "canceled"
        status, _, data = transport.call(at.submit("NSE:INFY", "buy", 2, None, "day",
                                                   "t1.nifty.mkt"))
        market = at.HttpRequest("GET",
                                "/v2/orders:by_client_order_id?client_order_id=t1.nifty.mkt")
        done = wait_for(lambda: (o := json.loads(transport.call(market)[2]))["status"]
                        == "filled" and o, timeout=10, what="the market order filled")
        assert done["filled_qty"] == 2.0 and done["filled_avg_price"] > 0
        status, _, data = transport.call(at.HttpRequest("GET", "/v2/positions"))
        assert json.loads(data) == [{"symbol": "NSE:INFY", "qty": 2.0}]
        bad = OpenAlgoTransport(sim.url.replace("ws://", "http://"), OpenAlgoOrders("nope"))
        status, _, data = bad.call(at.open_orders())
        assert (status, json.loads(data)) == (403, {"message": "Invalid openalgo apikey"})
        bad.close()
    finally:
        transport.close()


def test_a_restarted_gateway_finds_its_open_orders_by_the_journals_broker_ids(
        polled: tuple[OrderRouter, FakeSender], tmp_path: Path) -> None:
    router, sender = polled
    job = accepted(router, sender)  # journalled: accepted, broker_order_id oa-1
    # A new gateway on the same journal: it knows the OpenAlgo id of the order...
    restarted = OrderRouter(OrderDesk(router.desk.broker, router.desk.strategies),
                            {"main": sender}, Journal(tmp_path / "orders.jsonl"),
                            {"g": (["nifty"], "strategy")}, lambda symbol: 100.0, polled=True)
    assert restarted.broker_ids == {job.cid: "oa-1"}
    orders = OpenAlgoOrders("k")
    for cid, order_id in restarted.broker_ids.items():
        orders.know(cid, order_id)
    # ...so OpenAlgo's orderbook, which has no client order ids, names it, and it is taken over.
    request = at.open_orders()
    call = orders.call_for(request)
    assert isinstance(call, Call)
    book = orders.answer(request, call, 200, {"status": "success", "data": {"orders": [
        {"orderid": "oa-1", "order_status": "open", "exchange": "NSE", "symbol": "RELIANCE",
         "action": "BUY", "quantity": 5, "price": 90, "pricetype": "LIMIT"},
        {"orderid": "by-hand", "order_status": "open", "exchange": "NSE", "symbol": "INFY",
         "action": "BUY", "quantity": 1, "price": 10, "pricetype": "LIMIT"}]}})
    restarted.start()
    opened = sender.queue.pop()
    assert opened.kind == "open_orders"
    restarted.on_result(JobResult(opened, 200, book.body))
    restarted.hello(HOST, "g")
    assert [(o["order_id"], o["symbol"], o["status"]) for o in restarted.status()["working"]] == [
        (job.cid, "NSE:RELIANCE", "working")]
    assert sender.kinds() == ["positions"]  # then the positionbook, compared with ours
    sender.take()
    restarted.poll()
    assert [(j.kind, j.cid) for j in sender.queue] == [("lookup", job.cid)]
