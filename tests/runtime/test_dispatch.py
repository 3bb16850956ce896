from tradeops.runtime.dispatch import DispatchTable


def table() -> DispatchTable:
    t = DispatchTable()
    for name, priority in [("slow", "low"), ("a", "normal"), ("fast", "critical"),
                           ("b", "normal"), ("mid", "high")]:
        t.add_strategy(name, priority)
    return t


def test_priority_order_then_topology_order() -> None:
    t = table()
    for name in ("slow", "a", "fast", "b", "mid"):
        t.subscribe(name, "sim", "AAPL", "quote")
    assert t.targets("sim", "AAPL", "trade") == ("fast", "mid", "a", "b", "slow")


def test_modes_nest() -> None:
    t = table()
    t.subscribe("a", "sim", "AAPL", "trade")
    t.subscribe("b", "sim", "AAPL", "quote")
    t.subscribe("mid", "sim", "AAPL", "depth")
    assert t.targets("sim", "AAPL", "trade") == ("mid", "a", "b")
    assert t.targets("sim", "AAPL", "quote") == ("mid", "b")
    assert t.targets("sim", "AAPL", "depth") == ("mid",)
    assert t.strongest("sim", "AAPL") == "depth"


def test_brokers_are_separate_and_drop_releases_everything() -> None:
    t = table()
    t.subscribe("a", "sim", "AAPL", "trade")
    t.subscribe("a", "paper", "AAPL", "trade")
    assert t.targets("paper", "AAPL", "trade") == ("a",)
    assert sorted(t.drop("a")) == [("paper", "AAPL"), ("sim", "AAPL")]
    assert t.targets("sim", "AAPL", "trade") == ()
    assert t.strongest("sim", "AAPL") is None


def test_the_raw_table_answers_what_targets_does_for_a_ticks_bytes() -> None:
    from tradeops.protocol.tick import Tick

    t = table()
    t.subscribe("a", "sim", "AAPL", "trade")
    t.subscribe("b", "sim", "AAPL", "quote")
    t.subscribe("mid", "sim", "MSFT", "depth")
    raw = t.by_raw("sim")
    for symbol in ("AAPL", "MSFT", "IBM"):
        for kind in ("trade", "quote", "bar"):
            tick = Tick.make(kind, symbol)
            assert raw.get((tick.symbol_bytes, tick.kind_code), ()) == t.targets(
                "sim", symbol, kind
            ), (symbol, kind)
    assert raw[(Tick.make("quote", "AAPL").symbol_bytes, 2)] == ("b",)
    t.unsubscribe("b", "sim", "AAPL")
    assert (Tick.make("quote", "AAPL").symbol_bytes, 2) not in raw  # the same dict, updated
    assert t.by_raw("paper") == {}
