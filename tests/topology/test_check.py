"""One test per cross-field check: a bad file, the expected finding, and where it points."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.topology.helpers import base, codes, only, run
from tradeops.topology.findings import Severity
from tradeops.topology.model import Strategy
from tradeops.topology.validate import validate_file


def test_the_base_file_is_clean(tmp_path: Path) -> None:
    assert run(tmp_path, base()) == []


def test_strategy_naming_an_unknown_broker(tmp_path: Path) -> None:
    data = base()
    data["strategies"]["alpha"]["broker"] = "simm"
    f = only(run(tmp_path, data), "unknown-broker")
    assert f.severity is Severity.ERROR
    assert f.name == "simm" and f.path == ("strategies", "alpha", "broker")
    assert "did you mean 'sim'?" in f.fix


def test_group_naming_an_unknown_strategy(tmp_path: Path) -> None:
    data = base()
    data["processes"]["group"]["strategies"] = ["alpha", "betta"]
    f = only(run(tmp_path, data), "unknown-strategy")
    assert f.name == "betta" and f.path == ("processes", "group", "strategies", 1)
    assert "did you mean 'beta'?" in f.fix


def test_strategy_in_two_groups(tmp_path: Path) -> None:
    data = base()
    data["processes"]["other"] = {"strategies": ["alpha"]}
    f = only(run(tmp_path, data), "strategy-in-two-groups")
    assert "'group'" in f.message and "'other'" in f.message
    assert f.path == ("processes", "other", "strategies", 0)


def test_ungrouped_strategy_whose_name_a_group_has(tmp_path: Path) -> None:
    data = base()
    data["processes"] = {"beta": {"strategies": ["alpha"]}}  # strategy beta is ungrouped
    f = only(run(tmp_path, data), "group-name-taken")
    assert f.name == "beta"


def test_capacity_overflow_says_by_how_much(tmp_path: Path) -> None:
    data = base()
    data["strategies"]["alpha"]["symbols"] = [
        f"S{chr(65 + i // 26)}{chr(65 + i % 26)}" for i in range(18)
    ]
    data["strategies"]["beta"]["symbols"] = ["SAA", "XA", "XB", "XC", "XD"]  # SAA is shared
    f = only(run(tmp_path, data), "capacity")
    assert "needs 22 distinct symbols" in f.message
    assert "holds 20" in f.message and "2 too many" in f.message
    assert "max_connections to 3" in f.fix
    assert f.path == ("brokers", "sim", "pool")


def test_capacity_counts_symbols_once_across_modes(tmp_path: Path) -> None:
    data = base()
    symbols = [f"S{chr(65 + i)}" for i in range(20)]
    data["strategies"]["alpha"].update(symbols=symbols, mode="quote")
    data["strategies"]["beta"].update(symbols=symbols, mode="trade")
    assert "capacity" not in codes(run(tmp_path, data))


def one_per_process(count: int) -> dict[str, Any]:
    """A desk of `count` strategies on broker sim, each in a process of its own."""
    data = base()
    data["strategies"] = {f"s{i}": {"class": "recipes.ticklog:TickLogger", "broker": "sim",
                                    "symbols": ["AAPL"]} for i in range(count)}  # fmt: skip
    data["processes"] = {}
    return data


def test_more_processes_on_a_broker_than_its_ring_has_reader_slots(tmp_path: Path) -> None:
    # 247 hosts + the proxy = 248 readers: the 256 slots less 8 kept for tools and restarts.
    assert "readers" not in codes(run(tmp_path, one_per_process(247), import_classes=False))
    f = only(run(tmp_path, one_per_process(248), import_classes=False), "readers")
    assert "broker 'sim' would have 249 processes reading its bus (s0, s1, s2, ...)" in f.message
    assert "256 reader slots" in f.message and "8 of them kept" in f.message
    assert "bundle strategies into fewer processes" in f.fix and "at most 248" in f.fix
    assert f.path == ("brokers", "sim")
    bundled = one_per_process(248)
    bundled["processes"] = {"all": {"strategies": list(bundled["strategies"])}}
    assert "readers" not in codes(run(tmp_path, bundled, import_classes=False))


def test_stock_symbol_format(tmp_path: Path) -> None:
    data = base()
    data["strategies"]["alpha"]["symbols"] = ["AAPL", "msft", "BRK.B"]
    f = only(run(tmp_path, data), "symbol-format")
    assert f.name == "msft" and f.path == ("strategies", "alpha", "symbols", 1)
    assert "MSFT" in f.fix


def test_crypto_symbol_format(tmp_path: Path) -> None:
    data = base()
    data["brokers"]["sim"]["feed"] = "crypto"
    data["strategies"]["alpha"]["symbols"] = ["BTC/USD", "ETHUSD"]
    data["strategies"]["beta"]["symbols"] = ["SOL/USDT"]
    f = only(run(tmp_path, data), "symbol-format")
    assert f.name == "ETHUSD" and "ETH/USD" in f.fix


def test_alltick_symbol_format(tmp_path: Path) -> None:
    data = base()
    data["brokers"]["tick"] = {"adapter": "alltick", "credentials": {"token": "t"}}
    data["strategies"]["beta"].update(broker="tick", symbols=["HK:700", "AAPL"])
    f = only(run(tmp_path, data), "symbol-format")
    assert f.name == "AAPL" and "EXCHANGE:CODE" in f.fix


def test_bars_on_a_broker_that_streams_none(tmp_path: Path) -> None:
    data = base()
    data["brokers"]["tick"] = {"adapter": "alltick", "credentials": {"token": "t"}}
    data["strategies"]["beta"].update(broker="tick", symbols=["HK:700"], bars=True)
    f = only(run(tmp_path, data), "bars-not-supported")
    assert f.path == ("strategies", "beta", "bars") and "alltick" in f.message


def test_extras_need_a_feed_that_streams_them(tmp_path: Path) -> None:
    data = base()
    data["brokers"]["tick"] = {"adapter": "alltick", "credentials": {"token": "t"}}
    data["strategies"]["beta"].update(broker="tick", symbols=["HK:700"], extras=["daily_bars"])
    f = only(run(tmp_path, data), "extras-not-supported")
    assert f.path == ("strategies", "beta", "extras") and "daily_bars" in f.message
    crypto = base()
    crypto["brokers"]["coins"] = {"adapter": "sim", "feed": "crypto"}
    crypto["strategies"]["beta"].update(broker="coins", symbols=["BTC/USD"],
                                        extras=["daily_bars", "statuses"])
    f = only(run(tmp_path, crypto), "extras-not-supported")
    assert "statuses" in f.message and "daily_bars" not in f.message
    fine = base()
    fine["strategies"]["alpha"].update(extras=["lulds", "statuses"], mode="quote")
    assert [f.code for f in run(tmp_path, fine) if f.code.startswith("extras")] == []
    strategy = Strategy.model_validate({"class": "a:B", "broker": "sim", "symbols": ["X"],
                                        "bars": True, "extras": ["lulds", "daily_bars"]})
    assert strategy.subscription == "trade+bars+daily_bars+lulds"


def test_bars_on_a_sim_broker_are_fine_and_join_the_mode(tmp_path: Path) -> None:
    data = base()
    data["strategies"]["alpha"].update(bars=True, mode="quote")
    assert [f.code for f in run(tmp_path, data) if f.code.startswith("bars")] == []
    strategy = Strategy.model_validate({"class": "a:B", "broker": "sim", "symbols": ["X"],
                                        "mode": "quote", "bars": True})
    assert strategy.subscription == "quote+bars"
    assert strategy.model_copy(update={"bars": False}).subscription == "quote"


def test_empty_symbol_list(tmp_path: Path) -> None:
    data = base()
    data["strategies"]["alpha"]["symbols"] = []
    f = only(run(tmp_path, data), "empty-symbols")
    assert f.severity is Severity.ERROR and f.name == "alpha"


def test_depth_on_a_stock_feed(tmp_path: Path) -> None:
    data = base()
    data["strategies"]["alpha"]["mode"] = "depth"
    f = only(run(tmp_path, data), "mode-not-supported")
    assert "mode: quote" in f.fix


def test_pin_to_a_core_this_machine_lacks_is_a_warning(tmp_path: Path) -> None:
    data = base()
    data["processes"]["group"]["cpu"] = [0, 7]
    f = only(run(tmp_path, data, cpu_count=2), "cpu-missing")
    assert f.severity is Severity.WARNING
    assert f.path == ("processes", "group", "cpu", 1)
    assert "0-1" in f.message


def test_strict_turns_warnings_into_errors(tmp_path: Path) -> None:
    data = base()
    data["processes"]["group"]["cpu"] = [7]
    f = only(run(tmp_path, data, cpu_count=2, strict=True), "cpu-missing")
    assert f.severity is Severity.ERROR


def test_two_busy_poll_groups_on_one_core(tmp_path: Path) -> None:
    data = base()
    data["processes"] = {
        "a": {"strategies": ["alpha"], "busy_poll": True, "cpu": [1]},
        "b": {"strategies": ["beta"], "busy_poll": True, "cpu": [1]},
    }
    f = only(run(tmp_path, data, cpu_count=4), "busy-poll-shared-core")
    assert f.severity is Severity.ERROR
    assert "'a'" in f.message and "'b'" in f.message and "core 1" in f.message


def test_busy_poll_without_a_pin(tmp_path: Path) -> None:
    data = base()
    data["processes"]["group"]["busy_poll"] = True
    f = only(run(tmp_path, data), "busy-poll-unpinned")
    assert f.severity is Severity.WARNING


def test_account_auto_cancel_over_overlapping_neighbours(tmp_path: Path) -> None:
    data = base()
    data["strategies"]["beta"]["symbols"] = ["MSFT", "AAPL"]
    data["processes"]["group"]["auto_cancel"] = "account"
    f = only(run(tmp_path, data), "auto-cancel-overlap")
    assert f.severity is Severity.WARNING
    assert "'alpha'" in f.message and "'beta'" in f.message and "AAPL" in f.message


def test_account_auto_cancel_reaches_other_groups(tmp_path: Path) -> None:
    data = base()
    data["processes"] = {"a": {"strategies": ["alpha"], "auto_cancel": "account"}}
    f = only(run(tmp_path, data), "auto-cancel-account")
    assert "beta" in f.message  # beta runs alone, on the same account
    assert "alpha" not in f.message  # alpha is the group's own strategy


def test_strategy_class_that_does_not_import(tmp_path: Path) -> None:
    data = base()
    data["strategies"]["alpha"]["class"] = "recipes.nosuchmodule:Momentum"
    f = only(run(tmp_path, data), "strategy-import")
    assert "recipes.nosuchmodule" in f.message and "--no-import" in f.fix


def test_strategy_class_that_is_missing_from_its_module(tmp_path: Path) -> None:
    data = base()
    data["strategies"]["alpha"]["class"] = "recipes.momentum:Momentun"
    f = only(run(tmp_path, data), "strategy-import")
    assert "did you mean 'Momentum'?" in f.fix


def test_strategy_class_that_is_not_a_strategy(
    tmp_path: Path, write_yaml: Callable[..., Path]
) -> None:
    (tmp_path / "mystrats.py").write_text("class NotOne:\n    pass\n")
    data = base()
    data["strategies"]["alpha"]["class"] = "mystrats:NotOne"
    f = only(run(tmp_path, data), "strategy-import")
    assert "not a subclass of tradeops.Strategy" in f.message


def test_strategy_module_beside_the_topology_imports(tmp_path: Path) -> None:
    (tmp_path / "localstrat.py").write_text(
        "from tradeops import Strategy\n\nclass Mine(Strategy):\n    pass\n"
    )
    data = base()
    data["strategies"]["alpha"]["class"] = "localstrat:Mine"
    assert run(tmp_path, data) == []


def test_no_import_skips_the_import_check(tmp_path: Path) -> None:
    data = base()
    data["strategies"]["alpha"]["class"] = "needs_numpy_module:Strat"
    assert run(tmp_path, data, import_classes=False) == []


def test_live_broker_without_credentials(tmp_path: Path) -> None:
    data = base()
    data["brokers"]["paper"] = {"adapter": "alpaca"}
    f = only(run(tmp_path, data), "missing-credentials")
    assert f.name == "paper"


def test_market_block_on_a_live_broker(tmp_path: Path) -> None:
    data = base()
    data["brokers"]["paper"] = {
        "adapter": "alpaca",
        "market": {"seed": 3},
        "credentials": {"key": "k", "secret": "s"},
    }
    assert "market-not-sim" in codes(run(tmp_path, data))


def test_proxy_open_to_the_network_without_a_token(tmp_path: Path) -> None:
    data = base()
    data["settings"] = {"proxy": {"listen": "0.0.0.0:8765"}}
    f = only(run(tmp_path, data), "proxy-open")
    assert "token" in f.fix
    data["settings"] = {"proxy": {"listen": "0.0.0.0:8765", "token": "t0ken"}}
    assert "proxy-open" not in codes(run(tmp_path, data))


def test_findings_point_at_the_offending_line(write_yaml: Callable[..., Path]) -> None:
    path = write_yaml(
        """
        version: 1
        name: desk
        brokers:
          sim: {adapter: sim}
        strategies:
          alpha:
            class: recipes.momentum:Momentum
            broker: sim
            symbols: [AAPL, aapl]
          beta:
            class: recipes.momentum:Momentum
            broker: nope
            symbols: [MSFT]
        """
    )
    findings = {f.code: f for f in validate_file(path).findings}
    assert (findings["symbol-format"].line, findings["symbol-format"].column) == (9, 21)
    assert (findings["unknown-broker"].line, findings["unknown-broker"].column) == (12, 13)


def test_text_report_is_coloured_only_on_request(write_yaml: Callable[..., Path]) -> None:
    from tradeops.topology.report import render_text

    report = validate_file(write_yaml("version: 2\nname: desk\nbrokers: {sim: {adapter: sim}}\n"))
    assert "\x1b[" in render_text([report], colour=True)
    plain = render_text([report], colour=False)
    assert "\x1b[" not in plain and ":1:10: error:" in plain


def test_process_names_of_the_desk_itself_are_reserved(tmp_path: Path) -> None:
    data = base()
    data["processes"] = {"gateway-sim": {"strategies": ["alpha", "beta"]}}
    f = only(run(tmp_path, data), "reserved-name")
    assert f.name == "gateway-sim"
