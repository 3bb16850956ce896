"""Building topologies for tests: a sound base file, changed one key at a time."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from tradeops.topology.check import CheckOptions
from tradeops.topology.findings import Finding
from tradeops.topology.validate import validate_file

BASE: dict[str, Any] = {
    "version": 1,
    "name": "desk",
    "brokers": {
        "sim": {"adapter": "sim", "pool": {"symbols_per_connection": 10, "max_connections": 2}},
    },
    "strategies": {
        "alpha": {"class": "recipes.momentum:Momentum", "broker": "sim", "symbols": ["AAPL"]},
        "beta": {"class": "recipes.ticklog:TickLogger", "broker": "sim", "symbols": ["MSFT"]},
    },
    "processes": {"group": {"strategies": ["alpha", "beta"]}},
}


def base() -> dict[str, Any]:
    return copy.deepcopy(BASE)


def run(tmp_path: Path, data: dict[str, Any], **options: Any) -> list[Finding]:
    strict = options.pop("strict", False)
    path = tmp_path / "topology.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return validate_file(path, CheckOptions(**options), strict).findings


def codes(findings: list[Finding]) -> list[str]:
    return [f.code for f in findings]


def only(findings: list[Finding], code: str) -> Finding:
    matching = [f for f in findings if f.code == code]
    assert len(matching) == 1, f"expected one {code}, got {findings}"
    return matching[0]
