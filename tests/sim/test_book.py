"""Order validation and matching against quotes: pure, with hand-made quotes."""

from __future__ import annotations

from typing import Any

import pytest

from tradeops.sim.book import Book, OrderNotFound
from tradeops.sim.market import Quote
from tradeops.sim.orders import OrderRequest, OrderRequestError, fmt, parse_order_request

NS = 1_700_000_000_000_000_000


def request(**fields: Any) -> OrderRequest:
    body = {"symbol": "AAPL", "qty": 1, "side": "buy", "type": "market",
            "time_in_force": "day", **fields}
    return parse_order_request(body, lambda symbol: symbol != "DELISTED")


def quote(bid: float, ask: float, size: float = 100.0, t: int = 0) -> Quote:
    return Quote("AAPL", bid, size, ask, size, NS + t)


def test_a_valid_request_accepts_strings_and_numbers() -> None:
    parsed = request(qty="2.5", type="limit", limit_price="101.25", client_order_id="abc")
    assert (parsed.qty, parsed.limit_price, parsed.client_order_id) == (2.5, 101.25, "abc")


@pytest.mark.parametrize(("fields", "status", "message"), [
    ({"qty": 0}, 422, "qty must be > 0"),
    ({"qty": -3}, 422, "qty must be > 0"),
    ({"qty": "lots"}, 422, "invalid qty"),
    ({"qty": None}, 422, "qty is required"),
    ({"qty": True}, 422, "invalid qty"),
    ({"symbol": "DELISTED"}, 422, 'asset "DELISTED" not found'),
    ({"symbol": "aapl!"}, 422, "not found"),
    ({"side": "hold"}, 422, "invalid side"),
    ({"type": "stop"}, 422, "market and limit"),
    ({"time_in_force": "forever"}, 422, "invalid time_in_force"),
    ({"type": "limit"}, 422, "limit_price is required"),
    ({"limit_price": 10}, 422, "must not be set for market"),
    ({"notional": 100}, 422, "notional"),
    ({"client_order_id": "x" * 129}, 422, "client_order_id"),
])
def test_bad_requests_are_refused_with_alpaca_errors(fields: dict[str, Any], status: int,
                                                     message: str) -> None:
    with pytest.raises(OrderRequestError) as caught:
        request(**fields)
    assert caught.value.status == status
    assert message in caught.value.message
    assert set(caught.value.body()) == {"code", "message"}


def test_market_order_fills_at_the_touch_and_moves_the_position() -> None:
    book = Book(seed=1, cash=1000.0)
    _order, accepted, updates = book.submit("k", request(qty=2), quote(99.0, 100.0), NS)
    assert accepted["status"] == "accepted"
    assert [u.event for u in updates] == ["new", "fill"]
    fill = updates[1]
    assert (fill.price, fill.qty, fill.position_qty) == (100.0, 2.0, 2.0)
    assert fill.order["status"] == "filled" and fill.order["filled_avg_price"] == "100"
    assert book.accounts["k"].cash == 800.0
    _, _, sells = book.submit("k", request(qty=3, side="sell"), quote(101.0, 102.0), NS)
    assert sells[-1].position_qty == -1.0  # flipped short: shorting is allowed
    assert book.accounts["k"].positions["AAPL"].avg_price == 101.0
    assert book.working_symbols() == set()


def test_what_the_touch_cannot_fill_keeps_working_and_fills_on_later_quotes() -> None:
    book = Book(seed=1, cash=0.0)
    order, _, updates = book.submit("k", request(qty=250), quote(99.0, 100.0, size=100), NS)
    assert [u.event for u in updates] == ["new", "partial_fill"]
    assert book.working_symbols() == {"AAPL"}
    more = book.on_quote(quote(99.5, 100.5, size=100, t=1))
    last = book.on_quote(quote(99.5, 101.0, size=100, t=2))
    assert [u.event for u in more + last] == ["partial_fill", "fill"]
    assert order.filled_qty == 250 and order.status == "filled"
    assert fmt(order.filled_notional / order.filled_qty) == "100.4"
    assert book.working_symbols() == set()


def test_limit_order_rests_then_fills_at_its_price_when_the_walk_crosses() -> None:
    book = Book(seed=1, cash=0.0)
    order, _, updates = book.submit("k", request(type="limit", limit_price=95.0),
                                    quote(99.0, 100.0), NS)
    assert [u.event for u in updates] == ["new"] and order.status == "new"
    assert book.on_quote(quote(95.5, 95.6)) == []
    (fill,) = book.on_quote(quote(94.0, 94.5))
    assert (fill.event, fill.price) == ("fill", 95.0)


def test_marketable_limit_fills_at_the_touch_and_sells_hit_the_bid() -> None:
    book = Book(seed=1, cash=0.0)
    _, _, buys = book.submit("k", request(type="limit", limit_price=105.0), quote(99.0, 100.0),
                             NS)
    _, _, sells = book.submit("k", request(side="sell", type="limit", limit_price=90.0),
                              quote(99.0, 100.0), NS)
    assert (buys[-1].price, sells[-1].price) == (100.0, 99.0)


def test_ioc_and_fok_cancel_what_the_touch_cannot_fill() -> None:
    book = Book(seed=1, cash=0.0)
    _, _, ioc = book.submit("k", request(qty=150, time_in_force="ioc"), quote(99, 100), NS)
    assert [(u.event, u.qty) for u in ioc] == [("new", None), ("partial_fill", 100.0),
                                              ("canceled", None)]
    _, _, fok = book.submit("k", request(qty=150, time_in_force="fok"), quote(99, 100), NS)
    assert [u.event for u in fok] == ["new", "canceled"]
    _, _, closed = book.submit("k", request(time_in_force="ioc"), None, NS)
    assert [u.event for u in closed] == ["new", "canceled"]  # no market: nothing to meet


def test_orders_rest_while_there_is_no_market() -> None:
    book = Book(seed=1, cash=0.0)
    order, _, updates = book.submit("k", request(), None, NS)
    assert [u.event for u in updates] == ["new"] and book.working_symbols() == {"AAPL"}
    assert [u.event for u in book.on_quote(quote(99, 100))] == ["fill"]
    assert order.status == "filled"


def test_cancel_cancel_all_and_their_errors() -> None:
    book = Book(seed=1, cash=0.0)
    first, _, _ = book.submit("k", request(type="limit", limit_price=1.0), quote(99, 100), NS)
    second, _, _ = book.submit("k", request(type="limit", limit_price=2.0), quote(99, 100), NS)
    other, _, _ = book.submit("other", request(type="limit", limit_price=3.0), quote(99, 100),
                              NS)
    (update,) = book.cancel("k", first.id, NS + 5)
    assert update.event == "canceled" and update.order["canceled_at"] is not None
    with pytest.raises(OrderRequestError, match="not cancelable") as caught:
        book.cancel("k", first.id, NS)
    assert caught.value.status == 422
    with pytest.raises(OrderNotFound):
        book.cancel("k", other.id, NS)  # another key's order is not yours to see
    canceled, updates = book.cancel_all("k", NS)
    assert canceled == [second] and [u.event for u in updates] == ["canceled"]
    assert other.working and book.working_symbols() == {"AAPL"}


def test_client_order_ids_are_unique_per_account_and_ids_follow_the_seed() -> None:
    book = Book(seed=3, cash=0.0)
    order, _, _ = book.submit("k", request(client_order_id="mine"), None, NS)
    assert book.by_client_id("k", "mine") is order
    with pytest.raises(OrderRequestError, match="unique"):
        book.submit("k", request(client_order_id="mine"), None, NS)
    book.submit("other", request(client_order_id="mine"), None, NS)  # another account: fine
    again, _, _ = Book(seed=3, cash=0.0).submit("k", request(client_order_id="mine"), None, NS)
    assert again.id == order.id


def test_reject_fault_rejects_after_accepting() -> None:
    book = Book(seed=1, cash=0.0)
    order, accepted, updates = book.submit("k", request(), quote(99, 100), NS, reject=True)
    assert accepted["status"] == "accepted"
    assert [u.event for u in updates] == ["rejected"] and order.status == "rejected"
    assert updates[0].order["failed_at"] is not None


def test_update_json_has_what_trade_updates_carry() -> None:
    book = Book(seed=1, cash=0.0)
    _, _, updates = book.submit("k", request(), quote(99, 100), NS)
    new, fill = (u.to_json() for u in updates)
    assert set(new) == {"event", "order", "timestamp"}
    assert {"execution_id", "price", "qty", "position_qty"} <= set(fill)
    assert (fill["price"], fill["qty"], fill["position_qty"]) == ("100", "1", "1")
