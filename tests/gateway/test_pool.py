"""The pool: placement across connections, capacity, upgrade, downgrade, rollback, duplicates."""

from __future__ import annotations

from tradeops.gateway.pool import Pool, PoolChange, Transition
from tradeops.protocol.interest import Interest


def symbols(n: int, start: int = 0) -> list[str]:
    return [f"S{i:03d}" for i in range(start, start + n)]


def settle(pool: Pool) -> list[PoolChange]:
    """Play the broker: send and confirm every change until nothing is left."""
    sent = []
    for conn in range(pool.connections):
        while (change := pool.begin(conn)) is not None:
            sent.append(change)
            pool.confirm(conn)
    return sent


def test_twelve_symbols_fill_three_connections_of_five() -> None:
    pool = Pool("sim", 5, 3)
    plan = pool.apply({s: "trade" for s in symbols(12)})
    assert plan.refused == ()
    assert plan.opened == (0, 1, 2)
    assert plan.dirty == (0, 1, 2)
    sent = settle(pool)
    assert [len(c.transitions) for c in sent] == [5, 5, 2]
    assert pool.occupancy() == [5, 5, 2]


def test_a_thirteenth_symbol_is_one_incremental_change_on_a_connection_with_room() -> None:
    pool = Pool("sim", 5, 3)
    pool.apply({s: "trade" for s in symbols(12)})
    settle(pool)
    plan = pool.apply({"NEW": "trade"})
    assert plan.opened == () and plan.dirty == (2,)
    (change,) = settle(pool)
    assert change == PoolChange(2, (Transition("NEW", None, "trade"),))


def test_over_capacity_is_refused_with_a_reason() -> None:
    pool = Pool("sim", 5, 3)
    plan = pool.apply({s: "trade" for s in symbols(16)})
    assert [r.symbol for r in plan.refused] == ["S015"]
    reason = plan.refused[0].reason
    assert "broker 'sim' is full" in reason and "15 symbols on 3" in reason
    assert "5 per connection × 3" in reason and "S015 refused" in reason
    assert pool.occupancy() == [5, 5, 5]


def test_duplicate_and_empty_requests_never_reach_the_broker() -> None:
    pool = Pool("sim", 5, 1)
    pool.apply({"AAPL": "trade"})
    settle(pool)
    assert pool.apply({"AAPL": "trade"}).dirty == ()
    assert pool.apply({}).dirty == ()
    assert pool.apply({"MSFT": None}).dirty == ()  # removing what nobody has
    assert pool.begin(0) is None


def test_a_change_cancelled_before_it_is_sent_is_never_sent() -> None:
    pool = Pool("sim", 5, 1)
    pool.apply({"AAPL": "trade"})
    pool.apply({"AAPL": None})
    assert pool.begin(0) is None
    assert pool.occupancy() == [0]


def test_upgrade_and_downgrade_stay_on_the_same_connection() -> None:
    pool = Pool("sim", 5, 2)
    pool.apply({"AAPL": "trade"})
    settle(pool)
    pool.apply({"AAPL": "quote"})
    (up,) = settle(pool)
    assert up.transitions == (Transition("AAPL", "trade", "quote"),)
    pool.apply({"AAPL": "trade"})
    (down,) = settle(pool)
    assert down.transitions == (Transition("AAPL", "quote", "trade"),)
    assert pool.mode_of("AAPL") == "trade"


def test_one_change_in_flight_per_connection_then_the_exact_remainder() -> None:
    pool = Pool("sim", 10, 1)
    pool.apply({"A": "trade"})
    first = pool.begin(0)
    assert first is not None
    pool.apply({"B": "trade", "A": "quote"})
    assert pool.begin(0) is None  # wait for the broker's ack
    pool.confirm(0)
    second = pool.begin(0)
    assert second is not None
    assert set(second.transitions) == {
        Transition("A", "trade", "quote"),
        Transition("B", None, "trade"),
    }


def test_failure_rolls_back_to_the_confirmed_state() -> None:
    pool = Pool("sim", 10, 1)
    pool.apply({"A": "trade"})
    settle(pool)
    pool.apply({"A": "quote", "B": "trade"})
    assert pool.begin(0) is not None
    undone = pool.fail(0)
    assert set(undone) == {Transition("A", "trade", "quote"), Transition("B", None, "trade")}
    assert pool.target(0) == {"A": "trade"}
    assert pool.occupancy() == [1]  # B's slot is free again
    assert pool.begin(0) is None


def test_removal_holds_its_slot_until_the_broker_confirms() -> None:
    pool = Pool("sim", 1, 1)
    pool.apply({"A": "trade"})
    settle(pool)
    pool.apply({"A": None})
    plan = pool.apply({"B": "trade"})
    assert [r.symbol for r in plan.refused] == ["B"]  # A still occupies the only slot
    settle(pool)
    assert pool.apply({"B": "trade"}).refused == ()


def test_reset_resubscribes_exactly_the_current_set() -> None:
    pool = Pool("sim", 10, 1)
    pool.apply({"A": "trade", "B": "quote", "C": "trade"})
    settle(pool)
    pool.apply({"C": None})
    pool.begin(0)  # in flight when the connection drops
    pool.reset(0)
    change = pool.begin(0)
    assert change is not None
    assert set(change.transitions) == {
        Transition("A", None, "trade"),
        Transition("B", None, "quote"),
    }


def test_modes_nest_through_interest_refcounts() -> None:
    interest, pool = Interest(), Pool("sim", 10, 1)
    assert interest.add("host-1", "AAPL", "quote") == {"AAPL": "quote"}
    pool.apply({"AAPL": "quote"})
    settle(pool)
    # A weaker request under a stronger one makes no broker call.
    assert interest.add("proxy", "AAPL", "trade") == {}
    # The strong one leaving downgrades the symbol instead of dropping it.
    changed = interest.drop("host-1")
    assert changed == {"AAPL": "trade"}
    pool.apply(changed)
    (change,) = settle(pool)
    assert change.transitions == (Transition("AAPL", "quote", "trade"),)
    # The last one leaving unsubscribes.
    changed = interest.remove("proxy", "AAPL")
    assert changed == {"AAPL": None}
    pool.apply(changed)
    (change,) = settle(pool)
    assert change.transitions == (Transition("AAPL", "trade", None),)


def test_growth_and_shrinkage_go_in_separate_changes() -> None:
    pool = Pool("sim", 10, 1)
    pool.apply({"A": "quote", "B": "trade"})
    settle(pool)
    pool.apply({"A": "trade", "B": "quote", "C": "trade", "D": None})
    first = pool.begin(0)
    assert first is not None
    assert set(first.transitions) == {
        Transition("B", "trade", "quote"),
        Transition("C", None, "trade"),
    }
    pool.confirm(0)
    second = pool.begin(0)
    assert second is not None
    assert second.transitions == (Transition("A", "quote", "trade"),)


def test_an_incomparable_move_grows_to_the_join_first_then_shrinks() -> None:
    # quote -> trade+bars adds bars and drops quotes: one subscribe to quote+bars, then one
    # unsubscribe to trade+bars, so the symbol never stops flowing in between.
    pool = Pool("sim", 5, 1)
    pool.apply({"X": "quote"})
    settle(pool)
    pool.apply({"X": "trade+bars"})
    first = pool.begin(0)
    assert first is not None
    assert first.transitions == (Transition("X", "quote", "quote+bars"),)
    pool.confirm(0)
    second = pool.begin(0)
    assert second is not None
    assert second.transitions == (Transition("X", "quote+bars", "trade+bars"),)
    pool.confirm(0)
    assert pool.mode_of("X") == "trade+bars" and pool.begin(0) is None


def test_a_refused_join_rolls_back_to_the_confirmed_mode() -> None:
    pool = Pool("sim", 5, 1)
    pool.apply({"X": "quote"})
    settle(pool)
    pool.apply({"X": "trade+bars"})
    assert pool.begin(0) is not None
    assert pool.fail(0) == [Transition("X", "quote", "trade+bars")]
    assert pool.target(0) == {"X": "quote"} and pool.begin(0) is None
