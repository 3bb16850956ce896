"""The names `tradeops` exports are its public API; changing them is a decision, not an accident."""

import tradeops


def test_exported_names() -> None:
    assert sorted(tradeops.__all__) == [
        "Book", "Order", "OrderUpdate", "Strategy", "Tick", "__version__"]
    for name in tradeops.__all__:
        assert hasattr(tradeops, name)


def test_strategy_api_surface() -> None:
    expected = {
        "on_start",
        "on_tick",
        "on_order_update",
        "on_timer",
        "on_stop",
        "subscribe",
        "unsubscribe",
        "last",
        "safe_to_trade",
        "now",
    }
    assert expected <= set(dir(tradeops.Strategy))


def test_a_strategy_outside_a_host_says_how_to_run_it() -> None:
    strategy = tradeops.Strategy("alone", {"x": 1})
    assert strategy.params == {"x": 1}
    assert strategy.safe_to_trade() == (False, "not running in a tradeops host")
    try:
        strategy.subscribe("AAPL")
    except RuntimeError as exc:
        assert "tradeops up" in str(exc)
    else:
        raise AssertionError("subscribe outside a host must fail")


def test_an_unknown_name_is_an_attribute_error() -> None:
    try:
        tradeops.NoSuchThing  # type: ignore[attr-defined]  # noqa: B018
    except AttributeError as exc:
        assert "NoSuchThing" in str(exc)
    else:
        raise AssertionError("the lazy package face must not invent names")
    assert set(tradeops.__all__) <= set(dir(tradeops))
