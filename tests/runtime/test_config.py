"""A host's resolved configuration: what the supervisor hands it instead of the topology file
(runtime/config.py), and the pipe it travels on (supervisor/children.py)."""

from __future__ import annotations

import datetime
import os
from dataclasses import replace
from pathlib import Path

import pytest

from tradeops.process.spec import process_specs
from tradeops.runtime.config import CONFIG_FD, Launch, launch_of, read_launch
from tradeops.supervisor.children import _config_pipe
from tradeops.topology.load import load_topology

TOPOLOGY = """version: 1
name: cfg
settings: {stale_after_symbol: 30s}
brokers:
  sim: {adapter: sim}
strategies:
  a:
    class: tests.runtime.strategies:Recorder
    broker: sim
    symbols: [AAPL, MSFT]
    mode: quote
    bars: true
    priority: high
    timer: 250ms
    params: {threshold: 2.5, names: [x, y], nested: {k: null}}
  b:
    class: tests.runtime.strategies:Recorder
    broker: sim
    symbols: [SPY]
processes:
  pair: {strategies: [b, a], busy_poll: true, resume: replay, callback_timeout: 2s}
"""


def launch(tmp_path: Path, text: str = TOPOLOGY) -> Launch:
    file = tmp_path / "t.yaml"
    file.write_text(text)
    topology = load_topology(file)
    (spec,) = [s for s in process_specs(topology) if s.role == "host"]
    return launch_of(topology, spec)


def test_a_group_resolves_to_its_strategies_in_group_order_and_its_process_settings(
    tmp_path: Path,
) -> None:
    got = launch(tmp_path)
    assert got.desk == "cfg" and got.spec.name == "pair"
    host = got.host
    assert list(host.strategies) == ["b", "a"]
    a = host.strategies["a"]
    assert (a.class_path, a.broker, a.symbols) == (
        "tests.runtime.strategies:Recorder", "sim", ("AAPL", "MSFT"))
    assert (a.subscription, a.priority, a.timer) == ("quote+bars", "high", 0.25)
    assert a.params == {"threshold": 2.5, "names": ["x", "y"], "nested": {"k": None}}
    assert (host.busy_poll, host.resume, host.callback_timeout, host.on_stuck) == (
        True, "replay", 2.0, "report")
    assert host.stale_after_symbol == 30.0


def test_the_launch_comes_back_from_json_unchanged(tmp_path: Path) -> None:
    got = launch(tmp_path)
    text = got.to_json()
    assert text is not None
    back = Launch.from_json(text)
    assert back is not None and back.host == got.host and back.desk == got.desk
    assert replace(back.spec, restart=got.spec.restart) == got.spec


def test_params_json_cannot_carry_unchanged_leave_the_host_to_read_the_file(
    tmp_path: Path,
) -> None:
    got = launch(tmp_path)
    strategy = got.host.strategies["a"]
    for params in ({"day": datetime.date(2026, 1, 2)}, {1: "int key"}, {"t": (1, 2)},
                   {"x": float("nan")}):
        changed = {**got.host.strategies, "a": type(strategy)(**{**strategy.__dict__,
                                                                 "params": params})}
        odd = Launch(got.spec, got.desk, type(got.host)(**{**got.host.__dict__,
                                                         "strategies": changed}))
        assert odd.to_json() is None, params


def test_another_version_or_garbage_is_no_launch() -> None:
    assert Launch.from_json('{"v": 999}') is None
    assert Launch.from_json("not json") is None
    assert Launch.from_json('{"v": 1, "spec": {}}') is None


def test_the_config_pipe_carries_the_launch_to_read_launch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    got = launch(tmp_path)
    text = got.to_json()
    assert text is not None
    fd = _config_pipe(text.encode())
    assert fd is not None
    monkeypatch.setenv(CONFIG_FD, str(fd))
    back = read_launch()
    assert back is not None and back.host == got.host
    assert CONFIG_FD not in os.environ  # not passed on to what the host starts
    with pytest.raises(OSError):
        os.fstat(fd)  # read to its end and closed


def test_a_launch_larger_than_a_pipe_is_not_handed_over() -> None:
    assert _config_pipe(b"x" * (64 << 20)) is None


def test_no_pipe_is_no_launch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(CONFIG_FD, raising=False)
    assert read_launch() is None
