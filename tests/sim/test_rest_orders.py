"""The REST trading API and the trade-updates stream over real sockets, with urllib."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.waiting import wait_for
from tradeops.sim import SimThread

from .helpers import Http, WsClient

pytestmark = pytest.mark.e2e


def listen(sim: SimThread, connect: Callable[..., WsClient], key: str = "key",
           secret: str = "secret") -> WsClient:
    stream = connect(sim.url + "/stream")
    stream.send({"action": "authenticate", "data": {"key_id": key, "secret_key": secret}})
    # No greeting: the first frame is the answer to authenticate.
    assert stream.recv() == {"stream": "authorization",
                             "data": {"status": "authorized", "action": "authenticate"}}
    stream.send({"action": "listen", "data": {"streams": ["trade_updates"]}})
    assert stream.recv() == {"stream": "listening", "data": {"streams": ["trade_updates"]}}
    return stream


def events(stream: WsClient, count: int) -> list[dict[str, Any]]:
    out = []
    for _ in range(count):
        message = stream.recv()
        assert message["stream"] == "trade_updates"
        out.append(message["data"])
    return out


def order(**fields: Any) -> dict[str, Any]:
    return {"symbol": "AAPL", "qty": "1", "side": "buy", "type": "market",
            "time_in_force": "day", **fields}


def test_market_order_new_then_fill_with_position_and_account(
        sim: SimThread, http: Http, connect: Callable[..., WsClient]) -> None:
    stream = listen(sim, connect)
    status, body, _ = http.post("/v2/orders", order(qty=2, client_order_id="mine-1"))
    assert status == 200 and body["status"] == "accepted"
    assert body["client_order_id"] == "mine-1" and body["qty"] == "2"
    new, fill = events(stream, 2)
    assert (new["event"], new["order"]["status"]) == ("new", "new")
    assert (fill["event"], fill["order"]["status"], fill["qty"]) == ("fill", "filled", "2")
    assert fill["position_qty"] == "2" and fill["order"]["id"] == body["id"]
    price = float(fill["price"])
    assert float(fill["order"]["filled_avg_price"]) == price
    _, fetched, _ = http.get(f"/v2/orders/{body['id']}")
    assert fetched["status"] == "filled" and fetched["filled_qty"] == "2"
    _, by_client, _ = http.get("/v2/orders:by_client_order_id?client_order_id=mine-1")
    assert by_client["id"] == body["id"]
    _, positions, _ = http.get("/v2/positions")
    assert [(p["symbol"], p["qty"], p["side"]) for p in positions] == [("AAPL", "2", "long")]
    assert float(positions[0]["avg_entry_price"]) == price
    assert http.get("/v2/positions/AAPL")[1]["qty"] == "2"
    assert http.get("/v2/positions/MSFT")[0] == 404
    _, account, _ = http.get("/v2/account")
    assert float(account["cash"]) == pytest.approx(100_000 - 2 * price)
    assert account["status"] == "ACTIVE"


def test_limit_order_new_then_canceled(sim: SimThread, http: Http,
                                       connect: Callable[..., WsClient]) -> None:
    stream = listen(sim, connect)
    _, body, _ = http.post("/v2/orders", order(type="limit", limit_price="1.00"))
    (new,) = events(stream, 1)
    assert new["event"] == "new"
    assert [o["id"] for o in http.get("/v2/orders")[1]] == [body["id"]]
    status, empty, _ = http.delete(f"/v2/orders/{body['id']}")
    assert (status, empty) == (204, None)
    (canceled,) = events(stream, 1)
    assert canceled["event"] == "canceled" and canceled["order"]["status"] == "canceled"
    assert http.get("/v2/orders")[1] == []
    assert [o["status"] for o in http.get("/v2/orders?status=closed")[1]] == ["canceled"]
    status, error, _ = http.delete(f"/v2/orders/{body['id']}")
    assert status == 422 and "not cancelable" in error["message"]
    assert http.delete("/v2/orders/no-such-order")[0] == 404


def test_resting_limit_fills_when_the_price_crosses_it(sim: SimThread, http: Http,
                                                      connect: Callable[..., WsClient]) -> None:
    stream = listen(sim, connect)
    http.post("/admin/price", {"symbol": "AAPL", "price": 100.0}, auth=False)
    _, _body, _ = http.post("/v2/orders", order(type="limit", limit_price="95", qty="100"))
    assert events(stream, 1)[0]["event"] == "new"
    assert "AAPL" in http.admin("status")["active_symbols"]  # a working order keeps it ticking
    http.post("/admin/price", {"symbol": "AAPL", "price": 90.0}, auth=False)
    (fill,) = events(stream, 1)
    assert (fill["event"], fill["price"], fill["qty"]) == ("fill", "95", "100")


def test_big_market_order_fills_in_parts(sim: SimThread, http: Http,
                                         connect: Callable[..., WsClient]) -> None:
    stream = listen(sim, connect)
    http.post("/v2/orders", order(qty="2500"))
    got = events(stream, 2)
    while got[-1]["event"] != "fill":
        got += events(stream, 1)
    assert got[0]["event"] == "new" and got[1]["event"] == "partial_fill"
    assert {e["event"] for e in got[1:-1]} == {"partial_fill"}
    assert sum(float(e["qty"]) for e in got[1:]) == 2500
    assert got[-1]["position_qty"] == "2500"


def test_rejections_unknown_symbol_bad_qty_and_the_reject_fault(
        start_sim: Callable[..., SimThread], connect: Callable[..., WsClient]) -> None:
    sim = start_sim(symbols=("AAPL", "MSFT"))
    http = Http(sim.http_url)
    stream = listen(sim, connect)
    status, error, _ = http.post("/v2/orders", order(symbol="ZZZZ", client_order_id="z"))
    assert status == 422 and error == {"code": 42210000, "message": 'asset "ZZZZ" not found'}
    for qty, message in ((0, "qty must be > 0"), ("-1", "qty must be > 0"), ("x", "invalid")):
        status, error, _ = http.post("/v2/orders", order(qty=qty))
        assert status == 422 and message in error["message"]
    requests = http.admin("orders")["requests"]
    assert [(r["status"], r.get("order_id")) for r in requests] == [(422, None)] * 4
    assert requests[0]["client_order_id"] == "z" and "not found" in requests[0]["reason"]
    assert http.admin("orders")["updates"] == []
    http.post("/admin/faults", {"reject_orders": True}, auth=False)
    status, body, _ = http.post("/v2/orders", order())
    assert status == 200
    (rejected,) = events(stream, 1)
    assert rejected["event"] == "rejected" and rejected["order"]["id"] == body["id"]
    assert rejected["order"]["status"] == "rejected"


def test_crypto_positions_by_symbol(sim: SimThread, http: Http) -> None:
    status, _, _ = http.post("/v2/orders", order(symbol="BTC/USD", qty="0.5",
                                                 time_in_force="gtc"))
    assert status == 200
    for path in ("/v2/positions/BTCUSD", "/v2/positions/BTC%2FUSD"):
        status, position, _ = http.get(path)
        assert status == 200, path
        assert (position["symbol"], position["qty"], position["asset_class"]) == (
            "BTC/USD", "0.5", "crypto")


def test_cancel_all_clock_and_listing(sim: SimThread, http: Http) -> None:
    ids = {http.post("/v2/orders", order(type="limit", limit_price=str(p)))[1]["id"]
           for p in (1, 2, 3)}
    status, canceled, _ = http.delete("/v2/orders")
    assert status == 207 and {c["id"] for c in canceled} == ids
    assert {c["status"] for c in canceled} == {200}
    assert len(http.get("/v2/orders?status=all&limit=2")[1]) == 2
    _, clock, _ = http.get("/v2/clock")
    assert clock["is_open"] is True and {"timestamp", "next_open", "next_close"} <= set(clock)
    assert http.get("/v2/nothing-here")[0] == 404


def test_rest_authentication(start_sim: Callable[..., SimThread]) -> None:
    sim = start_sim(keys={"k": "s"})
    assert Http(sim.http_url, "k", "s").get("/v2/account")[0] == 200
    for http in (Http(sim.http_url, "k", "wrong"), Http(sim.http_url, "who", "s")):
        status, body, _ = http.get("/v2/account")
        assert status == 401 and body["code"] == 40110000
    status, _, _ = Http(sim.http_url).get("/v2/orders", auth=False)
    assert status == 401
    status, _, _ = Http(sim.http_url, "k", "wrong").post("/v2/orders", order())
    assert status == 401
    assert Http(sim.http_url).admin("orders")["requests"][0]["status"] == 401


def test_order_rate_limit_answers_429_per_key(start_sim: Callable[..., SimThread]) -> None:
    sim = start_sim(order_rate_limit=(3, 60.0))
    http, other = Http(sim.http_url), Http(sim.http_url, key="other")
    remaining = [http.post("/v2/orders", order())[2]["X-RateLimit-Remaining"] for _ in range(3)]
    assert remaining == ["2", "1", "0"]
    status, body, headers = http.post("/v2/orders", order())
    assert status == 429 and body["message"] == "rate limit exceeded"
    assert headers["X-RateLimit-Remaining"] == "0" and int(headers["Retry-After"]) >= 1
    assert http.delete("/v2/orders")[0] == 429  # cancels count as order requests
    assert http.get("/v2/orders")[0] == 200  # reads do not
    assert other.post("/v2/orders", order())[0] == 200  # the limit is per key
    statuses = [r["status"] for r in http.admin("orders")["requests"]]
    assert statuses == [200, 200, 200, 429, 429, 200]


def test_fills_reach_only_the_streams_of_the_owning_key(
        sim: SimThread, connect: Callable[..., WsClient]) -> None:
    mine = listen(sim, connect)
    theirs = listen(sim, connect, key="other")
    Http(sim.http_url, key="other").post("/v2/orders", order())
    assert [e["event"] for e in events(theirs, 2)] == ["new", "fill"]
    Http(sim.http_url).post("/v2/orders", order(symbol="MSFT"))
    first = events(mine, 1)[0]
    assert first["order"]["symbol"] == "MSFT"  # nothing of the other key's order came first
    wait_for(lambda: len(Http(sim.http_url).admin("orders")["updates"]) == 4)
