"""The proxy's topology keys: validate's checks, the process spec, the config drawn from them."""

from __future__ import annotations

from pathlib import Path

from tests.topology.helpers import base, codes, only, run
from tradeops.process.paths import RunPaths
from tradeops.process.spec import TIERS, process_specs
from tradeops.proxy.config import ProxyConfig
from tradeops.topology.findings import Severity
from tradeops.topology.model import Topology


def test_exchanges_and_feeds_must_name_brokers_that_carry_them(tmp_path: Path) -> None:
    data = base()
    data["brokers"]["crypto"] = {"adapter": "sim", "feed": "crypto"}
    data["settings"] = {"proxy": {"exchanges": {"NASDAQ": "simm", "NSE": "sim"},
                                  "feeds": {"iex": "crypto", "crypto": "crypto"}}}
    findings = run(tmp_path, data)
    unknown = only(findings, "proxy-unknown-broker")
    assert unknown.path == ("settings", "proxy", "exchanges", "NASDAQ")
    assert "did you mean 'sim'?" in unknown.fix and unknown.line > 0
    mismatch = only(findings, "proxy-feed-mismatch")
    assert mismatch.path == ("settings", "proxy", "feeds", "iex")
    assert "carries crypto" in mismatch.message


def test_tls_needs_a_certificate_and_its_key(tmp_path: Path) -> None:
    data = base()
    data["settings"] = {"proxy": {"tls_cert": str(tmp_path / "cert.pem")}}
    f = only(run(tmp_path, data), "proxy-tls")
    assert f.severity is Severity.ERROR and "tls_key" in f.fix
    data["settings"]["proxy"]["tls_key"] = str(tmp_path / "key.pem")
    missing = [f for f in run(tmp_path, data) if f.code == "proxy-tls-missing"]
    assert len(missing) == 2 and all(f.severity is Severity.WARNING for f in missing)
    (tmp_path / "cert.pem").write_text("x")
    (tmp_path / "key.pem").write_text("x")
    assert "proxy-tls-missing" not in codes(run(tmp_path, data))


def test_a_group_cannot_take_the_proxys_name(tmp_path: Path) -> None:
    data = base()
    data["processes"] = {"proxy": data["processes"]["group"]}
    f = only(run(tmp_path, data), "reserved-name")
    assert "proxy" in f.message


def topology(proxy: dict[str, object]) -> Topology:
    return Topology.model_validate({
        "version": 1, "name": "desk",
        "settings": {"proxy": proxy},
        "brokers": {"a": {"adapter": "sim"}, "b": {"adapter": "sim", "feed": "sip"},
                    "c": {"adapter": "sim"}},
    })  # fmt: skip


def test_the_proxy_is_one_process_starting_with_the_hosts_only_when_enabled() -> None:
    specs = process_specs(topology({}))
    (proxy,) = [s for s in specs if s.role == "proxy"]
    assert proxy.name == "proxy" and proxy.tier == TIERS["host"]
    assert proxy.restart.policy == "always"
    gateways = [s.tier for s in specs if s.role == "gateway"]
    assert proxy.tier > max(gateways)  # it links to the gateways; nothing waits for it
    tiers = [s.tier for s in specs]
    assert tiers == sorted(tiers)  # start order: sims, gateways, then proxy and hosts
    assert all(s.role != "proxy" for s in process_specs(topology({"enabled": False})))


def test_each_alpaca_path_is_served_by_the_first_broker_with_its_feed() -> None:
    paths = RunPaths(Path("/run"), "desk")
    config = ProxyConfig.from_topology(topology({}), paths)
    assert config.feeds == {"/v2/iex": "a", "/v2/sip": "b"}
    assert config.sockets["c"] == "/run/desk-gw-c.sock"
    chosen = ProxyConfig.from_topology(topology({"feeds": {"iex": "c"}, "token": "t"}), paths)
    assert chosen.feeds["/v2/iex"] == "c" and chosen.token == "t"
    assert config.check_symbol("a", "AAPL") is None
    assert "stock symbol" in (config.check_symbol("a", "aapl") or "")
    assert "unknown broker" in (config.check_symbol("zz", "AAPL") or "")
