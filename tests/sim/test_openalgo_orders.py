"""The sim's OpenAlgo REST order API, driven by the unmodified `openalgo` Python client: the
same order book as the Alpaca dialect's, OpenAlgo's answers and error codes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from openalgo import api

from tests.waiting import wait_for
from tradeops.sim import SimThread

from .helpers import Http

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(60)]
KEY = "oa-sim-key"


def client(sim: SimThread, key: str = KEY) -> Any:
    return api(api_key=key, host=sim.url.replace("ws://", "http://"), timeout=10.0)


def test_the_openalgo_client_places_finds_and_cancels(
        start_sim: Callable[..., SimThread]) -> None:
    sim = start_sim(keys={KEY: ""}, rate=20.0, seed=2)
    oa = client(sim)
    resting = oa.placeorder(strategy="test", symbol="INFY", action="BUY", exchange="NSE",
                            price_type="LIMIT", product="MIS", quantity=3, price="1")
    assert resting["status"] == "success"
    status = oa.orderstatus(order_id=resting["orderid"], strategy="test")
    assert status["status"] == "success"
    data = status["data"]
    assert (data["order_status"], data["action"], data["exchange"], data["symbol"],
            data["quantity"], data["price"], data["pricetype"], data["product"],
            data["average_price"]) == ("open", "BUY", "NSE", "INFY", 3, 1.0, "LIMIT", "MIS", 0.0)
    book = oa.orderbook()
    assert [o["orderid"] for o in book["data"]["orders"]] == [resting["orderid"]]
    assert book["data"]["statistics"]["total_open_orders"] == 1
    assert oa.cancelorder(order_id=resting["orderid"], strategy="test") == {
        "status": "success", "orderid": resting["orderid"]}
    assert oa.orderstatus(order_id=resting["orderid"],
                          strategy="test")["data"]["order_status"] == "cancelled"

    market = oa.placeorder(strategy="test", symbol="INFY", action="SELL", exchange="NSE",
                           price_type="MARKET", product="NRML", quantity=2)
    done = wait_for(lambda: (d := oa.orderstatus(order_id=market["orderid"],
                                                 strategy="test")["data"])
                    ["order_status"] == "complete" and d, timeout=10, what="a market fill")
    assert done["average_price"] > 0
    positions = oa.positionbook()
    assert [(p["exchange"], p["symbol"], p["product"], p["quantity"])
            for p in positions["data"]] == [("NSE", "INFY", "NRML", -2)]
    # The same book the Alpaca dialect reads: the order is there under the same key.
    listed = {o["id"]: o["status"] for o in
              Http(sim.http_url, KEY, "").get("/v2/orders?status=all")[1]}
    assert listed == {resting["orderid"]: "canceled", market["orderid"]: "filled"}

    again = oa.placeorder(strategy="test", symbol="INFY", action="BUY", exchange="NSE",
                          price_type="LIMIT", product="MIS", quantity=1, price="1")
    cancelled = oa.cancelallorder(strategy="test")
    assert cancelled["status"] == "success"
    assert cancelled["canceled_orders"] == [again["orderid"]]


def test_openalgo_errors_and_their_codes(start_sim: Callable[..., SimThread]) -> None:
    sim = start_sim(keys={KEY: ""}, rate=20.0, seed=2)
    raw = Http(sim.http_url, "", "")

    def post(path: str, body: dict[str, Any]) -> tuple[int, Any]:
        status, answer, _ = raw.post(path, body)
        return status, answer

    order = {"apikey": KEY, "strategy": "t", "exchange": "NSE", "symbol": "INFY",
             "action": "BUY", "quantity": "1"}
    assert post("/api/v1/placeorder", {**order, "apikey": "wrong"}) == (
        403, {"status": "error", "message": "Invalid openalgo apikey"})
    status, body = post("/api/v1/placeorder", {**order, "quantity": "1.5"})
    assert status == 400 and "Fractional quantity" in body["message"]
    status, body = post("/api/v1/placeorder", {**order, "exchange": "NYSE"})
    assert status == 400 and "exchange" in body["message"]
    status, body = post("/api/v1/placeorder", {**order, "pricetype": "SL-M"})
    assert status == 400 and "SL-M" in body["message"]
    status, body = post("/api/v1/orderstatus", {"apikey": KEY, "strategy": "t"})
    assert status == 400 and "orderid" in body["message"] and body["status"] == "error"
    assert post("/api/v1/orderstatus", {"apikey": KEY, "strategy": "t",
                                             "orderid": "nope"}) == (
        404, {"status": "error", "message": "Order nope not found"})
    status, body = post("/api/v1/cancelorder", {"apikey": KEY, "strategy": "t",
                                                     "orderid": "nope"})
    assert status == 404 and body["status"] == "error"
