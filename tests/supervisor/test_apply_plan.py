"""The apply plan and its rollout, pure: what changes, and in which order it happens."""

from __future__ import annotations

from pathlib import Path

from tradeops.process.spec import ProcessSpec
from tradeops.supervisor.apply import Rollout, plan
from tradeops.supervisor.states import ProcessState as S

SIM, GW = ProcessSpec("sim-x", "sim", broker="x"), ProcessSpec("gateway-x", "gateway", broker="x")
A, B = ProcessSpec("a", "host", strategies=("a",)), ProcessSpec("b", "host", strategies=("b",))


def test_each_process_is_compared_by_its_own_fingerprint() -> None:
    running = {"sim-x": (SIM, "s1"), "gateway-x": (GW, "g1"), "a": (A, "a1"), "b": (B, "b1")}
    new = {"sim-x": SIM, "gateway-x": GW, "a": A, "c": ProcessSpec("c", "host")}
    prints = {"sim-x": "s1", "gateway-x": "g1", "a": "a2", "c": "c1"}
    changes = plan(running, new, prints, reloads={"gateway-x": ("r1", "r2")})
    assert [c.line().split("  (")[0] for c in changes] == [
        "= keep    sim-x", "~ reload  gateway-x", "~ restart a", "+ start   c", "- stop    b"]


def test_a_process_stopped_by_hand_stays_stopped() -> None:
    running = {"a": (A, "a1")}
    (change,) = plan(running, {"a": A}, {"a": "a2"}, stopped={"a"})
    assert change.verb == "update" and "stays" not in change.why


def test_stops_go_hosts_first_and_starts_go_in_start_order() -> None:
    changes = plan({"gateway-x": (GW, "g1"), "b": (B, "b1")}, {"sim-x": SIM, "a": A},
                   {"sim-x": "s", "a": "a"})
    rollout = Rollout.of(changes)
    assert [(s.verb, s.names) for s in rollout.steps] == [
        ("stop", ["b"]), ("stop", ["gateway-x"]), ("start", ["sim-x"]), ("start", ["a"])]
    states = {"b": S.RUNNING, "gateway-x": S.RUNNING, "sim-x": S.STOPPED, "a": S.STOPPED}
    assert rollout.advance(states, 0.0).names == ["b"]  # type: ignore[union-attr]
    states["b"] = S.STOPPING
    assert rollout.advance(states, 1.0) is None  # waits for b to be down
    states["b"] = S.STOPPED
    assert rollout.advance(states, 2.0).names == ["gateway-x"]  # type: ignore[union-attr]
    states["gateway-x"] = S.STOPPED
    assert rollout.advance(states, 3.0).names == ["sim-x"]  # type: ignore[union-attr]
    states["sim-x"] = S.STARTING
    assert rollout.advance(states, 4.0) is None
    assert rollout.advance(states, 40.0).names == ["a"]  # type: ignore[union-attr]
    assert "not settled in time" in rollout.done[-1]


def test_a_strategy_edit_touches_neither_the_recorder_nor_the_proxy(tmp_path: Path) -> None:
    from tradeops.process.fingerprint import fingerprints
    from tradeops.topology.load import load_topology

    text = """
version: 1
name: fp
settings: {record: {dir: data}}
brokers: {sim: {adapter: sim}}
strategies:
  a: {class: "recipes.momentum:Momentum", broker: sim, symbols: [AAPL], params: {x: 1}}
  b: {class: "recipes.momentum:Momentum", broker: sim, symbols: [MSFT]}
"""
    (tmp_path / "t.yaml").write_text(text)
    before = fingerprints(load_topology(tmp_path / "t.yaml"))
    (tmp_path / "t.yaml").write_text(text.replace("x: 1", "x: 2"))
    after = fingerprints(load_topology(tmp_path / "t.yaml"))
    assert {n for n in before if before[n] != after[n]} == {"a"}
