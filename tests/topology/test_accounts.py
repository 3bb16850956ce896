"""Accounts in the topology: each strategy's account is declared on its broker, each account
has a login of its own, and the fixes validate suggests make the file clean."""

from __future__ import annotations

from pathlib import Path

from tests.topology.helpers import base, codes, only, run


def test_an_undeclared_account_says_how_to_declare_it_and_the_fix_works(tmp_path: Path) -> None:
    data = base()
    data["strategies"]["alpha"]["account"] = "beta"
    f = only(run(tmp_path, data), "unknown-account")
    assert f.path == ("strategies", "alpha", "account") and f.name == "beta"
    assert "brokers.sim.accounts.beta" in f.fix
    # Following the fix: declare the account (a sim broker needs no credentials for it).
    data["brokers"]["sim"]["accounts"] = {"main": {}, "beta": {}}
    assert run(tmp_path, data) == []


def test_a_misspelt_account_among_declared_ones(tmp_path: Path) -> None:
    data = base()
    data["brokers"]["sim"]["accounts"] = {"alpha": {}, "beta": {}}
    data["strategies"]["alpha"]["account"] = "alpah"
    data["strategies"]["beta"]["account"] = "beta"
    f = only(run(tmp_path, data), "unknown-account")
    assert "did you mean 'alpha'?" in f.fix


def test_two_accounts_on_one_login_are_refused(tmp_path: Path) -> None:
    data = base()
    login = {"key": "k", "secret": "s"}
    data["brokers"]["sim"]["accounts"] = {"alpha": {"credentials": login},
                                          "beta": {"credentials": dict(login)}}
    data["strategies"]["alpha"]["account"] = "alpha"
    data["strategies"]["beta"]["account"] = "beta"
    f = only(run(tmp_path, data), "shared-login")
    assert f.path == ("brokers", "sim", "accounts", "beta")
    assert "s" not in f.message.split("'")  # the secret is never shown
    data["brokers"]["sim"]["accounts"]["beta"]["credentials"] = {"key": "k2", "secret": "s"}
    assert run(tmp_path, data) == []


def test_alpaca_accounts_each_with_a_login_need_no_broker_login(tmp_path: Path) -> None:
    data = base()
    data["brokers"]["sim"] = {"adapter": "alpaca", "accounts": {
        "alpha": {"credentials": {"key": "a", "secret": "b"}},
        "beta": {}}}
    data["strategies"]["alpha"]["account"] = "alpha"
    data["strategies"]["beta"]["account"] = "alpha"
    f = only(run(tmp_path, data), "missing-credentials")
    assert f.path == ("brokers", "sim", "accounts", "beta")
    del data["brokers"]["sim"]["accounts"]["beta"]
    assert run(tmp_path, data) == []


def test_accounts_on_a_feed_that_takes_no_orders(tmp_path: Path) -> None:
    data = base()
    data["brokers"]["sim"] = {"adapter": "alltick", "credentials": {"token": "t"},
                              "accounts": {"x": {}}}
    for s in ("alpha", "beta"):
        data["strategies"][s]["symbols"] = ["US:AAPL"]
    assert "accounts-not-trading" in codes(run(tmp_path, data))
