"""validate on OpenAlgo brokers: symbols in OpenAlgo's form, the API key in its own word."""

from __future__ import annotations

from pathlib import Path

from tests.topology.helpers import base, only, run


def openalgo() -> dict[str, object]:
    data = base()
    data["brokers"]["sim"] = {"adapter": "openalgo", "credentials": {"api_key": "k"}}
    data["strategies"]["alpha"]["symbols"] = ["NSE:RELIANCE", "NSE:M&M", "NFO:NIFTY24DEC24000CE"]
    data["strategies"]["beta"]["symbols"] = ["BSE:BAJAJ-AUTO"]
    return data


def test_an_openalgo_desk_is_clean(tmp_path: Path) -> None:
    assert run(tmp_path, openalgo()) == []


def test_a_symbol_without_its_exchange(tmp_path: Path) -> None:
    data = openalgo()
    data["strategies"]["alpha"]["symbols"] = ["RELIANCE"]  # type: ignore[index]
    f = only(run(tmp_path, data), "symbol-format")
    assert "OpenAlgo" in f.message and "NSE:RELIANCE" in f.fix


def test_the_api_key_in_openalgo_s_word(tmp_path: Path) -> None:
    data = openalgo()
    data["brokers"]["sim"]["credentials"] = {"token": "k"}  # type: ignore[index]
    f = only(run(tmp_path, data), "credential-words")
    assert "needs api_key" in f.message and "OPENALGO_API_KEY" in f.fix
    del data["brokers"]["sim"]["credentials"]  # type: ignore[index]
    assert "missing-credentials" in [f.code for f in run(tmp_path, data)]


def test_no_feed_but_accounts_each_on_its_own_key(tmp_path: Path) -> None:
    data = openalgo()
    data["brokers"]["sim"]["feed"] = "iex"  # type: ignore[index]
    assert only(run(tmp_path, data), "feed-not-supported")
    del data["brokers"]["sim"]["feed"]  # type: ignore[attr-defined]
    data["brokers"]["sim"]["accounts"] = {  # type: ignore[index]
        "a": {"credentials": {"api_key": "ka"}}, "b": {"credentials": {"api_key": "kb"}}}
    data["strategies"]["alpha"]["account"] = "a"  # type: ignore[index]
    data["strategies"]["beta"]["account"] = "b"  # type: ignore[index]
    assert run(tmp_path, data) == []  # OpenAlgo brokers take orders: accounts are theirs
    data["brokers"]["sim"]["accounts"]["b"] = {  # type: ignore[index]
        "credentials": {"api_key": "ka"}}
    f = only(run(tmp_path, data), "shared-login")
    assert "'a' and 'b'" in f.message and "ka" not in f.message


def test_product_and_polling_are_openalgo_keys(tmp_path: Path) -> None:
    data = openalgo()
    data["brokers"]["sim"]["orders"] = {"product": "CNC", "poll_interval": "250ms"}  # type: ignore[index]
    assert run(tmp_path, data) == []
    data["brokers"]["sim"]["orders"] = {"product": "BO"}  # type: ignore[index]
    assert any("product" in f.message for f in run(tmp_path, data))
    alpaca = base()
    alpaca["brokers"]["sim"]["orders"] = {"product": "MIS"}  # type: ignore[index]
    f = only(run(tmp_path, alpaca), "openalgo-only")
    assert "orders.product" in f.message and f.fix == "remove `orders.product`"
