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


def test_no_feed_and_no_accounts(tmp_path: Path) -> None:
    data = openalgo()
    data["brokers"]["sim"]["feed"] = "iex"  # type: ignore[index]
    data["brokers"]["sim"]["accounts"] = {"a": {}}  # type: ignore[index]
    codes = [f.code for f in run(tmp_path, data)]
    assert "feed-not-supported" in codes and "accounts-not-trading" in codes
