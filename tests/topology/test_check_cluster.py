"""settings.cluster: placement is checked, and each node runs only what is placed on it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.topology.helpers import base, codes, only, run
from tradeops.process.spec import process_specs
from tradeops.topology.load import load_topology


def clustered() -> dict[str, Any]:
    data = base()
    data["settings"] = {"cluster": {"nats": "nats://127.0.0.1:4222",
                                    "nodes": {"a": {"cores": 2}, "b": {"cores": 4}}}}
    data["brokers"]["sim"]["node"] = "a"
    return data


def test_a_sound_cluster_validates(tmp_path: Path) -> None:
    assert run(tmp_path, clustered()) == []


def test_a_node_without_a_cluster_is_an_error(tmp_path: Path) -> None:
    data = base()
    data["processes"]["group"]["node"] = "b"
    f = only(run(tmp_path, data), "node-without-cluster")
    assert "group 'group'" in f.message and "settings.cluster" in f.fix


def test_an_undeclared_node_names_the_declared_ones(tmp_path: Path) -> None:
    data = clustered()
    data["processes"]["group"]["node"] = "bb"
    data["settings"]["proxy"] = {"node": "c"}
    findings = run(tmp_path, data)
    assert codes(findings).count("unknown-node") == 2
    group = next(f for f in findings if "group 'group'" in f.message)
    assert "use one of: a, b" in group.fix and "did you mean 'b'" in group.fix.lower()


def test_a_malformed_nats_address(tmp_path: Path) -> None:
    data = clustered()
    data["settings"]["cluster"]["nats"] = ["nats://127.0.0.1:4222", "http://host:99999"]
    f = only(run(tmp_path, data), "nats-url")
    assert "'http://host:99999'" in f.message and "nats://HOST:PORT" in f.fix


def test_a_pin_must_fit_its_node(tmp_path: Path) -> None:
    data = clustered()
    data["processes"]["group"].update({"node": "a", "cpu": [3]})
    f = only(run(tmp_path, data, cpu_count=8), "cpu-beyond-node")
    assert "node 'a' has cores 0-1" in f.message and "cores" in f.fix
    data["processes"]["group"]["node"] = "b"
    assert "cpu-beyond-node" not in codes(run(tmp_path, data, cpu_count=8))


def test_the_token_is_never_echoed(tmp_path: Path) -> None:
    data = clustered()
    data["settings"]["cluster"]["token"] = "s3cr3t-token"
    data["settings"]["cluster"]["nats"] = "bad"
    findings = run(tmp_path, data)
    assert codes(findings) == ["nats-url"]
    assert all("s3cr3t" not in f.message + f.fix for f in findings)
    assert run(tmp_path, clustered()) == []
    path = tmp_path / "topology.yaml"
    assert "s3cr3t" not in repr(load_topology(path).settings)


def _specs(tmp_path: Path, data: dict[str, Any], node: str | None) -> dict[str, Any]:
    assert run(tmp_path, data) == []
    topology = load_topology(tmp_path / "topology.yaml")
    return {s.name: (s.role, s.node) for s in process_specs(topology, node)}


def test_each_node_runs_what_is_placed_on_it_and_the_bridges_it_needs(tmp_path: Path) -> None:
    data = clustered()
    data["processes"]["group"]["node"] = "b"
    data["settings"]["record"] = {"dir": "rec", "node": "a"}
    assert _specs(tmp_path, data, "a") == {
        "sim-sim": ("sim", "a"), "gateway-sim": ("gateway", "a"), "proxy": ("proxy", "a"),
        "recorder": ("recorder", "a"), "bridge-sim": ("bridge", "a")}
    assert _specs(tmp_path, data, "b") == {"remote-sim": ("remote", "b"),
                                           "group": ("host", "b")}
    every = _specs(tmp_path, data, None)
    assert set(every) == {"sim-sim", "gateway-sim", "proxy", "recorder", "bridge-sim",
                          "remote-sim", "group"}


def test_no_bridge_when_every_reader_is_beside_the_gateway(tmp_path: Path) -> None:
    data = clustered()  # the group and the proxy default to the first node, a
    assert _specs(tmp_path, data, "a") == {
        "sim-sim": ("sim", "a"), "gateway-sim": ("gateway", "a"), "proxy": ("proxy", "a"),
        "group": ("host", "a")}
    assert _specs(tmp_path, data, "b") == {}


def test_a_remote_starts_in_the_gateway_s_tier(tmp_path: Path) -> None:
    data = clustered()
    data["processes"]["group"]["node"] = "b"
    assert run(tmp_path, data) == []
    topology = load_topology(tmp_path / "topology.yaml")
    tiers = {s.name: s.tier for s in process_specs(topology, "b")}
    gateway = {s.name: s.tier for s in process_specs(topology, "a")}["gateway-sim"]
    assert tiers["remote-sim"] == gateway < tiers["group"]


def test_a_single_machine_desk_is_unchanged(tmp_path: Path) -> None:
    assert run(tmp_path, base()) == []
    topology = load_topology(tmp_path / "topology.yaml")
    specs = process_specs(topology)
    assert [s.name for s in specs] == ["sim-sim", "gateway-sim", "proxy", "group"]
    assert all(s.node == "" for s in specs)


def test_jetstream_is_off_by_default_and_on_means_bounded(tmp_path: Path) -> None:
    from tradeops.topology.model import Cluster

    data = clustered()
    assert run(tmp_path, data) == []
    cluster = data["settings"]["cluster"]
    assert Cluster(**cluster).jetstream is None
    on = Cluster(**{**cluster, "jetstream": "on"}).jetstream
    assert on is not None and on.max_age == 3600 and on.max_bytes == 1 << 30
    sized = Cluster(**{**cluster, "jetstream": {"max_bytes": "512MiB", "max_age": None}})
    assert sized.jetstream is not None and sized.jetstream.max_bytes == 512 << 20
    assert sized.jetstream.max_age is None
    data["settings"]["cluster"]["jetstream"] = {"max_age": "30m", "max_bytes": "2GB"}
    assert run(tmp_path, data) == []


@pytest.mark.parametrize(("jetstream", "words"), [
    ({"max_age": None, "max_bytes": None}, "must be bounded: set max_age"),
    ({"max_bytes": "10KB"}, "give at least 1MiB"),
    ({"max_bytes": "lots"}, "write it as 512MiB"),
    ({"max_age": "forever"}, "500ms, 30s, 5m or 1h"),
    ({"keep": "1h"}, "keep"),
])
def test_an_unbounded_or_malformed_jetstream_retention_is_refused(
    tmp_path: Path, jetstream: dict[str, Any], words: str
) -> None:
    data = clustered()
    data["settings"]["cluster"]["jetstream"] = jetstream
    findings = run(tmp_path, data)
    assert findings and all(f.severity.name == "ERROR" for f in findings)
    assert any(words in f.message or words in f.fix for f in findings), findings


@pytest.mark.parametrize("capacity", [1000, 32, 0])
def test_a_node_s_ring_capacity_is_a_power_of_two(tmp_path: Path, capacity: int) -> None:
    data = clustered()
    data["settings"]["cluster"]["nodes"]["b"]["ring_capacity"] = capacity
    findings = run(tmp_path, data)
    assert any("power of two, at least 64" in f.message for f in findings), findings
    data["settings"]["cluster"]["nodes"]["b"]["ring_capacity"] = 1024
    assert run(tmp_path, data) == []
