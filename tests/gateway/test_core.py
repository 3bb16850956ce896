"""The gateway's decisions: replies per symbol, leases, broker acks and refusals, outages."""

from __future__ import annotations

from tradeops.gateway.core import Actions, GatewayCore
from tradeops.gateway.pool import Pool, Transition


def core(per_conn: int = 5, conns: int = 3) -> GatewayCore:
    return GatewayCore(Pool("sim", per_conn, conns))


def ack_all(gw: GatewayCore, actions: Actions) -> list[Actions]:
    """Play a broker that accepts every change, including the ones that follow."""
    out, queue = [], list(actions.sends)
    for conn in actions.open:
        gw.upstream_ready(conn)
    while queue:
        change = queue.pop(0)
        result = gw.upstream_ack(change.connection)
        out.append(result)
        queue += result.sends
    return out


def replies(results: list[Actions]) -> list[dict[str, object]]:
    return [r for a in results for _, r in a.replies]


def test_subscribe_is_answered_when_the_broker_acknowledges() -> None:
    gw = core()
    first = gw.subscribe("host", 1, ["AAPL", "MSFT"], "quote")
    assert first.replies == [] and first.open == [0]
    ready = gw.upstream_ready(0)
    (change,) = ready.sends
    assert set(change.transitions) == {
        Transition("AAPL", None, "quote"),
        Transition("MSFT", None, "quote"),
    }
    done = gw.upstream_ack(0)
    assert done.replies == [
        (
            "host",
            {
                "op": "reply",
                "id": 1,
                "ok": True,
                "results": {"AAPL": {"ok": True}, "MSFT": {"ok": True}},
            },
        )
    ]


def test_a_weaker_request_under_a_flowing_mode_is_answered_at_once() -> None:
    gw = core()
    ack_all(gw, gw.subscribe("host", 1, ["AAPL"], "quote"))
    second = gw.subscribe("proxy", 7, ["AAPL"], "trade")
    assert second.sends == []
    assert second.replies[0][1]["ok"] is True


def test_over_capacity_is_refused_per_symbol_with_the_reason() -> None:
    gw = core(per_conn=2, conns=1)
    actions = gw.subscribe("host", 1, ["A", "B", "C"], "trade")
    gw.upstream_ready(0)
    (reply,) = replies(ack_all(gw, Actions(sends=gw.upstream_ready(0).sends)))
    assert reply["ok"] is False
    results = reply["results"]
    assert isinstance(results, dict)
    assert results["A"] == {"ok": True}
    assert "broker 'sim' is full" in results["C"]["reason"]
    assert gw.interest.symbols_of("host") == {"A": "trade", "B": "trade"}
    assert actions.open == [0]


def test_broker_refusal_rolls_back_and_says_why() -> None:
    gw = core()
    gw.subscribe("host", 1, ["AAPL"], "trade")
    gw.upstream_ready(0)
    result = gw.upstream_refused(0, 405, "symbol limit exceeded")
    (reply,) = [r for _, r in result.replies]
    assert reply["ok"] is False
    assert reply["results"] == {
        "AAPL": {"ok": False, "reason": "broker refused: 405 symbol limit exceeded"}
    }
    assert gw.interest.wanted() == {}
    assert gw.pool.target(0) == {}


def test_disconnect_releases_the_whole_lease() -> None:
    gw = core()
    ack_all(gw, gw.subscribe("host", 1, ["AAPL", "MSFT"], "quote"))
    ack_all(gw, gw.subscribe("proxy", 1, ["MSFT"], "trade"))
    gone = gw.client_gone("host")
    (change,) = gone.sends
    assert set(change.transitions) == {
        Transition("MSFT", "quote", "trade"),
        Transition("AAPL", "quote", None),
    }
    assert gw.interest.symbols_of("host") == {}
    assert gw.interest.symbols_of("proxy") == {"MSFT": "trade"}


def test_requests_waiting_on_a_down_connection_are_answered_queued() -> None:
    gw = core()
    gw.subscribe("host", 1, ["AAPL"], "trade")
    down = gw.upstream_down(0, "auth: 402 auth failed")
    (reply,) = [r for _, r in down.replies]
    result = reply["results"]["AAPL"]  # type: ignore[index]
    assert result["ok"] is True and result["queued"] is True
    assert "402 auth failed" in result["reason"]
    # When it comes back, the kept interest is subscribed.
    (change,) = gw.upstream_ready(0).sends
    assert change.transitions == (Transition("AAPL", None, "trade"),)


def test_unsubscribe_replies_at_once_and_the_last_one_leaving_unsubscribes() -> None:
    gw = core()
    ack_all(gw, gw.subscribe("a", 1, ["X"], "trade"))
    ack_all(gw, gw.subscribe("b", 1, ["X"], "trade"))
    first = gw.unsubscribe("a", 2, ["X"])
    assert first.sends == [] and first.replies[0][1]["ok"] is True
    last = gw.unsubscribe("b", 2, ["X"])
    (change,) = last.sends
    assert change.transitions == (Transition("X", "trade", None),)


def test_a_failed_resubscribe_tells_every_holder() -> None:
    gw = core()
    ack_all(gw, gw.subscribe("a", 1, ["X"], "trade"))
    ack_all(gw, gw.subscribe("b", 1, ["X"], "trade"))
    gw.upstream_down(0, "dropped")
    gw.upstream_ready(0)  # resubscribes X
    lost = gw.upstream_refused(0, 405, "symbol limit exceeded")
    assert sorted(c for c, r in lost.replies if r["kind"] == "lost") == ["a", "b"]
    assert gw.interest.wanted() == {}


def test_a_refused_downgrade_keeps_the_stronger_mode_and_the_remaining_holder() -> None:
    gw = core()
    ack_all(gw, gw.subscribe("strong", 1, ["X"], "quote"))
    ack_all(gw, gw.subscribe("weak", 1, ["X"], "trade"))
    (change,) = gw.client_gone("strong").sends
    assert change.transitions == (Transition("X", "quote", "trade"),)
    refused = gw.upstream_refused(0, 400, "invalid syntax", now=100.0)
    assert refused.replies == []  # nobody is told they lost anything
    assert gw.interest.symbols_of("weak") == {"X": "trade"}
    assert gw.pool.confirmed(0) == {"X": "quote"} and gw.pool.target(0) == {"X": "quote"}
    assert "kept at quote" in gw.retrying["X"]
    assert gw.tick(100.5).sends == []  # not yet
    (retry,) = gw.tick(101.0).sends  # the downgrade is asked for again
    assert retry.transitions == (Transition("X", "quote", "trade"),)
    gw.upstream_ack(0)
    assert gw.pool.confirmed(0) == {"X": "trade"} and gw.retrying == {}


def test_a_transient_refusal_is_retried_with_backoff_and_the_symbol_flows() -> None:
    gw = core()
    gw.subscribe("host", 1, ["X"], "trade")
    gw.upstream_ready(0)
    first = gw.upstream_refused(0, 429, "too frequent", transient=True, now=10.0)
    (reply,) = [r for _, r in first.replies]
    result = reply["results"]["X"]  # type: ignore[index]
    assert result["ok"] is True and result["queued"] is True and "429" in result["reason"]
    assert gw.interest.symbols_of("host") == {"X": "trade"}  # the interest is kept
    (again,) = gw.tick(11.0).sends
    assert again.transitions == (Transition("X", None, "trade"),)
    gw.upstream_refused(0, 429, "too frequent", transient=True, now=11.0)
    assert gw.tick(12.5).sends == []  # the second wait is twice the first
    (third,) = gw.tick(13.0).sends
    assert third.transitions == (Transition("X", None, "trade"),)
    gw.upstream_ack(0)
    assert gw.pool.confirmed(0) == {"X": "trade"}
    assert gw.retrying == {} and gw.refused == {}


def test_a_final_refusal_is_recorded_per_symbol_and_cleared_when_taken() -> None:
    gw = core()
    gw.subscribe("host", 1, ["X"], "trade")
    gw.upstream_ready(0)
    gw.upstream_refused(0, 409, "insufficient subscription")
    assert gw.refused == {"X": "broker refused: 409 insufficient subscription"}
    gw.subscribe("host", 2, ["X"], "trade")
    gw.upstream_ack(0)
    assert gw.refused == {}


def test_a_refused_upgrade_leaves_the_weaker_holder_its_mode() -> None:
    gw = core()
    ack_all(gw, gw.subscribe("a", 1, ["X"], "trade"))
    upgrade = gw.subscribe("b", 1, ["X"], "quote")
    (change,) = upgrade.sends
    assert change.transitions == (Transition("X", "trade", "quote"),)
    refused = gw.upstream_refused(0, 409, "insufficient subscription")
    (reply,) = [r for c, r in refused.replies if c == "b"]
    assert reply["ok"] is False
    assert gw.interest.symbols_of("a") == {"X": "trade"}
    assert gw.pool.confirmed(0) == {"X": "trade"} and gw.pool.target(0) == {"X": "trade"}
