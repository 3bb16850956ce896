"""`tradeops export`: per node, a service that runs `tradeops up FILE --node NODE`, with a
stop timeout that lets the gateways' cancels through, and no secret in any file."""

from __future__ import annotations

from pathlib import Path

import yaml
from typer.testing import CliRunner

from tradeops.cluster.export import export
from tradeops.topology.load import load_topology

DESK = """version: 1
name: duo
settings:
  cluster:
    nats: nats://10.0.0.5:4222
    token: ${NATS_TOKEN:-s3cr3t}
    nodes: {a: {}, b: {}}
brokers:
  sim: {adapter: sim, node: a, orders: {cancel_timeout: 30s}}
strategies:
  alpha: {class: "recipes.momentum:Momentum", broker: sim, symbols: [AAPL]}
processes:
  far: {strategies: [alpha], node: b}
"""


def desk(tmp_path: Path) -> Path:
    path = tmp_path / "duo.yaml"
    path.write_text(DESK)
    return path


def test_systemd_units_run_each_node_and_wait_for_its_cancels(tmp_path: Path) -> None:
    path = desk(tmp_path)
    files = export(load_topology(path), path, "systemd", tradeops="/opt/t/bin/tradeops",
                   nats=True)
    assert sorted(files) == ["tradeops-duo-a.service", "tradeops-duo-b.service",
                             "tradeops-duo-nats.service"]
    unit = files["tradeops-duo-b.service"]
    assert f"ExecStart=/opt/t/bin/tradeops up {path} --node b\n" in unit
    assert "TimeoutStopSec=90\n" in unit and "KillMode=mixed" in unit
    assert "ExecStart=nats-server -a 10.0.0.5 -p 4222" in files["tradeops-duo-nats.service"]
    assert not any("s3cr3t" in text for text in files.values())


def test_compose_and_k8s_are_yaml_with_one_supervisor_per_node(tmp_path: Path) -> None:
    path = desk(tmp_path)
    topology = load_topology(path)
    compose = export(topology, path, "compose")["tradeops-duo-a.compose.yaml"]
    service = yaml.safe_load(compose)["services"]["duo-a"]
    assert service["command"] == ["tradeops", "up", "/desk/duo.yaml", "--node", "a"]
    assert service["stop_grace_period"] == "90s"
    (deployment,) = yaml.safe_load_all(export(topology, path, "k8s")["tradeops-duo-b.k8s.yaml"])
    spec = deployment["spec"]
    assert spec["replicas"] == 1 and spec["strategy"] == {"type": "Recreate"}
    pod = spec["template"]["spec"]
    assert pod["nodeSelector"] == {"tradeops/node": "b"}
    assert pod["containers"][0]["command"][-2:] == ["--node", "b"]


def test_a_single_machine_desk_is_one_service_without_a_node(tmp_path: Path) -> None:
    path = tmp_path / "solo.yaml"
    path.write_text("version: 1\nname: solo\nbrokers:\n  sim: {adapter: sim}\n")
    files = export(load_topology(path), path, "systemd", tradeops="tradeops", nats=True)
    assert list(files) == ["tradeops-solo.service"]
    assert f"ExecStart=tradeops up {path}\n" in files["tradeops-solo.service"]


def test_the_command_writes_the_files_and_refuses_a_broken_topology(tmp_path: Path) -> None:
    from tradeops.cli import app

    path = desk(tmp_path)
    runner = CliRunner()
    result = runner.invoke(app, ["export", "k8s", str(path), "--out", str(tmp_path / "k")])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "k").iterdir()) == [
        "tradeops-duo-a.k8s.yaml", "tradeops-duo-b.k8s.yaml"]
    assert runner.invoke(app, ["export", "podman", str(path)]).exit_code == 2
    path.write_text(DESK.replace("node: b", "node: c"))
    result = runner.invoke(app, ["export", "systemd", str(path), "--out", str(tmp_path / "s")])
    assert result.exit_code == 1 and not (tmp_path / "s").exists()


def test_with_jetstream_the_exported_nats_server_runs_it_with_a_store(tmp_path: Path) -> None:
    path = tmp_path / "duo.yaml"
    path.write_text(DESK.replace("    nodes: {a: {}, b: {}}\n",
                                 "    nodes: {a: {}, b: {}}\n    jetstream: on\n"))
    topology = load_topology(path)
    unit = export(topology, path, "systemd", nats=True)["tradeops-duo-nats.service"]
    assert "ExecStart=nats-server -a 10.0.0.5 -p 4222 -js -sd /var/lib/tradeops-duo-nats\n" \
        in unit and "StateDirectory=tradeops-duo-nats\n" in unit
    compose = yaml.safe_load(export(topology, path, "compose", nats=True)[
        "tradeops-duo-nats.compose.yaml"])
    assert compose["services"]["nats"]["command"] == ["-p", "4222", "-js", "-sd", "/data"]
    assert compose["services"]["nats"]["volumes"] == ["nats-store:/data"]
    assert "nats-store" in compose["volumes"]
    manifests = list(yaml.safe_load_all(export(topology, path, "k8s", nats=True)[
        "tradeops-duo-nats.k8s.yaml"]))
    pod = manifests[0]["spec"]["template"]["spec"]
    assert pod["containers"][0]["args"] == ["-p", "4222", "-js", "-sd", "/data"]
    assert pod["containers"][0]["volumeMounts"] == [{"name": "store", "mountPath": "/data"}]
    assert pod["volumes"] == [{"name": "store", "emptyDir": {}}]
    # Without it, the server is as before: no JetStream.
    plain = export(load_topology(desk(tmp_path)), desk(tmp_path), "systemd", nats=True)
    assert "-js" not in plain["tradeops-duo-nats.service"]
