"""The registry alone: interest per (broker, symbol, mode), and what it asks each gateway."""

from __future__ import annotations

from typing import Any

from tradeops.proxy.registry import Registry, Request, Step


def up(*brokers: str) -> Registry:
    registry = Registry(brokers or ("sim",))
    for broker in brokers or ("sim",):
        assert registry.link_up(broker).requests == []
    return registry


def ok(request: Request, **overrides: dict[str, Any]) -> dict[str, Any]:
    """The gateway's reply accepting every symbol of `request` (unless overridden)."""
    results = {s: overrides.get(s, {"ok": True}) for s in request.symbols}
    return {"op": "reply", "id": request.id, "ok": True, "results": results}


def answers(step: Step) -> dict[tuple[Any, str], tuple[bool, bool]]:
    return {(a.client, a.symbol): (a.ok, a.queued) for a in step.answers}


def test_the_first_client_asks_the_gateway_later_ones_join_free() -> None:
    r = up()
    first = r.want("a", "sim", "AAPL", "trade")
    (request,) = first.requests
    assert request.message() == {"op": "subscribe", "id": 1, "symbols": ["AAPL"], "mode": "trade"}
    assert first.answers == []  # answered once the gateway says so
    second = r.want("b", "sim", "AAPL", "trade")
    assert second.requests == [] and second.answers == []  # waits for the same request
    done = r.replied("sim", request.id, ok(request))
    assert answers(done) == {("a", "AAPL"): (True, False), ("b", "AAPL"): (True, False)}
    third = r.want("c", "sim", "AAPL", "trade")
    assert third.requests == [] and answers(third) == {("c", "AAPL"): (True, False)}
    assert r.subscriptions() == {("sim", "AAPL", "trade"): 3}


def test_a_weaker_mode_costs_nothing_and_the_strongest_leaving_downgrades() -> None:
    r = up()
    (request,) = r.want("a", "sim", "AAPL", "quote").requests
    r.replied("sim", request.id, ok(request))
    weaker = r.want("b", "sim", "AAPL", "trade")
    assert weaker.requests == [] and answers(weaker) == {("b", "AAPL"): (True, False)}
    (down,) = r.want("a", "sim", "AAPL", None).requests
    assert (down.symbols, down.mode) == (("AAPL",), "trade")
    r.replied("sim", down.id, ok(down))
    assert r.held("sim") == {"AAPL": "trade"}
    (release,) = r.drop("b").requests
    assert release.message() == {"op": "unsubscribe", "id": release.id, "symbols": ["AAPL"]}
    r.replied("sim", release.id, ok(release))
    assert r.held("sim") == {} and r.subscriptions() == {}


def test_many_symbols_go_in_one_request_per_mode() -> None:
    r = up()
    for symbol in ("AAPL", "MSFT"):
        r.want("a", "sim", symbol, "trade")
    step = r.link_down("sim", "gateway restarting")
    assert answers(step) == {("a", "AAPL"): (True, True), ("a", "MSFT"): (True, True)}
    r.want("b", "sim", "SPY", "quote")
    requests = r.link_up("sim").requests
    assert sorted((q.symbols, q.mode) for q in requests) == [
        (("AAPL", "MSFT"), "trade"),
        (("SPY",), "quote"),
    ]


def test_a_refusal_rolls_the_asking_clients_back_and_nobody_else() -> None:
    r = up()
    (first,) = r.want("a", "sim", "AAPL", "trade").requests
    r.replied("sim", first.id, ok(first))
    (upgrade,) = r.want("b", "sim", "AAPL", "quote").requests
    refused = {"ok": False, "reason": "broker refused: 405 symbol limit exceeded"}
    step = r.replied("sim", upgrade.id, ok(upgrade, AAPL=refused))
    (answer,) = step.answers
    assert (answer.client, answer.ok, answer.reason) == ("b", False, refused["reason"])
    assert step.requests == []  # back to what the gateway holds: nothing to ask
    assert r.subscriptions() == {("sim", "AAPL", "trade"): 1}  # a keeps its trades
    assert dict(r.holders("sim", "AAPL")) == {"a": "trade"}


def test_a_refused_resubscribe_after_a_gateway_restart_is_lost_by_its_holders() -> None:
    r = up()
    (request,) = r.want("a", "sim", "AAPL", "trade").requests
    r.replied("sim", request.id, ok(request))
    r.link_down("sim", "gone")
    (again,) = r.link_up("sim").requests
    step = r.replied("sim", again.id, ok(again, AAPL={"ok": False, "reason": "full"}))
    assert [(x.client, x.symbol, x.reason) for x in step.lost] == [("a", "AAPL", "full")]
    assert r.subscriptions() == {}


def test_a_reply_from_before_a_restart_is_ignored() -> None:
    r = up()
    (request,) = r.want("a", "sim", "AAPL", "trade").requests
    r.link_down("sim", "gone")
    assert r.replied("sim", request.id, ok(request)) == Step()
    (again,) = r.link_up("sim").requests
    assert again.id != request.id and again.symbols == ("AAPL",)


def test_changes_while_a_request_is_in_flight_are_sent_when_it_answers() -> None:
    r = up()
    (request,) = r.want("a", "sim", "AAPL", "trade").requests
    assert r.want("a", "sim", "AAPL", None).requests == []  # in flight: wait for it
    step = r.replied("sim", request.id, ok(request))
    (release,) = step.requests
    assert release.mode is None and release.symbols == ("AAPL",)


def test_the_gateway_dropping_a_symbol_tells_every_holder() -> None:
    r = up()
    (request,) = r.want("a", "sim", "AAPL", "trade").requests
    r.replied("sim", request.id, ok(request))
    r.want("b", "sim", "AAPL", "trade")
    step = r.lost("sim", "AAPL", "broker refused: 405")
    assert sorted(x.client for x in step.lost) == ["a", "b"]
    assert r.holders("sim", "AAPL") == {}


def test_brokers_are_independent() -> None:
    r = up("one", "two")
    (a,) = r.want("x", "one", "AAPL", "trade").requests
    (b,) = r.want("x", "two", "AAPL", "trade").requests
    assert (a.broker, b.broker) == ("one", "two")
    r.replied("one", a.id, ok(a))
    r.link_down("two", "gone")
    assert r.held("one") == {"AAPL": "trade"} and r.held("two") == {}
    assert sorted(q.broker for q in r.drop("x").requests) == ["one"]  # two is down
